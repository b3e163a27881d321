"""Experiments too long for a chapter's 90 seconds.

Run one as ``python -m rnnbook.experiments.NAME``; ``--help`` lists its
options. Each writes one JSON file to ``chapters/data/``. A chapter reads it
with :func:`load_result`, which finds the file in the installed package
(``rnnbook.data``), so a chapter opened alone still runs.
"""

from rnnbook.experiments._io import load_result

__all__ = ["load_result"]
