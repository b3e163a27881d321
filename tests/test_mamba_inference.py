"""The inference measurement: a --tiny run writes every row, and the
caches are counted by unique storage."""

import json

import pytest
import torch

from rnnbook.experiments import mamba_inference as exp
from rnnbook.mamba import MambaBlock


def test_tiny_run_writes_every_context_and_layer(tmp_path):
    out = tmp_path / "tiny.json"
    assert exp.main(["--tiny", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    tiny = exp.TINY
    assert result["command"].endswith("--tiny") and result["seconds"] >= 0
    for key in ("torch", "numpy", "python", "config", "paper_claim"):
        assert key in result
    rows = result["rows"]
    assert [(r["context"], r["layer"]) for r in rows] == [
        (c, layer) for c in tiny.contexts for layer in ("Mamba", "attention")
    ]
    E, N, k = 2 * tiny.width, tiny.state, 4
    for row in rows:
        assert len(row["seconds"]) == tiny.repeats
        assert row["tokens_per_second"] > 0
        if row["layer"] == "Mamba":  # constant: (E, k - 1) + (E, N) floats
            assert row["cache_bytes"] == 4 * (E * (k - 1) + E * N)
        else:  # keys and values of every cached position
            assert row["cache_bytes"] == 4 * 2 * row["context"] * 12
    with pytest.raises(SystemExit):
        exp.main(["--tiny", "--out", str(tmp_path)])  # a folder


def test_unique_bytes_counts_a_storage_once():
    base = torch.zeros(10, 4)
    assert exp.unique_bytes([base, base[:, 0], base[3:]]) == 160
    assert exp.unique_bytes([base, torch.zeros(2)]) == 168


def test_layers_have_about_the_same_size():
    config = exp.Config()
    mamba = exp.n_parameters(MambaBlock(config.width, config.state))
    attention = exp.n_parameters(
        exp.CausalSelfAttention(config.attention_width, config.heads)
    )
    assert abs(mamba - attention) / mamba < 0.02
