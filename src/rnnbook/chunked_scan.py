"""The selective scan by a chunked parallel scan (Chapter 7).

The same results as the reference loop of :mod:`rnnbook.selective`, in
about 3 sqrt(L) vectorised steps instead of L, with a hand-written
backward pass. Per channel and state entry, the selective SSM of Mamba
(Gu and Dao, 2023, section 3.2) is the recurrence

    h_t = a_t * h_{t-1} + x_t,    a_t = exp(delta_t A),
                                  x_t = delta_t B_t u_t,   h_{-1} = 0,

a scan with the associative operator

    (a, x) o (a', x') = (a a', a' x + x')

("first (a, x), then (a', x')"). Associativity lets the L steps be
grouped freely; a CPU gains most from the grouping that needs the fewest
Python-level steps, each one a large vectorised tensor operation. Cut the
sequence into chunks of c positions (:func:`chunk_size`):

1. run the recurrence inside every chunk at once, from a zero state (c
   steps, each over all chunks);
2. walk over the chunks (L/c small steps): a chunk's true start state is
   the previous chunk's end state, carried through its decay;
3. the states inside every chunk follow from their start states: run the
   recurrence again from them (:func:`chunked_outputs`, the forward pass,
   which keeps one state per chunk), or add P_k h_start, with P_k = a_1
   ... a_k the chunk's cumulative decays (:func:`chunked_states`, for the
   backward pass, which holds every state).

About 2c + L/c Python steps instead of L. Only products of numbers in
[0, 1] are formed: nothing is divided by a cumulative product and no
exp(-cumsum(delta A)) appears, which would overflow for long sequences.

- :func:`selective_scan_parallel`: the scan, with the arguments of
  :func:`rnnbook.selective.selective_scan`;
- :func:`chunked_outputs`, :func:`chunked_states`: its forward pass and
  the states its backward pass recomputes;
- :func:`chunk_size`: the chunk length c.

Shapes (as in :mod:`rnnbook.selective`): b batch size, d channels, n state
size per channel, L sequence length, L' = L padded to a multiple of c.
    u, delta, z: (b, d, L);  A: (d, n);  B, C: (b, n, L);  D, delta_bias:
    (d,);  h: (b, d, n);  y: (b, d, L).
"""

import math

import torch
from torch.autograd.function import once_differentiable

from rnnbook._checks import check_int
from rnnbook.selective import _check_scan, _output

LOG2_E = 1 / math.log(2)  # exp(x) = exp2(x log2(e)): PyTorch's exp2 CPU
# kernel is several times faster than its exp in float32 (measured)


def chunk_size(L):
    """The chunk length of the parallel scan: c = round(sqrt(L / 4)), >= 1.

    A step inside the chunks costs about four tensor operations over all
    chunks, a step across them one small operation. With c = sqrt(L / 4)
    the scan takes 2c + ceil(L / c) - 1, about 3 sqrt(L), Python-level
    steps instead of L (the module docstring); Mamba's kernel, too, scans
    the length axis in parallel (Gu and Dao, 2023, section 3.3.2).

    Args:
        L: the sequence length, an int >= 0.

    Returns:
        c, an int in 1..max(1, L).
    """
    L = check_int("L", L, 0)
    return max(1, round(math.sqrt(L / 4)))


def _scan_in_chunks_(P, h, c, reverse=False):
    """In place: h_t <- h_t + P_t h_{t-1} for t = 0, 1, ... (h_{-1} = 0),
    or, if ``reverse``, h_t <- h_t + P_t h_{t+1} from the end.

    P, h: (L', ...) with L' a multiple of c; positions first, so that one
    position of every chunk, ``h[:, k]`` below, is a few contiguous blocks.
    P is overwritten with the within-chunk cumulative products.
    """
    nc = h.shape[0] // c
    P = P.view(nc, c, *P.shape[1:])  # (chunks, c, ...)
    h = h.view(nc, c, *h.shape[1:])
    inside = range(c - 2, -1, -1) if reverse else range(1, c)
    step = 1 if reverse else -1  # the neighbour a position reads from
    for k in inside:  # 1. every chunk at once, from a zero state
        h[:, k].addcmul_(P[:, k], h[:, k + step])
        P[:, k].mul_(P[:, k + step])
    if reverse:  # 2. the carries, one chunk after another
        for j in range(nc - 2, -1, -1):
            h[j].addcmul_(P[j], h[j + 1, 0])
    else:
        for j in range(1, nc):
            h[j].addcmul_(P[j], h[j - 1, c - 1])


def chunked_states(delta, u, A, B):
    """All the states h_t, by the chunked scan, without autograd.

        h_t = exp(delta_t A) * h_{t-1} + delta_t B_t u_t,    h_{-1} = 0

    for every t at once, as :func:`selective_scan_parallel`'s backward
    pass recomputes them instead of storing them (Gu and Dao, 2023,
    section 3.3.2): (L', b, d, n) numbers, n times the input. Chunks of
    c = chunk_size(L) positions, steps 1 and 2 of the module docstring,
    then h_t += P_t h_start inside every chunk.

    Args:
        delta: (b, d, L) the step sizes, after any bias and softplus.
        u: (b, d, L) the input.
        A: (d, n), every entry < 0.
        B: (b, n, L).

    Returns:
        ``(h, c)``: h (L', b, d, n), positions first, padded to L' = a
        multiple of the chunk size c (the padding is zero input, after
        the sequence, so it changes nothing before it); h[t] is h_t for
        t < L.

    Shapes: b batch size, d channels, n state size, L sequence length.
    Bad input raises as in :func:`rnnbook.selective.selective_scan`.
    """
    _check_scan(u, delta, A, B, B, None, None, None, False, False)
    b, d, L = u.shape
    c = chunk_size(L)
    padded = (-(-L // c) * c, b, d, A.shape[1])
    dT = delta.permute(2, 0, 1)[..., None]  # (L, b, d, 1)
    P = u.new_empty(padded)
    torch.mul(dT, A * LOG2_E, out=P[:L]).exp2_()  # a_t = exp(delta_t A)
    P[L:] = 1
    h = u.new_empty(padded)
    du = (delta * u).permute(2, 0, 1)[..., None]  # (L, b, d, 1)
    torch.mul(du, B.permute(2, 0, 1)[:, :, None, :], out=h[:L])  # x_t
    h[L:] = 0
    _scan_in_chunks_(P, h, c)
    return h, c


def _padded_chunks(X, c):
    """(b, m, L) -> (L'/c, c, b, m), positions first, zero after L."""
    b, m, L = X.shape
    nc = -(-L // c)
    out = X.new_zeros(nc * c, b, m)
    out[:L] = X.permute(2, 0, 1)
    return out.view(nc, c, b, m)


def chunked_outputs(delta, u, A, B, C):
    """y_t = C_t . h_t and the last state, chunk by chunk, without autograd
    and without ever holding all the states.

        h_t = exp(delta_t A) * h_{t-1} + delta_t B_t u_t,    h_{-1} = 0

    In chunks of c = chunk_size(L) positions, three passes keep one state
    per chunk, (L/c, b, d, n), and form each position's decays and inputs
    when they are needed: (1) every chunk from a zero state, its end state
    only; (2) the carries across chunks, with a chunk's decay
    exp(A sum(delta)), a product of numbers in [0, 1]; (3) every chunk
    again from its true start state, contracting each position's state
    with C at once: fusion, as in Mamba's kernel (Gu and Dao, 2023,
    section 3.3.2). The padding (delta = 0 after L) is the identity: a = 1,
    b = 0. The forward pass of :func:`selective_scan_parallel` before its
    skip D u_t and gate z_t.

    Args:
        delta: (b, d, L) the step sizes, after any bias and softplus.
        u: (b, d, L) the input.
        A: (d, n), every entry < 0.
        B, C: (b, n, L).

    Returns:
        ``(y, h_last)``: y (b, d, L) and h_{L-1} (b, d, n).

    Shapes: b batch size, d channels, n state size, L sequence length.
    Bad input raises as in :func:`rnnbook.selective.selective_scan`.
    """
    _check_scan(u, delta, A, B, C, None, None, None, False, False)
    b, d, L = u.shape
    n, c = A.shape[1], chunk_size(L)
    if L == 0:  # no step: no output, and the state is still h_{-1} = 0
        return u.new_zeros(b, d, 0), u.new_zeros(b, d, n)
    A2 = A * LOG2_E  # exp(delta A) = exp2(delta A2), a faster kernel
    dT = _padded_chunks(delta, c)[..., None]  # (chunks, c, b, d, 1)
    duT = _padded_chunks(delta * u, c)[..., None]  # (chunks, c, b, d, 1)
    BT = _padded_chunks(B, c)[:, :, :, None, :]  # (chunks, c, b, 1, n)
    CT = _padded_chunks(C, c)  # (chunks, c, b, n)
    nc = dT.shape[0]
    h = u.new_zeros(nc, b, d, n)  # one state per chunk
    a = torch.empty_like(h)  # the decays of one position of every chunk
    for k in range(c):  # 1. each chunk's end state from a zero start
        torch.mul(dT[:, k], A2, out=a).exp2_()
        h.mul_(a).addcmul_(duT[:, k], BT[:, k])
    torch.mul(dT.sum(1), A2, out=a).exp2_()  # a chunk's decay
    start = torch.zeros_like(h)
    for j in range(1, nc):  # 2. the carries: h_start of chunk j
        torch.addcmul(h[j - 1], a[j - 1], start[j - 1], out=start[j])
    h = start
    y = u.new_empty(c, nc * b, d, 1)
    for k in range(c):  # 3. the states again, from the true starts
        torch.mul(dT[:, k], A2, out=a).exp2_()
        h.mul_(a).addcmul_(duT[:, k], BT[:, k])
        H, C_k = h.view(nc * b, d, n), CT[:, k].reshape(nc * b, n, 1)
        torch.bmm(H, C_k, out=y[k])
    y = y.view(c, nc, b, d).transpose(0, 1).reshape(nc * c, b, d)[:L]
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
        return chunked_outputs(delta, u, A, B, C)

    @staticmethod
    @once_differentiable  # a second derivative would need its own scan
    def backward(ctx, g_y, g_last):
        delta, u, A, B, C = ctx.saved_tensors
        L = u.shape[2]
        BT, CT = B.permute(2, 0, 1), C.permute(2, 0, 1)  # (L, b, n)
        dT, uT = delta.permute(2, 0, 1), u.permute(2, 0, 1)  # (L, b, d)
        du = dT * uT  # (L, b, d)
        h, c = chunked_states(delta, u, A, B)  # recomputed, (L', b, d, n)
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
        _scan_in_chunks_(P, s, c, reverse=True)
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
    results as :func:`rnnbook.selective.selective_scan`, in about 2c + L/c
    vectorised steps (chunks of c = sqrt(L / 4) positions) instead of L.

    The recurrence h_t = a_t * h_{t-1} + x_t (a_t = exp(delta_t A), x_t =
    delta_t B_t u_t) is computed with the associative operator
    (a, x) o (a', x') = (a a', a' x + x') grouped in chunks (the module
    docstring). The forward pass (:func:`chunked_outputs`) keeps one
    (b, d, n) state per chunk and contracts each position's state with C
    as soon as it is formed, so the (L, b, d, n) states are never all in
    memory at once. The backward pass recomputes them (all of them, this
    time, :func:`chunked_states`) instead of storing them, and runs the
    adjoint recurrence as the same scan from the end
    (``_SelectiveScanFn``): the two ideas of Mamba's GPU kernel, fusion
    and recomputation (Gu and Dao, 2023, section 3.3.2), on a CPU.

    Args, returns and shapes: as :func:`rnnbook.selective.selective_scan`.
    """
    b, d, n, L, delta = _check_scan(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state
    )
    if L == 0:
        y, h = u.new_zeros(b, d, 0), u.new_zeros(b, d, n)
    else:
        y, h = _SelectiveScanFn.apply(delta, u, A, B, C)
    y = _output(y, u, D, z)
    return (y, h) if return_last_state else y
