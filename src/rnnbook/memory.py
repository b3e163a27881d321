"""What BPTT keeps in memory, and gradient checkpointing (Chapter 1).

Chapter 1 derives BPTT in NumPy (:mod:`rnnbook.numpy_rnn`); here the same
recurrence runs in PyTorch so that autograd differentiates it, and so that
we can measure what it costs:

- :func:`rnn_steps`, the loop of equation ``ch1-rnn`` for autograd;
- :func:`mean_square_per_step`, a loss on every step read straight from
  each step's ``tanh`` output, with no stacked copy of the states;
- :func:`saved_bytes`, the bytes autograd keeps for the backward pass,
  counted once per storage;
- :func:`checkpointed_rnn_steps`, the same loop with gradient checkpointing
  (Griewank, 1992; Gruslys et al., 2016; Chen et al., 2016): only the
  state at each segment boundary is kept, and each segment is recomputed
  during the backward pass;
- :func:`interleaved_seconds`, wall-clock timing with interleaved repeats.

The letters (``B``, ``T``, ``D``, ``H``) are those of the book's notation
page and of the :mod:`rnnbook` package docstring.
"""

import time

import torch
from torch.utils.checkpoint import checkpoint

from rnnbook._checks import check_positive_int


def _check_rnn_args(W_xh, W_hh, b, xs, h0):
    """Types and shapes of the arguments of :func:`rnn_steps`."""
    for name, value, shape, ndim in (
        ("W_xh", W_xh, "(H, D)", 2),
        ("W_hh", W_hh, "(H, H)", 2),
        ("b", b, "(H,)", 1),
        ("xs", xs, "(B, T, D)", 3),
        ("h0", h0, "(B, H)", 2),
    ):
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"expected {name} to be a torch.Tensor of shape {shape}, "
                f"got {type(value).__name__}"
            )
        if not value.is_floating_point():
            raise TypeError(
                f"expected {name} to be a real floating-point tensor, "
                f"got dtype {value.dtype}"
            )
        if value.dim() != ndim:
            raise ValueError(
                f"expected {name} of shape {shape}, got {tuple(value.shape)}"
            )
    B, T, D = xs.shape
    H = W_hh.shape[0]
    for name, value, expected in (
        ("W_hh", W_hh, (H, H)),
        ("W_xh", W_xh, (H, D)),
        ("b", b, (H,)),
        ("h0", h0, (B, H)),
    ):
        if tuple(value.shape) != expected:
            raise ValueError(
                f"expected {name} of shape {expected} (B={B}, D={D}, "
                f"H={H} from xs and W_hh), got {tuple(value.shape)}"
            )


def rnn_steps(W_xh, W_hh, b, xs, h0):
    """The vanilla RNN of equation ``ch1-rnn`` as a PyTorch loop.

    .. math::

        h_t = \\tanh(W_{hh} h_{t-1} + W_{xh} x_t + b), \\quad t = 1..T.

    The same computation as :func:`rnnbook.numpy_rnn.rnn_forward`, written
    step by step so that autograd records (and saves) every step.

    Args:
        W_xh, W_hh, b: the parameters, ``(H, D)``, ``(H, H)``, ``(H,)``.
        xs: inputs, ``(B, T, D)``.
        h0: initial states, ``(B, H)``.

    Returns:
        The states ``h_1 .. h_T`` stacked, ``(B, T, H)`` (without ``h_0``,
        unlike ``rnn_forward``). ``T`` must be at least 1.
    """
    _check_rnn_args(W_xh, W_hh, b, xs, h0)
    if xs.shape[1] == 0:
        raise ValueError("expected xs with at least one step (T >= 1)")
    h, states = h0, []
    for t in range(xs.shape[1]):
        h = torch.tanh(xs[:, t] @ W_xh.T + h @ W_hh.T + b)  # (B, H)
        states.append(h)
    return torch.stack(states, dim=1)  # (B, T, H)


def mean_square_per_step(W_xh, W_hh, b, xs, h0):
    """``rnn_steps(...).square().mean()``, without stacking the states.

    .. math::

        L = \\frac{1}{BTH} \\sum_{t=1}^{T} \\|h_t\\|^2 .

    The loss of each step is read from that step's ``tanh`` output and
    added to a running scalar, so no ``(B, T, H)`` copy of the states is
    made. Autograd then keeps one ``(B, H)`` state per step (the ``tanh``
    output, shared by ``tanh``'s backward, the next step's matrix product
    and the square), where ``rnn_steps(...).square().mean()`` keeps two:
    that output and its row of the stacked copy, which the square saves.

    Args:
        W_xh, W_hh, b, xs, h0: as for :func:`rnn_steps`.

    Returns:
        The loss, a 0-d tensor. ``B`` and ``T`` must be at least 1.
    """
    _check_rnn_args(W_xh, W_hh, b, xs, h0)
    B, T, _ = xs.shape
    if T == 0 or B == 0:
        raise ValueError(
            "expected xs with at least one sequence and one step "
            f"(B, T >= 1) for a mean, got {tuple(xs.shape)}"
        )
    h, total = h0, 0.0
    for t in range(T):
        h = torch.tanh(xs[:, t] @ W_xh.T + h @ W_hh.T + b)  # (B, H)
        total = total + h.square().sum()  # reads h itself: no copy
    return total / (B * T * h.shape[1])


def checkpointed_rnn_steps(
    W_xh, W_hh, b, xs, h0, segment, clone_boundary=True
):
    """:func:`rnn_steps` with gradient checkpointing every ``segment`` steps.

    Each segment of ``segment`` steps runs under
    :func:`torch.utils.checkpoint.checkpoint`: its inside is not saved, and
    it is run again during the backward pass from the state it started
    from. What the forward pass keeps is that boundary state, one ``(B, H)``
    tensor per segment.

    The trap this function exists to show: the boundary state is the last
    row of the segment's output, ``out[:, -1]``, a *view* of the whole
    ``(B, M, H)`` output (``M = segment``). Checkpointing keeps its input
    alive, and a view keeps its whole storage alive, so without the copy
    every segment's full output stays in memory and almost nothing is
    saved.

    Args:
        W_xh, W_hh, b, xs, h0: as for :func:`rnn_steps`.
        segment: steps per checkpointed segment, a positive int.
        clone_boundary: copy each boundary state (``True``, the right way);
            ``False`` passes the view on, to measure the trap.

    Returns:
        The states ``h_1 .. h_T``, ``(B, T, H)``, equal to
        :func:`rnn_steps`; gradients through them are equal too.
    """
    _check_rnn_args(W_xh, W_hh, b, xs, h0)
    segment = check_positive_int("segment", segment)
    if not isinstance(clone_boundary, bool):
        raise TypeError(
            "expected clone_boundary to be a bool, "
            f"got {type(clone_boundary).__name__}"
        )
    if xs.shape[1] == 0:
        raise ValueError("expected xs with at least one step (T >= 1)")
    h, outs = h0, []
    for start in range(0, xs.shape[1], segment):
        xs_seg = xs[:, start : start + segment]  # (B, M, D)
        out = checkpoint(
            rnn_steps, W_xh, W_hh, b, xs_seg, h, use_reentrant=False
        )  # (B, M, H)
        outs.append(out)
        h = out[:, -1].clone() if clone_boundary else out[:, -1]
    return torch.cat(outs, dim=1)  # (B, T, H)


def saved_bytes(fn, exclude=()):
    """Run ``fn()`` and count the bytes autograd saves for the backward pass.

    Every tensor that autograd saves while ``fn`` runs passes through a
    :func:`torch.autograd.graph.saved_tensors_hooks` pack hook, which
    records the tensor's *storage*: its address and its size in bytes.
    Each storage is counted once and in full, because that is what stays
    in memory: ``out[:, -1]`` saved alone keeps all of ``out`` alive, and
    ``h`` saved by two operations is still one ``h``. Storages of the
    tensors in ``exclude`` (the inputs and the weights, which exist whether
    or not there is a backward pass) are left out.

    What it does not count: memory freed before ``fn`` returns, and
    tensors kept alive by something other than autograd's saved tensors.
    Call the loss inside ``fn``: what the loss's backward needs is part of
    the cost.

    Args:
        fn: a function of no arguments that builds a graph.
        exclude: tensors whose storages are not counted.

    Returns:
        ``(nbytes, result)``: the bytes of the distinct storages saved,
        and what ``fn`` returned.
    """
    if not callable(fn):
        raise TypeError(f"expected fn to be callable, got {type(fn).__name__}")
    for value in exclude:
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                "expected exclude to hold torch.Tensors, "
                f"got {type(value).__name__}"
            )
    left_out = {value.untyped_storage().data_ptr() for value in exclude}
    storages = {}  # address -> bytes

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in left_out:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        result = fn()
    return sum(storages.values()), result


def interleaved_seconds(fns, repeats=5):
    """The best wall-clock time of each function, with interleaved repeats.

    The functions run in turn, ``repeats`` rounds of one call each, so a
    slow spell of a busy machine hits them all alike; the minimum over the
    rounds is the least disturbed measurement. Compare the results as
    ratios: absolute times depend on the machine.

    Args:
        fns: a dict ``name -> function of no arguments``.
        repeats: rounds, a positive int.

    Returns:
        A dict ``name -> best seconds``.
    """
    if not isinstance(fns, dict) or not all(map(callable, fns.values())):
        raise TypeError("expected fns to be a dict of name -> function")
    repeats = check_positive_int("repeats", repeats)
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best
