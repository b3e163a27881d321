"""Experiments too long for a chapter's 90 seconds; each writes to ``chapters/data/``.

Run one as ``python -m rnnbook.experiments.NAME``; ``--help`` lists its options.
"""
