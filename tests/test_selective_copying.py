"""The selective-copying experiment: a --tiny run writes a complete, paired
result file; seeds come from independent streams."""

import json

import pytest
import torch

from rnnbook.experiments import selective_copying as exp


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
    with pytest.raises(SystemExit):
        exp.main(["--tiny", "--out", str(tmp_path)])  # a folder


def test_seed_streams_are_independent_and_reproducible():
    seeds = [exp.run_seeds(s) for s in range(4)]
    values = [v for d in seeds for v in d.values()]
    assert len(set(values)) == len(values)
    assert exp.run_seeds(2) == seeds[2]
    cells = {}
    for _, model, seed, _ in exp.jobs(exp.Config()):
        cells.setdefault(seed, set()).add(model)
    assert all(c == set(exp.MODELS) for c in cells.values())


def test_models_of_a_seed_see_the_same_batches_and_budgets():
    config = exp.Config()
    draws = []
    for _ in exp.MODELS:  # one generator per run, from the same seed
        gen = torch.Generator().manual_seed(exp.run_seeds(0)["data"])
        draws.append(exp.batches(config, gen)())
    for tokens, targets in draws[1:]:
        assert torch.equal(tokens, draws[0][0])
        assert torch.equal(targets, draws[0][1])
    tokens, targets = draws[0]
    assert tokens.shape == (config.batch_size, config.T + config.K)
    assert torch.equal(
        targets,
        tokens[:, : config.T][tokens[:, : config.T] != 0].view(-1, config.K),
    )
    counts = {
        m: exp.n_parameters(exp.make_model(config, m)) for m in exp.MODELS
    }
    low, high = min(counts.values()), max(counts.values())
    assert high / low < 1.15, counts  # about one parameter budget


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
    assert {m for _, m, _, _ in live} == {"Mamba-LTI", "Mamba"}
    assert exp.LIVE.updates <= 200 and exp.LIVE.seeds == 1
