"""The experiments' result files (JSON), shipped as ``rnnbook.data``.

Read them with :func:`rnnbook.experiments.load_result`; write them with the
experiment scripts (``python -m rnnbook.experiments.NAME``).
"""
