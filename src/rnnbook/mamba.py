"""The Mamba block and a small Mamba language model (Chapter 7).

Mamba (Gu & Dao, 2023, section 3.4 and Figure 3) wraps a selective state
space model (:mod:`rnnbook.selective`; the parallel scan of
:mod:`rnnbook.chunked_scan`) in one gated block, stacked with residual
connections and no attention or MLP blocks. Letters as in the
book's glossary (``rnnbook/__init__.py``): ``B`` batch, ``L`` sequence
length (as the paper writes it), ``D`` model width, ``E = expand * D`` the
inner width (the paper's ``ED``), ``N`` state size, ``R`` the rank of the
step projection, ``V`` vocabulary size.

With ``selective=False`` the block keeps its projections, convolution and
gate but its Delta, B and C become learned constants (one per channel), so
its SSM is time-invariant: a convolution, computed here with the FFT. This
is the paper's ablation of the selection mechanism inside one architecture
(Table 1, "Mamba" rows: S4 against S6).
"""

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from rnnbook._checks import (
    check_bool,
    check_choice,
    check_int,
    check_nonempty_batch,
    check_real,
    check_tensor,
)
from rnnbook.chunked_scan import selective_scan_parallel
from rnnbook.selective import selective_scan, selective_step
from rnnbook.ssm import causal_conv

SCANS = {"loop": selective_scan, "parallel": selective_scan_parallel}
"""The two computations of the same selective scan (Chapter 7, section 3)."""


class MambaCache(NamedTuple):
    """What a block keeps between tokens in recurrent mode: O(E N), not O(L).

    ``conv`` ``(B, E, d_conv - 1)``: the last inputs of the convolution.
    ``ssm`` ``(B, E, N)``: the state h of every channel.

    E (d_conv - 1 + N) numbers per sequence, and a cache returned by
    :meth:`MambaBlock.step` owns exactly these (two tensors, no views of
    larger ones). The reference code instead keeps a d_conv-wide buffer
    updated in place (``allocate_inference_cache``), E more numbers.
    """

    conv: torch.Tensor
    ssm: torch.Tensor


def _inverse_softplus(y):
    """x with softplus(x) = log(1 + e^x) = y, for y > 0."""
    return y + torch.log(-torch.expm1(-y))


def _check_input(name, u, D):
    """A real floating-point ``(B, L, D)`` tensor with B >= 1, L >= 1."""
    check_tensor(name, u, 3, f"(B, L, {D})", real=True)
    if u.shape[-1] != D:
        raise ValueError(
            f"expected {name} of shape (B, L, D) with D={D}, "
            f"got {tuple(u.shape)}"
        )
    check_nonempty_batch(name, u.shape[0])
    if u.shape[1] == 0:
        raise ValueError(f"expected {name} of length L >= 1, got L = 0")


class MambaBlock(nn.Module):
    """The Mamba block (Gu & Dao, 2023, Figure 3 and Algorithm 2).

    For an input u (B, L, D)::

        x, z  = u W_in^T  split in two                    (B, L, E) each
        x     = SiLU(causal depthwise conv of width d_conv over L)
        Delta = softplus(W_dt (x W_x^T)[:R] + b_dt)       (B, L, E)
        B, C  = the next 2N columns of x W_x^T             (B, L, N) each
        y     = SSM(A, Delta, B, C)(x) + D x              (B, L, E)
        out   = (y * SiLU(z)) W_out^T                     (B, L, D)

    with h_t = exp(Delta_t A) h_{t-1} + Delta_t B_t x_t and
    y_t = C_t h_t per channel (the reference code's discretization:
    zero-order hold for A, the simplified Euler step for B).
    A = -exp(A_log) is S4D-Real: A[e] = -(1, 2, ..., N) at initialization.
    softplus(b_dt) is drawn log-uniform in [dt_min, dt_max] (floored at
    ``dt_floor``), as the reference implementation does.

    With ``selective=False``, Delta = softplus(b_dt) (E,), B (E, N) and
    C (E, N) are learned constants: the SSM is the convolution of x with
    K[e, l] = sum_n C[e, n] Delta[e] B[e, n] exp(l Delta[e] A[e, n]).

    Args:
        D: model width. N: state size. expand: E = expand * D.
        d_conv: width of the causal convolution. dt_rank: R, default
        ceil(D / 16) as in the reference. dt_min, dt_max, dt_floor: the
        initial steps. selective: input-dependent Delta, B, C (a bool).
        scan: ``"parallel"`` or ``"loop"``, the scan's computation.

    Shapes: ``forward(u)``: u (B, L, D) -> (B, L, D).
    ``step(u_t, cache)``: u_t (B, D) -> (y_t (B, D), cache).
    """

    def __init__(
        self,
        D,
        N=16,
        expand=2,
        d_conv=4,
        dt_rank=None,
        dt_min=1e-3,
        dt_max=1e-1,
        dt_floor=1e-4,
        selective=True,
        scan="parallel",
    ):
        super().__init__()
        self.d_model = D = check_int("D", D, 1)
        self.N = N = check_int("N", N, 1)
        self.E = E = check_int("expand", expand, 1) * D
        self.d_conv = check_int("d_conv", d_conv, 1)
        R = math.ceil(D / 16) if dt_rank is None else dt_rank
        self.R = R = check_int("dt_rank", R, 1)
        dt_min = check_real("dt_min", dt_min, 0.0)
        dt_max = check_real("dt_max", dt_max, dt_min, allow_low=True)
        dt_floor = check_real("dt_floor", dt_floor, 0.0)
        self.selective = check_bool("selective", selective)
        self.scan = check_choice("scan", scan, tuple(SCANS))

        self.in_proj = nn.Linear(D, 2 * E, bias=False)
        # one filter per channel (groups=E), padded so that output t sees
        # inputs t - d_conv + 1 .. t only (the extra outputs are cut)
        self.conv1d = nn.Conv1d(
            E, E, d_conv, groups=E, padding=d_conv - 1, bias=True
        )
        u = torch.rand(E)
        dt = torch.exp(math.log(dt_min) + u * math.log(dt_max / dt_min))
        dt_bias = _inverse_softplus(dt.clamp(min=dt_floor))  # (E,)
        if self.selective:
            self.x_proj = nn.Linear(E, R + 2 * N, bias=False)
            self.dt_proj = nn.Linear(R, E, bias=True)
            with torch.no_grad():
                bound = R**-0.5
                self.dt_proj.weight.uniform_(-bound, bound)
                self.dt_proj.bias.copy_(dt_bias)
        else:
            self.dt_bias = nn.Parameter(dt_bias)
            self.B = nn.Parameter(torch.ones(E, N))
            self.C = nn.Parameter(torch.randn(E, N))
        A = torch.arange(1, N + 1, dtype=torch.float32).repeat(E, 1)
        self.A_log = nn.Parameter(torch.log(A))  # (E, N)
        self.D = nn.Parameter(torch.ones(E))
        self.out_proj = nn.Linear(E, D, bias=False)

    @property
    def A(self):
        """The state matrix's diagonal, A = -exp(A_log) < 0, (E, N)."""
        return -torch.exp(self.A_log)

    def selection(self, x):
        """Delta, B, C for the convolved inputs x (B, L, E).

        Selective: Delta (B, L, E) > 0, B (B, L, N), C (B, L, N), each a
        function of x_t alone (paper, Algorithm 2). Time-invariant: the
        constants Delta (E,), B (E, N), C (E, N), whatever x is.
        """
        if not self.selective:
            return F.softplus(self.dt_bias), self.B, self.C
        dt, B, C = self.x_proj(x).split([self.R, self.N, self.N], dim=-1)
        return F.softplus(self.dt_proj(dt)), B, C

    def ssm(self, x, z=None):
        """y = SSM(x) + D x, times SiLU(z) if z is given: (B, L, E).

        The scan mirrors the Mamba reference, whose tensors are channels-
        first, (B, E, L): this method alone transposes to that layout and
        back, so the block stays batch-first (B, L, E) around it. The
        time-invariant SSM is a causal convolution with the kernel
        K (E, L) of the class docstring, by the FFT (Chapter 5).
        """
        delta, B, C = self.selection(x)
        if self.selective:
            gate = None if z is None else z.mT
            y = SCANS[self.scan](
                x.mT, delta.mT, self.A, B.mT, C.mT, self.D, gate
            )  # (B, E, L)
            return y.mT
        L = x.shape[1]
        lags = torch.arange(L, dtype=x.dtype, device=x.device)
        dA = (delta[:, None] * self.A).unsqueeze(-1)  # (E, N, 1)
        powers = torch.exp(dA * lags)  # (E, N, L): exp(l Delta A)
        K = ((C * delta[:, None] * B).unsqueeze(-2) @ powers).squeeze(-2)
        y = causal_conv(x.mT, K).mT + self.D * x  # (B, L, E)
        return y if z is None else y * F.silu(z)

    def _conv(self, x):  # (B, L, E) -> (B, L, E)
        # nn.Conv1d wants channels-first (B, E, L); its last d_conv - 1
        # outputs see padding beyond the end and are dropped
        return self.conv1d(x.mT)[..., : x.shape[1]].mT

    def forward(self, u):
        _check_input("u", u, self.d_model)
        x, z = self.in_proj(u).chunk(2, dim=-1)  # (B, L, E) each
        x = F.silu(self._conv(x))
        return self.out_proj(self.ssm(x, z))  # (B, L, D)

    def empty_cache(self, batch_size, dtype=None, device=None):
        """A zero :class:`MambaCache`: the state before the first token."""
        batch_size = check_int("batch_size", batch_size, 1)
        like = self.A_log
        dtype, device = dtype or like.dtype, device or like.device
        conv = torch.zeros(
            batch_size, self.E, self.d_conv - 1, dtype=dtype, device=device
        )
        ssm = torch.zeros(
            batch_size, self.E, self.N, dtype=dtype, device=device
        )
        return MambaCache(conv, ssm)

    def step(self, u_t, cache):
        """One token of recurrent (generation) mode, O(E N) work and memory.

        Computes the output at time t of :meth:`forward` from u_t (B, D)
        and the cache left by the previous token; returns ``(y_t (B, D),
        cache)`` with the new cache (the old one is not modified).
        """
        check_tensor("u_t", u_t, 2, f"(B, {self.d_model})", real=True)
        if not isinstance(cache, MambaCache):
            raise TypeError(
                "expected cache to be a MambaCache (see empty_cache), got "
                f"{type(cache).__name__}"
            )
        B = u_t.shape[0]
        expected = (
            (B, self.E, self.d_conv - 1),
            (B, self.E, self.N),
        )
        if u_t.shape[1] != self.d_model or tuple(
            map(tuple, (cache.conv.shape, cache.ssm.shape))
        ) != tuple(expected):
            raise ValueError(
                f"expected u_t (B, {self.d_model}) and a cache of shapes "
                f"{expected[0]}, {expected[1]} with B = {B}, got u_t "
                f"{tuple(u_t.shape)}, cache {tuple(cache.conv.shape)}, "
                f"{tuple(cache.ssm.shape)}"
            )
        x, z = self.in_proj(u_t).chunk(2, dim=-1)  # (B, E) each
        window = torch.cat([cache.conv, x.unsqueeze(-1)], -1)  # (B, E, k)
        w = self.conv1d.weight.squeeze(1)  # (E, d_conv)
        x = F.silu((window * w).sum(-1) + self.conv1d.bias)  # (B, E)
        delta, Bt, Ct = self.selection(x)
        if self.selective:  # delta (B, E), Bt and Ct (B, N)
            y, h = selective_step(
                cache.ssm, x, delta, self.A, Bt, Ct, self.D, z
            )
        else:  # the same recurrence with constant Delta (E,), B, C (E, N)
            dA = torch.exp(delta[:, None] * self.A)  # (E, N)
            h = dA * cache.ssm + (delta[:, None] * Bt) * x.unsqueeze(-1)
            y = ((h * Ct).sum(-1) + self.D * x) * F.silu(z)  # (B, E)
        # clone: the new cache owns its (B, E, d_conv - 1) numbers, not a
        # view keeping the whole (B, E, d_conv) window alive
        return self.out_proj(y), MambaCache(window[..., 1:].clone(), h)


class MambaModel(nn.Module):
    """A small Mamba language model: embedding, residual blocks, head.

        h = Embedding(tokens)                               (B, L, D)
        h = h + MambaBlock(RMSNorm(h))     n_layers times (pre-norm)
        hs = RMSNorm(h),   y = hs W_head^T                  (B, L, V)

    as the reference's language model (without weight tying). Every block
    is causal, so y[:, t] depends on tokens[:, :t+1] only.

    Args:
        V: vocabulary size. D: width. n_layers: blocks. N, expand, d_conv,
        dt_rank, selective, scan: as :class:`MambaBlock`.

    Shapes: ``forward(tokens)``: tokens (B, L) int64 -> ``(y, hs)``,
    logits y (B, L, V) and the final features hs (B, L, D), as
    :func:`rnnbook.train.train` expects.
    """

    def __init__(
        self,
        V,
        D=64,
        n_layers=2,
        N=16,
        expand=2,
        d_conv=4,
        dt_rank=None,
        selective=True,
        scan="parallel",
    ):
        super().__init__()
        self.V = check_int("V", V, 1)
        D = check_int("D", D, 1)
        n_layers = check_int("n_layers", n_layers, 1)
        self.embedding = nn.Embedding(V, D)
        self.layers = nn.ModuleList(
            MambaBlock(
                D,
                N,
                expand,
                d_conv,
                dt_rank,
                selective=selective,
                scan=scan,
            )
            for _ in range(n_layers)
        )
        self.norms = nn.ModuleList(
            nn.RMSNorm(D, eps=1e-5) for _ in range(n_layers)
        )
        self.norm_f = nn.RMSNorm(D, eps=1e-5)
        self.head = nn.Linear(D, V, bias=False)

    def _check_tokens(self, tokens, shape_text, ndim):
        check_tensor("tokens", tokens, ndim, shape_text)
        if tokens.dtype != torch.int64:
            raise TypeError(
                f"expected int64 token ids, got dtype {tokens.dtype}"
            )
        check_nonempty_batch("tokens", tokens.shape[0])
        if tokens.numel() and not (
            0 <= int(tokens.min()) and int(tokens.max()) < self.V
        ):
            raise ValueError(
                f"expected token ids in 0..{self.V - 1}, got values from "
                f"{int(tokens.min())} to {int(tokens.max())}"
            )

    def forward(self, tokens):
        self._check_tokens(tokens, "(B, L)", 2)
        if tokens.shape[1] == 0:
            raise ValueError("expected tokens of length L >= 1, got L = 0")
        h = self.embedding(tokens)  # (B, L, D)
        for norm, layer in zip(self.norms, self.layers):
            h = h + layer(norm(h))
        hs = self.norm_f(h)
        return self.head(hs), hs

    def empty_caches(self, batch_size, dtype=None, device=None):
        """One zero :class:`MambaCache` per block, as a list."""
        return [
            layer.empty_cache(batch_size, dtype, device)
            for layer in self.layers
        ]

    def step(self, token, caches):
        """Logits (B, V) for one token (B,) int64; returns ``(y, caches)``."""
        self._check_tokens(token, "(B,)", 1)
        if not isinstance(caches, list) or len(caches) != len(self.layers):
            raise ValueError(
                f"expected a list of {len(self.layers)} caches (see "
                "empty_caches)"
            )
        h = self.embedding(token)  # (B, D)
        new = []
        for norm, layer, cache in zip(self.norms, self.layers, caches):
            out, cache = layer.step(norm(h), cache)
            h = h + out
            new.append(cache)
        return self.head(self.norm_f(h)), new
