"""rnnbook.gradients against torch.nn.utils, explicit Jacobians, autograd
and finite differences; and its answers to bad input."""

import math

import numpy as np
import pytest
import torch

from rnnbook import plots
from rnnbook.gradients import (
    clip_grad_norm_,
    decay_rate,
    grad_norm,
    pascanu_regularizer,
    state_gradient_norms,
)
from rnnbook.widgets import decay_curve


@pytest.fixture(autouse=True)
def float64():
    """Every test here runs in float64 (for gradcheck and tight
    comparisons), then restores the default."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _params_with_grads(scale, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = [
        torch.zeros(4, 3, requires_grad=True),
        torch.zeros(5, requires_grad=True),
        torch.zeros(2, requires_grad=True),
    ]
    for p in params[:2]:
        p.grad = scale * torch.randn(p.shape, generator=g)
    return params  # the last one has no gradient


@pytest.mark.parametrize("scale", [0.01, 10.0])
def test_clip_grad_norm_matches_torch(scale):
    ours, theirs = _params_with_grads(scale), _params_with_grads(scale)
    norm = clip_grad_norm_(ours, 1.0)
    torch_norm = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    torch.testing.assert_close(norm, torch_norm)
    for a, b in zip(ours[:2], theirs[:2]):
        torch.testing.assert_close(
            a.grad, b.grad, rtol=1e-5, atol=0
        )  # torch divides by norm + 1e-6
    after = math.sqrt(sum(p.grad.pow(2).sum().item() for p in ours[:2]))
    assert after == pytest.approx(min(norm.item(), 1.0), rel=1e-12)


def test_clip_grad_norm_keeps_the_direction_and_accepts_one_tensor():
    p = torch.zeros(3, requires_grad=True)
    p.grad = torch.tensor([3.0, 0.0, 4.0])
    assert clip_grad_norm_(p, 2.5).item() == 5.0
    torch.testing.assert_close(p.grad, torch.tensor([1.5, 0.0, 2.0]))


def test_clip_grad_norm_leaves_non_finite_gradients_for_the_caller():
    p = torch.zeros(2, requires_grad=True)
    p.grad = torch.tensor([math.inf, 1.0])
    assert clip_grad_norm_([p], 1.0).item() == math.inf
    assert p.grad[1].item() == 1.0


@pytest.mark.parametrize(
    "bad, error",
    [
        (0, ValueError),
        (-1.0, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        (None, TypeError),
        (True, TypeError),
        ("1.0", TypeError),
        (1j, TypeError),
        (torch.tensor([1.0]), TypeError),
    ],
)
def test_clip_grad_norm_rejects_a_bad_threshold(bad, error):
    with pytest.raises(error, match="max_norm"):
        clip_grad_norm_(_params_with_grads(1.0), bad)


@pytest.mark.parametrize(
    "max_norm", [np.float32(0.5), np.int64(1), torch.tensor(0.5)]
)
def test_clip_grad_norm_accepts_numpy_scalars_and_a_0d_tensor(max_norm):
    ours, theirs = _params_with_grads(10.0), _params_with_grads(10.0)
    clip_grad_norm_(ours, max_norm)
    torch.nn.utils.clip_grad_norm_(theirs, float(max_norm))
    for p, q in zip(ours[:2], theirs[:2]):
        torch.testing.assert_close(p.grad, q.grad)


def test_clip_grad_norm_of_float16_gradients_does_not_overflow():
    """300 finite entries of 1e4: the sum of squares (3e10) is far beyond
    float16's largest number (65504), but the norm is computed wider."""
    p = torch.zeros(300, dtype=torch.float16, requires_grad=True)
    p.grad = torch.full((300,), 1e4, dtype=torch.float16)
    norm = clip_grad_norm_(p, 1.0)
    assert norm.item() == pytest.approx(1e4 * math.sqrt(300), rel=1e-3)
    assert p.grad.dtype == torch.float16 and p.grad.isfinite().all()
    expected = torch.full((300,), 1 / math.sqrt(300), dtype=torch.float64)
    torch.testing.assert_close(p.grad.double(), expected, rtol=2e-3, atol=0)


def test_grad_norm_of_finite_float32_gradients_beyond_its_range():
    p = torch.zeros(4, dtype=torch.float32, requires_grad=True)
    p.grad = torch.full((4,), 1e30, dtype=torch.float32)
    assert grad_norm(p).item() == pytest.approx(2e30, rel=1e-6)
    clip_grad_norm_(p, 1.0)
    torch.testing.assert_close(
        p.grad, torch.full((4,), 0.5, dtype=torch.float32)
    )


def test_clip_grad_norm_rejects_what_is_not_a_tensor():
    with pytest.raises(TypeError, match="tensors"):
        clip_grad_norm_([np.zeros(3)], 1.0)
    with pytest.raises(TypeError, match="iterable of tensors"):
        grad_norm(3.0)


def _rnn_states(B=3, T=5, D=2, H=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    W_hh = torch.randn(H, H, generator=g) / math.sqrt(H)
    W_xh = torch.randn(H, D, generator=g)
    b = 0.1 * torch.randn(H, generator=g)
    xs = torch.randn(B, T, D, generator=g)
    hs = [torch.zeros(B, H)]
    for t in range(T):
        hs.append(torch.tanh(hs[-1] @ W_hh.T + xs[:, t] @ W_xh.T + b))
    grads = torch.randn(B, T, H, generator=g)
    return W_hh, W_xh, b, xs, torch.stack(hs, 1), grads


def test_regularizer_equals_its_definition_with_explicit_jacobians():
    W_hh, W_xh, b, xs, hs, grads = _rnn_states()
    B, T1, H = hs.shape
    expected = 0.0
    for n in range(B):
        for t in range(1, T1):
            x_t = xs[n, t - 1]
            J = torch.autograd.functional.jacobian(
                lambda h_prev: torch.tanh(W_hh @ h_prev + W_xh @ x_t + b),
                hs[n, t - 1],
            )  # (H, H): dh_t/dh_{t-1}
            g = grads[n, t - 1]
            expected += (
                torch.linalg.vector_norm(g @ J) / torch.linalg.vector_norm(g)
                - 1
            ) ** 2
    torch.testing.assert_close(
        pascanu_regularizer(W_hh, hs, grads), expected / B
    )


def test_regularizer_gradient_matches_finite_differences_grads_constant():
    W_hh, _, _, _, hs, grads = _rnn_states()
    W_hh.requires_grad_(True)
    hs.requires_grad_(True)
    grads.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda W, h: pascanu_regularizer(W, h, grads), (W_hh, hs)
    )
    pascanu_regularizer(W_hh, hs, grads).backward()
    assert grads.grad is None and W_hh.grad is not None and hs.grad is not None


def test_regularizer_is_zero_for_norm_preserving_steps_skips_zero_grads():
    H = 6
    Q, _ = torch.linalg.qr(
        torch.randn(H, H, generator=torch.Generator().manual_seed(1))
    )
    hs = torch.zeros(
        2, 4, H
    )  # tanh'(0) = 1, so each step's Jacobian is Q: an isometry
    grads = torch.randn(2, 3, H)
    assert pascanu_regularizer(Q, hs, grads).item() == pytest.approx(
        0.0, abs=1e-12
    )
    grads[0, 1] = 0.0
    assert torch.isfinite(pascanu_regularizer(2 * Q, hs, grads))
    assert pascanu_regularizer(2 * Q, hs, grads).item() == pytest.approx(
        (2 * 3 - 1) / 2
    )  # 5 live terms of 1


def test_regularizer_rejects_mismatched_shapes():
    W_hh, _, _, _, hs, grads = _rnn_states()
    with pytest.raises(ValueError, match=r"grads of shape \(B, T, H\)"):
        pascanu_regularizer(W_hh, hs, grads[:, 1:])
    with pytest.raises(ValueError, match=r"W_hh of shape \(H, H\)"):
        pascanu_regularizer(W_hh[:, :2], hs, grads)
    with pytest.raises(TypeError, match="torch.Tensor"):
        pascanu_regularizer(W_hh.numpy(), hs, grads)


@pytest.mark.parametrize("activation", ["linear", "tanh", "sigmoid", "relu"])
def test_state_gradient_norms_match_autograd(activation):
    W_hh, W_xh, b, xs, _, _ = _rnn_states(B=3, T=7, H=5)
    f = {
        "linear": lambda a: a,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "relu": torch.relu,
    }[activation]
    h = torch.zeros(3, 5, requires_grad=True)
    states = [h]
    for t in range(7):
        states.append(f(states[-1] @ W_hh.T + xs[:, t] @ W_xh.T + b))
    u = torch.full((5,), 1 / math.sqrt(5))
    grads = torch.autograd.grad(
        (states[-1] @ u).sum(), states
    )  # dL/dh_k for k = 0..T
    expected = torch.stack(
        [torch.linalg.vector_norm(g, dim=-1).mean() for g in grads]
    )
    torch.testing.assert_close(
        state_gradient_norms(W_hh, W_xh, b, xs, activation), expected
    )


def test_linear_rnn_with_rho_times_orthogonal_decays_as_rho_to_the_gap():
    H, T, rho = 8, 12, 0.9
    Q, _ = torch.linalg.qr(
        torch.randn(H, H, generator=torch.Generator().manual_seed(2))
    )
    norms = state_gradient_norms(
        rho * Q,
        torch.zeros(H, 1),
        torch.zeros(H),
        torch.randn(4, T, 1),
        "linear",
    )
    torch.testing.assert_close(norms, rho ** torch.arange(T, -1, -1.0))


def _direct_walk(W_hh, W_xh, b, xs, f, df):
    """The probe without rescaling: v_{t-1} = v_t diag(f'(a_t)) W_hh."""
    B, T, _ = xs.shape
    H = W_hh.shape[0]
    h, slopes = torch.zeros(B, H), []
    for t in range(T):
        a = h @ W_hh.T + xs[:, t] @ W_xh.T + b
        h = f(a)
        slopes.append(df(a, h))
    v = torch.full((B, H), 1 / math.sqrt(H))
    norms = [torch.linalg.vector_norm(v, dim=-1).mean()]
    for t in range(T, 0, -1):
        v = (v * slopes[t - 1]) @ W_hh
        norms.append(torch.linalg.vector_norm(v, dim=-1).mean())
    return torch.stack(norms[::-1])


@pytest.mark.parametrize("activation", ["linear", "tanh", "sigmoid", "relu"])
def test_rescaled_walk_equals_the_direct_walk_where_nothing_underflows(
    activation,
):
    W_hh, W_xh, b, xs, _, _ = _rnn_states(B=4, T=40, H=6)
    f, df = {
        "linear": (lambda a: a, lambda a, h: torch.ones_like(a)),
        "tanh": (torch.tanh, lambda a, h: 1 - h**2),
        "sigmoid": (torch.sigmoid, lambda a, h: h * (1 - h)),
        "relu": (torch.relu, lambda a, h: (a > 0).to(a.dtype)),
    }[activation]
    direct = _direct_walk(W_hh, W_xh, b, xs, f, df)
    assert direct.min() > 1e-100  # a case the direct walk gets right
    torch.testing.assert_close(
        state_gradient_norms(W_hh, W_xh, b, xs, activation),
        direct,
        rtol=1e-12,
        atol=0,
    )


def test_norms_far_below_1e_150_are_exact_where_the_direct_walk_underflows():
    H, T, rho = 8, 100, 0.02  # rho^T = 1.3e-170
    Q, _ = torch.linalg.qr(
        torch.randn(H, H, generator=torch.Generator().manual_seed(4))
    )
    args = (rho * Q, torch.zeros(H, 1), torch.zeros(H), torch.randn(3, T, 1))
    norms = state_gradient_norms(*args, "linear")
    expected = rho ** torch.arange(T, -1, -1.0)  # the closed form
    assert expected[0] < 1e-150
    torch.testing.assert_close(norms, expected, rtol=1e-10, atol=0)
    identity = (lambda a: a, lambda a, h: torch.ones_like(a))
    assert _direct_walk(*args, *identity)[0] == 0  # squares underflowed


def test_state_gradient_norms_rejects_unknown_activation():
    W_hh, W_xh, b, xs, _, _ = _rnn_states()
    with pytest.raises(ValueError, match="activation to be one of"):
        state_gradient_norms(W_hh, W_xh, b, xs, "softplus")


def test_grad_norm_is_the_norm_of_all_gradients_joined():
    params = _params_with_grads(3.0)
    joined = torch.cat(
        [p.grad.reshape(-1) for p in params if p.grad is not None]
    )
    torch.testing.assert_close(
        grad_norm(params), torch.linalg.vector_norm(joined)
    )
    assert grad_norm([torch.zeros(2, requires_grad=True)]).item() == 0.0


def test_explorer_curve_is_the_closed_form_for_a_linear_rnn_and_its_bound():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    norms = decay_curve(0.9, 30, "linear", hidden_size=8)
    torch.testing.assert_close(norms, 0.9 ** torch.arange(30, -1, -1.0))
    fig, ax = plots.figure()
    plots.gradient_decay(ax, norms, 0.9, "linear", 1.0)
    measured, bound = ax.get_lines()
    torch.testing.assert_close(
        torch.tensor(bound.get_ydata()), 0.9 ** torch.arange(30, -1, -1.0)
    )
    plt.close(fig)
    with pytest.raises(ValueError, match="activation to be one of"):
        decay_curve(0.9, 30, "relu")
    with pytest.raises(TypeError, match="T to be an int"):
        decay_curve(0.9, 30.0, "tanh")
    with pytest.raises(ValueError, match="rho"):
        decay_curve(float("nan"), 30, "tanh")


def test_state_gradient_norms_checks_h0_instead_of_broadcasting():
    W_hh, W_xh, b, xs, _, _ = _rnn_states(B=3, H=4)
    for bad in (torch.zeros(1, 4), torch.zeros(4), torch.zeros(3, 5)):
        with pytest.raises(ValueError, match=r"h0 of shape \(3, 4\)"):
            state_gradient_norms(W_hh, W_xh, b, xs, "tanh", h0=bad)
    h0 = 0.5 * torch.ones(3, 4)
    with_h0 = state_gradient_norms(W_hh, W_xh, b, xs, "tanh", h0=h0)
    assert not torch.equal(with_h0, state_gradient_norms(W_hh, W_xh, b, xs))


def test_state_gradient_norms_rejects_bad_types_flags_and_dtypes():
    W_hh, W_xh, b, xs, hs, grads = _rnn_states()
    with pytest.raises(TypeError, match="activation"):
        state_gradient_norms(W_hh, W_xh, b, xs, activation=True)
    with pytest.raises(TypeError, match="real floating-point"):
        state_gradient_norms(W_hh.to(torch.complex128), W_xh, b, xs)
    with pytest.raises(TypeError, match="real floating-point"):
        state_gradient_norms(W_hh, W_xh, b, xs.to(torch.complex128))
    with pytest.raises(TypeError, match="one dtype"):
        state_gradient_norms(W_hh.float(), W_xh, b, xs)
    with pytest.raises(TypeError, match="real floating-point"):
        pascanu_regularizer(W_hh, hs, grads.to(torch.complex128))


def test_empty_sequences_work_and_empty_batches_raise():
    W_hh, W_xh, b, xs, hs, grads = _rnn_states(B=3, T=5)
    norms = state_gradient_norms(W_hh, W_xh, b, xs[:, :0])
    torch.testing.assert_close(norms, torch.ones(1))  # T = 0: only h_T
    omega = pascanu_regularizer(W_hh, hs[:, :1], grads[:, :0])
    assert omega.item() == 0.0  # no transition, nothing to preserve
    with pytest.raises(ValueError, match="B = 0"):
        state_gradient_norms(W_hh, W_xh, b, xs[:0])
    with pytest.raises(ValueError, match="B = 0"):
        pascanu_regularizer(W_hh, hs[:0], grads[:0])


def test_decay_rate_is_the_slope_of_the_log_norms():
    rates = 0.9 ** torch.arange(10, -1, -1.0)
    assert decay_rate(rates) == pytest.approx(math.log(0.9), rel=1e-12)
    with pytest.raises(ValueError, match="positive"):
        decay_rate(torch.zeros(5))
    with pytest.raises(TypeError, match="torch.Tensor"):
        decay_rate([1.0, 0.5])


def test_shared_checks_keep_masks_and_indices_unless_real_is_asked():
    from rnnbook._checks import check_shape, check_tensor

    mask = torch.ones(2, 3, dtype=torch.bool)
    check_tensor("mask", mask, 2, "(B, S)")  # other modules pass masks
    check_shape("tokens", torch.zeros(2, 3, dtype=torch.int64), (2, 3))
    with pytest.raises(TypeError, match="real floating-point"):
        check_tensor("mask", mask, 2, "(B, S)", real=True)
