"""Measuring and taming gradients through time (Chapter 2).

Pascanu, Mikolov & Bengio (2013) give two remedies for the two failures of BPTT:
*norm clipping* against exploding gradients (their Algorithm 1) and a *regularizer*
``Omega`` against vanishing ones (their eq. 9-10). Both live here, with the probe the
chapter uses to measure how fast a gradient decays on its way back in time.

Glossary (the package's one letter set):

- ``B`` batch size, ``T`` sequence length, ``H`` hidden size.
- ``hs`` the states ``h_0 .. h_T``, shape ``(B, T+1, H)``; ``hs[:, t]`` is ``h_t``.
- ``grads`` the total derivatives ``dE/dh_t`` for ``t = 1..T``, shape ``(B, T, H)``;
  ``grads[:, t-1]`` belongs to ``h_t``.
- ``W_hh (H, H)`` the recurrent matrix of ``h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)``.

Row vectors, as in Chapter 1: ``dE/dh_{t-1} = dE/dh_t diag(1 - h_t^2) W_hh``.
"""

import math

import torch

from rnnbook._checks import check_shape, check_tensor

ACTIVATIONS = {
    # name: (f(a), f'(a) written in terms of a and h = f(a))
    "linear": (lambda a: a, lambda a, h: torch.ones_like(a)),
    "tanh": (torch.tanh, lambda a, h: 1 - h**2),
    "sigmoid": (torch.sigmoid, lambda a, h: h * (1 - h)),
    "relu": (torch.relu, lambda a, h: (a > 0).to(a.dtype)),
}
"""The activations :func:`state_gradient_norms` accepts: each name maps to ``(f, f')``."""


# --------------------------------------------------------------------------- clipping


def grad_norm(parameters):
    """The L2 norm of all gradients joined into one vector, ``||g||`` (0 if none is set).

    Args:
        parameters: a tensor or an iterable of tensors; those whose ``.grad`` is ``None`` are skipped.

    Returns:
        A 0-dim float tensor.
    """
    parameters = (
        [parameters]
        if isinstance(parameters, torch.Tensor)
        else list(parameters)
    )
    norms = [
        torch.linalg.vector_norm(p.grad)
        for p in parameters
        if p.grad is not None
    ]
    return (
        torch.linalg.vector_norm(torch.stack(norms))
        if norms
        else torch.tensor(0.0)
    )


def clip_grad_norm_(parameters, max_norm):
    """Rescale gradients whose joint L2 norm exceeds ``max_norm`` (Pascanu et al., Algorithm 1).

    .. math::

        \\hat g \\leftarrow \\frac{\\partial E}{\\partial \\theta}, \\qquad
        \\text{if } \\|\\hat g\\| \\ge \\tau: \\quad \\hat g \\leftarrow \\frac{\\tau}{\\|\\hat g\\|}\\, \\hat g,

    where ``g`` is every parameter's gradient flattened into one vector and ``tau`` is
    ``max_norm``. The direction of the step is kept; only its length is capped. The
    effect is that of ``torch.nn.utils.clip_grad_norm_`` (which adds ``1e-6`` to the
    norm in the denominator; this function divides by the norm itself).

    A non-finite norm is returned as it is and leaves the gradients untouched: there is
    no direction to keep, and the caller (see :func:`rnnbook.train.train`) must stop.

    Args:
        parameters: a tensor or an iterable of tensors; those whose ``.grad`` is
            ``None`` are skipped.
        max_norm: the threshold ``tau``, a positive number.

    Returns:
        The norm of all gradients before clipping, a 0-dim float tensor.
    """
    if (
        isinstance(max_norm, bool)
        or not isinstance(max_norm, (int, float))
        or not max_norm > 0
    ):
        raise ValueError(
            f"expected max_norm to be a positive number, got {max_norm!r}"
        )
    parameters = (
        [parameters]
        if isinstance(parameters, torch.Tensor)
        else list(parameters)
    )
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = grad_norm(parameters)
    if torch.isfinite(total_norm) and total_norm > max_norm:
        scale = max_norm / total_norm
        for g in grads:
            g.mul_(scale)
    return total_norm


# --------------------------------------------------------------------------- the regularizer


def pascanu_regularizer(W_hh, hs, grads):
    """Pascanu et al.'s vanishing-gradient regularizer ``Omega`` (their eq. 9) for a tanh RNN.

    .. math::

        \\Omega = \\frac{1}{B} \\sum_{n=1}^{B} \\sum_{t=1}^{T}
          \\left( \\frac{\\| g_t\\, \\mathrm{diag}(1 - h_t^2)\\, W_{hh} \\|}{\\| g_t \\|} - 1 \\right)^2,
        \\qquad g_t = \\frac{\\partial E}{\\partial h_t}.

    Each term asks one transition to preserve the norm of the gradient that passes back
    through it, in the direction ``g_t`` that the error actually takes. ``grads`` is
    treated as a constant, as in the paper: ``Omega`` is differentiated with respect
    to ``W_hh`` and ``hs`` only. Steps whose ``g_t`` is exactly zero carry no direction
    and contribute nothing.

    Args:
        W_hh: recurrent matrix, shape ``(H, H)``.
        hs: states ``h_0 .. h_T``, shape ``(B, T+1, H)`` (``h_0`` is not used).
        grads: ``dE/dh_t`` for ``t = 1..T``, shape ``(B, T, H)``; detached here.

    Returns:
        ``Omega``, a 0-dim tensor.
    """
    check_tensor("W_hh", W_hh, 2, "(H, H)")
    check_tensor("hs", hs, 3, "(B, T+1, H)")
    check_tensor("grads", grads, 3, "(B, T, H)")
    B, T1, H = hs.shape
    if tuple(W_hh.shape) != (H, H):
        raise ValueError(
            f"expected W_hh of shape (H, H) = {(H, H)} to match hs {tuple(hs.shape)}, "
            f"got {tuple(W_hh.shape)}"
        )
    if tuple(grads.shape) != (B, T1 - 1, H):
        raise ValueError(
            f"expected grads of shape (B, T, H) = {(B, T1 - 1, H)} to match hs "
            f"{tuple(hs.shape)} (B, T+1, H), got {tuple(grads.shape)}"
        )
    g = grads.detach()
    passed_back = (
        g * (1 - hs[:, 1:] ** 2)
    ) @ W_hh  # (B, T, H): g_t diag(1 - h_t^2) W_hh
    g_norm = torch.linalg.vector_norm(g, dim=-1)  # (B, T)
    live = g_norm > 0
    ratio = torch.linalg.vector_norm(passed_back, dim=-1) / torch.where(
        live, g_norm, 1
    )  # (B, T)
    return torch.where(live, (ratio - 1) ** 2, 0).sum(dim=1).mean()


# --------------------------------------------------------------------------- the probe


def state_gradient_norms(W_hh, W_xh, b, xs, activation="tanh", h0=None):
    """``||dh_T/dh_k||`` seen through one direction: how much of a gradient survives ``T - k`` steps.

    Runs ``h_t = f(W_hh h_{t-1} + W_xh x_t + b)`` over ``xs``, then sends a unit vector
    ``u`` (the normalised all-ones direction) back from ``h_T``:

    .. math::

        v_T = u, \\qquad v_{t-1} = v_t\\, \\mathrm{diag}(f'(a_t))\\, W_{hh},
        \\qquad \\text{norms}[k] = \\| v_k \\| = \\| u\\, \\partial h_T / \\partial h_k \\|,

    averaged over the batch. This is ``||dL/dh_k||`` for the loss ``L = u . h_T`` and a
    lower bound on the Jacobian's norm; Chapter 2 compares it with the bound
    ``(lambda_1 gamma)^(T-k)``.

    Args:
        W_hh: ``(H, H)``; W_xh: ``(H, D)``; b: ``(H,)``.
        xs: inputs, shape ``(B, T, D)``.
        activation: one of :data:`ACTIVATIONS`.
        h0: initial states ``(B, H)``; zeros if omitted.

    Returns:
        ``norms`` of shape ``(T+1,)``: ``norms[k]`` for ``k = 0..T`` (``norms[T] = 1``).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"expected activation to be one of {sorted(ACTIVATIONS)}, got {activation!r}"
        )
    check_tensor("xs", xs, 3, "(B, T, D)")
    check_tensor("W_hh", W_hh, 2, "(H, H)")
    B, T, D = xs.shape
    H = W_hh.shape[0]
    for name, value, shape in (
        ("W_hh", W_hh, (H, H)),
        ("W_xh", W_xh, (H, D)),
        ("b", b, (H,)),
    ):
        check_shape(name, value, shape)
    f, df = ACTIVATIONS[activation]
    h = torch.zeros(B, H, dtype=xs.dtype) if h0 is None else h0
    slopes = []  # f'(a_t) for t = 1..T, each (B, H)
    for t in range(T):
        a = h @ W_hh.T + xs[:, t] @ W_xh.T + b  # (B, H)
        h = f(a)
        slopes.append(df(a, h))
    v = torch.full(
        (B, H), 1 / math.sqrt(H), dtype=xs.dtype
    )  # u, a unit vector
    norms = [torch.linalg.vector_norm(v, dim=-1).mean()]
    for t in range(T, 0, -1):
        v = (
            v * slopes[t - 1]
        ) @ W_hh  # (B, H): v_{t-1} = v_t diag(f'(a_t)) W_hh
        norms.append(torch.linalg.vector_norm(v, dim=-1).mean())
    return torch.stack(norms[::-1]).detach()
