"""Linear time-invariant state space models (Chapters 5 and 6).

The continuous-time system of the book's equation ch5-ssm,

    x'(t) = A x(t) + B u(t),    y(t) = C x(t) + D u(t),

with a scalar input u and output y per channel and a state x of size N, as in
S4 (Gu et al., 2022, section 2). ``D u`` is a skip connection and is left to
the caller. Discretized with a step dt it becomes the linear recurrence

    x_k = Ab x_{k-1} + Bb u_k,    y_k = C x_k,    x_{-1} = 0,

which is also the causal convolution y = K * u with K[l] = C Ab^l Bb.

Indices: k = 0, 1, ... counts inputs, and x_k = x((k+1) dt) is the state
after input k, so the state before the first input is x_{-1} = x(0). The
argument that holds it is named ``x0``, for x(0), the state at time 0.

Shapes (letters as in the book's glossary, ``rnnbook/__init__.py``):
``A, Ab`` (..., N, N); ``B, Bb, C`` (..., N); ``u, y, K`` (..., L); ``...``
are batch dimensions (for example (B, H): batch and channels), leading and
broadcast against each other. L is the sequence length, the glossary's T
(S4's letter, kept in the SSM chapters). Real and complex tensors are
accepted.
"""

import numbers
import operator

import torch

# Chapter 7's selective scan lives in rnnbook.selective (the loop and one
# step) and rnnbook.chunked_scan (the parallel scan); re-exported here.
from rnnbook.chunked_scan import selective_scan_parallel  # noqa: F401
from rnnbook.selective import (
    selective_scan,  # noqa: F401
    selective_step,  # noqa: F401
)

# ------------------------------------------------------------ input checks


def _tensor(name, value, min_dim, shape_text):
    """``value`` as given, after checking it is a float/complex tensor."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"expected {name} to be a torch.Tensor of shape {shape_text}, "
            f"got {type(value).__name__}"
        )
    if not (value.is_floating_point() or value.is_complex()):
        raise TypeError(
            f"expected {name} to be a floating-point or complex tensor, "
            f"got dtype {value.dtype}"
        )
    if value.dim() < min_dim:
        raise ValueError(
            f"expected {name} of shape {shape_text}, got {tuple(value.shape)}"
        )
    return value


def _state_matrix(name, A):
    _tensor(name, A, 2, "(..., N, N)")
    if A.shape[-1] != A.shape[-2]:
        raise ValueError(
            f"expected a square {name} of shape (..., N, N), "
            f"got {tuple(A.shape)}"
        )
    return A


def _vector(name, v, N):
    _tensor(name, v, 1, f"(..., N) with N={N}")
    if v.shape[-1] != N:
        raise ValueError(
            f"expected {name} of shape (..., N) with N={N} (the state size "
            f"of the state matrix), got {tuple(v.shape)}"
        )
    return v


def _common(*tensors):
    """The tensors cast to one dtype (float64 wins over float32)."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return [t.to(dtype) for t in tensors]


def _length(name, value):
    if isinstance(value, bool):
        raise TypeError(f"expected {name} to be an int, got bool {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(
            f"expected {name} to be an int, got {type(value).__name__}"
        ) from None
    if value < 1:
        raise ValueError(f"expected {name} >= 1, got {value}")
    return value


def _positive(name, value):
    """A positive, finite real number or tensor, as a real tensor."""
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"expected a real {name}, got dtype {value.dtype}")
        if not value.is_floating_point():
            value = value.double()
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = torch.tensor(float(value), dtype=torch.float64)
    else:
        raise TypeError(
            f"expected {name} to be a positive real number or tensor, "
            f"got {type(value).__name__}"
        )
    if not bool(torch.all(torch.isfinite(value) & (value > 0))):
        raise ValueError(f"expected {name} > 0 and finite, got {value}")
    return value


def _batch(**shapes):
    """The broadcast of the named batch shapes, or a ValueError naming them."""
    try:
        return torch.broadcast_shapes(*shapes.values())
    except RuntimeError:
        listed = ", ".join(f"{k} {tuple(v)}" for k, v in shapes.items())
        raise ValueError(
            f"expected batch dimensions that broadcast, got {listed}"
        ) from None


def _step(dt, A, B):
    """dt as a real tensor of shape (..., 1, 1) on A's device."""
    dt = _positive("dt", dt)
    _batch(A=A.shape[:-2], B=B.shape[:-1], dt=dt.shape)
    return dt.to(device=A.device, dtype=A.real.dtype)[..., None, None]


# ------------------------------------------------------- the continuous SSM


def hippo_legs(N, dtype=torch.float64):
    """HiPPO-LegS, the state matrix of S4, from online Legendre projection.

    In the time-invariant form x' = A x + B u that S4 uses:

        A[n, k] = -sqrt(2n+1) sqrt(2k+1)   if n > k,
                  -(n + 1)                 if n = k,
                  0                        if n < k;
        B[n]    = sqrt(2n+1),              n, k = 0, ..., N-1.

    Both come from HiPPO (Gu et al., 2020, section 3, Theorem 2): A is
    minus the matrix of its LegS dynamics x' = -(1/t) A x + (1/t) B u, and
    B[n] = sqrt(2n+1) is its B. S4 restates this A as its HiPPO matrix
    (Gu et al., 2022, eq. 2), which gives no B.

    Args:
        N: the state size, a positive int.
        dtype: a floating-point dtype (default float64).

    Returns:
        ``(A, B)`` of shapes (N, N) and (N,).
    """
    N = _length("N", N)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"expected a floating-point dtype, got {dtype!r}")
    n = torch.arange(N, dtype=dtype)
    q = torch.sqrt(2 * n + 1)  # (N,)
    A = -(torch.tril(torch.outer(q, q), diagonal=-1) + torch.diag(n + 1))
    return A, q.clone()


def ode_reference(A, B, u_fn, t_end, steps, x0=None):
    """Solve x' = A x + B u(t) from x(0) = x0 with the classical RK4 method.

    The book's fine-grained reference for a smooth input (Chapter 5): a
    fourth-order Runge-Kutta step of size h = t_end / steps, independent of
    both discretizations it is used to check. Its error is O(h^4).

    Args:
        A: (..., N, N) state matrix; B: (..., N) input vector.
        u_fn: a function of time t (a 0-d tensor) returning the input at t,
            a tensor broadcastable to the batch shape (...).
        t_end: the final time, > 0; steps: the number of RK4 steps, >= 1.
        x0: (..., N) initial state, or None for zeros.

    Returns:
        (..., steps, N): the state at times h, 2h, ..., t_end.
    """
    A = _state_matrix("A", A)
    B = _vector("B", B, A.shape[-1])
    A, B = _common(A, B)
    steps = _length("steps", steps)
    t_end = _positive("t_end", t_end)
    if t_end.dim() != 0:
        raise ValueError(f"expected a scalar t_end, got {tuple(t_end.shape)}")
    h = t_end.item() / steps
    if x0 is None:
        x = torch.zeros_like(B)
    else:
        x = _vector("x0", x0, A.shape[-1]).to(B.dtype)

    def f(t, x):  # the right-hand side A x + B u(t)
        t = torch.tensor(t, dtype=torch.float64)
        u = torch.as_tensor(u_fn(t), dtype=B.dtype)
        return (A @ x.unsqueeze(-1)).squeeze(-1) + B * u.unsqueeze(-1)

    xs = []
    for i in range(steps):
        t = i * h
        k1 = f(t, x)
        k2 = f(t + h / 2, x + h / 2 * k1)
        k3 = f(t + h / 2, x + h / 2 * k2)
        k4 = f(t + h, x + h * k3)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        xs.append(x)
    return torch.stack(xs, dim=-2)


# --------------------------------------------------------- discretization


def discretize_zoh(A, B, dt):
    """Zero-order hold: exact when u is constant on each step of length dt.

    Equation ch5-zoh (Gu et al., 2023, eq. 4; Chapter 5's theorem):

        Ab = exp(dt A),   Bb = (integral_0^dt exp(s A) ds) B
                             = A^{-1} (exp(dt A) - I) B   if A is invertible.

    Both come from one exponential of the (N+1, N+1) block matrix
    dt [[A, B], [0, 0]], whose top row is [Ab, Bb] (Van Loan, 1978), so a
    singular A (an integrator) needs no special case.

    Mamba's paper writes this rule (its eq. 4), but the authors' reference
    code keeps exp(dt A) and takes Bb = dt B, Euler's rule for B; Chapter 7
    follows the code.

    Args:
        A: (..., N, N); B: (..., N); dt: a positive number, or a tensor of
            positive steps of shape (...), one per batch entry (per channel).

    Returns:
        ``(Ab, Bb)`` of shapes (..., N, N) and (..., N).
    """
    A = _state_matrix("A", A)
    B = _vector("B", B, A.shape[-1])
    A, B = _common(A, B)
    dt = _step(dt, A, B)  # (..., 1, 1)
    N = A.shape[-1]
    batch = _batch(A=A.shape[:-2], B=B.shape[:-1], dt=dt.shape[:-2])
    M = A.new_zeros(batch + (N + 1, N + 1))
    M[..., :N, :N] = dt * A
    M[..., :N, N] = dt[..., 0] * B
    E = torch.linalg.matrix_exp(M)  # (..., N+1, N+1)
    return E[..., :N, :N], E[..., :N, N]


def discretize_bilinear(A, B, dt):
    """The bilinear transform, the S4 paper's discretization.

    Equation ch5-bilinear (Gu et al., 2022, eq. 3):

        Ab = (I - dt/2 A)^{-1} (I + dt/2 A),   Bb = (I - dt/2 A)^{-1} dt B.

    Each eigenvalue lambda of A maps to (1 + dt lambda/2) / (1 - dt lambda/2),
    the map of Tustin's method. The control-theory Tustin transform
    (``scipy.signal.cont2discrete(..., method="bilinear")``) gives the same
    Ab and Bb, but for the convention x_{k+1} = A_d x_k + B_d u_k, and it
    also changes C and D: C_d = C (I - dt/2 A)^{-1}, D_d = D + C Bb / 2.
    S4 keeps C (and D) unchanged, so only Ab and Bb agree with scipy's.

    Args, returns: as :func:`discretize_zoh`. ``I - dt/2 A`` must be
    invertible, which holds whenever A is stable (eigenvalues with real
    part < 0).
    """
    A = _state_matrix("A", A)
    B = _vector("B", B, A.shape[-1])
    A, B = _common(A, B)
    dt = _step(dt, A, B)
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    back = eye - dt / 2 * A  # (..., N, N)
    Ab = torch.linalg.solve(back, eye + dt / 2 * A)
    Bb = torch.linalg.solve(back, (dt[..., 0] * B).unsqueeze(-1))
    return Ab, Bb.squeeze(-1)


# -------------------------------------------- the recurrent view: a scan


def ssm_states(Ab, Bb, u, x0=None):
    """Run the recurrence x_k = Ab x_{k-1} + Bb u_k (equation ch5-rec).

    The slow, obviously correct view: one step after another.

    Args:
        Ab: (..., N, N); Bb: (..., N); u: (..., L), the input sequence.
        x0: (..., N), the state x_{-1} before the first input u_0 (the
            state x(0) at time 0), or None for zeros.

    Returns:
        (..., L, N): the states x_0, ..., x_{L-1} after each input.
    """
    Ab = _state_matrix("Ab", Ab)
    Bb = _vector("Bb", Bb, Ab.shape[-1])
    u = _tensor("u", u, 1, "(..., L)")
    Ab, Bb, u = _common(Ab, Bb, u)
    Bu = Bb.unsqueeze(-2) * u.unsqueeze(-1)  # (..., L, N): inputs' share
    batch = _batch(Ab=Ab.shape[:-2], Bb=Bb.shape[:-1], u=u.shape[:-1])
    N = Ab.shape[-1]
    if x0 is None:
        x = Bu.new_zeros(batch + (N,))
    else:
        x = _vector("x0", x0, N).to(Bu.dtype)
    AbT = Ab.mT  # x_k as a row: x_k^T = x_{k-1}^T Ab^T + (Bb u_k)^T
    xs = []
    for Bu_k in Bu.unbind(-2):
        x = (x.unsqueeze(-2) @ AbT).squeeze(-2) + Bu_k  # (..., N)
        xs.append(x)
    if not xs:  # L = 0
        return Bu.new_zeros(batch + (0, N))
    return torch.stack(xs, dim=-2)


def ssm_scan(Ab, Bb, C, u):
    """The SSM's output by the recurrence: y_k = C x_k (equation ch5-rec).

    Costs L sequential steps of O(N^2) each; this is how an SSM generates,
    one output per new input, carrying only x.

    Args:
        Ab: (..., N, N); Bb, C: (..., N); u: (..., L).

    Returns:
        y: (..., L).
    """
    N = _state_matrix("Ab", Ab).shape[-1]
    Bb, C = _vector("Bb", Bb, N), _vector("C", C, N)
    u = _tensor("u", u, 1, "(..., L)")
    _batch(Ab=Ab.shape[:-2], Bb=Bb.shape[:-1], u=u.shape[:-1], C=C.shape[:-1])
    xs = ssm_states(Ab, Bb, u)  # (..., L, N)
    xs, C = _common(xs, C)
    return (xs @ C.unsqueeze(-1)).squeeze(-1)


# ---------------------------------------- the convolutional view: a kernel


def ssm_kernel(Ab, Bb, C, L):
    """The convolution kernel K[l] = C Ab^l Bb, l < L (equation ch5-kernel).

    By doubling: with V = [Bb, Ab Bb, ..., Ab^{m-1} Bb] and P = Ab^m, the
    next block is P V, so about 2 log2(L) matrix products (P V and P P per
    round) replace L sequential ones. The work is still O(N^2 L + N^3 log L):
    for a dense A this is the bottleneck that S4 removes (Gu et al., 2022,
    section 3; the book's Chapter 6).

    Args:
        Ab: (..., N, N); Bb, C: (..., N); L: the kernel length, >= 1.

    Returns:
        K: (..., L).
    """
    Ab = _state_matrix("Ab", Ab)
    N = Ab.shape[-1]
    Bb, C = _vector("Bb", Bb, N), _vector("C", C, N)
    L = _length("L", L)
    Ab, Bb, C = _common(Ab, Bb, C)
    batch = _batch(Ab=Ab.shape[:-2], Bb=Bb.shape[:-1], C=C.shape[:-1])
    V = Bb.expand(batch + (N,)).unsqueeze(-1)  # (..., N, 1)
    P = Ab
    while V.shape[-1] < L:
        V = torch.cat([V, P @ V], dim=-1)  # (..., N, 2m)
        P = P @ P
    V = V[..., :L]  # (..., N, L)
    return (C.unsqueeze(-2) @ V).squeeze(-2)


def causal_conv(u, K):
    """y_k = sum_{j <= k} K[j] u_{k-j}, with the FFT (equation ch5-unroll).

    Both sequences are zero-padded to length 2L, so the FFT's circular
    convolution never wraps the end of u onto its start. O(L log L), and
    parallel over all k.

    Args:
        u: (..., L) the input; K: (..., L) the kernel, same L.

    Returns:
        y: (..., L), the batch dimensions of u and K broadcast.
    """
    u = _tensor("u", u, 1, "(..., L)")
    K = _tensor("K", K, 1, f"(..., L) with L={u.shape[-1]}")
    if K.shape[-1] != u.shape[-1]:
        raise ValueError(
            f"expected K of length L={u.shape[-1]} (the length of u), "
            f"got shape {tuple(K.shape)}"
        )
    batch = _batch(u=u.shape[:-1], K=K.shape[:-1])
    u, K = _common(u, K)
    L = u.shape[-1]
    if L == 0 or 0 in batch:  # an empty FFT is an error in some backends
        return u.new_zeros(batch + (L,))
    if u.is_complex():
        y = torch.fft.ifft(torch.fft.fft(u, 2 * L) * torch.fft.fft(K, 2 * L))
    else:
        y = torch.fft.irfft(
            torch.fft.rfft(u, 2 * L) * torch.fft.rfft(K, 2 * L), 2 * L
        )
    return y[..., :L]


# ------------------------------ HiPPO-LegS: memory as online approximation


def legendre_basis(N, s):
    """The scaled Legendre polynomials g_n(s) = sqrt(2n+1) P_n(s), n < N.

    Orthonormal on [-1, 1] under the uniform measure ds/2, the basis of
    HiPPO-LegS (Gu et al., 2020, section 3 and appendix D): a state x(t)
    of :func:`hippo_legs_online` describes the history of its input as
    f(r) ~ sum_n x_n(t) g_n(2 r / t - 1), 0 <= r <= t (equation ch6-proj).
    Computed by Bonnet's recurrence
    (n+1) P_{n+1}(s) = (2n+1) s P_n(s) - n P_{n-1}(s).

    Args:
        N: the number of polynomials, >= 1. s: (...,) points in [-1, 1].

    Returns:
        (..., N).
    """
    N = _length("N", N)
    s = _tensor("s", s, 0, "(...)")
    if s.is_complex():
        raise TypeError(f"expected real points s, got dtype {s.dtype}")
    P = [torch.ones_like(s), s]
    for n in range(1, N - 1):
        P.append(((2 * n + 1) * s * P[n] - n * P[n - 1]) / (n + 1))
    n = torch.arange(N, dtype=s.dtype)
    return torch.stack(P[:N], dim=-1) * torch.sqrt(2 * n + 1)


def hippo_legs_online(u, N):
    """The HiPPO-LegS state of every prefix of u: x_k projects u_0..u_k.

    HiPPO-LegS's time-varying ODE (Gu et al., 2020, Theorem 2, written
    with :func:`hippo_legs`'s sign) x'(t) = (A x(t) + B u(t)) / t,
    discretized by the bilinear transform with the step dt = 1/(k+1) at
    input k = 0, 1, ... (k + 1 samples have arrived), from x_{-1} = 0 as
    in :func:`ssm_states` (equation ch6-legs-discrete), with j = k + 1:

        x_k = (I - A/(2j))^{-1} ((I + A/(2j)) x_{k-1} + B u_k / j).

    The step shrinks as the window grows, so the measure is uniform over
    the whole history: no timescale to choose.

    Args:
        u: (..., L) input sequence. N: the state size, >= 1.

    Returns:
        (..., L, N): x_k for k = 0..L-1, the state after the samples
        u_0..u_k (``u[..., :k+1]``).
    """
    u = _tensor("u", u, 1, "(..., L)")
    if u.is_complex():
        raise TypeError(f"expected a real u, got dtype {u.dtype}")
    A, B = hippo_legs(N, dtype=u.dtype)
    L = u.shape[-1]
    if L == 0:
        return u.new_zeros(u.shape[:-1] + (0, A.shape[-1]))
    k = torch.arange(1, L + 1, dtype=u.dtype)
    Ab, Bb = discretize_bilinear(A, B, 1 / k)  # (L, N, N), (L, N)
    x = u.new_zeros(u.shape[:-1] + (A.shape[-1],))
    xs = []
    for step in range(L):
        x = (x.unsqueeze(-2) @ Ab[step].mT).squeeze(-2)
        xs.append(x + Bb[step] * u[..., step, None])
        x = xs[-1]
    return torch.stack(xs, dim=-2)
