"""rnnbook.train: one update compared with a hand-written one, the
non-finite stop, the state gradients against autograd, and the experiment
script on its tiny configuration."""

import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rnnbook.experiments import pascanu
from rnnbook.gradients import pascanu_regularizer
from rnnbook.tasks import temporal_order
from rnnbook.torch_rnn import VanillaRNN, init_weights
from rnnbook.train import History, accuracy, state_gradients_torch, train


def _model(seed=0, H=8):
    weights = init_weights(
        "basic_tanh", 6, H, 4, torch.Generator().manual_seed(seed)
    )
    return (
        VanillaRNN(6, H, 4)
        .load_weights({k: 5 * v for k, v in weights.items()})
        .double()
    )


def _batch(seed=0, T=12):
    x, y = temporal_order(5, T, torch.Generator().manual_seed(seed))
    return x.double(), y


def _manual_rnn_states(model, x):
    """States h_0..h_T from an explicit loop, each a node of the graph."""
    W_xh, W_hh = model.rnn.weight_ih_l0, model.rnn.weight_hh_l0
    b = model.rnn.bias_ih_l0 + model.rnn.bias_hh_l0
    states = [torch.zeros(x.shape[0], W_hh.shape[0], dtype=x.dtype)]
    for t in range(x.shape[1]):
        states.append(torch.tanh(states[-1] @ W_hh.T + x[:, t] @ W_xh.T + b))
    return states


def test_state_gradients_are_the_total_derivatives_autograd_finds():
    model, (x, y) = _model(), _batch()
    y_hat, hs = model(x)
    ours = state_gradients_torch(model.W_hh, hs, F.cross_entropy(y_hat, y))
    states = _manual_rnn_states(model, x)
    loss = F.cross_entropy(model.readout(states[-1]), y)
    expected = torch.stack(torch.autograd.grad(loss, states[1:]), dim=1)
    torch.testing.assert_close(ours, expected)


@pytest.mark.parametrize("clip, alpha", [(None, 0.0), (0.5, 0.0), (0.5, 2.0)])
def test_one_update_equals_the_update_written_by_hand(clip, alpha):
    lr, (x, y) = 0.3, _batch(1)
    ours, reference = _model(1), _model(1)
    train(
        ours,
        lambda: (x, y),
        1,
        lr=lr,
        clip=clip,
        omega_weight=alpha,
        progress=False,
    )
    # by hand: E + alpha * Omega on an explicit loop, autograd, the clipping
    # rule, one SGD step
    states = _manual_rnn_states(reference, x)
    loss = F.cross_entropy(reference.readout(states[-1]), y)
    params = list(reference.parameters())
    objective = loss
    if alpha:
        grads = torch.stack(
            torch.autograd.grad(loss, states[1:], retain_graph=True), dim=1
        )
        objective = loss + alpha * pascanu_regularizer(
            reference.W_hh, torch.stack(states, 1), grads
        )
    g = torch.autograd.grad(objective, params)
    norm = torch.sqrt(sum((gi**2).sum() for gi in g))
    scale = min(1.0, clip / norm.item()) if clip else 1.0
    assert (
        clip is None or scale < 1
    )  # the test must exercise clipping where it asks for it
    for p_ours, p_ref, gi in zip(ours.parameters(), params, g):
        torch.testing.assert_close(p_ours, p_ref - lr * scale * gi)


def test_a_non_finite_loss_stops_the_run_with_a_message_and_keeps_the_history(
    capsys,
):
    calls = []

    def loss_fn(y_hat, y):  # finite for three updates, then NaN
        calls.append(1)
        loss = F.cross_entropy(y_hat, y)
        return loss * float("nan") if len(calls) == 4 else loss

    history = train(
        _model(), lambda: _batch(), 10, lr=0.1, loss_fn=loss_fn, progress=False
    )
    assert history.updates == 3 and len(history.grad_norm) == 3
    assert all(torch.isfinite(torch.tensor(history.loss)))
    assert history.stopped.startswith("stopped at update 3: the loss is nan")
    assert history.stopped in capsys.readouterr().out


def test_records_per_step_gradient_norms_and_rejects_bad_arguments():
    history = train(
        _model(), lambda: _batch(), 4, lr=0.1, record_every=2, progress=False
    )
    assert isinstance(history, History) and history.stopped is None
    assert [step for step, _ in history.state_grad_norms] == [0, 2]
    assert history.state_grad_norms[0][1].shape == (12,)
    for kwargs, match in (
        ({"lr": 0}, "expected lr to be finite and > 0"),
        ({"lr": 0.1, "clip": 0}, "clip"),
        ({"lr": 0.1, "omega_weight": -1}, "omega_weight"),
    ):
        with pytest.raises(ValueError, match=match):
            train(_model(), lambda: _batch(), 1, progress=False, **kwargs)
    with pytest.raises(ValueError, match="tanh"):
        train(
            VanillaRNN(6, 4, 4, nonlinearity="relu"),
            lambda: _batch(),
            1,
            lr=0.1,
            omega_weight=1.0,
        )


def test_experiment_script_tiny_configuration_independent_of_workers(
    tmp_path,
):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    assert pascanu.main(["--tiny", "--workers", "1", "--out", str(one)]) == 0
    assert pascanu.main(["--tiny", "--workers", "2", "--out", str(two)]) == 0
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    tiny = pascanu.TINY
    expected_runs = len(tiny.lengths) * len(pascanu.METHODS) * tiny.repeats
    assert len(a["runs"]) == expected_runs and a["command"].endswith("--tiny")
    assert a["config"]["n_test"] == tiny.n_test and a["seconds"] > 0

    def strip(runs):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in runs]

    assert strip(a["runs"]) == strip(b["runs"])
    for r in a["runs"]:
        assert r["success"] == (r["test_error"] < tiny.success_error)
        assert r["seeds"] == pascanu.run_seeds(r["T"], r["repeat"])
    assert not list(tmp_path.glob(".*"))  # no temporary or probe file left


def _all_seeds(config):
    return {
        (T, r): pascanu.run_seeds(T, r)
        for T in config.lengths
        for r in range(config.repeats)
    }


def test_full_configuration_streams_are_independent_and_paired():
    """Every (length, repeat) cell of the full run has its own three seeds,
    none shared with any other cell or with another role; the methods of a cell
    share them (paired)."""
    cells = _all_seeds(pascanu.Config())
    values = [v for seeds in cells.values() for v in seeds.values()]
    assert len(cells) == 4 * 5 and len(values) == 3 * len(cells)
    assert len(set(values)) == len(values)
    # The experiment's jobs: the three methods of a cell get the same seeds.
    job = (pascanu.Config(), "MSGD", 100, 3)
    assert pascanu.run_seeds(*job[2:]) == cells[(100, 3)]
    # Not seed + 1: neighbouring cells do not share or neighbour a stream.
    diffs = {abs(a - b) for a in values for b in values if a != b}
    assert min(diffs) > 1000


def test_paired_runs_start_from_the_same_weights_and_batches(monkeypatch):
    """Within a cell the methods see identical initial weights and batches."""
    seen = {}

    def spy_train(model, make_batch, steps, **kwargs):
        weights = [p.detach().clone() for p in model.parameters()]
        seen[kwargs["clip"], kwargs["omega_weight"]] = (weights, make_batch())
        from rnnbook.train import History

        return History(stopped="spy")

    monkeypatch.setattr(pascanu, "train", spy_train)
    for method in pascanu.METHODS:
        pascanu.run_one((pascanu.TINY, method, 12, 0))
    (w0, b0), *others = seen.values()
    assert len(seen) == 3
    for w, batch in others:
        for p, q in zip(w0, w):
            assert torch.equal(p, q)
        assert torch.equal(b0[0], batch[0]) and torch.equal(b0[1], batch[1])


def test_experiment_script_checks_the_output_path_before_the_work(tmp_path):
    with pytest.raises(SystemExit):
        pascanu.main(["--tiny", "--out", str(tmp_path)])  # a folder
    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.raises(SystemExit):
        pascanu.main(["--tiny", "--out", str(blocked / "r.json")])


def test_accuracy_counts_argmax_matches_and_rejects_bad_targets():
    model, (x, y) = _model(), _batch(T=12)
    logits, _ = model(x)
    expected = sum(
        int(logits[i].argmax() == y[i]) for i in range(len(y))
    ) / len(y)
    assert accuracy(model, x, y) == expected
    with pytest.raises(TypeError, match=r"int64 labels of shape \(B,\)"):
        accuracy(model, x, y.float())
    with pytest.raises(ValueError, match=r"int64 labels of shape \(B,\)"):
        accuracy(model, x, y[:-1])
    with pytest.raises(ValueError, match="B = 0"):
        accuracy(model, x[:0], y[:0])  # no mean over an empty batch
    with pytest.raises(ValueError, match=r"targets in 0\.\.3"):
        accuracy(model, x, torch.full_like(y, 4))
    with pytest.raises(TypeError, match="torch.Tensor"):
        accuracy(model, x.numpy(), y)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_recorded_state_gradient_norms_equal_autograd(nonlinearity):
    """The norms train() records are those of dE/dh_t from autograd through an
    explicit loop with the model's own nonlinearity (a past bug applied tanh's
    derivative to ReLU units)."""
    torch.manual_seed(3)
    model = VanillaRNN(6, 8, 4, nonlinearity=nonlinearity).double()
    with torch.no_grad():  # large enough that ReLU units switch on and off
        model.rnn.weight_hh_l0.mul_(3.0)
        model.rnn.weight_ih_l0.mul_(3.0)
    x, y = _batch(2)
    before = [p.detach().clone() for p in model.parameters()]
    history = train(
        model,
        lambda: (x, y),
        1,
        lr=1e-12,
        record_every=1,
        progress=False,
    )
    with torch.no_grad():
        for p, q in zip(model.parameters(), before):
            p.copy_(q)
    f = torch.tanh if nonlinearity == "tanh" else torch.relu
    W_xh, W_hh = model.rnn.weight_ih_l0, model.rnn.weight_hh_l0
    b = model.rnn.bias_ih_l0 + model.rnn.bias_hh_l0
    states = [torch.zeros(x.shape[0], 8, dtype=x.dtype)]
    for t in range(x.shape[1]):
        states.append(f(states[-1] @ W_hh.T + x[:, t] @ W_xh.T + b))
    loss = F.cross_entropy(model.readout(states[-1]), y)
    expected = torch.stack(torch.autograd.grad(loss, states[1:]), dim=1)
    if nonlinearity == "relu":  # the check must see units that are off
        assert (torch.stack(states[1:], 1) == 0).any()
    ((step, norms),) = history.state_grad_norms
    assert step == 0
    torch.testing.assert_close(
        norms, torch.linalg.vector_norm(expected, dim=-1).mean(0)
    )


def test_an_optimizer_replaces_plain_sgd():
    lr, (x, y) = 0.05, _batch(4)
    ours, reference = _model(2), _model(2)
    optimizer = torch.optim.Adam(ours.parameters(), lr=lr)
    train(ours, lambda: (x, y), 3, optimizer=optimizer, progress=False)
    ref_opt = torch.optim.Adam(reference.parameters(), lr=lr)
    for _ in range(3):
        ref_opt.zero_grad()
        F.cross_entropy(reference(x)[0], y).backward()
        ref_opt.step()
    for p, q in zip(ours.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q)
    with pytest.raises(ValueError, match="exactly one of lr"):
        train(_model(), lambda: (x, y), 1, lr=0.1, optimizer=optimizer)
    with pytest.raises(ValueError, match="exactly one of lr"):
        train(_model(), lambda: (x, y), 1)
    with pytest.raises(ValueError, match="parameters of model"):
        train(_model(), lambda: (x, y), 1, optimizer=optimizer)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"lr": float("inf")}, ValueError),
        ({"lr": float("nan")}, ValueError),
        ({"lr": 0.1, "omega_weight": float("nan")}, ValueError),
        ({"lr": 0.1, "clip": float("inf")}, ValueError),
        ({"lr": "0.1"}, TypeError),
        ({"lr": 0.1j}, TypeError),
        ({"lr": 0.1, "progress": "False"}, TypeError),
        ({"lr": 0.1, "clip": 0.5j}, TypeError),
        ({"lr": 0.1, "clip": torch.tensor(0.5j)}, TypeError),
        ({"lr": 0.1, "omega_weight": "0"}, TypeError),
        ({"lr": 0.1, "desc": 3}, TypeError),
        ({"lr": 0.1, "record_every": 2.0}, TypeError),
        ({"lr": 0.1, "record_every": -1}, ValueError),
    ],
)
def test_non_finite_or_mistyped_hyper_parameters_are_rejected(kwargs, error):
    with pytest.raises(error):
        train(_model(), lambda: _batch(), 1, **kwargs)


def test_numpy_scalars_and_0d_tensors_are_accepted():
    history = train(
        _model(),
        lambda: _batch(),
        np.int64(2),
        lr=np.float32(0.1),
        clip=torch.tensor(1.0),
        progress=False,
    )
    assert history.updates == 2


def test_chapter2_sweep_runs_are_paired_and_rescale_the_radius(monkeypatch):
    from rnnbook.experiments import chapter2
    from rnnbook.torch_rnn import spectral_radius

    monkeypatch.setattr(chapter2, "UPDATES", 100)
    config, seeds = pascanu.Config(), pascanu.run_seeds(50, 0)
    model = pascanu.initial_model(config, seeds, "orthogonal", 0.85)
    assert spectral_radius(model.W_hh.detach()) == pytest.approx(0.85)
    a, b = (pascanu.initial_model(config, seeds) for _ in range(2))
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)  # the alphas of a repeat share weights
    run = chapter2.sweep_run(("rho", 0.85, 0))
    assert run["seeds"] == seeds and run["spread_update"] == 0
    assert 0.0 <= run["test_error"] <= 1.0 and run["spread"] > 0


def test_exploding_run_is_paired_across_settings():
    from rnnbook.experiments import chapter2

    a = chapter2.exploding_run(1.0, lr=0.05, updates=3)
    b = chapter2.exploding_run(None, lr=0.05, updates=3)
    assert a.loss[0] == b.loss[0]  # same weights and first batch
    with pytest.raises(ValueError, match="lr"):
        chapter2.exploding_run(1.0, lr=float("inf"))


def test_run_seeds_accept_numpy_integers_and_reject_other_types():
    assert pascanu.run_seeds(np.int64(50), np.int32(1)) == pascanu.run_seeds(
        50, 1
    )
    with pytest.raises(TypeError, match="T to be an int"):
        pascanu.run_seeds("50", 0)
    with pytest.raises(ValueError, match="repeat to be an int >= 0"):
        pascanu.run_seeds(50, -1)


def test_on_update_sees_every_update_and_changes_nothing():
    seen = []
    a, b = _model(2), _model(2)
    batches = [_batch(s) for s in range(4)]
    it_a, it_b = iter(batches), iter(batches)
    kwargs = dict(lr=0.2, clip=0.5, progress=False)
    plain = train(a, lambda: next(it_a), 4, **kwargs)
    spied = train(
        b,
        lambda: next(it_b),
        4,
        on_update=lambda n, model: seen.append((n, model is b)),
        **kwargs,
    )
    assert seen == [(1, True), (2, True), (3, True), (4, True)]
    assert plain.loss == spied.loss and plain.grad_norm == spied.grad_norm
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    with pytest.raises(TypeError, match="on_update"):
        train(a, lambda: batches[0], 1, lr=0.1, on_update="no")


def test_symbol_errors_split_the_class_into_its_two_symbols():
    class Fixed(torch.nn.Module):
        def __init__(self, predicted):
            super().__init__()
            self.predicted = predicted

        def forward(self, inputs):
            y = F.one_hot(self.predicted, 4).double()
            return y, None

    targets = torch.tensor([0, 1, 2, 3])  # XX XY YX YY
    # knows the second symbol only, always guesses X first: XX XY XX XY
    model = Fixed(torch.tensor([0, 1, 0, 1]))
    inputs = torch.zeros(4, 10, 6)
    assert pascanu.symbol_errors(model, inputs, targets) == (0.5, 0.0)
    assert accuracy(model, inputs, targets) == 0.5
    swapped = Fixed(torch.tensor([0, 2, 1, 3]))  # XX YX XY YY
    assert pascanu.symbol_errors(swapped, inputs, targets) == (0.5, 0.5)


def test_gradient_split_is_the_first_update_of_msgd_and_msgd_cr():
    config, seeds, T = pascanu.Config(), pascanu.run_seeds(25, 1), 25
    split = pascanu.gradient_split(
        pascanu.initial_model(config, seeds), config, T, seeds, 4.0
    )
    for alpha, name in ((0.0, "E"), (4.0, "total")):
        model = pascanu.initial_model(config, seeds)
        history = pascanu.train_run(model, config, T, seeds, None, alpha, 1)
        assert split[name] == pytest.approx(history.grad_norm[0], rel=1e-5)
    assert split["Omega"] > 10 * split["E"] > 0


def test_run_one_records_clipping_symbols_and_periodic_tests():
    run = pascanu.run_one((pascanu.TINY, "MSGD-C", 12, 0))
    assert [u for u, _ in run["test_errors"]] == [10, 20]
    assert run["test_errors"][-1][1] == pytest.approx(run["test_error"])
    assert 0 <= run["clipped_fraction"] <= 1 and run["max_grad_norm"] > 0
    assert (run["max_grad_norm"] >= pascanu.TAU) == (
        run["clipped_fraction"] > 0
    )
    first, second = run["first_symbol_error"], run["second_symbol_error"]
    assert max(first, second) <= run["test_error"] <= first + second


def test_chapter2_replay_reproduces_run_one_and_checks_its_path(tmp_path):
    from rnnbook.experiments import chapter2

    (replayed,) = chapter2.replay((("MSGD-C", 12, 0),), pascanu.TINY)
    direct = pascanu.run_one((pascanu.TINY, "MSGD-C", 12, 0))
    assert {k: v for k, v in replayed.items() if k != "seconds"} == {
        k: v for k, v in direct.items() if k != "seconds"
    }
    assert (
        len(chapter2.REPLAY) == 11 and ("MSGD-CR", 100, 3) in chapter2.REPLAY
    )
    with pytest.raises(SystemExit):
        chapter2.main(["--replay", "--out", str(tmp_path)])  # a folder
