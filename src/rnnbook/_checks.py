"""Input checks shared by the PyTorch modules; each raises with what was expected and what came."""

import torch


def check_positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(
            f"expected {name} to be a positive int, got {value!r}"
        )


def check_tensor(name, value, ndim, shape_text):
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"expected {name} to be a torch.Tensor of shape {shape_text}, got {type(value).__name__}"
        )
    if value.dim() != ndim:
        raise ValueError(
            f"expected {name} of shape {shape_text} ({ndim} dims), got {tuple(value.shape)}"
        )


def check_shape(name, value, expected):
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"expected {name} to be a torch.Tensor of shape {tuple(expected)}, got {type(value).__name__}"
        )
    if tuple(value.shape) != tuple(expected):
        raise ValueError(
            f"expected {name} of shape {tuple(expected)}, got {tuple(value.shape)}"
        )
