"""The vanilla RNN and backpropagation through time, in NumPy (Chapter 1).

The letters (``B``, ``T``, ``D``, ``H``) and the names ``xs``, ``hs``,
``dhs`` are the book's: see its notation page and the glossary in the
:mod:`rnnbook` package docstring. Two conventions of this module only:

- ``da`` is the gradient with respect to the pre-activation
  ``a_t = W_hh h_{t-1} + W_xh x_t + b``;
- row vectors: with a batch, ``h_t`` is a row of ``hs[:, t]``, so ``W h``
  becomes ``h @ W.T``. Everything is computed in float64.

Two implementations of the gradients live here, as the style guide asks:
full BPTT is one backward sweep vectorised over the batch
(:func:`state_gradients`, then one matrix product per parameter);
truncated BPTT (:func:`bptt` with ``truncate=k``) walks back from every
step separately, the slow but obviously-correct form of the definition;
:func:`chunked_bptt` is the chunked form, one backward sweep per chunk.
With ``k >= T`` the two must agree, and ``tests/test_numpy_rnn.py`` checks
that they do.
"""

import numpy as np

# ------------------------------------------------------------------- checks


def _array(name, value, ndim, shape_text):
    """``value`` as a finite float64 array with ``ndim`` dimensions.

    Real numbers only: a boolean or complex array is a ``TypeError`` (a
    silent cast would turn ``True`` into 1 or drop an imaginary part).
    """
    try:
        array = np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(
            f"expected {name} to be a real array of shape {shape_text}, "
            f"got {type(value).__name__}"
        ) from err
    if array.dtype.kind not in "iuf":  # signed, unsigned, float
        raise TypeError(
            f"expected {name} to be a real array of shape {shape_text}, "
            f"got {type(value).__name__} of dtype {array.dtype}"
        )
    array = array.astype(np.float64, copy=False)
    if array.ndim != ndim:
        raise ValueError(
            f"expected {name} of shape {shape_text} ({ndim} dims), "
            f"got {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"expected {name} of shape {shape_text} with finite values, "
            f"got {array.shape} containing NaN or inf"
        )
    return array


def _check_shape(name, array, expected, shape_text):
    if array.shape != tuple(expected):
        raise ValueError(
            f"expected {name} of shape {shape_text} = {tuple(expected)}, "
            f"got {array.shape}"
        )


def _check_params(xs, W_xh, W_hh, b):
    """Check ``xs, W_xh, W_hh, b``; return them and ``(B, T, D, H)``."""
    xs = _array("xs", xs, 3, "(B, T, D)")
    W_hh = _array("W_hh", W_hh, 2, "(H, H)")
    W_xh = _array("W_xh", W_xh, 2, "(H, D)")
    b = _array("b", b, 1, "(H,)")
    B, T, D = xs.shape
    H = W_hh.shape[0]
    _check_shape("W_hh", W_hh, (H, H), "(H, H)")
    _check_shape("W_xh", W_xh, (H, D), "(H, D)")
    _check_shape("b", b, (H,), "(H,)")
    return xs, W_xh, W_hh, b, (B, T, D, H)


def _check_truncate(truncate, name="truncate", allow_none=True):
    """``None`` or ``truncate`` as an int >= 1 (numpy integers welcome)."""
    expected = "None or a positive int" if allow_none else "a positive int"
    if truncate is None and allow_none:
        return None
    if isinstance(truncate, bool) or not isinstance(
        truncate, (int, np.integer)
    ):
        raise TypeError(
            f"expected {name} to be {expected}, "
            f"got {type(truncate).__name__} {truncate!r}"
        )
    if truncate < 1:
        raise ValueError(f"expected {name} to be {expected}, got {truncate}")
    return int(truncate)


# ------------------------------------------------------------------ forward


def rnn_forward(W_xh, W_hh, b, xs, h0):
    """Run the vanilla RNN over a batch of sequences (eq. ``ch1-rnn``).

    .. math::

        h_t = \\tanh(W_{hh} h_{t-1} + W_{xh} x_t + b), \\quad t = 1..T.

    Args:
        W_xh: input-to-hidden matrix, shape ``(H, D)``.
        W_hh: hidden-to-hidden matrix, shape ``(H, H)``.
        b: bias, shape ``(H,)``.
        xs: inputs, shape ``(B, T, D)``; ``T = 0`` gives ``hs = h0``.
        h0: initial states, shape ``(B, H)``.

    Returns:
        ``hs``, shape ``(B, T+1, H)``, with ``hs[:, 0] = h0`` and
        ``hs[:, t] = tanh(xs[:, t-1] @ W_xh.T + hs[:, t-1] @ W_hh.T + b)``.

    Raises:
        TypeError: an argument that is not a real (non-bool) array.
        ValueError: the wrong number of dimensions, a size that does not
            match the others, or a non-finite value.
    """
    xs, W_xh, W_hh, b, (B, T, D, H) = _check_params(xs, W_xh, W_hh, b)
    h0 = _array("h0", h0, 2, "(B, H)")
    _check_shape("h0", h0, (B, H), "(B, H)")
    hs = np.empty((B, T + 1, H))
    hs[:, 0] = h0
    inputs = xs @ W_xh.T + b  # (B, T, H): every step's input part at once
    for t in range(1, T + 1):
        hs[:, t] = np.tanh(inputs[:, t - 1] + hs[:, t - 1] @ W_hh.T)
    return hs


# ----------------------------------------------------------------- backward


def step_jacobian(W_hh, h_t):
    """One transition's Jacobian, ``diag(1 - h_t^2) W_hh`` (``ch1-jacobian``).

    Args:
        W_hh: hidden-to-hidden matrix, shape ``(H, H)``.
        h_t: the states after the transition, shape ``(B, H)``.

    Returns:
        ``J``, shape ``(B, H, H)``, with
        ``J[n, i, j] = d h_t[n, i] / d h_{t-1}[n, j]``.
    """
    h_t = _array("h_t", h_t, 2, "(B, H)")
    W_hh = _array("W_hh", W_hh, 2, "(H, H)")
    _check_shape("W_hh", W_hh, (h_t.shape[1], h_t.shape[1]), "(H, H)")
    return (1.0 - h_t**2)[:, :, None] * W_hh[None, :, :]  # (B, H, H)


def state_gradients(W_hh, hs, dhs):
    """The loss's total gradient for every state (eq. ``ch1-recursion``).

    .. math::

        \\frac{\\partial L}{\\partial h_T}
          = \\frac{\\partial L_T}{\\partial h_T}, \\qquad
        \\frac{\\partial L}{\\partial h_{t-1}}
          = \\frac{\\partial L_{t-1}}{\\partial h_{t-1}}
          + \\frac{\\partial L}{\\partial h_t}
            \\,\\mathrm{diag}(1 - h_t^2)\\, W_{hh},

    one backward sweep from ``t = T`` to ``t = 1``; there is no loss term
    at ``h_0``.

    Args:
        W_hh: hidden-to-hidden matrix, shape ``(H, H)``.
        hs: states from :func:`rnn_forward`, shape ``(B, T+1, H)``.
        dhs: per-step loss gradients ``dL_t/dh_t``, shape ``(B, T, H)``.

    Returns:
        ``dL/dhs``, shape ``(B, T+1, H)``; entry ``[:, 0]`` is the
        gradient for ``h_0``. With ``T = 0`` there is no loss: all zeros.
    """
    hs = _array("hs", hs, 3, "(B, T+1, H)")
    W_hh = _array("W_hh", W_hh, 2, "(H, H)")
    B, T1, H = hs.shape
    if T1 == 0:
        raise ValueError(
            "expected hs of shape (B, T+1, H) holding at least h_0, "
            f"got {hs.shape}"
        )
    _check_shape("W_hh", W_hh, (H, H), "(H, H)")
    dhs = _array("dhs", dhs, 3, "(B, T, H)")
    _check_shape("dhs", dhs, (B, T1 - 1, H), "(B, T, H)")
    grads = np.zeros_like(hs)
    if T1 == 1:  # T = 0: an empty sum of losses
        return grads
    grads[:, -1] = dhs[:, -1]
    for t in range(T1 - 1, 0, -1):
        da = grads[:, t] * (1.0 - hs[:, t] ** 2)  # (B, H): through tanh
        grads[:, t - 1] = da @ W_hh  # (B, H): row form of W_hh^T da
        if t > 1:
            grads[:, t - 1] += dhs[:, t - 2]  # step t-1's own loss term
    return grads


def _truncated_preactivation_grads(W_hh, hs, dhs, k):
    """``da (B, T, H)`` and ``dh0 (B, H)`` of truncated BPTT, term by term.

    The term of step ``t`` walks back through the transitions
    ``t, t-1, ..., max(1, t-k+1)`` and adds its contribution to each one's
    pre-activation gradient; it reaches ``h_0`` only if it walked all the
    way back (``t <= k``). Cost ``O(T k B H^2)``.
    """
    B, T1, H = hs.shape
    da_sum = np.zeros((B, T1 - 1, H))
    dh0 = np.zeros((B, H))
    for t in range(1, T1):
        g = dhs[:, t - 1]  # (B, H): dL_t/dh_t
        first = max(1, t - k + 1)
        for s in range(t, first - 1, -1):
            da = g * (1.0 - hs[:, s] ** 2)  # (B, H)
            da_sum[:, s - 1] += da
            g = da @ W_hh  # d L_t / d h_{s-1} along this truncated path
        if first == 1:
            dh0 += g
    return da_sum, dh0


def bptt(W_xh, W_hh, b, xs, hs, dhs, truncate=None):
    """Gradients of ``L = sum_t L_t`` (eqs. ``ch1-grad-Whh``-``ch1-grad-b``).

    Each parameter's gradient is a sum over time of "immediate" terms, as
    in Pascanu, Mikolov & Bengio (2013), eqs. 3-5 (their ``x_t`` is the
    pre-activation, our ``a_t``):

    .. math::

        \\frac{\\partial L}{\\partial W_{hh}}
          = \\sum_{t=1}^{T} \\delta_t\\, h_{t-1}^\\top, \\quad
        \\frac{\\partial L}{\\partial W_{xh}}
          = \\sum_{t=1}^{T} \\delta_t\\, x_t^\\top, \\quad
        \\frac{\\partial L}{\\partial b} = \\sum_{t=1}^{T} \\delta_t,

    where ``delta_t = diag(1 - h_t^2) (dL/dh_t)^T`` is the gradient at the
    pre-activation ``a_t``, and ``dL/dh_t`` comes from
    :func:`state_gradients` (eq. ``ch1-recursion``). Summed over the
    batch, so a mean loss must already be scaled in ``dhs``.

    Truncation (``truncate=k``, eq. ``ch1-truncated``): the loss term of
    step ``t`` is propagated back through at most ``k`` transitions, so it
    reaches ``hs[:, max(0, t-k)]``, and it contributes to the gradient of
    ``h_0`` only if ``t <= k``. This is the truncation Williams & Zipser
    (1995) call BPTT(k), with every term cut at exactly ``k``
    transitions; online it was run with an update after every step
    (BPTT(h; h') with ``h' = 1``). With ``k >= T`` it equals full BPTT.
    :func:`chunked_bptt` is the chunked form that training runs.

    Args:
        W_xh, W_hh, b: the parameters, ``(H, D)``, ``(H, H)``, ``(H,)``.
        xs: inputs, shape ``(B, T, D)``.
        hs: states from :func:`rnn_forward`, shape ``(B, T+1, H)``.
        dhs: ``dL_t/dh_t`` from the per-step losses only, ``(B, T, H)``.
        truncate: ``None`` for full BPTT, or a positive int ``k``.

    Returns:
        A dict with keys ``'W_xh', 'W_hh', 'b', 'h0'``: gradients with the
        shapes of ``W_xh``, ``W_hh``, ``b`` and ``h0 (B, H)``.

    Raises:
        TypeError: a non-real array, or a ``truncate`` that is not None
            or an int (bools are not ints here).
        ValueError: wrong dimensions, mismatched sizes, non-finite values,
            or ``truncate < 1``.
    """
    xs, W_xh, W_hh, b, (B, T, D, H) = _check_params(xs, W_xh, W_hh, b)
    hs = _array("hs", hs, 3, "(B, T+1, H)")
    _check_shape("hs", hs, (B, T + 1, H), "(B, T+1, H)")
    dhs = _array("dhs", dhs, 3, "(B, T, H)")
    _check_shape("dhs", dhs, (B, T, H), "(B, T, H)")
    truncate = _check_truncate(truncate)

    if truncate is None:
        dh = state_gradients(W_hh, hs, dhs)  # (B, T+1, H)
        da = dh[:, 1:] * (1.0 - hs[:, 1:] ** 2)  # (B, T, H): every delta_t
        dh0 = dh[:, 0]  # (B, H)
    else:
        da, dh0 = _truncated_preactivation_grads(W_hh, hs, dhs, truncate)

    return _parameter_grads(xs, hs, da, dh0)


def _parameter_grads(xs, hs, da, dh0):
    """The sums over time and batch of eqs. ``ch1-grad-Whh``-``ch1-grad-b``.

    One matrix product each, from the pre-activation gradients
    ``da (B, T, H)``; ``dh0 (B, H)`` is passed through.
    """
    B, T, D = xs.shape
    H = hs.shape[2]
    da_flat = da.reshape(B * T, H)
    return {
        "W_xh": da_flat.T @ xs.reshape(B * T, D),  # (H, D)
        "W_hh": da_flat.T @ hs[:, :-1].reshape(B * T, H),  # (H, H)
        "b": da_flat.sum(axis=0),  # (H,)
        "h0": dh0,  # (B, H)
    }


def chunked_bptt(W_xh, W_hh, b, xs, hs, dhs, chunk):
    """The gradient that chunked truncated BPTT sums, at fixed weights.

    The steps ``1..T`` are cut into chunks of ``chunk`` steps. Each chunk's
    loss terms are backpropagated by :func:`state_gradients` to the state
    the chunk starts from, and no further: that state is treated as a
    constant (``h.detach()`` in PyTorch). A term ``L_t`` therefore reaches
    back only to the start of its own chunk, through between 1 and
    ``chunk`` transitions, where the exact truncation ``bptt(...,
    truncate=chunk)`` (eq. ``ch1-truncated``) gives every term ``chunk``.
    This is Williams & Zipser's BPTT(h; h') with ``h = h' = chunk``.
    Training updates the weights after every chunk; this function sums
    the chunks' gradients at one set of weights, to compare them with
    the full gradient.

    Args:
        W_xh, W_hh, b, xs, hs, dhs: as for :func:`bptt`.
        chunk: steps per chunk, a positive int (``chunk >= T``: one chunk,
            full BPTT).

    Returns:
        A dict with keys ``'W_xh', 'W_hh', 'b', 'h0'``, as :func:`bptt`.
    """
    xs, W_xh, W_hh, b, (B, T, D, H) = _check_params(xs, W_xh, W_hh, b)
    hs = _array("hs", hs, 3, "(B, T+1, H)")
    _check_shape("hs", hs, (B, T + 1, H), "(B, T+1, H)")
    dhs = _array("dhs", dhs, 3, "(B, T, H)")
    _check_shape("dhs", dhs, (B, T, H), "(B, T, H)")
    chunk = _check_truncate(chunk, "chunk", allow_none=False)
    da = np.zeros((B, T, H))
    dh0 = np.zeros((B, H))
    for start in range(0, T, chunk):
        stop = min(start + chunk, T)
        # the chunk's states h_start .. h_stop and its loss terms only
        dh = state_gradients(W_hh, hs[:, start : stop + 1], dhs[:, start:stop])
        da[:, start:stop] = dh[:, 1:] * (
            1.0 - hs[:, start + 1 : stop + 1] ** 2
        )
        if start == 0:
            dh0 = dh[:, 0]  # only the first chunk starts from h_0
    return _parameter_grads(xs, hs, da, dh0)
