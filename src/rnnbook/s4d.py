"""Diagonal state space models: the S4D kernel, layer and model (Chapter 6).

S4D (Gu, Goel, Gupta & Re, 2022, "On the parameterization and initialization
of diagonal state space models") keeps S4's layer and makes the state matrix
diagonal, A = diag(a_0, ..., a_{M-1}) with complex a_m. A real system of
state size N has its eigenvalues in conjugate pairs, so M = N / 2 of them
(those with positive imaginary part) describe it and the kernel

    K[l] = 2 Re sum_m C_m Bb_m Ab_m^l,    l = 0, ..., L-1    (ch6-vandermonde)

is a product with the Vandermonde matrix V[m, l] = Ab_m^l: O(M L) work, no
matrix powers. Letters as in the book's glossary (``rnnbook/__init__.py``):
``B`` batch, ``T`` sequence length, ``D`` input size, ``H`` channels (the
model width), ``N`` state size, ``M = N / 2`` complex modes.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from rnnbook.ssm import (
    _batch,
    _length,
    _positive,
    _tensor,
    causal_conv,
    hippo_legs,
)


def _check_sequence(name, x, letter, size):
    """A real floating-point ``(B, T, size)`` tensor with ``T >= 1``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"expected {name} to be a torch.Tensor, got {type(x).__name__}"
        )
    if not x.is_floating_point():
        raise TypeError(
            f"expected a real floating-point {name}, got dtype {x.dtype}"
        )
    if x.dim() != 3 or x.shape[-1] != size:
        raise ValueError(
            f"expected {name} of shape (B, T, {letter}) with {letter}={size}, "
            f"got {tuple(x.shape)}"
        )
    if x.shape[1] == 0:
        raise ValueError(f"expected {name} of length T >= 1, got T = 0")


# ----------------------------------------------- HiPPO's normal part, inits


def hippo_legs_nplr(N, dtype=torch.float64):
    """HiPPO-LegS as normal plus low rank: A = A_normal - P P^T.

    With P[n] = sqrt(n + 1/2) (Gu et al., 2022, S4 section 3.2), the matrix
    A_normal = A + P P^T is -1/2 I plus a skew-symmetric matrix, so it is
    normal (unitarily diagonalizable) with eigenvalues -1/2 + i w (book
    equation ch6-nplr).

    Args:
        N: the state size, a positive int.

    Returns:
        ``(A_normal, P)`` of shapes (N, N) and (N,).
    """
    A, _ = hippo_legs(N, dtype=dtype)
    P = torch.sqrt(torch.arange(N, dtype=dtype) + 0.5)
    return A + torch.outer(P, P), P


def _modes(N):
    N = _length("N", N)
    if N % 2:
        raise ValueError(
            f"expected an even state size N (M = N/2 conjugate pairs), got {N}"
        )
    return torch.arange(N // 2, dtype=torch.float64)


def s4d_lin(N):
    """S4D-Lin: a_m = -1/2 + i pi m, m < N/2 (S4D, section 4.2).

    Returns: (N/2,) complex128 eigenvalues.
    """
    m = _modes(N)
    return torch.complex(torch.full_like(m, -0.5), math.pi * m)


def s4d_inv(N):
    """S4D-Inv: a_m = -1/2 + i (N/pi) (N/(2m+1) - 1), m < N/2 (S4D, 4.2).

    An approximation to the imaginary parts of HiPPO-LegS's normal part.

    Returns: (N/2,) complex128 eigenvalues.
    """
    m = _modes(N)
    imag = N / math.pi * (N / (2 * m + 1) - 1)
    return torch.complex(torch.full_like(m, -0.5), imag)


def s4d_legs(N):
    """S4D-LegS: the eigenvalues of HiPPO-LegS's normal part (S4D, 4.1).

    Those with positive imaginary part, smallest first; the others are
    their conjugates.

    Returns: (N/2,) complex128 eigenvalues.
    """
    _modes(N)
    A_normal, _ = hippo_legs_nplr(N)
    w = torch.linalg.eigvals(A_normal)
    w = w[w.imag > 0]
    return w[torch.argsort(w.imag)]


INITS = {"lin": s4d_lin, "inv": s4d_inv, "legs": s4d_legs}
"""The initializations of A by name."""

# ---------------------------------------------------------------- the kernel


def s4d_kernel(A, B, C, dt, L, method="zoh"):
    """The diagonal SSM's kernel by a Vandermonde product (ch6-vandermonde).

    Discretize each mode (Chapter 5), zero-order hold:
        Ab = exp(dt a),  Bb = (exp(dt a) - 1) / a * B;
    or bilinear:
        Ab = (1 + dt a/2) / (1 - dt a/2),  Bb = dt B / (1 - dt a/2);
    then K[l] = 2 Re sum_m C_m Bb_m Ab_m^l with Ab^l = exp(l log Ab).

    Args:
        A: (..., M) complex eigenvalues with Re a < 0 (their conjugates are
            implied). B, C: (..., M) complex. dt: a positive number or a
            tensor (...) of steps, one per channel.
        L: the kernel length, >= 1. method: ``"zoh"`` or ``"bilinear"``.

    Returns:
        K: (..., L), real.
    """
    for name, value in (("A", A), ("B", B), ("C", C)):
        _tensor(name, value, 1, "(..., M)")
    if not (A.shape[-1] == B.shape[-1] == C.shape[-1]):
        raise ValueError(
            "expected A, B and C of shape (..., M) with one M, got "
            f"{tuple(A.shape)}, {tuple(B.shape)}, {tuple(C.shape)}"
        )
    if method not in ("zoh", "bilinear"):
        raise ValueError(
            f"expected method 'zoh' or 'bilinear', got {method!r}"
        )
    if not bool(torch.all(A.real < 0)):
        raise ValueError("expected every eigenvalue in A with real part < 0")
    L = _length("L", L)
    dt = _positive("dt", dt)
    _batch(A=A.shape[:-1], B=B.shape[:-1], C=C.shape[:-1], dt=dt.shape)
    A = A.to(torch.promote_types(A.dtype, torch.complex64))
    dtA = dt.to(A.real.dtype).unsqueeze(-1) * A  # (..., M)
    if method == "zoh":
        log_Ab = dtA
        Bb = torch.expm1(dtA) / A * B
    else:
        log_Ab = torch.log((1 + dtA / 2) / (1 - dtA / 2))
        Bb = dt.to(A.real.dtype).unsqueeze(-1) * B / (1 - dtA / 2)
    lags = torch.arange(L, dtype=A.real.dtype)
    V = torch.exp(log_Ab.unsqueeze(-1) * lags)  # (..., M, L): Ab_m^l
    K = ((C * Bb).unsqueeze(-2) @ V).squeeze(-2)  # (..., L)
    return 2 * K.real


# ------------------------------------------------------------- the layer


class S4DKernel(nn.Module):
    """H independent diagonal SSMs with N/2 modes each, and their kernels.

    Parameters (S4D, section 3 and its minimal code's names):
    ``log_dt`` (H,), the step, log-uniform in [dt_min, dt_max];
    ``log_A_real`` (H, M) and ``A_imag`` (H, M), so that
    a = -exp(log_A_real) + i A_imag keeps Re a < 0 through training;
    ``C`` (H, M, 2), the real and imaginary parts of C, standard complex
    normal. B is fixed to 1, as in S4D's minimal code: only the products
    C_m B_m enter the kernel, so a trained C stands for both.

    Args:
        H: channels. N: state size (even). init: ``"lin"``, ``"inv"`` or
        ``"legs"`` (:data:`INITS`). dt_min, dt_max: the range of steps.
        method: the discretization, ``"zoh"`` or ``"bilinear"``.
        generator: a ``torch.Generator`` for the random draws, or None.
    """

    def __init__(
        self,
        H,
        N=64,
        init="lin",
        dt_min=1e-3,
        dt_max=1e-1,
        method="zoh",
        generator=None,
    ):
        super().__init__()
        H, N = _length("H", H), _length("N", N)
        if init not in INITS:
            raise ValueError(
                f"expected init one of {sorted(INITS)}, got {init!r}"
            )
        if method not in ("zoh", "bilinear"):
            raise ValueError(
                f"expected method 'zoh' or 'bilinear', got {method!r}"
            )
        if not 0 < dt_min <= dt_max:
            raise ValueError(
                f"expected 0 < dt_min <= dt_max, got {dt_min}, {dt_max}"
            )
        self.method = method
        A = INITS[init](N).to(torch.complex64).expand(H, -1)  # (H, M)
        u = torch.rand(H, generator=generator)
        log_dt = math.log(dt_min) + u * (math.log(dt_max) - math.log(dt_min))
        self.log_dt = nn.Parameter(log_dt)
        self.log_A_real = nn.Parameter(torch.log(-A.real).clone())
        self.A_imag = nn.Parameter(A.imag.clone())
        C = torch.randn(H, N // 2, 2, generator=generator) * math.sqrt(0.5)
        self.C = nn.Parameter(C)

    @property
    def A(self):
        """The eigenvalues a = -exp(log_A_real) + i A_imag, (H, M)."""
        return torch.complex(-torch.exp(self.log_A_real), self.A_imag)

    def discretized(self):
        """``(Ab, Bb, C)``, each (H, M) complex: the recurrent view."""
        A, dt = self.A, torch.exp(self.log_dt).unsqueeze(-1)
        if self.method == "zoh":
            Ab = torch.exp(dt * A)
            Bb = torch.expm1(dt * A) / A
        else:
            Ab = (1 + dt * A / 2) / (1 - dt * A / 2)
            Bb = dt / (1 - dt * A / 2)
        return Ab, Bb, torch.view_as_complex(self.C)

    def forward(self, L):
        """The kernels K (H, L) of :func:`s4d_kernel`, B = 1."""
        A = self.A
        C = torch.view_as_complex(self.C)
        return s4d_kernel(
            A, torch.ones_like(A), C, torch.exp(self.log_dt), L, self.method
        )


class S4DLayer(nn.Module):
    """An S4D layer: per-channel SSM convolution, D skip, GELU, GLU mixing.

    For each channel h of u (B, T, H) (book equation ch6-layer):

        z[:, :, h] = K_h * u[:, :, h] + D_h u[:, :, h]   (causal convolution)
        y = GLU(GELU(z) W^T + b),   W (2H, H): the channels mix only here,

    as in S4 (section 3.4) and S4D's minimal layer. The convolution runs
    with the FFT (:func:`rnnbook.ssm.causal_conv`); :meth:`recurrent`
    computes the same outputs one step at a time.

    Args: H, N, init, dt_min, dt_max, method, generator: as
    :class:`S4DKernel`.

    Shapes: ``forward(u)``: u (B, T, H) -> y (B, T, H).
    """

    def __init__(
        self,
        H,
        N=64,
        init="lin",
        dt_min=1e-3,
        dt_max=1e-1,
        method="zoh",
        generator=None,
    ):
        super().__init__()
        self.H = _length("H", H)
        self.kernel = S4DKernel(H, N, init, dt_min, dt_max, method, generator)
        self.D = nn.Parameter(torch.randn(H, generator=generator))
        self.mix = nn.Linear(H, 2 * H)

    def _output(self, z):  # (B, T, H) -> (B, T, H)
        return F.glu(self.mix(F.gelu(z)), dim=-1)

    def forward(self, u):
        _check_sequence("u", u, "H", self.H)
        K = self.kernel(u.shape[1]).to(u.dtype)  # (H, T)
        # causal_conv runs over the last axis: time goes last for this call
        z = causal_conv(u.mT, K).mT + self.D * u  # (B, T, H)
        return self._output(z)

    def recurrent(self, u):
        """The same outputs by the recurrence x_t = Ab x_{t-1} + Bb u_t.

        The state x (B, H, M) is complex; y_t = 2 Re(C x_t) + D u_t. This is
        how the layer generates, one input at a time, in O(H M) per step.
        """
        _check_sequence("u", u, "H", self.H)
        Ab, Bb, C = self.kernel.discretized()  # (H, M) each
        x = torch.zeros(
            u.shape[0], self.H, Ab.shape[-1], dtype=Ab.dtype, device=u.device
        )
        zs = []
        for u_t in u.unbind(1):  # u_t (B, H)
            x = Ab * x + Bb * u_t.unsqueeze(-1)  # (B, H, M)
            zs.append(2 * (C * x).sum(-1).real)
        z = torch.stack(zs, 1).to(u.dtype) + self.D * u  # (B, T, H)
        return self._output(z)


class S4DModel(nn.Module):
    """A small S4D network: encoder, residual S4D blocks, decoder.

        h = x W_enc^T + b_enc                           (B, T, H)
        h = LayerNorm(h + S4DLayer(h))   n_layers times (post-norm)
        hs = h,   y = hs W_dec^T + b_dec                (B, T, O)

    Every layer is causal, so y[:, t] depends on x[:, :t+1] only.

    Args:
        D: input size. O: output size. H: channels. N: state size.
        n_layers: blocks. init, dt_min, dt_max, method: as
        :class:`S4DKernel`. generator: for the SSM parameters.

    Shapes: ``forward(x)``: x (B, T, D) -> ``(y, hs)``: y (B, T, O) and
    the last features hs (B, T, H), as :func:`rnnbook.train.train` expects.
    """

    def __init__(
        self,
        D,
        O,  # noqa: E741 (the glossary's output size)
        H=32,
        N=32,
        n_layers=2,
        init="lin",
        dt_min=1e-3,
        dt_max=1e-1,
        method="zoh",
        generator=None,
    ):
        super().__init__()
        self.D = _length("D", D)
        n_layers = _length("n_layers", n_layers)
        self.encoder = nn.Linear(D, H)
        self.layers = nn.ModuleList(
            S4DLayer(H, N, init, dt_min, dt_max, method, generator)
            for _ in range(n_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(H) for _ in range(n_layers))
        self.decoder = nn.Linear(H, _length("O", O))

    def forward(self, x):
        _check_sequence("x", x, "D", self.D)
        h = self.encoder(x)  # (B, T, H)
        for norm, layer in zip(self.norms, self.layers):
            h = norm(h + layer(h))
        return self.decoder(h), h


def ssm_parameters(model):
    """The parameters S4 and S4D train with a smaller learning rate.

    ``log_dt``, ``log_A_real`` and ``A_imag`` (S4, appendix; S4D's code
    gives them lr 1e-3 and no weight decay). Returns a list of tensors.
    """
    names = ("log_dt", "log_A_real", "A_imag")
    return [p for n, p in model.named_parameters() if n.endswith(names)]
