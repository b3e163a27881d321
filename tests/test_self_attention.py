"""rnnbook.self_attention: the causal layer against an explicit masked
softmax written here, one position and one head at a time; the key-value
cache, written in place, step by step against the full forward."""

import math

import numpy as np
import pytest
import torch

from rnnbook.self_attention import CausalSelfAttention, KVCache


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def causal_reference(layer, x):
    """y_t = W_o [sum_{j<=t} softmax_j(q_t . k_j / sqrt(Dh)) v_j per head],
    with the softmax written out as exp / sum over j = 0..t, one t at a
    time."""
    Bx, T, Dx = x.shape
    H, Dh = layer.heads, Dx // layer.heads
    W_q, W_k, W_v = layer.qkv.weight.split(Dx)  # each (D, D)
    q, k, v = x @ W_q.T, x @ W_k.T, x @ W_v.T  # (B, T, D)
    ys = []
    for t in range(T):
        heads = []
        for h in range(H):
            cols = slice(h * Dh, (h + 1) * Dh)
            e = torch.stack(
                [
                    (q[:, t, cols] * k[:, j, cols]).sum(-1) / math.sqrt(Dh)
                    for j in range(t + 1)
                ],
                dim=1,
            )  # (B, t + 1)
            w = torch.exp(e - e.max(1, keepdim=True).values)
            w = w / w.sum(1, keepdim=True)
            heads.append(torch.einsum("bj,bjd->bd", w, v[:, : t + 1, cols]))
        ys.append(torch.cat(heads, dim=1) @ layer.out.weight.T)
    return torch.stack(ys, dim=1)


def causal_layer(Dx=8, heads=2, seed=0):
    with torch.random.fork_rng():  # seeded weights, global RNG untouched
        torch.manual_seed(seed)
        return CausalSelfAttention(Dx, heads).double()


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_causal_forward_equals_the_explicit_masked_softmax(heads):
    layer = causal_layer(8, heads)
    x = torch.randn(3, 6, 8, generator=gen(1), dtype=torch.float64)
    y = layer(x)
    assert y.shape == (3, 6, 8)
    torch.testing.assert_close(y, causal_reference(layer, x))


def test_causal_forward_ignores_the_future():
    layer = causal_layer()
    x = torch.randn(2, 7, 8, generator=gen(2), dtype=torch.float64)
    x2 = x.clone()
    x2[:, 4:] = torch.randn(2, 3, 8, generator=gen(3), dtype=torch.float64)
    torch.testing.assert_close(layer(x)[:, :4], layer(x2)[:, :4])
    assert not torch.allclose(layer(x)[:, 4:], layer(x2)[:, 4:])


@pytest.mark.parametrize("heads", [1, 2])
def test_steps_with_the_cache_equal_the_causal_forward(heads):
    layer = causal_layer(8, heads)
    x = torch.randn(3, 6, 8, generator=gen(4), dtype=torch.float64)
    y = layer(x)
    reference = causal_reference(layer, x)
    cache = layer.empty_cache(3, 9)  # room for more than needed
    assert isinstance(cache, KVCache) and cache.length == 0
    assert cache.keys.shape == cache.values.shape == (3, heads, 9, 8 // heads)
    with torch.no_grad():
        for t in range(6):
            y_t, cache = layer.step(x[:, t], cache)
            assert y_t.shape == (3, 8) and cache.length == t + 1
            assert cache.keys.shape == (3, heads, 9, 8 // heads)  # fixed
            torch.testing.assert_close(y_t, y[:, t])
            torch.testing.assert_close(y_t, reference[:, t])


def test_step_writes_the_cache_in_place():
    layer = causal_layer()
    x = torch.randn(2, 4, 8, generator=gen(5), dtype=torch.float64)
    cache = layer.empty_cache(2, 4, dtype=torch.float64)
    pointers = [c.untyped_storage().data_ptr() for c in cache[:2]]
    W_k = layer.qkv.weight.split(8)[1]
    with torch.no_grad():
        for t in range(4):
            _, cache = layer.step(x[:, t], cache)
            assert [
                c.untyped_storage().data_ptr() for c in cache[:2]
            ] == pointers  # the same storage, no copy
        # position t of the keys holds W_k x_t, split into the two heads
        keys = (x @ W_k.T).view(2, 4, 2, 4).transpose(1, 2)
        torch.testing.assert_close(cache.keys, keys)
        with pytest.raises(ValueError, match="full"):
            layer.step(x[:, 0], cache)  # 4 positions written, room for 4


def test_cache_checks():
    layer = causal_layer()
    x_t = torch.zeros(2, 8, dtype=torch.float64)
    cache = layer.empty_cache(2, 3, dtype=torch.float64)
    with torch.no_grad():
        with pytest.raises(ValueError, match="cache keys"):
            layer.step(torch.zeros(3, 8, dtype=torch.float64), cache)
        with pytest.raises(ValueError, match="cache values"):
            layer.step(x_t, cache._replace(values=cache.values[:, :, :2]))
        with pytest.raises(ValueError, match="dtype"):
            layer.step(x_t.float(), cache)
        with pytest.raises(ValueError, match="mismatched"):
            layer.step(x_t, cache._replace(length=7))
        with pytest.raises(ValueError, match=">= 0"):
            layer.step(x_t, cache._replace(length=-1))
        with pytest.raises(TypeError, match="length"):
            layer.step(x_t, cache._replace(length=1.0))
        with pytest.raises(TypeError, match="KVCache"):
            layer.step(x_t, tuple(cache))
        with pytest.raises(TypeError, match="KVCache"):
            layer.step(x_t, None)
    with pytest.raises(ValueError, match="max_len"):
        layer.empty_cache(2, 0)
    with pytest.raises(TypeError, match="batch_size"):
        layer.empty_cache(2.0, 3)
    assert layer.empty_cache(np.int64(1), 2).keys.dtype == torch.float64


def test_causal_attention_edge_cases():
    layer = causal_layer()
    assert layer(torch.zeros(2, 0, 8, dtype=torch.float64)).shape == (2, 0, 8)
    assert layer(torch.zeros(0, 3, 8, dtype=torch.float64)).shape == (0, 3, 8)
    y = layer(torch.ones(1, 1, 8, dtype=torch.float64))  # one position: v_0
    W_v = layer.qkv.weight.split(8)[2]
    expected = (torch.ones(1, 8, dtype=torch.float64) @ W_v.T) @ (
        layer.out.weight.T
    )
    torch.testing.assert_close(y[:, 0], expected)


def test_causal_attention_bad_input():
    with pytest.raises(ValueError, match="divide"):
        CausalSelfAttention(6, heads=4)
    with pytest.raises(TypeError):
        CausalSelfAttention(8.0)
    layer = causal_layer()
    with pytest.raises(ValueError, match=r"\(B, T, 8\)"):
        layer(torch.zeros(2, 3, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(B, T, 8\)"):
        layer(torch.zeros(3, 8, dtype=torch.float64))
    with pytest.raises(TypeError):
        layer(torch.zeros(2, 3, 8, dtype=torch.int64))
    cache = layer.empty_cache(2, 3)
    with pytest.raises(ValueError, match=r"\(B, 8\)"):
        layer.step(torch.zeros(2, 5, dtype=torch.float64), cache)
