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
    assert len(result["loadavg_before"]) == len(result["loadavg_after"]) == 3
    rows = result["rows"]
    assert [(r["context"], r["layer"]) for r in rows] == [
        (c, layer) for c in tiny.contexts for layer in ("Mamba", "attention")
    ]
    E, N, k = 2 * tiny.width, tiny.state, 4
    for row in rows:
        assert len(row["seconds"]) == tiny.repeats
        assert row["tokens_per_second"] > 0
        if row["layer"] == "Mamba":  # constant: E (k - 1 + N) floats
            assert row["cache_bytes"] == row["cache_bytes_filled"]
            assert row["cache_bytes"] == 4 * E * (k - 1 + N)
        else:  # keys and values: room for context + new tokens positions
            capacity = row["context"] + tiny.new_tokens
            assert row["cache_capacity"] == capacity
            assert row["cache_length"] == row["context"] + 1  # after a step
            assert row["cache_bytes"] == 4 * 2 * capacity * 12
            assert (
                row["cache_bytes_filled"] == 4 * 2 * (row["context"] + 1) * 12
            )
    ratios = result["ratios_mamba_over_attention"]
    assert [r["context"] for r in ratios] == list(tiny.contexts)
    for r in ratios:
        assert 0 < r["min"] <= r["median"] <= r["max"]
    with pytest.raises(SystemExit):
        exp.main(["--tiny", "--out", str(tmp_path)])  # a folder


def test_unique_bytes_counts_a_storage_once():
    base = torch.zeros(10, 4)
    assert exp.unique_bytes([base, base[:, 0], base[3:]]) == 160
    assert exp.unique_bytes([base, torch.zeros(2)]) == 168
    assert exp.unique_bytes([base, 7]) == 160  # a cache's length: skipped


def test_caches_are_counted_after_a_step():
    attention = exp.CausalSelfAttention(12, 2)
    gen = torch.Generator().manual_seed(0)
    cache = exp.attention_cache(attention, 5, 8, gen)
    assert cache.length == 5
    with torch.no_grad():
        _, after = attention.step(torch.randn(1, 12), cache)
    assert after.keys.data_ptr() == cache.keys.data_ptr()  # in place
    assert exp.unique_bytes(after) == 4 * 2 * 8 * 12  # the capacity
    assert exp.filled_bytes(after) == 4 * 2 * 6 * 12  # 6 positions


def test_layers_have_about_the_same_size():
    config = exp.Config()
    mamba = exp.n_parameters(MambaBlock(config.width, config.state))
    attention = exp.n_parameters(
        exp.CausalSelfAttention(config.attention_width, config.heads)
    )
    assert abs(mamba - attention) / mamba < 0.02
