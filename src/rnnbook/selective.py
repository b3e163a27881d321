"""The selective scan of Mamba (Chapter 7): a state space model whose step
size and input and output vectors depend on the input.

Per channel i = 0..d-1 and state entry k = 0..n-1, with a diagonal,
decaying state matrix A (every entry negative), the selective SSM of Mamba
(Gu and Dao, 2023, section 3.2, Algorithm 2) reads

    Ab_t = exp(delta_t A)                     zero-order hold for A
    Bb_t = delta_t B_t                        the simplified Euler step
    h_t  = Ab_t * h_{t-1} + Bb_t u_t,         h_{-1} = 0
    y_t  = C_t . h_t + D u_t,                 then y_t * silu(z_t)

where delta_t, B_t and C_t are computed from the input at step t, so the
recurrence is linear in h but no longer time-invariant: no convolution
kernel exists and the model is computed as a scan. ``delta_t`` may first
receive a bias and a softplus (``delta_bias``, ``delta_softplus``), as in
the Mamba block.

The signature mirrors, on purpose, the authors' reference function
``selective_scan_ref`` (state-spaces/mamba, ``mamba_ssm/ops/
selective_scan_interface.py``) for the case their code calls "variable B
and C": the names ``u, delta, A, B, C, D, z`` and the layout ``(b, d, L)``
with the channels before the length. A reader can then put the book's scan
beside theirs line by line. That layout comes from the Mamba block, whose
short causal convolution is a ``torch.nn.Conv1d`` (channels first), and
keeps each channel's sequence contiguous, the axis the scan runs along.
The book's models are batch-first, ``(B, T, D)``: a caller transposes once
at the boundary, ``u = x.transpose(1, 2)``.

- :func:`selective_scan`: the reference loop, one step at a time;
- :func:`selective_update`: the step that loop repeats, unchecked;
- :func:`selective_step`: one step, for generation (recurrent mode).

The same results by a chunked parallel scan, with a hand-written backward
pass, are :func:`rnnbook.chunked_scan.selective_scan_parallel`.

Shapes (lowercase as in the reference; the glossary's B, D, N, T are
b, d, n, L here):
    b batch size, d channels (the glossary's D), n state size per channel
    (N), L sequence length (T).
    u, delta, z: (b, d, L);  A: (d, n);  B, C: (b, n, L);  D, delta_bias:
    (d,);  h: (b, d, n);  y: (b, d, L).

Unlike the reference, which computes in float32, every function here
computes in the dtype of its inputs (all must share one real floating
dtype), so the tests can compare in float64.
"""

import torch
import torch.nn.functional as F

from rnnbook._checks import check_bool, check_same_dtype, check_tensor

# ------------------------------------------------------------ input checks


def _expect(name, value, dims, sizes):
    """A real tensor of the shape named by ``dims`` with ``sizes``."""
    text = "(" + ", ".join(dims) + ")"
    check_tensor(name, value, len(dims), text, real=True)
    if tuple(value.shape) != tuple(sizes):
        known = ", ".join(f"{k}={v}" for k, v in zip(dims, sizes))
        raise ValueError(
            f"expected {name} of shape {text} with {known}, "
            f"got {tuple(value.shape)}"
        )


def _check_A(A, d):
    check_tensor("A", A, 2, "(d, n)", real=True)
    _expect("A", A, ("d", "n"), (d, A.shape[1]))
    if not bool((A < 0).all()):
        raise ValueError(
            "expected every entry of A to be negative (a decaying state, "
            "exp(delta A) < 1), got A with entries >= 0 or NaN; the Mamba "
            "block keeps A = -exp(A_log) for this reason"
        )


def _check_optional(D, z, delta_bias, b, d, L):
    if D is not None:
        _expect("D", D, ("d",), (d,))
    if delta_bias is not None:
        _expect("delta_bias", delta_bias, ("d",), (d,))
    if z is not None:
        if L is None:
            _expect("z_t", z, ("b", "d"), (b, d))
        else:
            _expect("z", z, ("b", "d", "L"), (b, d, L))


def _check_dtypes(**tensors):
    check_same_dtype(**{k: v for k, v in tensors.items() if v is not None})


def _check_scan(
    u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state
):
    """Check a whole-sequence call; return (b, d, n, L) and the step sizes
    (delta after its bias and softplus, :func:`_step_size`)."""
    check_tensor("u", u, 3, "(b, d, L)", real=True)
    b, d, L = u.shape
    _expect("delta", delta, ("b", "d", "L"), (b, d, L))
    _check_A(A, d)
    n = A.shape[1]
    _expect("B", B, ("b", "n", "L"), (b, n, L))
    _expect("C", C, ("b", "n", "L"), (b, n, L))
    _check_optional(D, z, delta_bias, b, d, L)
    check_bool("delta_softplus", delta_softplus)
    check_bool("return_last_state", return_last_state)
    _check_dtypes(
        u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=delta_bias
    )
    return b, d, n, L, _step_size(delta, delta_bias, delta_softplus)


def _step_size(delta, delta_bias, delta_softplus):
    """delta + bias, through a softplus if asked; refuse negative steps."""
    if delta_bias is not None:
        per_channel = delta_bias[:, None] if delta.dim() == 3 else delta_bias
        delta = delta + per_channel  # (b, d, L) or (b, d)
    if delta_softplus:
        delta = F.softplus(delta)
    if bool((delta < 0).any()):
        raise ValueError(
            "expected delta >= 0 (after delta_bias and the softplus): a "
            "step size; a negative step makes exp(delta A) > 1 and the "
            "state grow. Pass delta_softplus=True to map any real number "
            "to a positive step"
        )
    return delta


def _output(y, u, D, z):
    """y + D u, then gated by silu(z); D and z are optional. Any layout
    whose channel axis is 1 ((b, d) or (b, d, L))."""
    if D is not None:
        D = D.view(-1, *([1] * (u.dim() - 2)))  # (d,) or (d, 1)
        y = y + D * u
    if z is not None:
        y = y * F.silu(z)
    return y


# ---------------------------------------------------- the reference loop


def selective_update(h, u_t, delta_t, A, B_t, C_t):
    """One step of the selective SSM before the skip and the gate.

        h_t = exp(delta_t A) * h_{t-1} + delta_t B_t u_t
        y_t = C_t . h_t

    The body of :func:`selective_scan`'s loop and of :func:`selective_step`
    (Gu and Dao, 2023, section 3.2, Algorithm 2): zero-order hold for A,
    the simplified Euler step for B. Each (sequence, channel i, entry k) is
    a scalar recurrence; B_t and C_t are shared by all d channels. The
    inputs are not checked: its two callers check them once, not L times.

    Args:
        h: (b, d, n) the state h_{t-1}.
        u_t, delta_t: (b, d) this step's input and step size (>= 0).
        A: (d, n), every entry < 0.
        B_t, C_t: (b, n).

    Returns:
        ``(y_t, h_t)`` of shapes (b, d) and (b, d, n).

    Shapes: b batch size, d channels, n state size.
    """
    dA = delta_t[:, :, None] * A  # (b, d, n)
    Ab = torch.exp(dA)  # zero-order hold
    Bb_u = (delta_t * u_t)[:, :, None] * B_t[:, None, :]  # (b, d, n)
    h = Ab * h + Bb_u
    y = (h * C_t[:, None, :]).sum(-1)  # (b, d)
    return y, h


def selective_scan(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    return_last_state=False,
):
    """The selective scan, one step at a time (the book's reference loop).

    Algorithm 2 of Mamba (Gu and Dao, 2023, section 3.2) with the
    discretization of the authors' reference code:

        delta <- softplus(delta + delta_bias)     (each part optional)
        h_t = exp(delta_t A) * h_{t-1} + delta_t B_t u_t,   h_{-1} = 0
        y_t = C_t . h_t + D u_t
        y_t <- y_t * silu(z_t)                    (if z is given)

    for t = 0..L-1, every channel i and state entry k separately:
    ``h[:, i, k]`` is a scalar recurrence, the channels meet only in B_t and
    C_t, which are shared by all d channels. ``exp(delta A)`` is the
    zero-order hold of A; ``delta B`` replaces its zero-order hold
    ``(delta A)^-1 (exp(delta A) - 1) B``, the simplified Euler step the
    reference uses (the two agree to first order in delta A).

    The arguments and their layout mirror the authors' ``selective_scan_ref``
    on purpose: channel-first ``(b, d, L)``, not the book's batch-first
    ``(B, T, D)``. L sequential steps of small tensor operations: slow,
    obviously correct, and differentiable by autograd.

    Args:
        u: (b, d, L) input.
        delta: (b, d, L) step sizes, >= 0 after bias and softplus.
        A: (d, n) state matrix diagonals, every entry < 0.
        B, C: (b, n, L) input and output vectors, one per step.
        D: (d,) skip weights, or None.
        z: (b, d, L) gate input, or None.
        delta_bias: (d,) added to delta, or None.
        delta_softplus: apply softplus to delta (after the bias), a bool.
        return_last_state: also return h_{L-1}, a bool.

    Returns:
        y (b, d, L), and h_{L-1} (b, d, n) if ``return_last_state`` (zeros
        when L = 0).

    Shapes: b batch size, d channels, n state size, L sequence length.
    """
    b, d, n, L, delta = _check_scan(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state
    )
    h = u.new_zeros(b, d, n)
    ys = []
    for t in range(L):
        y_t, h = selective_update(
            h, u[:, :, t], delta[:, :, t], A, B[:, :, t], C[:, :, t]
        )
        ys.append(y_t)
    y = torch.stack(ys, dim=-1) if ys else u.new_zeros(b, d, 0)
    y = _output(y, u, D, z)
    return (y, h) if return_last_state else y


def selective_step(
    h,
    u_t,
    delta_t,
    A,
    B_t,
    C_t,
    D=None,
    z_t=None,
    delta_bias=None,
    delta_softplus=False,
):
    """One step of the selective SSM: recurrent (generation) mode.

    The body of :func:`selective_scan`'s loop for a single position t,

        h_t = exp(delta_t A) * h_{t-1} + delta_t B_t u_t
        y_t = (C_t . h_t + D u_t) * silu(z_t),

    so that calling it L times from ``h = zeros(b, d, n)`` gives the scan's
    outputs. A Mamba model generating text keeps only ``h``: constant memory
    per token, however long the context (Gu and Dao, 2023, section 3.3).

    Args:
        h: (b, d, n) the state h_{t-1}.
        u_t, delta_t: (b, d) this step's input and step size.
        A: (d, n), every entry < 0.
        B_t, C_t: (b, n).
        D: (d,) or None; z_t: (b, d) or None; delta_bias: (d,) or None.
        delta_softplus: a bool, as in :func:`selective_scan`.

    Returns:
        ``(y_t, h_t)`` of shapes (b, d) and (b, d, n).

    Shapes: b batch size, d channels, n state size.
    """
    check_tensor("h", h, 3, "(b, d, n)", real=True)
    b, d, n = h.shape
    _expect("u_t", u_t, ("b", "d"), (b, d))
    _expect("delta_t", delta_t, ("b", "d"), (b, d))
    _check_A(A, d)
    _expect("A", A, ("d", "n"), (d, n))
    _expect("B_t", B_t, ("b", "n"), (b, n))
    _expect("C_t", C_t, ("b", "n"), (b, n))
    _check_optional(D, z_t, delta_bias, b, d, None)
    check_bool("delta_softplus", delta_softplus)
    _check_dtypes(
        h=h,
        u_t=u_t,
        delta_t=delta_t,
        A=A,
        B_t=B_t,
        C_t=C_t,
        D=D,
        z_t=z_t,
        delta_bias=delta_bias,
    )
    delta_t = _step_size(delta_t, delta_bias, delta_softplus)
    y_t, h = selective_update(h, u_t, delta_t, A, B_t, C_t)
    return _output(y_t, u_t, D, z_t), h
