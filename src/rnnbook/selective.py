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
- :func:`selective_step`: one step, for generation (recurrent mode);
- :func:`selective_scan_parallel`: the same results by a chunked parallel
  scan, with a hand-written backward pass.

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

import math

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

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


def _check_scan(u, delta, A, B, C, D, z, delta_bias, flags):
    """Check a whole-sequence call; return (b, d, n, L)."""
    check_tensor("u", u, 3, "(b, d, L)", real=True)
    b, d, L = u.shape
    _expect("delta", delta, ("b", "d", "L"), (b, d, L))
    _check_A(A, d)
    n = A.shape[1]
    _expect("B", B, ("b", "n", "L"), (b, n, L))
    _expect("C", C, ("b", "n", "L"), (b, n, L))
    _check_optional(D, z, delta_bias, b, d, L)
    for name, value in flags.items():
        check_bool(name, value)
    _check_dtypes(
        u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=delta_bias
    )
    return b, d, n, L


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


def _recurrence(h, u_t, delta_t, A, B_t, C_t):
    """One step of the selective SSM before the skip and the gate.

    h (b, d, n), u_t and delta_t (b, d), A (d, n), B_t and C_t (b, n).
    Returns (C_t . h_t, h_t) of shapes (b, d) and (b, d, n).
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
    on purpose (module docstring): channel-first ``(b, d, L)``, not the
    book's batch-first ``(B, T, D)``. L sequential steps of small tensor
    operations: slow, obviously correct, and differentiable by autograd.

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
    b, d, n, L = _check_scan(
        u,
        delta,
        A,
        B,
        C,
        D,
        z,
        delta_bias,
        dict(
            delta_softplus=delta_softplus,
            return_last_state=return_last_state,
        ),
    )
    delta = _step_size(delta, delta_bias, delta_softplus)
    h = u.new_zeros(b, d, n)
    ys = []
    for t in range(L):
        y_t, h = _recurrence(
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
    y_t, h = _recurrence(h, u_t, delta_t, A, B_t, C_t)
    return _output(y_t, u_t, D, z_t), h


# ------------------------------------------------------- the parallel scan
#
# The recurrence h_t = a_t * h_{t-1} + x_t, with a_t = exp(delta_t A) and
# x_t = delta_t B_t u_t, is a scan with the associative operator
#
#     (a, x) o (a', x') = (a a', a' x + x'),
#
# ("first (a, x), then (a', x')"). Associativity lets the L steps be
# grouped freely; a CPU gains most from the grouping that needs the fewest
# Python-level steps, each one a large vectorised tensor operation. Cut the
# sequence into chunks of K positions:
#
# 1. run the recurrence inside every chunk at once, from a zero state (K
#    steps, each over all chunks);
# 2. walk over the chunks (L/K small steps): a chunk's true start state is
#    the previous chunk's end state, carried through its decay;
# 3. the states inside every chunk follow from their start states: run the
#    recurrence again from them (``_outputs``, the forward pass, which keeps
#    one state per chunk), or add P_k h_start, with P_k = a_1 ... a_k the
#    chunk's cumulative decays (``_chunked_scan_``, the backward pass,
#    which holds every state).
#
# About 2K + L/K Python steps instead of L. Only products of numbers in
# [0, 1] are formed: nothing is divided by a cumulative product and no
# exp(-cumsum(delta A)) appears, which would overflow for long sequences.

LOG2_E = 1 / math.log(2)  # exp(x) = exp2(x log2(e)): PyTorch's exp2 CPU
# kernel is several times faster than its exp in float32 (measured)


def _chunk_size(L):
    """K = sqrt(L / 4): a step inside the chunks costs about four tensor
    operations over all chunks, a step across them one small operation."""
    return max(1, round(math.sqrt(L / 4)))


def _chunked_scan_(P, h, K, reverse=False):
    """In place: h_t <- h_t + P_t h_{t-1} for t = 0, 1, ... (h_{-1} = 0),
    or, if ``reverse``, h_t <- h_t + P_t h_{t+1} from the end.

    P, h: (L', ...) with L' a multiple of K; positions first, so that one
    position of every chunk, ``h[:, k]`` below, is a few contiguous blocks.
    P is overwritten with the within-chunk cumulative products.
    """
    nc = h.shape[0] // K
    P = P.view(nc, K, *P.shape[1:])  # (chunks, K, ...)
    h = h.view(nc, K, *h.shape[1:])
    inside = range(K - 2, -1, -1) if reverse else range(1, K)
    step = 1 if reverse else -1  # the neighbour a position reads from
    for k in inside:  # 1. every chunk at once, from a zero state
        h[:, k].addcmul_(P[:, k], h[:, k + step])
        P[:, k].mul_(P[:, k + step])
    if reverse:  # 2. the carries, one chunk after another
        for j in range(nc - 2, -1, -1):
            h[j].addcmul_(P[j], h[j + 1, 0])
    else:
        for j in range(1, nc):
            h[j].addcmul_(P[j], h[j - 1, K - 1])


def _states(delta, u, A, B):
    """All the states h_t, by the chunked scan, without autograd.

    Returns h (L', b, d, n), positions first and padded to L' = a multiple
    of the chunk size K (the padding is zero input, after the sequence,
    so it changes nothing before it), and K.
    """
    b, d, L = u.shape
    K = _chunk_size(L)
    padded = (-(-L // K) * K, b, d, A.shape[1])
    dT = delta.permute(2, 0, 1)[..., None]  # (L, b, d, 1)
    P = u.new_empty(padded)
    torch.mul(dT, A * LOG2_E, out=P[:L]).exp2_()  # a_t = exp(delta_t A)
    P[L:] = 1
    h = u.new_empty(padded)
    du = (delta * u).permute(2, 0, 1)[..., None]  # (L, b, d, 1)
    torch.mul(du, B.permute(2, 0, 1)[:, :, None, :], out=h[:L])  # x_t
    h[L:] = 0
    _chunked_scan_(P, h, K)
    return h, K


def _padded_chunks(X, K):
    """(b, m, L) -> (L'/K, K, b, m), positions first, zero after L."""
    b, m, L = X.shape
    nc = -(-L // K)
    out = X.new_zeros(nc * K, b, m)
    out[:L] = X.permute(2, 0, 1)
    return out.view(nc, K, b, m)


def _outputs(delta, u, A, B, C):
    """y = C . h and the last state, chunk by chunk, without autograd and
    without ever holding all the states.

    The same chunks as ``_chunked_scan_``, in three passes that keep one
    state per chunk, (L/K, b, d, n), and form each position's decays and
    inputs when they are needed: (1) every chunk from a zero state, its end
    state only; (2) the carries across chunks, with a chunk's decay
    exp(A sum(delta)), a product of numbers in [0, 1]; (3) every chunk again
    from its true start state, contracting each position's state with C at
    once. The padding (delta = 0 after L) is the identity: a = 1, x = 0.
    Returns y (b, d, L) and h_{L-1} (b, d, n).
    """
    b, d, L = u.shape
    n, K = A.shape[1], _chunk_size(L)
    A2 = A * LOG2_E  # exp(delta A) = exp2(delta A2), a faster kernel
    dT = _padded_chunks(delta, K)[..., None]  # (chunks, K, b, d, 1)
    duT = _padded_chunks(delta * u, K)[..., None]  # (chunks, K, b, d, 1)
    BT = _padded_chunks(B, K)[:, :, :, None, :]  # (chunks, K, b, 1, n)
    CT = _padded_chunks(C, K)  # (chunks, K, b, n)
    nc = dT.shape[0]
    h = u.new_zeros(nc, b, d, n)  # one state per chunk
    a = torch.empty_like(h)  # the decays of one position of every chunk
    for k in range(K):  # 1. each chunk's end state from a zero start
        torch.mul(dT[:, k], A2, out=a).exp2_()
        h.mul_(a).addcmul_(duT[:, k], BT[:, k])
    torch.mul(dT.sum(1), A2, out=a).exp2_()  # a chunk's decay
    start = torch.zeros_like(h)
    for j in range(1, nc):  # 2. the carries: h_start of chunk j
        torch.addcmul(h[j - 1], a[j - 1], start[j - 1], out=start[j])
    h = start
    y = u.new_empty(K, nc * b, d, 1)
    for k in range(K):  # 3. the states again, from the true starts
        torch.mul(dT[:, k], A2, out=a).exp2_()
        h.mul_(a).addcmul_(duT[:, k], BT[:, k])
        H, C_k = h.view(nc * b, d, n), CT[:, k].reshape(nc * b, n, 1)
        torch.bmm(H, C_k, out=y[k])
    y = y.view(K, nc, b, d).transpose(0, 1).reshape(nc * K, b, d)[:L]
    y = y.permute(1, 2, 0).contiguous()  # (b, d, L)
    return y, h[-1].clone()  # the padding after L leaves h_{L-1} as is


def _sum_n(X, v):
    """sum_k X[t, b, i, k] v[t, b, k] -> (L, b, d), a batched product."""
    L, b, d, n = X.shape
    out = torch.bmm(X.reshape(L * b, d, n), v.reshape(L * b, n, 1))
    return out.view(L, b, d)


def _sum_d(X, w):
    """sum_i X[t, b, i, k] w[t, b, i] -> (L, b, n), a batched product."""
    L, b, d, n = X.shape
    out = torch.bmm(w.reshape(L * b, 1, d), X.reshape(L * b, d, n))
    return out.view(L, b, n)


class _SelectiveScanFn(torch.autograd.Function):
    """y = C . h over the scan, with a backward pass that recomputes h.

    Saves only the (b, d, L) and (b, n, L) inputs: the (L, b, d, n) states
    are computed again in the backward pass rather than kept, the trade
    Mamba's GPU kernel makes (Gu and Dao, 2023, section 3.3.2).

    Backward, with g_t = dloss/dh_t from y and from the last state: the
    adjoint s_t = dloss/dh_t (total) obeys s_t = g_t + a_{t+1} s_{t+1}, the
    same scan run from the end; then dloss/dx_t = s_t and dloss/da_t =
    s_t h_{t-1} = s_t (h_t - x_t) / a_t, so dloss/d(delta_t A) = s_t
    (h_t - x_t), with no division.
    """

    @staticmethod
    def forward(ctx, delta, u, A, B, C):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(delta, u, A, B, C)
        return _outputs(delta, u, A, B, C)

    @staticmethod
    @once_differentiable  # a second derivative would need its own scan
    def backward(ctx, g_y, g_last):
        delta, u, A, B, C = ctx.saved_tensors
        L = u.shape[2]
        BT, CT = B.permute(2, 0, 1), C.permute(2, 0, 1)  # (L, b, n)
        dT, uT = delta.permute(2, 0, 1), u.permute(2, 0, 1)  # (L, b, d)
        du = dT * uT  # (L, b, d)
        h, K = _states(delta, u, A, B)  # recomputed, (L', b, d, n)
        # g_t, from y_t = C_t . h_t and from the last state, into s
        s = torch.empty_like(h)
        s[L:] = 0
        if g_y is None:
            s[:L] = 0
            g_C = torch.zeros_like(C)
        else:
            g_yT = g_y.permute(2, 0, 1)  # (L, b, d)
            torch.mul(g_yT[..., None], CT[:, :, None, :], out=s[:L])
            g_C = _sum_d(h[:L], g_yT).permute(1, 2, 0)  # (b, n, L)
        if g_last is not None:
            s[L - 1] += g_last
        # the adjoint scan, from the end: factor a_{t+1} at position t
        P = torch.empty_like(h)
        torch.mul(dT[1:, :, :, None], A * LOG2_E, out=P[: L - 1]).exp2_()
        P[L - 1 :] = 0  # nothing comes after the last position
        _chunked_scan_(P, s, K, reverse=True)
        sL = s[:L]  # dloss/dx_t, x_t = delta_t B_t u_t
        g_du = _sum_n(sL, BT)  # (L, b, d)
        g_B = _sum_d(sL, du).permute(1, 2, 0)  # (b, n, L)
        # dloss/d(delta_t A) = s_t (h_t - x_t), in place in h; P is scratch
        x = torch.mul(du[..., None], BT[:, :, None, :], out=P[:L])
        g_dA = h[:L].sub_(x).mul_(sL)  # (L, b, d, n)
        g_A = torch.mul(g_dA, dT[..., None], out=P[:L]).sum((0, 1))
        g_delta = torch.mul(g_dA, A, out=P[:L]).sum(-1) + g_du * uT
        g_u = g_du * dT
        return (
            g_delta.permute(1, 2, 0),
            g_u.permute(1, 2, 0),
            g_A,
            g_B,
            g_C,
        )


def selective_scan_parallel(
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
    """The selective scan by a chunked parallel scan: same arguments and
    results as :func:`selective_scan`, in about 2K + L/K vectorised steps
    (chunks of K = sqrt(L / 4) positions) instead of L.

    The recurrence h_t = a_t * h_{t-1} + x_t (a_t = exp(delta_t A), x_t =
    delta_t B_t u_t) is computed with the associative operator
    (a, x) o (a', x') = (a a', a' x + x') grouped in chunks (the comment
    above ``_chunk_size``). The forward pass keeps one (b, d, n) state per
    chunk and contracts each position's state with C as soon as it is
    formed, so the (L, b, d, n) states are never all in memory at once.
    The backward pass recomputes them (all of them, this time) instead of
    storing them, and runs the adjoint recurrence as the same scan from the
    end (``_SelectiveScanFn``): the two ideas of Mamba's GPU kernel, fusion
    and recomputation (Gu and Dao, 2023, section 3.3.2), on a CPU.

    Args, returns and shapes: as :func:`selective_scan`.
    """
    b, d, n, L = _check_scan(
        u,
        delta,
        A,
        B,
        C,
        D,
        z,
        delta_bias,
        dict(
            delta_softplus=delta_softplus,
            return_last_state=return_last_state,
        ),
    )
    delta = _step_size(delta, delta_bias, delta_softplus)
    if L == 0:
        y, h = u.new_zeros(b, d, 0), u.new_zeros(b, d, n)
    else:
        y, h = _SelectiveScanFn.apply(delta, u, A, B, C)
    y = _output(y, u, D, z)
    return (y, h) if return_last_state else y
