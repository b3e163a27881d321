"""Input checks shared by the package's public functions.

One convention: ``TypeError`` when a value has the wrong type (a string for
a number, a complex or integer tensor where real numbers are expected),
``ValueError`` when the type is right but the value or the shape is not.
Every message says what was expected and what came. Legitimate values are
accepted: NumPy integer and float scalars, and 0-d real tensors for numbers.
"""

import math

import numpy as np
import torch


def _shape(value):
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return tuple(value.shape)
    return type(value).__name__


def check_bool(name, value):
    """``value`` as a bool; a string such as ``"False"`` is refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"expected {name} to be True or False, got {value!r}")
    return bool(value)


def check_int(name, value, low=None):
    """``value`` as an int (NumPy integers too), at least ``low`` if given."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, np.integer)
    ):
        raise TypeError(
            f"expected {name} to be an int, got {type(value).__name__} "
            f"{value!r}"
        )
    if low is not None and value < low:
        raise ValueError(f"expected {name} to be an int >= {low}, got {value}")
    return int(value)


def check_positive_int(name, value):
    """``value`` as an int >= 1."""
    if isinstance(value, (int, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    ):
        if value < 1:
            raise ValueError(
                f"expected {name} to be a positive int, got {value!r}"
            )
        return int(value)
    raise TypeError(
        f"expected {name} to be a positive int, got "
        f"{type(value).__name__} {value!r}"
    )


def check_real(name, value, low=None, allow_low=False):
    """``value`` as a finite float, above ``low`` (or equal, ``allow_low``).

    Accepts Python and NumPy numbers and 0-d real tensors; refuses bools,
    strings and complex numbers (``TypeError``), NaN and infinities
    (``ValueError``).
    """
    real = (int, float, np.integer, np.floating, torch.Tensor)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, real):
        raise TypeError(
            f"expected {name} to be a real number, got "
            f"{type(value).__name__} {value!r}"
        )
    if isinstance(value, torch.Tensor):
        if value.dim() != 0 or value.is_complex() or value.dtype == torch.bool:
            raise TypeError(
                f"expected {name} to be a real scalar, got a {value.dtype} "
                f"tensor of shape {tuple(value.shape)}"
            )
        value = value.item()
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"expected {name} to be finite, got {value}")
    if low is not None and not (value >= low if allow_low else value > low):
        bound = f">= {low}" if allow_low else f"> {low}"
        raise ValueError(
            f"expected {name} to be finite and {bound}, got {value}"
        )
    return value


def check_choice(name, value, options):
    """``value`` must be a string among ``options``."""
    if not isinstance(value, str):
        raise TypeError(
            f"expected {name} to be one of {sorted(options)}, got "
            f"{type(value).__name__} {value!r}"
        )
    if value not in options:
        raise ValueError(
            f"expected {name} to be one of {sorted(options)}, got {value!r}"
        )
    return value


def check_generator(name, value):
    """``value`` must be a ``torch.Generator``."""
    if not isinstance(value, torch.Generator):
        raise TypeError(
            f"expected {name} to be a torch.Generator (for example "
            f"torch.Generator().manual_seed(0)), got {type(value).__name__}"
        )
    return value


def check_real_dtype(name, value):
    """A tensor of real floating dtype (not complex, integer or bool)."""
    if not value.dtype.is_floating_point:
        raise TypeError(
            f"expected {name} to hold real floating-point numbers, got "
            f"dtype {value.dtype}"
        )


def check_tensor(name, value, ndim, shape_text, real=False):
    """A tensor with ``ndim`` dimensions; of a real floating dtype if
    ``real`` (masks and token indices pass ``real=False``)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"expected {name} to be a torch.Tensor of shape {shape_text}, "
            f"got {type(value).__name__}"
        )
    if real:
        check_real_dtype(name, value)
    if value.dim() != ndim:
        raise ValueError(
            f"expected {name} of shape {shape_text} ({ndim} dims), "
            f"got {_shape(value)}"
        )


def check_shape(name, value, expected, real=False):
    """A tensor of exactly the shape ``expected``; real floating if
    ``real``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"expected {name} to be a torch.Tensor of shape "
            f"{tuple(expected)}, got {type(value).__name__}"
        )
    if real:
        check_real_dtype(name, value)
    if tuple(value.shape) != tuple(expected):
        raise ValueError(
            f"expected {name} of shape {tuple(expected)}, got {_shape(value)}"
        )


def check_same_dtype(**tensors):
    """Every tensor given must share one dtype (no silent casting)."""
    dtypes = {name: t.dtype for name, t in tensors.items()}
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{n} {d}" for n, d in dtypes.items())
        raise TypeError(f"expected one dtype for all tensors, got {listed}")


def check_nonempty_batch(name, B):
    """A batch of ``B = 0`` sequences has no mean: refuse it."""
    if B == 0:
        raise ValueError(
            f"expected {name} to hold at least one sequence, got an empty "
            "batch (B = 0)"
        )
