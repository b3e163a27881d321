"""The selective-copying experiment: a --tiny run writes a complete, paired
result file; seeds come from independent streams."""

import dataclasses
import json

import pytest
import torch

from rnnbook.experiments import selective_copying as exp
from rnnbook.mamba import MambaModel


def test_tiny_run_writes_a_complete_paired_result(tmp_path):
    out = tmp_path / "tiny.json"
    assert exp.main(["--tiny", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    tiny = exp.TINY
    assert result["command"].endswith("--tiny") and result["seconds"] > 0
    for key in ("torch", "numpy", "python", "config", "seed_entropy"):
        assert key in result
    assert result["config"]["updates"] == tiny.updates
    assert result["chance"] == pytest.approx(1 / (tiny.vocab_size - 2))
    assert result["paper_table_1"]["Mamba"]["S6"] == 99.8
    runs = result["runs"]
    assert len(runs) == len(exp.MODELS) * tiny.seeds
    assert {(r["model"], r["seed"]) for r in runs} == {
        (m, s) for m in exp.MODELS for s in range(tiny.seeds)
    }
    for run in runs:
        assert run["updates_done"] == tiny.updates and run["stopped"] is None
        assert len(run["curve"]) == tiny.updates // tiny.record_every
        assert 0 <= run["token_accuracy"] <= 1
        assert 0 <= run["sequence_accuracy"] <= run["token_accuracy"]
        assert [u for u, _ in run["test_curve"]] == [3, 6]
        assert run["parameters"] > 0
        # paired: every model of a seed shares the seeds of that seed
        assert run["seeds"] == exp.run_seeds(run["seed"])
        # each model trains at the rate its pilot chose
        assert run["lr"] == result["pilot"]["chosen"][run["model"]]
        assert run["lr"] == result["learning_rates"][run["model"]]
    pilot = result["pilot"]
    assert pilot["rates"] == list(tiny.pilot_rates)
    assert pilot["seeds"] == exp.run_seeds(0, "pilot")
    assert {(r["model"], r["lr"]) for r in pilot["runs"]} == {
        (m, lr) for m in exp.MODELS for lr in tiny.pilot_rates
    }
    for model, lr in pilot["chosen"].items():
        # the chosen rate has the best validation accuracy (ties: lower loss)
        mine = [r for r in pilot["runs"] if r["model"] == model]
        best = max(r["val_token_accuracy"] for r in mine)
        tied = [r for r in mine if r["val_token_accuracy"] == best]
        assert lr == min(tied, key=lambda r: r["val_loss"])["lr"]
        assert all(r["updates_done"] == tiny.pilot_steps for r in mine)
    with pytest.raises(SystemExit):
        exp.main(["--tiny", "--out", str(tmp_path)])  # a folder


def test_no_pilot_trains_at_the_default_rates_on_the_same_seeds(tmp_path):
    out = tmp_path / "untuned.json"
    assert exp.main(["--tiny", "--no-pilot", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["command"].endswith("--no-pilot --tiny")
    assert result["pilot"] is None
    for run in result["runs"]:
        assert run["lr"] == exp.default_rate(exp.TINY, run["model"])
        assert run["lr"] == result["learning_rates"][run["model"]]
        assert run["seeds"] == exp.run_seeds(run["seed"])  # as with a pilot
        assert run["updates_done"] == exp.TINY.updates


def test_seed_streams_are_independent_and_reproducible():
    seeds = [exp.run_seeds(s, part) for part in exp.PARTS for s in range(4)]
    values = [v for d in seeds for v in d.values()]
    assert len(set(values)) == len(values)  # pilot and comparison too
    assert exp.run_seeds(2) == seeds[2]
    assert set(exp.run_seeds(0, "pilot")) == {"init", "data", "validation"}
    with pytest.raises(ValueError, match="part"):
        exp.run_seeds(0, "test")
    with pytest.raises(ValueError, match="model"):
        exp.default_rate(exp.Config(), "LSTM")
    cells = {}
    for _, model, seed, lr, _ in exp.jobs(exp.Config()):
        cells.setdefault(seed, set()).add(model)
        assert lr == exp.default_rate(exp.Config(), model)
    assert all(c == set(exp.MODELS) for c in cells.values())
    chosen = {"S4D": 3e-2, "Mamba": 1e-3}
    for _, model, _, lr, _ in exp.jobs(exp.Config(), lrs=chosen):
        assert lr == chosen.get(model, exp.Config().mamba_lr)


def test_pilot_breaks_ties_by_loss_and_ranks_a_stopped_run_last(monkeypatch):
    scored = {1e-3: (0.5, 0.9), 3e-3: (0.5, 0.7), 1e-2: (None, None)}

    def fake_run_one(job):
        config, model, seed, lr, _, part = job
        assert (part, seed) == ("pilot", 0)
        acc, loss = scored[lr]
        return {
            "model": model,
            "lr": lr,
            "val_token_accuracy": acc,
            "val_loss": loss,
            "stopped": None if acc is not None else "non-finite loss",
        }

    monkeypatch.setattr(exp, "run_one", fake_run_one)
    config = dataclasses.replace(exp.TINY, pilot_rates=tuple(scored))
    pilot = exp.select_learning_rates(config, progress=False)
    assert pilot["chosen"] == {m: 3e-3 for m in exp.MODELS}
    assert len(pilot["runs"]) == len(exp.MODELS) * len(scored)


def test_copy_loss_reads_only_the_markers():
    y = torch.randn(2, 9, 5, requires_grad=True)
    targets = torch.tensor([[1, 2, 3], [3, 2, 1]])
    exp.copy_loss(y, targets).backward()
    assert y.grad[:, :6].abs().sum() == 0 and y.grad[:, 6:].abs().sum() > 0


def test_run_keeps_the_callers_thread_count_and_live_is_small():
    before = torch.get_num_threads()
    runs = exp.run(exp.TINY, progress=False)
    assert torch.get_num_threads() == before
    assert len(runs) == len(exp.MODELS) * exp.TINY.seeds
    live = exp.jobs(exp.LIVE)
    assert {m for _, m, _, _, _ in live} == {"Mamba-LTI", "Mamba"}
    assert exp.LIVE.updates <= 200 and exp.LIVE.seeds == 1


def test_mamba_lti_starts_as_mambas_twin_but_for_its_ssm():
    config = exp.TINY
    built = {}
    for model in ("Mamba", "Mamba-LTI", "Mamba"):
        torch.manual_seed(3)
        built.setdefault(model, []).append(
            exp.make_model(config, model).state_dict()
        )
    mamba, lti = built["Mamba"][0], built["Mamba-LTI"][0]
    assert all(torch.equal(v, built["Mamba"][1][k]) for k, v in mamba.items())
    different = set()
    for name, value in lti.items():
        twin = mamba.get(name.replace("dt_bias", "dt_proj.bias"))
        if twin is None or not torch.equal(twin, value):
            different.add(name)
    layers = range(config.layers)
    assert different == {f"layers.{i}.{p}" for i in layers for p in "BC"}
    # and the copy is a real pairing: a fresh LTI model without it differs
    torch.manual_seed(3)
    unpaired = MambaModel(
        config.vocab_size,
        config.mamba_width,
        config.layers,
        config.mamba_state,
        selective=False,
    ).state_dict()
    assert not torch.equal(unpaired["head.weight"], lti["head.weight"])


def test_pilot_and_scores_refuse_bad_input():
    for rates in ((), (1e-3, 0.0), (1e-3, "1e-2")):
        bad = dataclasses.replace(exp.TINY, pilot_rates=rates)
        with pytest.raises(ValueError, match="pilot_rates"):
            exp.select_learning_rates(bad, progress=False)
    model = exp.make_model(exp.TINY, "Mamba")
    with pytest.raises(ValueError, match="n"):
        exp.scores(model, exp.TINY, 0, 0)
