"""rnnbook.ssm against independent references written here: the HiPPO-LegS
formula entry by entry, closed forms of the discretizations, numerical
quadrature, slow loops for the scan, the kernel and the convolution, an exact
solution of a scalar ODE, and autograd for the gradient of the recurrence."""

import math

import numpy as np
import pytest
import torch

from rnnbook.ssm import (
    causal_conv,
    discretize_bilinear,
    discretize_zoh,
    hippo_legs,
    ode_reference,
    ssm_kernel,
    ssm_scan,
    ssm_states,
)

F64 = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _stable(N, seed=0, batch=()):
    """A random dense matrix with every eigenvalue's real part < 0."""
    g = _gen(seed)
    M = torch.randn(batch + (N, N), generator=g, dtype=F64) / math.sqrt(N)
    shift = torch.linalg.eigvals(M).real.amax(-1) + 0.5  # (...,)
    return M - shift[..., None, None] * torch.eye(N, dtype=F64)


def _vec(N, seed, batch=()):
    return torch.randn(batch + (N,), generator=_gen(seed), dtype=F64)


# ------------------------------------------------------------- HiPPO-LegS


@pytest.mark.parametrize("N", [1, 2, 5, 16])
def test_hippo_legs_is_the_formula_of_gu_et_al_2020(N):
    # HiPPO (Gu et al., 2020), LegS: x' = -(1/t) A x + (1/t) B u with
    # A[n,k] = sqrt(2n+1) sqrt(2k+1) (n > k), n + 1 (n = k), 0 (n < k),
    # B[n] = sqrt(2n+1). The time-invariant matrix S4 uses is -A.
    A, B = hippo_legs(N)
    assert A.shape == (N, N) and B.shape == (N,) and A.dtype == F64
    for n in range(N):
        assert B[n].item() == pytest.approx(math.sqrt(2 * n + 1), abs=1e-15)
        for k in range(N):
            if n > k:
                paper = math.sqrt(2 * n + 1) * math.sqrt(2 * k + 1)
            elif n == k:
                paper = n + 1
            else:
                paper = 0.0
            assert A[n, k].item() == pytest.approx(-paper, abs=1e-13)


def test_hippo_legs_is_stable_and_accepts_numpy_ints_and_dtype():
    A, _ = hippo_legs(np.int64(8), dtype=torch.float32)
    assert A.dtype == torch.float32
    # lower triangular: the eigenvalues are the diagonal, -1, ..., -N
    eig = torch.linalg.eigvals(hippo_legs(8)[0].double()).real
    assert torch.allclose(
        eig.sort().values, -torch.arange(8, 0, -1.0).double()
    )


@pytest.mark.parametrize("dtype", [torch.int64, torch.complex128, "float"])
def test_hippo_legs_rejects_non_float_dtypes(dtype):
    with pytest.raises(TypeError, match="floating-point dtype"):
        hippo_legs(4, dtype=dtype)


@pytest.mark.parametrize("N", [0, -3])
def test_hippo_legs_rejects_bad_sizes(N):
    with pytest.raises(ValueError, match="N >= 1"):
        hippo_legs(N)


@pytest.mark.parametrize("N", [2.5, True, "4"])
def test_hippo_legs_rejects_non_integers(N):
    with pytest.raises(TypeError, match="expected N to be an int"):
        hippo_legs(N)


# --------------------------------------------------------- discretization


def test_zoh_matches_matrix_exp_and_the_closed_form():
    A, B = _stable(5, seed=1), _vec(5, 2)
    dt = 0.3
    Ab, Bb = discretize_zoh(A, B, dt)
    eye = torch.eye(5, dtype=F64)
    expm = torch.linalg.matrix_exp(dt * A)
    assert torch.allclose(Ab, expm, rtol=0, atol=1e-13)
    closed = torch.linalg.solve(A, (expm - eye) @ B)  # A^{-1}(e^{dt A} - I) B
    assert torch.allclose(Bb, closed, rtol=0, atol=1e-12)


def test_zoh_input_matrix_is_the_integral_of_the_exponential():
    # Bb = int_0^dt exp(sA) ds B by composite Simpson's rule, which needs no
    # inverse: the check holds for a singular A too.
    A = _stable(4, seed=3)
    A[:, 0] = 0.0  # singular
    B, dt, m = _vec(4, 4), 0.5, 400
    s = torch.linspace(0, dt, m + 1, dtype=F64)
    w = torch.ones(m + 1, dtype=F64)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    integral = sum(
        wi * torch.linalg.matrix_exp(si * A) for wi, si in zip(w, s)
    ) * (dt / m / 3)
    _, Bb = discretize_zoh(A, B, dt)
    assert torch.allclose(Bb, integral @ B, rtol=0, atol=1e-11)


def test_zoh_of_an_integrator_is_dt_times_B():
    Ab, Bb = discretize_zoh(torch.zeros(3, 3, dtype=F64), _vec(3, 0), 0.25)
    assert torch.equal(Ab, torch.eye(3, dtype=F64))
    assert torch.allclose(Bb, 0.25 * _vec(3, 0), rtol=0, atol=1e-15)


def test_zoh_and_bilinear_of_diagonal_complex_A_are_the_scalar_formulas():
    lam = torch.tensor([-0.5 + 2.0j, -1.0 - 0.3j, -0.1 + 0.0j])
    lam = lam.to(torch.complex128)
    b = torch.tensor([1.0, -2.0, 0.5], dtype=torch.complex128)
    dt = 0.2
    Ab, Bb = discretize_zoh(torch.diag(lam), b, dt)
    assert torch.allclose(Ab, torch.diag(torch.exp(lam * dt)), atol=1e-14)
    assert torch.allclose(Bb, (torch.exp(lam * dt) - 1) / lam * b, atol=1e-14)
    Ab, Bb = discretize_bilinear(torch.diag(lam), b, dt)
    ab = (1 + lam * dt / 2) / (1 - lam * dt / 2)
    assert torch.allclose(Ab, torch.diag(ab), atol=1e-14)
    assert torch.allclose(Bb, dt / (1 - lam * dt / 2) * b, atol=1e-14)


def test_bilinear_matches_the_inverse_formula():
    A, B, dt = _stable(6, seed=5), _vec(6, 6), 0.7
    eye = torch.eye(6, dtype=F64)
    inv = torch.linalg.inv(eye - dt / 2 * A)
    Ab, Bb = discretize_bilinear(A, B, dt)
    assert torch.allclose(Ab, inv @ (eye + dt / 2 * A), rtol=0, atol=1e-13)
    assert torch.allclose(Bb, inv @ (dt * B), rtol=0, atol=1e-13)


@pytest.mark.parametrize("method", [discretize_zoh, discretize_bilinear])
def test_discretizations_take_one_step_per_channel(method):
    H, N = 3, 4
    A, B = _stable(N, seed=7, batch=(H,)), _vec(N, 8, batch=(H,))
    dt = torch.tensor([0.1, 0.5, 2.0], dtype=F64)
    Ab, Bb = method(A, B, dt)
    assert Ab.shape == (H, N, N) and Bb.shape == (H, N)
    for h in range(H):
        Ab_h, Bb_h = method(A[h], B[h], dt[h].item())
        assert torch.allclose(Ab[h], Ab_h, rtol=0, atol=1e-14)
        assert torch.allclose(Bb[h], Bb_h, rtol=0, atol=1e-14)


@pytest.mark.parametrize("method", [discretize_zoh, discretize_bilinear])
def test_discretizations_share_A_across_channels(method):
    # One A, a B and a step per channel: batch shapes broadcast.
    A, B = _stable(3), _vec(3, 1, batch=(2,))
    dt = torch.tensor([0.2, 0.7], dtype=F64)
    Ab, Bb = method(A, B, dt)
    assert Ab.shape == (2, 3, 3) and Bb.shape == (2, 3)
    for h in range(2):
        Ab_h, Bb_h = method(A, B[h], dt[h].item())
        assert torch.allclose(Ab[h], Ab_h, rtol=0, atol=1e-14)
        assert torch.allclose(Bb[h], Bb_h, rtol=0, atol=1e-14)


@pytest.mark.parametrize("method", [discretize_zoh, discretize_bilinear])
def test_discretizations_map_stable_A_inside_the_unit_circle(method):
    for seed in range(5):
        A = _stable(6, seed=seed)
        for dt in (0.01, 1.0, 100.0):
            Ab, _ = method(A, _vec(6, 0), dt)
            assert torch.linalg.eigvals(Ab).abs().max() < 1


@pytest.mark.parametrize("method", [discretize_zoh, discretize_bilinear])
def test_discretizations_accept_legitimate_steps(method):
    A, B = _stable(3), _vec(3, 1)
    expected = method(A, B, 0.5)
    for dt in (np.float64(0.5), np.float32(0.5), torch.tensor(0.5)):
        for got, want in zip(method(A, B, dt), expected):
            assert torch.allclose(got, want, rtol=0, atol=1e-7)
    # float32 in, float32 out
    Ab, Bb = method(A.float(), B.float(), 0.5)
    assert Ab.dtype == Bb.dtype == torch.float32


@pytest.mark.parametrize("method", [discretize_zoh, discretize_bilinear])
def test_discretizations_reject_bad_input(method):
    A, B = _stable(3), _vec(3, 1)
    with pytest.raises(ValueError, match="square A"):
        method(torch.zeros(3, 4, dtype=F64), B, 0.1)
    with pytest.raises(ValueError, match=r"B of shape \(\.\.\., N\) with N=3"):
        method(A, _vec(4, 1), 0.1)
    for dt in (0.0, -0.1, math.nan, math.inf, torch.tensor([0.1, -1.0])):
        with pytest.raises(ValueError, match="dt > 0"):
            method(A, B, dt)
    for dt in (True, "0.1", 0.1 + 0j, torch.tensor(0.1 + 0j), None):
        with pytest.raises(TypeError, match="dt"):
            method(A, B, dt)
    with pytest.raises(ValueError, match="batch dimensions that broadcast"):
        method(_stable(3, batch=(3,)), B, torch.tensor([0.1, 0.2]))
    with pytest.raises(TypeError, match="torch.Tensor"):
        method(A.numpy(), B, 0.1)
    with pytest.raises(TypeError, match="floating-point"):
        method(torch.eye(3, dtype=torch.int64), B, 0.1)


@pytest.mark.parametrize("method", [discretize_zoh, discretize_bilinear])
def test_discretizations_are_differentiable_in_A_B_and_dt(method):
    # Chapter 6 learns A, B and log dt: gradients against finite differences.
    A = _stable(3, seed=4).requires_grad_(True)
    B = _vec(3, 5).requires_grad_(True)
    dt = torch.tensor([0.3], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda A, B, dt: method(A, B, dt[0]), (A, B, dt)
    )


@pytest.mark.parametrize("method", [discretize_zoh, discretize_bilinear])
@pytest.mark.parametrize("dt", [0.1, torch.tensor([0.1, 0.2, 0.3])])
def test_discretizations_stay_on_the_device_of_A(method, dt):
    # On a GPU, A lives on "cuda" and dt may be a float or a CPU tensor. The
    # "meta" device (shapes only, no data) plays the GPU's part on a CPU:
    # any tensor made on the CPU and mixed with A raises a device error.
    A = torch.empty(3, 4, 4, dtype=F64, device="meta")
    B = torch.empty(3, 4, dtype=F64, device="meta")
    Ab, Bb = method(A, B, dt)
    assert Ab.device.type == Bb.device.type == "meta"
    assert Ab.shape == (3, 4, 4) and Bb.shape == (3, 4)
    C = torch.empty(3, 4, dtype=F64, device="meta")
    assert ssm_kernel(Ab, Bb, C, 8).device.type == "meta"
    u = torch.empty(2, 3, 8, dtype=F64, device="meta")
    assert ssm_scan(Ab, Bb, C, u).shape == (2, 3, 8)


# ------------------------------------------------ the ODE reference solver


def test_ode_reference_solves_a_scalar_system_with_a_sine_input():
    # x' = a x + b sin(w t), x(0) = 0 has the closed-form solution below.
    a, b, w, T = -0.7, 1.3, 2.0, 3.0
    A = torch.tensor([[a]], dtype=F64)
    B = torch.tensor([b], dtype=F64)
    t = torch.linspace(T / 300, T, 300, dtype=F64)
    exact = b * (
        (a * torch.sin(w * t) + w * torch.cos(w * t)) / -(a * a + w * w)
        + w / (a * a + w * w) * torch.exp(a * t)
    )
    xs = ode_reference(A, B, lambda t: torch.sin(w * t), T, 300)
    assert xs.shape == (300, 1)
    assert torch.allclose(xs[:, 0], exact, rtol=0, atol=1e-9)


def test_ode_reference_is_fourth_order():
    A, B = _stable(3, seed=2), _vec(3, 3)
    fine = ode_reference(A, B, torch.cos, 2.0, 2000)[-1]
    errors = [
        (ode_reference(A, B, torch.cos, 2.0, n)[-1] - fine).norm().item()
        for n in (10, 20)
    ]
    assert 14 < errors[0] / errors[1] < 18  # 2^4 = 16


def test_zoh_is_exact_for_piecewise_constant_input():
    # ZOH's recurrence against RK4 run interval by interval, with the input
    # held at that interval's value.
    A, B, C, dt = _stable(4, seed=9), _vec(4, 10), _vec(4, 11), 0.4
    u = torch.randn(12, generator=_gen(12), dtype=F64)
    x, ref = torch.zeros(4, dtype=F64), []
    for u_k in u:
        x = ode_reference(A, B, lambda t, v=u_k: v, dt, 200, x0=x)[-1]
        ref.append(x @ C)
    Ab, Bb = discretize_zoh(A, B, dt)
    y = ssm_scan(Ab, Bb, C, u)
    assert torch.allclose(y, torch.stack(ref), rtol=0, atol=1e-11)


def test_ode_reference_rejects_bad_input():
    A, B = _stable(2), _vec(2, 0)
    with pytest.raises(ValueError, match="t_end > 0"):
        ode_reference(A, B, torch.sin, 0.0, 10)
    with pytest.raises(ValueError, match="steps >= 1"):
        ode_reference(A, B, torch.sin, 1.0, 0)
    with pytest.raises(ValueError, match="x0"):
        ode_reference(A, B, torch.sin, 1.0, 5, x0=torch.zeros(3))


# ---------------------------------------------------------- the recurrence


def _slow_scan(Ab, Bb, C, u):
    """One batch entry: x_k = Ab x_{k-1} + Bb u_k, y_k = C . x_k, by hand."""
    N, L = Ab.shape[0], u.shape[0]
    x = [0.0] * N
    y = []
    for k in range(L):
        x = [
            sum(Ab[i, j].item() * x[j] for j in range(N))
            + Bb[i].item() * u[k].item()
            for i in range(N)
        ]
        y.append(sum(C[i].item() * x[i] for i in range(N)))
    return torch.tensor(y, dtype=F64)


def test_ssm_scan_matches_a_slow_loop_with_broadcast_batches():
    Bsz, H, N, L = 2, 3, 4, 9
    Ab, Bb = discretize_zoh(
        _stable(N, seed=1, batch=(H,)), _vec(N, 2, batch=(H,)), 0.3
    )
    C = _vec(N, 3, batch=(H,))
    u = torch.randn(Bsz, H, L, generator=_gen(4), dtype=F64)
    y = ssm_scan(Ab, Bb, C, u)
    assert y.shape == (Bsz, H, L)
    for b in range(Bsz):
        for h in range(H):
            ref = _slow_scan(Ab[h], Bb[h], C[h], u[b, h])
            assert torch.allclose(y[b, h], ref, rtol=0, atol=1e-13)


def test_ssm_states_from_an_initial_state_and_its_jacobian():
    # d x_k / d x_{-1} = Ab^{k+1} (k counts inputs from 0; x0 holds the
    # state x_{-1} before the first input): the gradient of Chapter 5.
    N, L = 5, 7
    Ab, Bb = discretize_bilinear(_stable(N, seed=6), _vec(N, 7), 0.5)
    u = torch.randn(L, generator=_gen(8), dtype=F64)
    x0 = _vec(N, 9)
    xs = ssm_states(Ab, Bb, u, x0=x0)
    assert xs.shape == (L, N)
    J = torch.autograd.functional.jacobian(
        lambda x: ssm_states(Ab, Bb, u, x0=x)[-1], x0
    )
    assert torch.allclose(J, torch.linalg.matrix_power(Ab, L), atol=1e-14)
    # zero input: the state is the power applied to x0
    xs0 = ssm_states(Ab, Bb, torch.zeros(L, dtype=F64), x0=x0)
    assert torch.allclose(xs0[-1], torch.linalg.matrix_power(Ab, L) @ x0)


def test_ssm_scan_handles_empty_sequences_and_batches():
    Ab, Bb = discretize_zoh(_stable(3), _vec(3, 0), 0.1)
    C = _vec(3, 1)
    assert ssm_scan(Ab, Bb, C, torch.zeros(2, 0, dtype=F64)).shape == (2, 0)
    assert ssm_scan(Ab, Bb, C, torch.zeros(0, 5, dtype=F64)).shape == (0, 5)


def test_ssm_scan_rejects_bad_input():
    Ab, Bb = discretize_zoh(_stable(3), _vec(3, 0), 0.1)
    u = torch.zeros(4, dtype=F64)
    with pytest.raises(ValueError, match=r"C of shape \(\.\.\., N\) with N=3"):
        ssm_scan(Ab, Bb, _vec(2, 0), u)
    with pytest.raises(ValueError, match="square Ab"):
        ssm_scan(Ab[:, :2], Bb, _vec(3, 0), u)
    with pytest.raises(ValueError, match=r"u of shape \(\.\.\., L\)"):
        ssm_scan(Ab, Bb, _vec(3, 0), torch.tensor(1.0, dtype=F64))
    with pytest.raises(TypeError, match="u to be a torch.Tensor"):
        ssm_scan(Ab, Bb, _vec(3, 0), [1.0, 2.0])
    with pytest.raises(ValueError, match="batch dimensions that broadcast"):
        ssm_scan(Ab.expand(2, 3, 3), Bb, _vec(3, 0), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="batch dimensions that broadcast"):
        ssm_scan(Ab, Bb, _vec(3, 0, batch=(5,)), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="batch dimensions that broadcast"):
        causal_conv(torch.zeros(2, 4), torch.zeros(3, 4))


# ------------------------------------------------------ the kernel and conv


@pytest.mark.parametrize("L", [1, 2, 3, 16, 37])
def test_ssm_kernel_is_C_times_powers_times_B(L):
    H, N = 2, 4
    Ab, Bb = discretize_zoh(
        _stable(N, seed=1, batch=(H,)), _vec(N, 2, batch=(H,)), 0.3
    )
    C = _vec(N, 3)  # shared by both channels: broadcast
    K = ssm_kernel(Ab, Bb, C, L)
    assert K.shape == (H, L)
    for h in range(H):
        for ell in range(L):
            ref = C @ torch.linalg.matrix_power(Ab[h], ell) @ Bb[h]
            assert K[h, ell].item() == pytest.approx(ref.item(), abs=1e-13)


def test_ssm_kernel_accepts_legitimate_lengths_and_rejects_others():
    Ab, Bb = discretize_zoh(_stable(3), _vec(3, 0), 0.1)
    C = _vec(3, 1)
    for L in (np.int64(5), torch.tensor(5)):
        assert ssm_kernel(Ab, Bb, C, L).shape == (5,)
    for L in (0, -2):
        with pytest.raises(ValueError, match="L >= 1"):
            ssm_kernel(Ab, Bb, C, L)
    for L in (5.0, True, "5"):
        with pytest.raises(TypeError, match="expected L to be an int"):
            ssm_kernel(Ab, Bb, C, L)


def _slow_conv(u, K):
    L = u.shape[-1]
    return torch.stack(
        [sum(K[j] * u[k - j] for j in range(k + 1)) for k in range(L)]
    )


@pytest.mark.parametrize("L", [1, 2, 7, 64])
def test_causal_conv_matches_the_direct_sum(L):
    u = torch.randn(3, L, generator=_gen(1), dtype=F64)
    K = torch.randn(L, generator=_gen(2), dtype=F64)
    y = causal_conv(u, K)
    assert y.shape == (3, L)
    for b in range(3):
        assert torch.allclose(y[b], _slow_conv(u[b], K), rtol=0, atol=1e-12)


def test_causal_conv_complex_and_float32():
    u = torch.randn(20, generator=_gen(1), dtype=torch.complex128)
    K = torch.randn(20, generator=_gen(2), dtype=torch.complex128)
    assert torch.allclose(causal_conv(u, K), _slow_conv(u, K), atol=1e-12)
    y = causal_conv(u.real.float(), K.real.float())
    assert y.dtype == torch.float32
    ref = _slow_conv(u.real, K.real).float()
    assert torch.allclose(y, ref, atol=1e-4)


def test_causal_conv_edge_cases_and_bad_input():
    assert causal_conv(torch.zeros(2, 0), torch.zeros(0)).shape == (2, 0)
    with pytest.raises(ValueError, match="K of length L=5"):
        causal_conv(torch.zeros(5), torch.zeros(4))
    with pytest.raises(TypeError, match="K to be a torch.Tensor"):
        causal_conv(torch.zeros(5), np.zeros(5))


def test_kernel_and_convolution_are_differentiable():
    Ab, Bb = discretize_zoh(_stable(3, seed=1), _vec(3, 2), 0.2)
    Ab, Bb = Ab.requires_grad_(True), Bb.requires_grad_(True)
    C = _vec(3, 3).requires_grad_(True)
    u = torch.randn(2, 9, generator=_gen(4), dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda Ab, Bb, C, u: causal_conv(u, ssm_kernel(Ab, Bb, C, 9)),
        (Ab, Bb, C, u),
    )


@pytest.mark.parametrize("method", [discretize_zoh, discretize_bilinear])
def test_recurrence_equals_convolution_in_float64(method):
    # The theorem of Chapter 5, at the chapter's tolerance.
    A, B = hippo_legs(16)
    Ab, Bb = method(A, B, 0.01)
    C = _vec(16, 1)
    u = torch.randn(4, 2000, generator=_gen(2), dtype=F64)
    y_rec = ssm_scan(Ab, Bb, C, u)
    y_conv = causal_conv(u, ssm_kernel(Ab, Bb, C, 2000))
    rel = (y_rec - y_conv).norm() / y_rec.norm()
    assert rel < 1e-9


# ------------------------------------------- HiPPO-LegS (Chapter 6 additions)


def test_legendre_basis_matches_numpy_legval():
    from numpy.polynomial import legendre

    from rnnbook.ssm import legendre_basis

    s = torch.linspace(-1, 1, 41, dtype=torch.float64)
    G = legendre_basis(7, s)
    assert G.shape == (41, 7)
    for n in range(7):
        coef = [0] * n + [1]
        expected = np.sqrt(2 * n + 1) * legendre.legval(s.numpy(), coef)
        np.testing.assert_allclose(G[:, n].numpy(), expected, atol=1e-12)
    assert legendre_basis(1, s).shape == (41, 1)


def test_legendre_basis_is_orthonormal_under_the_uniform_measure():
    from numpy.polynomial import legendre

    from rnnbook.ssm import legendre_basis

    nodes, weights = legendre.leggauss(20)  # exact for degree < 40
    G = legendre_basis(6, torch.from_numpy(nodes))
    gram = G.T @ torch.diag(torch.from_numpy(weights) / 2) @ G
    torch.testing.assert_close(gram, torch.eye(6, dtype=torch.float64))


def test_hippo_legs_online_equals_a_slow_loop():
    from rnnbook.ssm import hippo_legs_online

    gen = torch.Generator().manual_seed(0)
    u = torch.randn(2, 30, generator=gen, dtype=torch.float64)
    xs = hippo_legs_online(u, 5)
    A, B = hippo_legs(5)
    eye = torch.eye(5, dtype=torch.float64)
    x = torch.zeros(2, 5, dtype=torch.float64)  # x_{-1}
    for k in range(30):  # input k; j = k + 1 samples have arrived
        j = k + 1
        inv = torch.linalg.inv(eye - A / (2 * j))
        x = (inv @ ((eye + A / (2 * j)) @ x.T + B[:, None] * u[:, k] / j)).T
        torch.testing.assert_close(xs[:, k], x)


def test_hippo_legs_online_reconstructs_a_smooth_history():
    from rnnbook.ssm import hippo_legs_online, legendre_basis

    L = 2000
    t = torch.linspace(0, 1, L, dtype=torch.float64)
    u = torch.sin(6 * t) + t**2
    x = hippo_legs_online(u, 12)[-1]  # the state after the whole signal
    s = (torch.arange(L, dtype=torch.float64) + 1) / L * 2 - 1
    history = legendre_basis(12, s) @ x
    assert ((history - u).norm() / u.norm()).item() < 1e-2


def test_hippo_additions_reject_bad_input():
    from rnnbook.ssm import hippo_legs_online, legendre_basis

    with pytest.raises(ValueError, match="N >= 1"):
        legendre_basis(0, torch.zeros(3))
    with pytest.raises(TypeError, match="torch.Tensor"):
        legendre_basis(3, [0.0, 0.5])
    with pytest.raises(ValueError, match="N >= 1"):
        hippo_legs_online(torch.zeros(4), 0)
    with pytest.raises(TypeError, match="real u"):
        hippo_legs_online(torch.zeros(4, dtype=torch.complex128), 3)
    assert hippo_legs_online(torch.zeros(2, 0), 3).shape == (2, 0, 3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_causal_conv_of_an_empty_batch_is_empty(dtype):
    """No sequences in, no sequences out (the FFT backend rejects empty
    transforms, so the function must not call it)."""
    u = torch.zeros(0, 3, 8, dtype=dtype)
    K = torch.ones(8, dtype=dtype)
    y = causal_conv(u, K)
    assert y.shape == (0, 3, 8) and y.dtype == dtype
