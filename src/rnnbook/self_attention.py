"""Causal self-attention with a key-value cache (Chapter 7).

The Transformer's attention layer (Vaswani et al., 2017, section 3.2),
the baseline against which Chapter 7 measures Mamba's generation: in
generation, each new position attends over the keys and values of every
earlier one, kept in a cache that grows with the context, where a
recurrent model keeps a state of constant size. Chapter 4's scoring
functions are in :mod:`rnnbook.attention`.

- :class:`CausalSelfAttention`: multi-head, causal; :meth:`forward` for a
  whole sequence, :meth:`step` for one new position with the cache;
- :class:`KVCache`: the cache, pre-allocated for its longest sequence.

Shapes (the package glossary): B batch size, T sequence length, D model
size, S cached positions, S_max the cache's capacity, Dh = D / heads.
"""

import math
from typing import NamedTuple

import torch
from torch import nn

from rnnbook._checks import check_int as _check_int
from rnnbook._checks import check_positive_int as _check_positive_int
from rnnbook._checks import check_tensor as _check_tensor


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
