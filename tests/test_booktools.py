"""booktools: finding the book's repository, and the version it reports."""

from importlib import metadata

import pytest
from conftest import ROOT

import booktools
import rnnbook


def test_find_root_walks_up_to_the_folder_with_the_book_config(tmp_path):
    assert booktools.find_root(ROOT / "chapters" / "data") == ROOT
    book = tmp_path / "book"
    (book / "a" / "b").mkdir(parents=True)
    (book / "_config.yml").write_text("title: t\n")
    (book / "_toc.yml").write_text("root: intro\n")
    assert booktools.find_root(book / "a" / "b") == book


def test_find_root_says_what_it_looked_for(tmp_path):
    (tmp_path / "_config.yml").write_text("title: t\n")  # no _toc.yml
    with pytest.raises(FileNotFoundError, match="_config.yml and _toc.yml"):
        booktools.find_root(tmp_path)


def test_one_version_for_both_packages():
    assert booktools.__version__ == rnnbook.__version__
    assert metadata.version("rnnbook") == rnnbook.__version__
