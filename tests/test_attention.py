"""rnnbook.attention: slow-loop scores, masking, the hand-written backward."""

import math

import numpy as np
import pytest
import torch

from rnnbook.attention import (
    AdditiveAttention,
    CausalSelfAttention,
    DotAttention,
    GeneralAttention,
    KVCache,
    ScaledDotAttention,
    additive_attention_backward,
    masked_softmax,
)

B, S, D = 3, 5, 4


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def inputs(seed=0, Dq=D, Dk=D):
    g = gen(seed)
    query = torch.randn(B, Dq, generator=g, dtype=torch.float64)
    keys = torch.randn(B, S, Dk, generator=g, dtype=torch.float64)
    mask = torch.tensor(
        [[True] * 5, [True] * 3 + [False] * 2, [True] + [False] * 4]
    )
    return query, keys, mask


def modules(seed=0):
    torch.manual_seed(seed)
    return [
        AdditiveAttention(D, D, 6).double(),
        DotAttention(),
        ScaledDotAttention(),
        GeneralAttention(D, D).double(),
    ]


def slow_scores(module, query, keys):
    """The score of every (b, j) pair, one at a time, from its definition."""
    out = torch.empty(keys.shape[:2], dtype=keys.dtype)
    for b in range(keys.shape[0]):
        for j in range(keys.shape[1]):
            q, k = query[b], keys[b, j]
            if isinstance(module, AdditiveAttention):
                hidden = torch.tanh(module.W.weight @ q + module.U.weight @ k)
                e = module.v.weight[0] @ hidden
            elif isinstance(module, GeneralAttention):
                e = q @ module.W.weight @ k
            elif isinstance(module, ScaledDotAttention):
                e = q @ k / math.sqrt(k.shape[0])
            else:
                e = q @ k
            out[b, j] = e
    return out


@pytest.mark.parametrize("index", range(4))
def test_scores_weights_and_context_match_their_definition(index):
    module = modules()[index]
    query, keys, mask = inputs()
    context, weights = module(query, keys, mask)
    scores = slow_scores(module, query, keys)
    for b in range(B):
        valid = mask[b]
        expected = torch.softmax(scores[b, valid], dim=0)
        torch.testing.assert_close(weights[b, valid], expected)
        assert torch.all(weights[b, ~valid] == 0)  # exactly zero
        torch.testing.assert_close(
            weights[b].sum(), torch.tensor(1.0).double()
        )
        torch.testing.assert_close(
            context[b], (expected[:, None] * keys[b, valid]).sum(0)
        )
    assert context.shape == (B, D) and weights.shape == (B, S)


@pytest.mark.parametrize("index", range(4))
def test_padding_content_does_not_matter(index):
    module = modules()[index]
    query, keys, mask = inputs()
    garbage = keys.clone()
    garbage[~mask] = 1e6  # huge values where the mask is False
    c1, w1 = module(query, keys, mask)
    c2, w2 = module(query, garbage, mask)
    torch.testing.assert_close(w1, w2)
    torch.testing.assert_close(c1, c2)


def test_without_mask_the_padding_takes_weight():
    module = modules()[0]
    query, keys, mask = inputs()
    _, w = module(query, keys)  # no mask: padded positions get weight
    assert torch.all(w > 0)
    assert w[2, 1:].sum() > 0.1  # the one-symbol row loses most of its mass


def test_masked_softmax_without_mask_is_softmax():
    x = torch.randn(2, 7, generator=gen())
    torch.testing.assert_close(masked_softmax(x), torch.softmax(x, -1))


@pytest.mark.parametrize("index", range(4))
def test_all_false_row_raises(index):
    module = modules()[index]
    query, keys, mask = inputs()
    mask[1] = False
    with pytest.raises(ValueError, match=r"rows \[1\] are all False"):
        module(query, keys, mask)


def test_shape_errors_name_expected_and_received():
    additive = AdditiveAttention(D, D, 6).double()
    query, keys, mask = inputs()
    with pytest.raises(ValueError, match=r"\(B, 4\).*got \(3, 7\)"):
        additive(torch.zeros(3, 7, dtype=torch.float64), keys)
    with pytest.raises(ValueError, match=r"\(B, S, 4\).*got \(3, 5, 2\)"):
        additive(query, keys[..., :2])
    with pytest.raises(ValueError, match="3 dims.*got \\(3, 4\\)"):
        additive(query, query)
    with pytest.raises(ValueError, match="same batch size"):
        additive(query[:2], keys)
    with pytest.raises(ValueError, match=r"mask of shape \(3, 5\).*\(3, 4\)"):
        additive(query, keys, mask[:, :4])
    with pytest.raises(ValueError, match="at least one key position"):
        additive(query, keys[:, :0])
    with pytest.raises(ValueError, match="Dq = Dk"):
        DotAttention()(query, keys[..., :2])


def test_type_errors():
    additive = AdditiveAttention(D, D, 6).double()
    query, keys, mask = inputs()
    with pytest.raises(TypeError, match="torch.Tensor"):
        additive(query.tolist(), keys)
    with pytest.raises(TypeError, match="torch.bool"):
        additive(query, keys, mask.long())
    with pytest.raises(ValueError, match="positive int"):
        AdditiveAttention(0, D, 6)  # an int, but not positive
    for bad in (2.0, True, "4"):  # not an int at all: the wrong type
        with pytest.raises(TypeError, match="positive int"):
            AdditiveAttention(bad, D, 6)


def test_projected_keys_give_the_same_result():
    for module in (
        AdditiveAttention(D, D, 6).double(),
        GeneralAttention(D, D),
    ):
        module = module.double()
        query, keys, mask = inputs()
        direct = module(query, keys, mask)
        cached = module(query, keys, mask, module.project_keys(keys))
        for a, b in zip(direct, cached):
            torch.testing.assert_close(a, b)


def test_scaled_dot_keeps_the_spread_of_scores():
    g = gen(3)
    spreads = []
    for Dk in (16, 1024):
        q = torch.randn(256, Dk, generator=g, dtype=torch.float64)
        k = torch.randn(256, 8, Dk, generator=g, dtype=torch.float64)
        spreads.append(ScaledDotAttention().score(q, k).std().item())
    assert abs(spreads[0] - 1) < 0.1 and abs(spreads[1] - 1) < 0.1


def test_hand_written_backward_matches_autograd():
    torch.manual_seed(1)
    module = AdditiveAttention(3, D, 6).double()
    query, keys, mask = inputs(Dq=3)
    query.requires_grad_(True)
    keys.requires_grad_(True)
    context, weights = module(query, keys, mask)
    grad_context = torch.randn(B, D, generator=gen(2), dtype=torch.float64)
    gq, gk = torch.autograd.grad(context, (query, keys), grad_context)
    mine_q, mine_k, grad_scores = additive_attention_backward(
        module, query.detach(), keys.detach(), grad_context, mask
    )
    torch.testing.assert_close(mine_q, gq)
    torch.testing.assert_close(mine_k, gk)
    assert torch.all(grad_scores[~mask] == 0)
    # dL/de_j = alpha_j g^T (h_j - c), autograd through the softmax alone
    scores = module.score(query, module.project_keys(keys)).detach()
    scores.requires_grad_(True)
    w = masked_softmax(scores, mask)
    c = torch.einsum("bs,bsd->bd", w, keys.detach())
    (ge,) = torch.autograd.grad(c, scores, grad_context)
    torch.testing.assert_close(grad_scores, ge)


def test_backward_rejects_other_modules():
    query, keys, mask = inputs()
    with pytest.raises(TypeError, match="AdditiveAttention"):
        additive_attention_backward(DotAttention(), query, keys, query)
    with pytest.raises(ValueError, match=r"grad_context of shape \(3, 4\)"):
        additive_attention_backward(
            AdditiveAttention(D, D, 6).double(), query, keys, query[:, :2]
        )


@pytest.mark.parametrize("index", range(4))
def test_gradients_against_finite_differences(index):
    module = modules()[index]
    query, keys, mask = inputs()
    query.requires_grad_(True)
    keys.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda q, k: module(q, k, mask), (query, keys)
    )


# ------------------------------------- causal self-attention, a KV cache


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
