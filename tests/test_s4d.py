"""Tests of rnnbook.s4d, each against an independent reference.

The Vandermonde kernel against Chapter 5's dense ``ssm_kernel`` of the same
system (written with both conjugates) and against a loop of powers; the
layer's convolution against its recurrence; gradients against finite
differences (gradcheck); the initializations against their formulas.
"""

import math

import pytest
import torch

from rnnbook.s4d import (
    S4DKernel,
    S4DLayer,
    S4DModel,
    hippo_legs_nplr,
    s4d_inv,
    s4d_kernel,
    s4d_legs,
    s4d_lin,
    ssm_parameters,
)
from rnnbook.ssm import (
    discretize_bilinear,
    discretize_zoh,
    hippo_legs,
    ssm_kernel,
)


def random_modes(H, M, seed=0):
    gen = torch.Generator().manual_seed(seed)

    def cplx(*shape):
        re = torch.randn(*shape, generator=gen, dtype=torch.float64)
        im = torch.randn(*shape, generator=gen, dtype=torch.float64)
        return torch.complex(re, im)

    A = cplx(H, M)
    A = torch.complex(-A.real.abs() - 0.05, 3 * A.imag)  # stable
    dt = 0.01 + 0.5 * torch.rand(H, generator=gen, dtype=torch.float64)
    return A, cplx(H, M), cplx(H, M), dt


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_kernel_equals_dense_kernel_of_the_full_system(method):
    H, M, L = 3, 4, 50
    A, B, C, dt = random_modes(H, M)
    K = s4d_kernel(A, B, C, dt, L, method=method)
    # The real system of size N = 2M: every mode and its conjugate, dense.
    A_full = torch.diag_embed(torch.cat([A, A.conj()], -1))  # (H, N, N)
    B_full = torch.cat([B, B.conj()], -1)
    C_full = torch.cat([C, C.conj()], -1)
    discretize = discretize_zoh if method == "zoh" else discretize_bilinear
    Ab, Bb = discretize(A_full, B_full, dt)
    reference = ssm_kernel(Ab, Bb, C_full, L)  # (H, L), complex
    assert reference.imag.abs().max() < 1e-12
    assert K.shape == (H, L) and not K.is_complex()
    torch.testing.assert_close(K, reference.real, rtol=1e-10, atol=1e-12)


def test_kernel_equals_a_loop_of_powers():
    A, B, C, dt = random_modes(2, 3, seed=1)
    K = s4d_kernel(A, B, C, dt, 20)
    Ab = torch.exp(dt[:, None] * A)
    Bb = (Ab - 1) / A * B
    power = torch.ones_like(Ab)
    for lag in range(20):
        expected = 2 * (C * Bb * power).sum(-1).real
        torch.testing.assert_close(K[:, lag], expected, rtol=1e-10, atol=1e-12)
        power = power * Ab


def test_kernel_gradients_match_finite_differences():
    A, B, C, dt = random_modes(2, 3, seed=2)
    inputs = [t.clone().requires_grad_() for t in (A, B, C, dt)]
    for method in ("zoh", "bilinear"):
        assert torch.autograd.gradcheck(
            lambda A, B, C, dt: s4d_kernel(A, B, C, dt, 7, method=method),
            inputs,
        )


def test_scalar_dt_and_unbatched_modes():
    A, B, C, _ = random_modes(1, 3, seed=3)
    K = s4d_kernel(A[0], B[0], C[0], 0.1, 5)
    K_batched = s4d_kernel(A, B, C, torch.tensor([0.1]), 5)
    assert K.shape == (5,)
    torch.testing.assert_close(K, K_batched[0])


def test_initializations_follow_their_formulas():
    N = 8
    m = torch.arange(4, dtype=torch.float64)
    lin, inv = s4d_lin(N), s4d_inv(N)
    assert lin.shape == inv.shape == (4,)
    torch.testing.assert_close(lin.real, torch.full((4,), -0.5).double())
    torch.testing.assert_close(lin.imag, math.pi * m)
    torch.testing.assert_close(inv.imag, N / math.pi * (N / (2 * m + 1) - 1))


def test_nplr_decomposition_of_hippo_legs():
    N = 12
    A_normal, P = hippo_legs_nplr(N)
    A, _ = hippo_legs(N)
    torch.testing.assert_close(A_normal - torch.outer(P, P), A)
    S = A_normal + 0.5 * torch.eye(N, dtype=torch.float64)
    torch.testing.assert_close(S, -S.T)  # skew-symmetric
    torch.testing.assert_close(A_normal @ A_normal.T, A_normal.T @ A_normal)
    w = s4d_legs(N)
    assert w.shape == (N // 2,)
    torch.testing.assert_close(w.real, torch.full((6,), -0.5).double())
    assert bool(torch.all(w.imag[1:] > w.imag[:-1]))
    # each is an eigenvalue: det(A_normal - w I) = 0 (smallest sing. value)
    for w_m in w:
        M = A_normal.to(w.dtype) - w_m * torch.eye(N, dtype=w.dtype)
        assert torch.linalg.svdvals(M)[-1] < 1e-9


@pytest.mark.parametrize("init", ["lin", "inv", "legs"])
@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_layer_convolution_equals_recurrence(init, method):
    gen = torch.Generator().manual_seed(4)
    layer = S4DLayer(5, N=8, init=init, method=method, generator=gen)
    layer = layer.double()
    u = torch.randn(3, 40, 5, generator=gen, dtype=torch.float64)
    y_conv, y_rec = layer(u), layer.recurrent(u)
    assert y_conv.shape == (3, 40, 5)
    err = (y_conv - y_rec).norm() / y_rec.norm()
    assert err < 1e-9


def test_layer_gradients_agree_in_both_modes_and_with_finite_differences():
    gen = torch.Generator().manual_seed(5)
    layer = S4DLayer(3, N=4, generator=gen).double()
    u = torch.randn(2, 9, 3, generator=gen, dtype=torch.float64)
    grads = []
    for run in (layer, layer.recurrent):
        layer.zero_grad()
        (run(u) * torch.cos(u)).sum().backward()
        grads.append([p.grad.clone() for p in layer.parameters()])
    for g_conv, g_rec in zip(*grads):
        torch.testing.assert_close(g_conv, g_rec, rtol=1e-9, atol=1e-12)
    u.requires_grad_()
    assert torch.autograd.gradcheck(layer, (u,))


def test_kernel_module_parameters_and_range_of_steps():
    gen = torch.Generator().manual_seed(6)
    kernel = S4DKernel(100, N=6, dt_min=1e-3, dt_max=1e-1, generator=gen)
    dt = torch.exp(kernel.log_dt)
    assert dt.min() >= 1e-3 - 1e-9 and dt.max() <= 1e-1 + 1e-9
    torch.testing.assert_close(kernel.A[0], s4d_lin(6).to(kernel.A.dtype))
    assert kernel(11).shape == (100, 11)
    names = {"log_dt", "log_A_real", "A_imag"}
    assert len(ssm_parameters(kernel)) == len(names)


def test_model_is_causal_and_float64_capable():
    gen = torch.Generator().manual_seed(7)
    model = S4DModel(2, 3, H=4, N=4, n_layers=2, generator=gen).double()
    x = torch.randn(2, 30, 2, generator=gen, dtype=torch.float64)
    y, hs = model(x)
    assert y.shape == (2, 30, 3) and hs.shape == (2, 30, 4)
    assert y.dtype == torch.float64
    x2 = x.clone()
    x2[:, 20:] = torch.randn(2, 10, 2, generator=gen, dtype=torch.float64)
    y2, _ = model(x2)
    torch.testing.assert_close(y2[:, :20], y[:, :20], rtol=1e-12, atol=1e-12)
    assert (y2[:, 20:] - y[:, 20:]).abs().max() > 1e-6
    assert len(ssm_parameters(model)) == 3 * 2


def test_empty_batch_works():
    layer = S4DLayer(3, N=4)
    assert layer(torch.zeros(0, 5, 3)).shape == (0, 5, 3)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: s4d_lin(7), "even state size"),
        (lambda: s4d_inv(0), "N >= 1"),
        (lambda: S4DKernel(4, N=5), "even state size"),
        (lambda: S4DKernel(4, N=4, init="fourier"), "init one of"),
        (lambda: S4DKernel(4, N=4, method="euler"), "'zoh' or 'bilinear'"),
        (lambda: S4DKernel(4, N=4, dt_min=0.1, dt_max=0.01), "dt_min"),
        (lambda: S4DLayer(4, N=4)(torch.zeros(2, 5, 3)), r"H=4"),
        (lambda: S4DLayer(4, N=4)(torch.zeros(5, 4)), r"\(B, T, H\)"),
        (lambda: S4DLayer(4, N=4)(torch.zeros(2, 0, 4)), "T >= 1"),
        (lambda: S4DModel(2, 1, H=4, N=4)(torch.zeros(1, 5, 3)), "D=2"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_kernel_input_raises():
    A, B, C, dt = random_modes(2, 3)
    with pytest.raises(ValueError, match="one M"):
        s4d_kernel(A, B[:, :2], C, dt, 5)
    with pytest.raises(ValueError, match="L >= 1"):
        s4d_kernel(A, B, C, dt, 0)
    with pytest.raises(ValueError, match="dt > 0"):
        s4d_kernel(A, B, C, -dt, 5)
    with pytest.raises(ValueError, match="real part < 0"):
        s4d_kernel(-A, B, C, dt, 5)
    with pytest.raises(ValueError, match="'zoh' or 'bilinear'"):
        s4d_kernel(A, B, C, dt, 5, method="euler")
    with pytest.raises(TypeError, match="torch.Tensor"):
        s4d_kernel(A.tolist(), B, C, dt, 5)
    with pytest.raises(TypeError, match="torch.Tensor"):
        S4DLayer(4, N=4)(None)
    with pytest.raises(ValueError, match="broadcast"):
        s4d_kernel(A, B, C, torch.ones(5, dtype=torch.float64), 5)
    with pytest.raises(TypeError, match="real floating-point u"):
        S4DLayer(4, N=4)(torch.zeros(1, 3, 4, dtype=torch.complex64))
    with pytest.raises(TypeError, match="real floating-point x"):
        S4DModel(2, 1, H=4, N=4)(torch.zeros(1, 3, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="int"):
        S4DLayer(True, N=4)


# ------------------------------------- the experiment (Chapter 6's sweep)


def test_experiment_tiny_run_writes_a_complete_result(tmp_path):
    import json

    from rnnbook.experiments import s4d_vs_lstm as exp

    out = tmp_path / "tiny.json"
    assert exp.main(["--tiny", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["command"].endswith("--tiny") and result["seconds"] > 0
    tiny = exp.TINY
    per_seed = 2 + len(tiny.lstm_lrs)  # S4D, the LSTMs, LSTM-chrono
    noisy = 2 * tiny.noisy_seeds  # S4D and LSTM-chrono
    expected = sum(tiny.seeds) * per_seed + len(tiny.noisy_lengths) * noisy
    assert len(result["runs"]) == expected
    silent = {
        (r["T"], r["seed"]) for r in result["runs"] if r["task"] == "silent"
    }
    assert silent == {
        (T, s) for T, n in zip(tiny.lengths, tiny.seeds) for s in range(n)
    }
    assert {r["T"] for r in result["runs"] if r["task"] == "noisy"} == set(
        tiny.noisy_lengths
    )
    for run in result["runs"]:
        assert len(run["curve"]) == tiny.updates // tiny.record_every
        assert run["test_mse"] >= 0 and run["updates_done"] == tiny.updates
    with pytest.raises(SystemExit):
        exp.main(["--tiny", "--out", str(tmp_path)])  # a folder


def test_experiment_runs_are_paired_and_streams_independent():
    from rnnbook.experiments import s4d_vs_lstm as exp

    seeds = {
        (T, s): exp.run_seeds(T, s) for T in (100, 1000) for s in range(3)
    }
    values = [v for d in seeds.values() for v in d.values()]
    assert len(set(values)) == len(values)  # no stream reused
    assert exp.run_seeds(1000, 0) == seeds[1000, 0]  # reproducible
    # every model and learning rate of a cell gets the same seeds
    cells = {}
    for job in exp.jobs(exp.Config()):
        _, task, model, lr, T, seed, _ = job
        cells.setdefault((T, seed), set()).add((task, model, lr))
    assert all(("silent", "S4D", 1e-2) in c for c in cells.values())
    # the LSTM's learning rate is tuned at every length and seed
    lstm = {("silent", "LSTM", lr) for lr in exp.Config().lstm_lrs}
    assert all(lstm <= c for c in cells.values())


def test_experiment_config_checks_its_seed_counts():
    from rnnbook.experiments import s4d_vs_lstm as exp

    config = exp.Config()
    assert config.seeds_at(1000) == 5
    with pytest.raises(ValueError, match="one seed count per length"):
        exp.Config(lengths=(100, 200), seeds=(3,))
    with pytest.raises(ValueError, match="noisy_lengths among lengths"):
        exp.Config(lengths=(100,), seeds=(3,), noisy_lengths=(200,))


def test_silent_task_zeroes_only_the_unmarked_values():
    from rnnbook.experiments.s4d_vs_lstm import adding_batch

    noisy = adding_batch(8, 50, torch.Generator().manual_seed(0), "noisy")
    silent = adding_batch(8, 50, torch.Generator().manual_seed(0), "silent")
    torch.testing.assert_close(noisy[1], silent[1])  # same targets
    marked = noisy[0][..., 1] == 1
    torch.testing.assert_close(silent[0][marked], noisy[0][marked])
    assert bool(torch.all(silent[0][..., 0][~marked] == 0))
    with pytest.raises(ValueError, match="task one of"):
        adding_batch(2, 50, torch.Generator(), "loud")


def test_lstm_regressor_starts_from_chapter_3s_initialization():
    from rnnbook.experiments.s4d_vs_lstm import LSTMRegressor

    model = LSTMRegressor(2, 5, forget_bias=1.0)
    b = model.lstm.bias_ih_l0 + model.lstm.bias_hh_l0
    torch.testing.assert_close(b[5:10], torch.ones(5))  # forget gate
    y, hs = model(torch.zeros(3, 7, 2))
    assert y.shape == (3,) and hs.shape == (3, 7, 5)


def test_chrono_init_sets_log_uniform_forget_and_opposite_input_biases():
    from torch import nn

    from rnnbook.experiments.s4d_vs_lstm import LSTMRegressor, chrono_init_

    H, T_max = 4000, 1000
    lstm = nn.LSTM(2, H)
    chrono_init_(lstm, T_max, torch.Generator().manual_seed(0))
    b = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().double()
    b_i, b_f = b[:H], b[H : 2 * H]
    torch.testing.assert_close(b_i, -b_f)
    # exp(b_f) ~ U[1, T_max - 1]: its range, mean and quartiles
    u = torch.exp(b_f)
    assert 1 <= float(u.min()) and float(u.max()) <= T_max - 1
    mid = (1 + T_max - 1) / 2
    assert abs(float(u.mean()) - mid) < 0.03 * mid
    q = torch.quantile(u, torch.tensor([0.25, 0.75], dtype=u.dtype))
    expected = torch.tensor([1 + 0.25 * 998, 1 + 0.75 * 998], dtype=u.dtype)
    torch.testing.assert_close(q, expected, rtol=0.05, atol=0)
    model = LSTMRegressor(2, 5, chrono=50)
    b = model.lstm.bias_ih_l0 + model.lstm.bias_hh_l0
    assert bool(torch.all(b[5:10] >= 0)) and bool(torch.all(b[5:10] <= 4))
    with pytest.raises(TypeError, match="int T_max"):
        chrono_init_(lstm, 10.0)
    with pytest.raises(ValueError, match="T_max >= 3"):
        chrono_init_(lstm, 2)
    with pytest.raises(TypeError, match="torch.nn.LSTM"):
        chrono_init_(nn.GRU(2, 3), 10)


def test_s4d_model_is_post_norm_and_every_parameter_is_used():
    torch.manual_seed(0)
    model = S4DModel(3, 2, H=4, N=4, n_layers=2).double()
    x = torch.randn(2, 9, 3, dtype=torch.float64)
    y, hs = model(x)
    # post-norm: h = LayerNorm(h + layer(h)), the decoder reads h
    h = model.encoder(x)
    for norm, layer in zip(model.norms, model.layers):
        h = norm(h + layer(h))
    torch.testing.assert_close(hs, h)
    torch.testing.assert_close(y, model.decoder(h))
    y.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_long_range_sweep_plot_draws_every_seed():
    import matplotlib

    matplotlib.use("Agg")
    from rnnbook import plots

    errors = {
        "S4D": {100: [0.001, 0.002], 1000: [0.003, 0.004, 0.005]},
        "LSTM": {100: [0.04, 0.05], 1000: [0.04, 0.04, 0.04]},
    }
    fig = plots.plot_long_range_sweep(errors, 0.04, threshold=0.1)
    (ax,) = fig.axes
    dots = [
        y
        for line in ax.lines
        if line.get_linestyle() == "None"
        for y in line.get_ydata()
    ]
    expected = [
        e / 0.04 for m in errors.values() for r in m.values() for e in r
    ]
    assert sorted(dots) == pytest.approx(sorted(expected))
    matplotlib.pyplot.close(fig)
