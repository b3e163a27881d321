"""Helpers that let a chapter show the code it runs.

A chapter never copies code into a markdown cell: it renders the source of the
live object, so the text can never drift from what executes.
"""

import inspect

from IPython.display import Code


def show_source(obj):
    """Return the source of a function, class or module as highlighted code.

    Args:
        obj: anything :func:`inspect.getsource` accepts.

    Returns:
        An :class:`IPython.display.Code` object; as the last expression of a
        cell it renders as a highlighted listing in Jupyter and in the book.
    """
    try:
        source = inspect.getsource(obj)
    except TypeError as err:
        raise TypeError(
            "show_source expected a function, class or module, got "
            f"{type(obj).__name__}"
        ) from err
    return Code(source, language="python")
