"""rnnbook.attention: slow-loop scores, masking, the hand-written backward."""

import math

import pytest
import torch

from rnnbook.attention import (
    AdditiveAttention,
    DotAttention,
    GeneralAttention,
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
