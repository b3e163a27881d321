"""Attention: additive (Bahdanau), dot, general, scaled dot (Chapter 4).

Every module here answers the same call, ``attention(query, keys, mask=None)``,
and returns ``(context, weights)``:

.. math::
    e_j = \\mathrm{score}(q, k_j), \\qquad
    \\alpha_j = \\frac{\\exp e_j}{\\sum_{j'} \\exp e_{j'}}, \\qquad
    c = \\sum_j \\alpha_j k_j

(book eqs. ch4-score, ch4-softmax, ch4-context). The sums run over the valid
positions only: where ``mask`` is False the weight is exactly 0. In the
decoder of :mod:`rnnbook.seq2seq` the query is the decoder state
``s_{t-1}`` and the keys are the encoder's annotations ``h_j``, which are
also the values.

Shapes (the package glossary; ``S`` = source length):
``query`` ``(B, Dq)``, ``keys`` ``(B, S, Dk)``, ``mask`` ``(B, S)`` bool
(True = a real position), ``context`` ``(B, Dk)``, ``weights`` ``(B, S)``.

The scores, and where they come from:

- :class:`AdditiveAttention`: ``v^T tanh(W q + U k_j)``, Bahdanau, Cho &
  Bengio (2015, appendix A.1.2).
- :class:`DotAttention`: ``q^T k_j``, Luong, Pham & Manning (2015, §3.1).
- :class:`GeneralAttention`: ``q^T W k_j``, Luong et al.'s "general".
- :class:`ScaledDotAttention`: ``q^T k_j / sqrt(Dk)``, Vaswani et al. (2017).

:func:`additive_attention_backward` writes out the backward pass of the
additive score, softmax and context by hand; the tests check it against
autograd.
"""

import math

import torch
from torch import nn

from rnnbook._checks import check_positive_int as _check_positive_int
from rnnbook._checks import check_tensor as _check_tensor


def _check_inputs(query, keys, mask, query_size=None, key_size=None):
    """Validate the call; return ``(B, S)``."""
    q_text = "(B, Dq)" if query_size is None else f"(B, {query_size})"
    k_text = "(B, S, Dk)" if key_size is None else f"(B, S, {key_size})"
    _check_tensor("query", query, 2, q_text)
    _check_tensor("keys", keys, 3, k_text)
    B, S = keys.shape[:2]
    if query.shape[0] != B:
        raise ValueError(
            f"expected query and keys with the same batch size, got query "
            f"{tuple(query.shape)} and keys {tuple(keys.shape)}"
        )
    if query_size is not None and query.shape[1] != query_size:
        raise ValueError(
            f"expected query of shape {q_text}, got {tuple(query.shape)}"
        )
    if key_size is not None and keys.shape[2] != key_size:
        raise ValueError(
            f"expected keys of shape {k_text}, got {tuple(keys.shape)}"
        )
    if S == 0:
        raise ValueError(
            f"expected at least one key position, got keys {tuple(keys.shape)}"
        )
    if mask is not None:
        _check_tensor("mask", mask, 2, f"({B}, {S}) bool")
        if mask.dtype != torch.bool:
            raise TypeError(
                f"expected mask of dtype torch.bool (True = a real "
                f"position), got {mask.dtype}"
            )
        if tuple(mask.shape) != (B, S):
            raise ValueError(
                f"expected mask of shape {(B, S)}, got {tuple(mask.shape)}"
            )
        empty = ~mask.any(dim=1)
        if empty.any():
            rows = empty.nonzero().flatten().tolist()
            raise ValueError(
                f"mask rows {rows} are all False: a softmax over no "
                f"position is undefined (it would give NaN)"
            )
    return B, S


def masked_softmax(scores, mask=None):
    """``softmax_j`` over the positions where ``mask`` is True (ch4-softmax).

    Masked scores are set to ``-inf`` before the softmax, so their weight is
    ``exp(-inf) = 0`` exactly and the others sum to 1. Every row needs at
    least one True (checked by the modules before they call this).

    Args:
        scores: ``(B, S)``. mask: ``(B, S)`` bool or ``None``.

    Returns:
        ``(B, S)`` weights.
    """
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


class _Attention(nn.Module):
    """The shared call: scores, masked softmax, weighted sum of the keys."""

    query_size = key_size = None

    def score(self, query, projected_keys):
        """The scores ``e_j``, ``(B, S)``, from ``project_keys(keys)``."""
        raise NotImplementedError

    def project_keys(self, keys):
        """The part of the score that depends on the keys only (see score)."""
        return keys

    def forward(self, query, keys, mask=None, projected_keys=None):
        """Attend with ``query`` over ``keys``.

        Args:
            query: ``(B, Dq)``. keys: ``(B, S, Dk)``, also the values.
            mask: ``(B, S)`` bool, True at real positions, or ``None``.
            projected_keys: ``project_keys(keys)``, if the caller computed
                it once for many queries (a decoder does, per sentence).

        Returns:
            ``(context, weights)``: ``context`` ``(B, Dk)``, ``weights``
            ``(B, S)``, exactly 0 where ``mask`` is False, summing to 1.
        """
        _check_inputs(query, keys, mask, self.query_size, self.key_size)
        if projected_keys is None:
            projected_keys = self.project_keys(keys)
        scores = self.score(query, projected_keys)  # (B, S)
        weights = masked_softmax(scores, mask)
        context = torch.bmm(weights.unsqueeze(1), keys).squeeze(1)  # (B, Dk)
        return context, weights


class AdditiveAttention(_Attention):
    """Bahdanau et al.'s additive attention (2015, appendix A.1.2).

    .. math::
        e_j = v^\\top \\tanh(W q + U k_j)

    With ``q = s_{t-1}`` (the decoder's previous state) and ``k_j = h_j``
    (the encoder's annotation), ``e_j`` is the paper's ``e_ij``; ``W``,
    ``U``, ``v`` are its ``W_a``, ``U_a``, ``v_a``. No biases, as in the
    paper. ``U k_j`` does not depend on the query, so a decoder computes it
    once per sentence (:meth:`project_keys`), as the paper notes.

    Args:
        query_size: ``Dq``. key_size: ``Dk``. hidden_size: ``A``, the size
            of the hidden layer that scores a (query, key) pair.
    """

    def __init__(self, query_size, key_size, hidden_size):
        super().__init__()
        for name, value in (
            ("query_size", query_size),
            ("key_size", key_size),
            ("hidden_size", hidden_size),
        ):
            _check_positive_int(name, value)
        self.query_size, self.key_size = query_size, key_size
        self.W = nn.Linear(query_size, hidden_size, bias=False)
        self.U = nn.Linear(key_size, hidden_size, bias=False)
        self.v = nn.Linear(hidden_size, 1, bias=False)

    def project_keys(self, keys):
        """``U k_j`` for every ``j``, ``(B, S, A)``."""
        return self.U(keys)

    def score(self, query, projected_keys):
        """``e_j = v^T tanh(W q + U k_j)``, shape ``(B, S)``."""
        hidden = torch.tanh(
            self.W(query).unsqueeze(1) + projected_keys
        )  # (B, S, A)
        return self.v(hidden).squeeze(-1)  # (B, S)


class DotAttention(_Attention):
    """Luong et al.'s dot score, ``e_j = q^T k_j`` (2015, §3.1).

    No parameters; the query and the keys must have the same size.
    """

    def score(self, query, keys):
        if query.shape[1] != keys.shape[2]:
            raise ValueError(
                f"dot attention needs Dq = Dk, got query "
                f"{tuple(query.shape)} and keys {tuple(keys.shape)}"
            )
        return torch.bmm(keys, query.unsqueeze(2)).squeeze(2)  # (B, S)


class ScaledDotAttention(DotAttention):
    """Scaled dot score, ``e_j = q^T k_j / sqrt(Dk)`` (Vaswani et al. 2017).

    For ``q`` and ``k_j`` with independent unit-variance entries, ``q^T k_j``
    has variance ``Dk``; dividing by ``sqrt(Dk)`` keeps the scores' spread,
    and so the softmax's sharpness, independent of the size.
    """

    def score(self, query, keys):
        return super().score(query, keys) / math.sqrt(keys.shape[2])


class GeneralAttention(_Attention):
    """Luong et al.'s "general" score, ``e_j = q^T W k_j`` (2015, §3.1).

    Args:
        query_size: ``Dq``. key_size: ``Dk``. ``W`` is ``(Dq, Dk)``.
    """

    def __init__(self, query_size, key_size):
        super().__init__()
        _check_positive_int("query_size", query_size)
        _check_positive_int("key_size", key_size)
        self.query_size, self.key_size = query_size, key_size
        self.W = nn.Linear(key_size, query_size, bias=False)

    def project_keys(self, keys):
        """``W k_j`` for every ``j``, ``(B, S, Dq)``."""
        return self.W(keys)

    def score(self, query, projected_keys):
        return torch.bmm(projected_keys, query.unsqueeze(2)).squeeze(2)


def additive_attention_backward(
    attention, query, keys, grad_context, mask=None
):
    """The backward pass of additive attention, by hand (eqs. ch4-de, ch4-dh).

    Given ``g = dL/dc`` for ``c = sum_j alpha_j h_j`` (query ``s``, keys
    ``h_j``):

    .. math::
        \\frac{\\partial L}{\\partial \\alpha_j} = g^\\top h_j, \\qquad
        \\frac{\\partial L}{\\partial e_j} = \\alpha_j\\Big(g^\\top h_j
            - \\sum_{j'} \\alpha_{j'} g^\\top h_{j'}\\Big) = \\alpha_j\\,
            g^\\top (h_j - c),

    and with ``z_j = tanh(W s + U h_j)``, ``delta_j = dL/de_j (v * (1 -
    z_j^2))``:

    .. math::
        \\frac{\\partial L}{\\partial h_j} = \\underbrace{\\alpha_j\\, g}_{
            \\text{through } c} + \\underbrace{U^\\top \\delta_j}_{
            \\text{through } e_j}, \\qquad
        \\frac{\\partial L}{\\partial s} = W^\\top \\sum_j \\delta_j.

    The first term is the one-step path from the loss to every annotation:
    one multiplication by ``alpha_j``, however far ``j`` is from the output.

    Args:
        attention: an :class:`AdditiveAttention`.
        query: ``(B, Dq)``. keys: ``(B, S, Dk)``. grad_context: ``(B, Dk)``.
        mask: ``(B, S)`` bool or ``None``.

    Returns:
        ``(grad_query (B, Dq), grad_keys (B, S, Dk), grad_scores (B, S))``.
    """
    if not isinstance(attention, AdditiveAttention):
        raise TypeError(
            f"expected an AdditiveAttention, got {type(attention).__name__}"
        )
    B, S = _check_inputs(
        query, keys, mask, attention.query_size, attention.key_size
    )
    _check_tensor("grad_context", grad_context, 2, f"({B}, Dk)")
    if grad_context.shape != (B, keys.shape[2]):
        raise ValueError(
            f"expected grad_context of shape {(B, keys.shape[2])}, got "
            f"{tuple(grad_context.shape)}"
        )
    W, U, v = attention.W.weight, attention.U.weight, attention.v.weight[0]
    z = torch.tanh((query @ W.t()).unsqueeze(1) + keys @ U.t())  # (B, S, A)
    alpha = masked_softmax(z @ v, mask)  # (B, S)
    context = torch.einsum("bs,bsd->bd", alpha, keys)  # (B, Dk)
    grad_alpha = torch.einsum("bsd,bd->bs", keys, grad_context)  # g^T h_j
    grad_scores = alpha * (
        grad_alpha - (grad_context * context).sum(1, keepdim=True)
    )  # (B, S), alpha_j g^T (h_j - c); 0 where masked
    delta = grad_scores.unsqueeze(2) * v * (1 - z**2)  # (B, S, A)
    grad_keys = alpha.unsqueeze(2) * grad_context.unsqueeze(1) + delta @ U
    grad_query = delta.sum(1) @ W  # (B, Dq)
    return grad_query, grad_keys, grad_scores
