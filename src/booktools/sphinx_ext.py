"""The book's own Sphinx extension: fixes to the HTML that Jupyter Book 1.x emits.

Loaded from ``_config.yml`` (``sphinx: extra_extensions: [booktools.sphinx_ext]``).

1. **Each inline script once.** Sphinx 7.4 registers an inline script added by an
   extension after the builder starts (sphinx-thebe's ``const THEBE_JS_URL = ...``,
   sphinx-togglebutton's selector) twice: once with the file name ``None`` and once,
   in ``prepare_writing``, with ``''``; the two compare unequal, so every page
   declares ``THEBE_JS_URL`` twice and the browser logs ``SyntaxError: Identifier
   'THEBE_JS_URL' has already been declared``. We drop the repeats page by page.

2. **Bibliography entries are list items.** docutils marks each citation
   ``role="doc-biblioentry"`` inside a ``role="list"``; DPUB-ARIA 1.1 deprecated
   that role in favour of ``listitem``, and axe-core reports the list as having no
   items (a critical violation, ``aria-required-children``).

3. **The student edition hides every solution.** sphinx-exercise's
   ``hide_solutions: true`` removes the ``{solution}`` directives from the pages; two
   places it does not reach are handled here, only when ``hide_solutions`` is set:

   - a notebook cell tagged ``solution`` (code that solves an exercise) is removed
     from the page;
   - the notebooks and Markdown files copied to ``_sources/`` (what the page's
     download button serves) are rewritten without ``{solution}`` blocks and without
     cells tagged ``solution``, so a student downloads the exercises, not the answers.
"""

import json
import pathlib
import re

from docutils import nodes

SOLUTION_TAG = "solution"

# A ```{solution} ...``` or :::{solution} ...::: block, fenced by three or more
# backticks or colons; the closing fence repeats the opening one exactly.
_SOLUTION_BLOCK = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{solution\}.*?^(?P=fence)[ \t]*$\n?",
    flags=re.MULTILINE | re.DOTALL,
)


# ------------------------------------------------------------- 1. inline scripts once


def _script_key(script):
    """What makes two script entries the same script, with ``None`` and ``''`` alike."""
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {})
    return (
        str(filename),
        tuple(sorted((k, str(v)) for k, v in attributes.items())),
    )


def drop_repeated_scripts(app, pagename, templatename, context, doctree):
    """``html-page-context`` handler: keep the first of each repeated script entry."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


# ----------------------------------------------------------- 2. bibliography list items


def citations_as_list_items(app, pagename, templatename, context, doctree):
    """``html-page-context`` handler: ``role="doc-biblioentry"`` -> ``role="listitem"``."""
    if "body" in context:
        context["body"] = context["body"].replace(
            'role="doc-biblioentry"', 'role="listitem"'
        )


# ------------------------------------------------------- 3. solutions in the student edition


def _hiding_solutions(app):
    """Whether this is the student edition (sphinx-exercise's ``hide_solutions`` is set)."""
    return bool(getattr(app.config, "hide_solutions", False))


def strip_solution_text(text):
    """Markdown ``text`` without its ``{solution}`` blocks."""
    return _SOLUTION_BLOCK.sub("", text)


def strip_solutions_from_notebook(notebook):
    """A notebook (parsed JSON) without cells tagged ``solution`` and without ``{solution}`` blocks.

    Args:
        notebook: the ``dict`` of an ``.ipynb`` file; it is not modified.

    Returns:
        A new ``dict``; Markdown cells that held only a solution are dropped.
    """
    cells = []
    for cell in notebook.get("cells", []):
        if SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.get("cell_type") == "markdown":
            source = cell["source"]
            text = "".join(source) if isinstance(source, list) else source
            stripped = strip_solution_text(text)
            if stripped != text:
                if not stripped.strip():
                    continue
                cell = dict(cell, source=stripped.splitlines(keepends=True))
        cells.append(cell)
    return dict(notebook, cells=cells)


def remove_solution_cells(app, doctree):
    """``doctree-read`` handler: drop notebook cells tagged ``solution`` (student edition only)."""
    if not _hiding_solutions(app):
        return
    tagged = [
        node
        for node in doctree.findall(nodes.container)
        if f"tag_{SOLUTION_TAG}" in node.get("classes", [])
    ]
    for node in tagged:
        node.parent.remove(node)


def strip_copied_sources(app, exception):
    """``build-finished`` handler: rewrite ``_sources/`` without solutions (student edition only)."""
    if (
        exception is not None
        or not _hiding_solutions(app)
        or app.builder.format != "html"
    ):
        return
    sources = pathlib.Path(app.outdir) / "_sources"
    for path in sources.rglob("*.ipynb"):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(
            json.dumps(
                strip_solutions_from_notebook(notebook),
                indent=1,
                ensure_ascii=False,
            )
            + "\n",
            encoding="utf-8",
        )
    for path in sources.rglob(
        "*.md*"
    ):  # Sphinx copies foo.md as foo.md or foo.md.txt
        text = path.read_text(encoding="utf-8")
        stripped = strip_solution_text(text)
        if stripped != text:
            path.write_text(stripped, encoding="utf-8")


def setup(app):
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    app.connect("html-page-context", citations_as_list_items)
    app.connect("doctree-read", remove_solution_cells)
    app.connect("build-finished", strip_copied_sources)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
