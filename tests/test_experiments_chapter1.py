"""rnnbook.experiments.chapter1: the --tiny run writes a complete result
file (atomically, where --out says), and a bad --out fails before the
work."""

import json

import pytest

from rnnbook.experiments import chapter1
from rnnbook.truncated import train_chunked


def test_tiny_run_writes_every_run_with_config_seeds_and_versions(tmp_path):
    out = tmp_path / "sub" / "tiny.json"
    assert chapter1.main(["--tiny", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["command"].endswith("chapter1 --tiny")
    assert result["seeds"] == list(chapter1.SEEDS)
    assert set(result["versions"]) == {"python", "numpy", "torch"}
    config = chapter1.TINY
    expected = {
        (sweep, chunk, seed)
        for sweep, chunks in config.sweeps
        for chunk in chunks
        for seed in chapter1.SEEDS
    }
    runs = result["runs"]
    assert {(r["sweep"], r["chunk"], r["seed"]) for r in runs} == expected
    assert len(runs) == len(expected)
    for run in runs:
        assert len(run["accuracy"]) == config.rounds
        assert run["final"] == pytest.approx(run["accuracy"][-1], abs=1e-6)
        assert run["learned"] == (run["final"] > config.learned)
    # a run is train_chunked at its seed, nothing else
    first = runs[0]
    again = train_chunked(
        first["chunk"],
        config.gap,
        rounds=config.rounds,
        batch=config.batch,
        length=config.length,
        hidden_size=config.hidden_size,
        lr=config.lr,
        seed=first["seed"],
    )
    assert again.tolist() == pytest.approx(first["accuracy"], abs=1e-6)
    assert not list(out.parent.glob(".*.tmp"))  # no temporary file left


def test_bad_out_fails_before_the_work(tmp_path):
    with pytest.raises(SystemExit):
        chapter1.main(["--tiny", "--out", str(tmp_path)])  # a folder
    with pytest.raises(SystemExit):
        chapter1.main(["--tiny", "--out", str(tmp_path / "x.txt")])
