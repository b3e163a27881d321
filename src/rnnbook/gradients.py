"""Measuring and taming gradients through time (Chapter 2).

Pascanu, Mikolov & Bengio (2013) give two remedies for the two failures of
BPTT: *norm clipping* against exploding gradients (their Algorithm 1) and a
*regularizer* ``Omega`` against vanishing ones (their eqs. 9-10). Both live
here, with the probe the chapter uses to measure how fast a gradient decays
on its way back in time.

The letters (``B``, ``T``, ``H``, ...) are the package's one glossary, in
:mod:`rnnbook` and on the book's notation page. ``hs`` holds the states
``h_0 .. h_T``, ``(B, T+1, H)``; ``grads[:, t-1]`` is ``dE/dh_t``. Row
vectors, as in Chapter 1: ``dE/dh_{t-1} = dE/dh_t diag(1 - h_t^2) W_hh``.
"""

import math

import numpy as np
import torch

from rnnbook._checks import (
    check_choice,
    check_nonempty_batch,
    check_real,
    check_same_dtype,
    check_shape,
    check_tensor,
)

ACTIVATIONS = {
    # name: (f(a), f'(a) written in terms of a and h = f(a))
    "linear": (lambda a: a, lambda a, h: torch.ones_like(a)),
    "tanh": (torch.tanh, lambda a, h: 1 - h**2),
    "sigmoid": (torch.sigmoid, lambda a, h: h * (1 - h)),
    "relu": (torch.relu, lambda a, h: (a > 0).to(a.dtype)),
}
"""The activations of :func:`state_gradient_norms`: name -> ``(f, f')``."""


# ------------------------------------------------------------------ clipping


def _grads_of(parameters):
    """The gradients set on ``parameters`` (a tensor or an iterable)."""
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    elif not hasattr(parameters, "__iter__"):
        raise TypeError(
            "expected parameters to be a tensor or an iterable of tensors, "
            f"got {type(parameters).__name__}"
        )
    parameters = list(parameters)
    for p in parameters:
        if not isinstance(p, torch.Tensor):
            raise TypeError(
                f"expected parameters to be tensors, got {type(p).__name__}"
            )
        if p.grad is not None and not p.grad.dtype.is_floating_point:
            raise TypeError(
                f"expected real floating-point gradients, got {p.grad.dtype}"
            )
    return [p.grad for p in parameters if p.grad is not None]


def _joint_norm(grads, dtype):
    """The norm of ``grads`` joined into one vector, computed in ``dtype``."""
    norms = [torch.linalg.vector_norm(g, dtype=dtype) for g in grads]
    return torch.linalg.vector_norm(torch.stack(norms))


def grad_norm(parameters):
    """The L2 norm of all gradients joined into one vector (0 if none is set).

    The norm is computed in float32 at least (float16 gradients whose
    entries are finite would overflow: 300 entries of 1e4 square to more
    than float16's largest number), and in float64 if float32 overflows
    while every entry is finite.

    Args:
        parameters: a tensor or an iterable of tensors; those whose
            ``.grad`` is ``None`` are skipped.

    Returns:
        A 0-d float tensor (float32, or float64 for the widest gradients).
    """
    return _norm_of_grads(_grads_of(parameters))


def _norm_of_grads(grads):
    if not grads:
        return torch.tensor(0.0)
    dtype = max((g.dtype for g in grads), key=lambda d: torch.finfo(d).bits)
    if torch.finfo(dtype).bits < 32:
        dtype = torch.float32
    norm = _joint_norm(grads, dtype)
    if not torch.isfinite(norm) and all(g.isfinite().all() for g in grads):
        norm = _joint_norm(grads, torch.float64)  # float32 overflowed
    return norm


def clip_grad_norm_(parameters, max_norm):
    """Rescale gradients whose joint norm exceeds ``max_norm`` (Algorithm 1).

    .. math::

        \\hat g \\leftarrow \\frac{\\partial E}{\\partial \\theta},
        \\qquad \\text{if } \\|\\hat g\\| \\ge \\tau: \\quad
        \\hat g \\leftarrow \\frac{\\tau}{\\|\\hat g\\|}\\, \\hat g,

    where ``g`` is every parameter's gradient flattened into one vector and
    ``tau`` is ``max_norm`` (Pascanu et al., 2013, Algorithm 1). The
    direction of the step is kept; only its length is capped. The effect is
    that of ``torch.nn.utils.clip_grad_norm_`` (which adds ``1e-6`` to the
    norm in the denominator; this function divides by the norm itself).

    A non-finite norm is returned as it is and leaves the gradients
    untouched: there is no direction to keep, and the caller (see
    :func:`rnnbook.train.train`) must stop.

    Args:
        parameters: a tensor or an iterable of tensors; those whose
            ``.grad`` is ``None`` are skipped.
        max_norm: the threshold ``tau``, a positive number (a NumPy scalar
            or a 0-d tensor will do).

    Returns:
        The norm of all gradients before clipping, a 0-d float tensor.
    """
    max_norm = check_real("max_norm", max_norm, low=0.0)
    grads = _grads_of(parameters)
    total_norm = _norm_of_grads(grads)
    if torch.isfinite(total_norm) and total_norm > max_norm:
        scale = max_norm / total_norm
        for g in grads:
            g.mul_(scale.to(g.dtype) if g.dtype != scale.dtype else scale)
    return total_norm


# ------------------------------------------------------------ the regularizer


def pascanu_regularizer(W_hh, hs, grads):
    """Pascanu et al.'s vanishing-gradient regularizer (their eq. 9), tanh.

    .. math::

        \\Omega = \\frac{1}{B} \\sum_{n=1}^{B} \\sum_{t=1}^{T}
          \\left( \\frac{\\| g_t\\, \\mathrm{diag}(1 - h_t^2)\\,
          W_{hh} \\|}{\\| g_t \\|} - 1 \\right)^2,
        \\qquad g_t = \\frac{\\partial E}{\\partial h_t}.

    Each term asks one transition to preserve the norm of the gradient
    that passes back through it, in the direction ``g_t`` that the error
    actually takes. ``grads`` is treated as a constant (detached), as in
    the paper; ``hs`` is not: ``Omega`` is differentiated with respect to
    ``W_hh`` and, through the slopes ``1 - h_t^2``, the states, so it also
    moves ``W_xh`` and ``b``. The paper's eq. 10 and the authors' code
    take the derivative with respect to ``W_hh`` only. Their code also
    differs in two more ways: it averages the terms over the steps instead
    of summing them, and it compares squared norms,
    ``(||g_t J_t||^2 / ||g_t||^2 - 1)^2``, which is about four times our
    term near a ratio of one. So a weight ``alpha`` here puts ``alpha`` on
    each step where theirs puts about ``4 alpha / T`` (Chapter 2 measures
    what this does). Steps whose ``g_t`` is exactly zero carry no
    direction and contribute nothing; with ``T = 0`` there is no
    transition and ``Omega = 0``.

    Args:
        W_hh: recurrent matrix, ``(H, H)``.
        hs: states ``h_0 .. h_T``, ``(B, T+1, H)`` (``h_0`` is not used).
        grads: ``dE/dh_t`` for ``t = 1..T``, ``(B, T, H)``; detached here.

    Returns:
        ``Omega``, a 0-d tensor.
    """
    check_tensor("W_hh", W_hh, 2, "(H, H)", real=True)
    check_tensor("hs", hs, 3, "(B, T+1, H)", real=True)
    check_tensor("grads", grads, 3, "(B, T, H)", real=True)
    check_same_dtype(W_hh=W_hh, hs=hs, grads=grads)
    B, T1, H = hs.shape
    if T1 == 0:
        raise ValueError("expected hs to hold h_0 at least, got T+1 = 0")
    check_nonempty_batch("hs", B)
    if tuple(W_hh.shape) != (H, H):
        raise ValueError(
            f"expected W_hh of shape (H, H) = {(H, H)} to match hs "
            f"{tuple(hs.shape)}, got {tuple(W_hh.shape)}"
        )
    if tuple(grads.shape) != (B, T1 - 1, H):
        raise ValueError(
            f"expected grads of shape (B, T, H) = {(B, T1 - 1, H)} to match"
            f" hs {tuple(hs.shape)} (B, T+1, H), got {tuple(grads.shape)}"
        )
    g = grads.detach()
    # (B, T, H): g_t diag(1 - h_t^2) W_hh
    passed_back = (g * (1 - hs[:, 1:] ** 2)) @ W_hh
    g_norm = torch.linalg.vector_norm(g, dim=-1)  # (B, T)
    live = g_norm > 0
    ratio = torch.linalg.vector_norm(passed_back, dim=-1) / torch.where(
        live, g_norm, 1
    )  # (B, T)
    return torch.where(live, (ratio - 1) ** 2, 0).sum(dim=1).mean()


# ------------------------------------------------------------------ the probe


def state_gradient_norms(W_hh, W_xh, b, xs, activation="tanh", h0=None):
    """``||u dh_T/dh_k||``: how much of a gradient survives ``T - k`` steps.

    Runs ``h_t = f(W_hh h_{t-1} + W_xh x_t + b)`` over ``xs``, then sends a
    unit vector ``u`` (the normalised all-ones direction) back from
    ``h_T``:

    .. math::

        v_T = u, \\qquad
        v_{t-1} = v_t\\, \\mathrm{diag}(f'(a_t))\\, W_{hh}, \\qquad
        \\text{norms}[k] = \\| v_k \\|
        = \\| u\\, \\partial h_T / \\partial h_k \\|,

    averaged over the batch. This is ``||dL/dh_k||`` for the loss
    ``L = u . h_T`` and a lower bound on the Jacobian's norm; Chapter 2
    compares it with the bound ``(lambda_1 gamma)^(T-k)`` (Pascanu et al.,
    2013, §2.1). The walk keeps ``v`` at unit length and adds up the logs
    of the lengths it divides out, so a norm far below ``1e-150`` is
    computed, not lost to underflow: it reads 0 only below float's
    smallest positive number.

    Args:
        W_hh: ``(H, H)``; W_xh: ``(H, D)``; b: ``(H,)``; one real dtype.
        xs: inputs, ``(B, T, D)`` with ``B >= 1``; ``T = 0`` gives
            ``norms = [1]``.
        activation: one of :data:`ACTIVATIONS`.
        h0: initial states ``(B, H)``; zeros if omitted.

    Returns:
        ``norms``, ``(T+1,)``: ``norms[k]`` for ``k = 0..T``
        (``norms[T] = 1``).
    """
    check_choice("activation", activation, ACTIVATIONS)
    check_tensor("xs", xs, 3, "(B, T, D)", real=True)
    check_tensor("W_hh", W_hh, 2, "(H, H)", real=True)
    B, T, D = xs.shape
    H = W_hh.shape[0]
    check_shape("W_hh", W_hh, (H, H), real=True)
    check_shape("W_xh", W_xh, (H, D), real=True)
    check_shape("b", b, (H,), real=True)
    if h0 is not None:
        check_shape("h0", h0, (B, H), real=True)
    check_same_dtype(
        W_hh=W_hh, W_xh=W_xh, b=b, xs=xs, **({} if h0 is None else {"h0": h0})
    )
    check_nonempty_batch("xs", B)
    f, df = ACTIVATIONS[activation]
    h = torch.zeros(B, H, dtype=xs.dtype) if h0 is None else h0
    slopes = []  # f'(a_t) for t = 1..T, each (B, H)
    for t in range(T):
        a = h @ W_hh.T + xs[:, t] @ W_xh.T + b  # (B, H)
        h = f(a)
        slopes.append(df(a, h))
    v = torch.full((B, H), 1 / math.sqrt(H), dtype=xs.dtype)  # u
    # v is kept at unit length and its log-norm carried beside it, so a
    # norm of 1e-200 is not lost to underflow (squaring its entries would
    # be): log_norm[n] = log ||v_k|| for sequence n
    log_norm = torch.zeros(B, dtype=xs.dtype)
    norms = [torch.ones((), dtype=xs.dtype)]
    for t in range(T, 0, -1):
        # (B, H): v_{t-1} = v_t diag(f'(a_t)) W_hh, up to the scale
        v = (v * slopes[t - 1]) @ W_hh
        length = torch.linalg.vector_norm(v, dim=-1)  # (B,)
        log_norm = log_norm + torch.log(length)  # -inf once v is zero
        norms.append(torch.exp(log_norm).mean())
        v = v / torch.where(length > 0, length, 1)[:, None]
    return torch.stack(norms[::-1]).detach()


def decay_rate(norms):
    """The least-squares slope of ``log norms[k]`` against the gap ``T - k``.

    For a linear RNN with ``W_hh = rho Q`` (``Q`` orthogonal) the slope is
    exactly ``log rho`` (Chapter 2, eq. ``ch2-linear-rate``).

    Args:
        norms: ``(T+1,)`` positive numbers from :func:`state_gradient_norms`,
            ``T >= 1``.

    Returns:
        The slope, a float (negative when the gradient decays).
    """
    check_tensor("norms", norms, 1, "(T+1,)", real=True)
    if len(norms) < 2 or not bool((norms > 0).all()):
        raise ValueError(
            f"expected at least two positive norms, got {norms.tolist()[:5]}"
        )
    gaps = np.arange(len(norms) - 1, -1, -1, dtype=np.float64)
    log_norms = torch.log(norms.double()).numpy()
    slope, _ = np.polyfit(gaps, log_norms, 1)
    return float(slope)
