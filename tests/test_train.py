"""rnnbook.train: one update compared with a hand-written one, the non-finite stop, the
state gradients against autograd, and the experiment script on its tiny configuration."""

import json

import pytest
import torch
from torch.nn import functional as F

from rnnbook.experiments import pascanu
from rnnbook.gradients import pascanu_regularizer
from rnnbook.tasks import temporal_order
from rnnbook.train import History, accuracy, state_gradients_torch, train
from rnnbook.vanilla import VanillaRNN, init_weights


def _model(seed=0, H=8):
    weights = init_weights("basic_tanh", 6, H, 4, torch.Generator().manual_seed(seed))
    return VanillaRNN(6, H, 4).load_weights({k: 5 * v for k, v in weights.items()}).double()


def _batch(seed=0, T=12):
    x, y = temporal_order(5, T, torch.Generator().manual_seed(seed))
    return x.double(), y


def _manual_rnn_states(model, x):
    """States h_0..h_T from an explicit loop, each a node autograd can differentiate."""
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
    train(ours, lambda: (x, y), 1, lr=lr, clip=clip, omega_weight=alpha, progress=False)
    # by hand: E + alpha * Omega on an explicit loop, autograd, the clipping rule, one SGD step
    states = _manual_rnn_states(reference, x)
    loss = F.cross_entropy(reference.readout(states[-1]), y)
    params = list(reference.parameters())
    objective = loss
    if alpha:
        grads = torch.stack(torch.autograd.grad(loss, states[1:], retain_graph=True), dim=1)
        objective = loss + alpha * pascanu_regularizer(reference.W_hh, torch.stack(states, 1), grads)
    g = torch.autograd.grad(objective, params)
    norm = torch.sqrt(sum((gi ** 2).sum() for gi in g))
    scale = min(1.0, clip / norm.item()) if clip else 1.0
    assert clip is None or scale < 1  # the test must exercise clipping where it asks for it
    for p_ours, p_ref, gi in zip(ours.parameters(), params, g):
        torch.testing.assert_close(p_ours, p_ref - lr * scale * gi)


def test_a_non_finite_loss_stops_the_run_with_a_message_and_keeps_the_history(capsys):
    calls = []

    def loss_fn(y_hat, y):  # finite for three updates, then NaN
        calls.append(1)
        loss = F.cross_entropy(y_hat, y)
        return loss * float("nan") if len(calls) == 4 else loss

    history = train(_model(), lambda: _batch(), 10, lr=0.1, loss_fn=loss_fn, progress=False)
    assert history.updates == 3 and len(history.grad_norm) == 3
    assert all(torch.isfinite(torch.tensor(history.loss)))
    assert history.stopped.startswith("stopped at update 3: the loss is nan")
    assert history.stopped in capsys.readouterr().out


def test_records_per_step_gradient_norms_and_rejects_bad_arguments():
    history = train(_model(), lambda: _batch(), 4, lr=0.1, record_every=2, progress=False)
    assert isinstance(history, History) and history.stopped is None
    assert [step for step, _ in history.state_grad_norms] == [0, 2]
    assert history.state_grad_norms[0][1].shape == (12,)
    for kwargs, match in (({"lr": 0}, "positive learning rate"), ({"lr": 0.1, "clip": 0}, "clip"),
                          ({"lr": 0.1, "omega_weight": -1}, "omega_weight")):
        with pytest.raises(ValueError, match=match):
            train(_model(), lambda: _batch(), 1, progress=False, **kwargs)
    with pytest.raises(ValueError, match="tanh"):
        train(VanillaRNN(6, 4, 4, nonlinearity="relu"), lambda: _batch(), 1, lr=0.1, omega_weight=1.0)


def test_experiment_script_tiny_configuration_writes_results_independent_of_workers(tmp_path):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    assert pascanu.main(["--tiny", "--workers", "1", "--out", str(one)]) == 0
    assert pascanu.main(["--tiny", "--workers", "2", "--out", str(two)]) == 0
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    expected_runs = len(pascanu.TINY.lengths) * len(pascanu.METHODS) * pascanu.TINY.repeats
    assert len(a["runs"]) == expected_runs and a["command"].endswith("--tiny")
    assert len({r["seed"] for r in a["runs"]}) == expected_runs
    assert a["config"]["n_test"] == pascanu.TINY.n_test and a["seconds"] > 0
    strip = lambda runs: [{k: v for k, v in r.items() if k != "seconds"} for r in runs]  # noqa: E731
    assert strip(a["runs"]) == strip(b["runs"])
    for r in a["runs"]:
        assert r["success"] == (r["test_error"] < pascanu.TINY.success_error)


def test_accuracy_counts_argmax_matches_and_rejects_bad_targets():
    model, (x, y) = _model(), _batch(T=12)
    logits, _ = model(x)
    expected = sum(int(logits[i].argmax() == y[i]) for i in range(len(y))) / len(y)
    assert accuracy(model, x, y) == expected
    with pytest.raises(ValueError, match=r"int64 labels of shape \(B,\)"):
        accuracy(model, x, y.float())
