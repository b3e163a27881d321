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
from typing import NamedTuple

import torch
from torch import nn

from rnnbook._checks import check_int as _check_int
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


# ------------------------------------- causal self-attention, a KV cache


class KVCache(NamedTuple):
    """The key-value cache of :class:`CausalSelfAttention`, pre-allocated.

    ``keys``, ``values`` ``(B, heads, S_max, Dh)``: room for S_max
    positions, of which the first ``length`` hold the keys and values of
    the positions seen so far; the rest is not read. Its memory is fixed
    when it is made (:meth:`CausalSelfAttention.empty_cache`), as in
    generation code that allocates the cache for the longest sequence once.
    """

    keys: torch.Tensor
    values: torch.Tensor
    length: int


class CausalSelfAttention(nn.Module):
    """Causal multi-head self-attention with a key-value cache (Chapter 7).

    The Transformer's layer (Vaswani et al., 2017, section 3.2), the
    baseline against which Chapter 7 measures Mamba's generation. For each
    position t of x (B, T, D) and each of ``heads`` heads of size
    Dh = D / heads:

        q_t, k_t, v_t = W_q x_t, W_k x_t, W_v x_t      (split into heads)
        alpha_tj = softmax_{j <= t}(q_t . k_j / sqrt(Dh))
        o_t = sum_{j <= t} alpha_tj v_j,   y_t = W_o [o_t of every head]

    Position t attends to positions 0..t only (causal). :meth:`forward`
    computes every position at once; :meth:`step` computes one new
    position in generation, keeping every earlier k_j and v_j in a
    :class:`KVCache`: 2 S D numbers per sequence after S tokens, growing
    with the context, where a recurrent model such as Mamba keeps a state
    of constant size.

    Args:
        D: the model size, a positive int.
        heads: the number of heads, a positive int dividing D.

    Shapes: B batch size, T sequence length, D model size, S cached
    positions, S_max the cache's capacity, Dh = D / heads.
    """

    def __init__(self, D, heads=1):
        super().__init__()
        D = _check_positive_int("D", D)
        heads = _check_positive_int("heads", heads)
        if D % heads:
            raise ValueError(
                f"expected heads to divide D, got D={D} and heads={heads}"
            )
        self.D, self.heads = D, heads
        self.qkv = nn.Linear(D, 3 * D, bias=False)  # W_q, W_k, W_v stacked
        self.out = nn.Linear(D, D, bias=False)  # W_o

    def _split(self, x):
        """(B, T, 3D) -> q, k, v, each (B, heads, T, Dh)."""
        B, T, _ = x.shape
        qkv = x.view(B, T, 3, self.heads, self.D // self.heads)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)

    def _merge(self, o):
        """(B, heads, T, Dh) -> W_o applied to the heads side by side."""
        B, _, T, _ = o.shape
        return self.out(o.transpose(1, 2).reshape(B, T, self.D))

    def forward(self, x):
        """All positions at once.

        Args:
            x: (B, T, D).

        Returns:
            y: (B, T, D), y_t depending on x_0..x_t only.
        """
        _check_tensor("x", x, 3, f"(B, T, {self.D})", real=True)
        if x.shape[2] != self.D:
            raise ValueError(
                f"expected x of shape (B, T, {self.D}), got {tuple(x.shape)}"
            )
        T = x.shape[1]
        q, k, v = self._split(self.qkv(x))  # (B, heads, T, Dh)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        later = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(later, float("-inf"))  # j > t: weight 0
        return self._merge(torch.softmax(scores, dim=-1) @ v)

    def empty_cache(self, batch_size, max_len, dtype=None, device=None):
        """A :class:`KVCache` with room for ``max_len`` positions, empty.

        Two (batch_size, heads, max_len, Dh) tensors, allocated once
        (their content is not read until :meth:`step` writes it), and
        length 0. dtype and device default to the weights'.
        """
        batch_size = _check_positive_int("batch_size", batch_size)
        max_len = _check_positive_int("max_len", max_len)
        like = self.out.weight
        shape = (batch_size, self.heads, max_len, self.D // self.heads)
        keys, values = (
            torch.empty(
                shape, dtype=dtype or like.dtype, device=device or like.device
            )
            for _ in "kv"
        )
        return KVCache(keys, values, 0)

    def _check_cache(self, cache, x_t):
        if not isinstance(cache, KVCache):
            raise TypeError(
                "expected cache to be a KVCache (see empty_cache), got "
                f"{type(cache).__name__}"
            )
        B, Dh = x_t.shape[0], self.D // self.heads
        text = f"({B}, {self.heads}, S_max, {Dh})"
        for name, c in zip(("keys", "values"), cache[:2]):
            _check_tensor(f"cache {name}", c, 4, text, real=True)
            if (c.shape[:2], c.shape[3]) != ((B, self.heads), Dh) or (
                c.shape != cache.keys.shape
            ):
                raise ValueError(
                    f"expected cache {name} of shape {text} like the keys, "
                    f"got {tuple(c.shape)}"
                )
            if c.dtype != x_t.dtype or c.device != x_t.device:
                raise ValueError(
                    f"expected cache {name} of x_t's dtype {x_t.dtype} on "
                    f"{x_t.device}, got {c.dtype} on {c.device}"
                )
        length = _check_int("cache length", cache.length, 0)
        S_max = cache.keys.shape[2]
        if length >= S_max:
            raise ValueError(
                f"expected cache length in 0..{S_max - 1} (room for one more "
                f"position), got {length}: the cache is "
                + ("full" if length == S_max else "mismatched")
            )
        return length

    def step(self, x_t, cache):
        """One new position, attending over the cache and itself.

        Writes this position's key and value IN PLACE at index
        ``cache.length`` of the cache's tensors (no copy of the cache) and
        attends over positions 0..length. Meant for generation under
        :func:`torch.no_grad`: autograd would see the in-place writes.

        Args:
            x_t: (B, D), the input at the new position t.
            cache: the :class:`KVCache` from :meth:`empty_cache` or from
                the previous step, with length = t < S_max.

        Returns:
            ``(y_t, cache)``: y_t (B, D), equal to ``forward(x)[:, t]``;
            ``KVCache(keys, values, t + 1)``, the same storage as the cache
            given. Raises ValueError when the cache is full (t = S_max) or
            does not match x_t.
        """
        _check_tensor("x_t", x_t, 2, f"(B, {self.D})", real=True)
        if x_t.shape[1] != self.D:
            raise ValueError(
                f"expected x_t of shape (B, {self.D}), got {tuple(x_t.shape)}"
            )
        t = self._check_cache(cache, x_t)
        keys, values, _ = cache
        q, k, v = self._split(self.qkv(x_t[:, None]))  # (B, heads, 1, Dh)
        keys[:, :, t : t + 1] = k  # in place: no copy of the cache
        values[:, :, t : t + 1] = v
        k, v = keys[:, :, : t + 1], values[:, :, : t + 1]  # (B, h, t+1, Dh)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        o = torch.softmax(scores, dim=-1) @ v  # (B, heads, 1, Dh)
        return self._merge(o)[:, 0], KVCache(keys, values, t + 1)
