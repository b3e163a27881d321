"""Probes: what the chapters measure on recurrent networks (Chapter 3).

Gradient flow (how much of ``dE/ds_T`` reaches ``s_0``), the LSTM's
one-step Jacobian in closed form, the forget gates along a sequence, the
adding-problem models and batches the chapter trains with
:func:`rnnbook.train.train`, and small checks (agreement with PyTorch,
input sensitivity, timing, the exercises' checkers).

This module sits one row above the models: it imports :mod:`rnnbook.gated`
and :mod:`rnnbook.torch_rnn`, and no model imports it. The letters are the
package's glossary (see the notation page and :mod:`rnnbook`).
"""

import math
import numbers
import time

import numpy as np
import torch

from rnnbook._checks import check_int, check_shape, check_tensor
from rnnbook.gated import FinalStateReadout, gru_step, lstm_step
from rnnbook.tasks import adding_problem
from rnnbook.torch_rnn import VanillaRNN, init_weights

# --------------------------------------------------------- gradient flow


def copies_jacobian(out, leaf):
    """The Jacobian ``d out / d leaf`` of one sequence run as ``H`` copies.

    ``leaf`` and ``out`` are ``(H, H)``: row ``k`` is copy ``k`` of the
    same computation. Seeding copy ``k``'s output gradient with the unit
    vector ``e_k`` makes row ``k`` of ``leaf``'s gradient row ``k`` of the
    Jacobian, so one backward pass gives the whole ``H x H`` matrix
    ``J[k, j] = d out_k / d leaf_j``.

    Args:
        out: ``(H, H)``, computed from ``leaf``; its graph is kept.
        leaf: ``(H, H)``, identical rows, ``requires_grad=True``.

    Returns:
        ``J`` ``(H, H)``, a constant (no graph).
    """
    check_tensor("out", out, 2, "(H, H)")
    check_shape("leaf", leaf, tuple(out.shape))
    check_shape("out", out, (out.shape[1], out.shape[1]))
    eye = torch.eye(out.shape[1], dtype=out.dtype)
    (J,) = torch.autograd.grad(out, leaf, grad_outputs=eye, retain_graph=True)
    return J


def _spectral_norm(J):
    return torch.linalg.matrix_norm(J, ord=2).item()


def _lags(lags):
    """Sorted positive integer lags, as a list of ints."""
    if isinstance(lags, (str, bytes)) or not hasattr(lags, "__iter__"):
        raise TypeError(
            f"expected lags to be a list of ints, got {type(lags).__name__}"
        )
    lags = list(lags)
    for T in lags:
        if not isinstance(T, numbers.Integral) or isinstance(T, bool):
            raise TypeError(f"expected integer lags, got {T!r}")
    if not lags or min(lags) < 1 or lags != sorted(set(lags)):
        raise ValueError(
            f"expected increasing positive lags, at least one, got {lags}"
        )
    return [int(T) for T in lags]


def _sequence(x, D):
    """One input sequence ``x`` ``(T, D)``, float64."""
    check_tensor("x", x, 2, f"(T, D) with D={D}")
    if x.shape[1] != D:
        raise ValueError(
            f"expected x of shape (T, D) with D={D}, got {tuple(x.shape)}"
        )
    if x.dtype != torch.float64:
        raise TypeError(
            f"expected x in float64 (the probes' precision), got {x.dtype}"
        )


def lstm_weights(module):
    """``(W_ih, W_hh, b)`` of a one-layer LSTM, with ``b = b_ih + b_hh``.

    Accepts :class:`rnnbook.gated.LSTMCell`, ``torch.nn.LSTMCell``, or a
    one-layer, one-direction :class:`rnnbook.gated.LSTM` or
    ``torch.nn.LSTM`` (its layer 0). Shapes ``(4H, D)``, ``(4H, H)``,
    ``(4H,)``; the tensors are the module's own parameters.
    """
    for suffix in ("", "_l0"):
        W_ih = getattr(module, "weight_ih" + suffix, None)
        if W_ih is not None:
            break
    else:
        raise TypeError(
            "expected an LSTM cell or one-layer LSTM, "
            f"got {type(module).__name__}"
        )
    layers = getattr(module, "num_layers", 1)
    if layers != 1 or getattr(module, "bidirectional", False):
        raise ValueError(
            "expected a one-layer, one-direction LSTM, got "
            f"num_layers={layers}, bidirectional={module.bidirectional}"
        )
    W_hh = getattr(module, "weight_hh" + suffix)
    b_ih = getattr(module, "bias_ih" + suffix, None)
    if b_ih is None:
        b = torch.zeros(W_hh.shape[0], dtype=W_hh.dtype)
    else:
        b = b_ih + getattr(module, "bias_hh" + suffix)
    return W_ih, W_hh, b


def lstm_gradient_flow(cell, x, lags, cell_path_only=False):
    """Spectral norms of ``dc_T/dc_0`` and ``dh_T/dh_0`` of an LSTM.

    The LSTM (:func:`rnnbook.gated.lstm_step`) reads one sequence from
    ``h_0 = c_0 = 0``; for every ``T`` in ``lags`` autograd gives the
    ``H x H`` Jacobians (:func:`copies_jacobian`). With ``cell_path_only``
    the hidden state is detached where it enters the gates, which leaves
    only the path of book equation ``ch3-cell-jac``:
    ``dc_T/dc_0 = prod_t diag(f_t)``.

    Args:
        cell: an LSTM cell or one-layer LSTM (see :func:`lstm_weights`).
        x: ``(T_max, D)``, one input sequence, float64.
        lags: increasing positive ints, the largest ``T_max`` at most.
        cell_path_only: detach ``h`` where it enters the gates.

    Returns:
        A dict of float arrays of ``len(lags)``: ``"dc"``
        ``||dc_T/dc_0||_2`` and ``"dh"`` ``||dh_T/dh_0||_2`` (NaN with
        ``cell_path_only``, where it is not defined).
    """
    W_ih, W_hh, b = lstm_weights(cell)
    _sequence(x, W_ih.shape[1])
    lags = _lags(lags)
    if lags[-1] > len(x):
        raise ValueError(
            f"expected lags up to len(x) = {len(x)}, got {lags[-1]}"
        )
    H = W_hh.shape[1]
    W_ih, W_hh, b = W_ih.double(), W_hh.double(), b.double()
    # H copies of the same sequence, one per row
    h0 = torch.zeros(H, H, dtype=x.dtype, requires_grad=True)
    c0 = torch.zeros(H, H, dtype=x.dtype, requires_grad=True)
    h, c = h0, c0
    dc, dh = [], []
    for t in range(1, lags[-1] + 1):
        x_proj = (x[t - 1] @ W_ih.T + b).expand(H, -1)  # (H, 4H)
        h_in = h.detach() if cell_path_only else h
        h, c = lstm_step(x_proj, h_in, c, W_hh)
        if t in lags:
            dc.append(_spectral_norm(copies_jacobian(c, c0)))
            if cell_path_only:
                dh.append(float("nan"))
            else:
                dh.append(_spectral_norm(copies_jacobian(h, h0)))
    return {"dc": np.array(dc), "dh": np.array(dh)}


@torch.no_grad()
def forget_gates(cell, x):
    """The forget gates ``f_t`` along one sequence, shape ``(T, H)``.

    ``f_t = sigma(x_t W_if^T + h_{t-1} W_hf^T + b_f)`` (book ``ch3-gates``)
    for the LSTM reading ``x`` from zero states.

    Args:
        cell: an LSTM cell or one-layer LSTM (see :func:`lstm_weights`).
        x: ``(T, D)``, one input sequence, float64.
    """
    W_ih, W_hh, b = lstm_weights(cell)
    _sequence(x, W_ih.shape[1])
    W_ih, W_hh, b = W_ih.double(), W_hh.double(), b.double()
    H = W_hh.shape[1]
    h = c = torch.zeros(1, H, dtype=torch.float64)
    f = []
    for t in range(len(x)):
        x_proj = (x[t] @ W_ih.T + b)[None]  # (1, 4H)
        a_f = (x_proj + h @ W_hh.T)[0, H : 2 * H]
        f.append(torch.sigmoid(a_f))
        h, c = lstm_step(x_proj, h, c, W_hh)
    return torch.stack(f)  # (T, H)


def rnn_gradient_flow(W_xh, W_hh, b, x, lags):
    """``||dh_T/dh_0||_2`` of a vanilla tanh RNN, for ``T`` in ``lags``.

    ``h_t = tanh(W_xh x_t + W_hh h_{t-1} + b)`` from ``h_0 = 0``, the
    Jacobians by autograd (:func:`copies_jacobian`).

    Args:
        W_xh: ``(H, D)``. W_hh: ``(H, H)``. b: ``(H,)``.
        x: ``(T_max, D)``, one input sequence, float64.
        lags: increasing positive ints, at most ``T_max``.

    Returns:
        A float array of ``len(lags)``.
    """
    check_tensor("W_hh", W_hh, 2, "(H, H)")
    H = W_hh.shape[0]
    check_shape("W_hh", W_hh, (H, H))
    check_tensor("W_xh", W_xh, 2, f"(H, D) with H={H}")
    check_shape("W_xh", W_xh, (H, W_xh.shape[1]))
    check_shape("b", b, (H,))
    _sequence(x, W_xh.shape[1])
    lags = _lags(lags)
    if lags[-1] > len(x):
        raise ValueError(
            f"expected lags up to len(x) = {len(x)}, got {lags[-1]}"
        )
    W_xh, W_hh, b = (p.detach().double() for p in (W_xh, W_hh, b))
    h0 = torch.zeros(H, H, dtype=torch.float64, requires_grad=True)
    h, norms = h0, []
    for t in range(1, lags[-1] + 1):
        h = torch.tanh(x[t - 1] @ W_xh.T + h @ W_hh.T + b)  # (H, H)
        if t in lags:
            norms.append(_spectral_norm(copies_jacobian(h, h0)))
    return np.array(norms)


def lstm_step_jacobian(x_proj, h, c, W_hh):
    """The Jacobian of one LSTM step with respect to its state, closed form.

    Book equation ``ch3-full-jac``. The state is the pair ``(c, h)``; for
    one sequence (``B = 1``) the step ``(c_{t-1}, h_{t-1}) -> (c_t, h_t)``
    of :func:`rnnbook.gated.lstm_step` has the block Jacobian

    .. math::
        \\frac{\\partial (c_t, h_t)}{\\partial (c_{t-1}, h_{t-1})} =
        \\begin{pmatrix} F_t & M_t \\\\ D_t F_t & D_t M_t + P_t
        \\end{pmatrix}

    with ``F_t = diag(f_t)``, ``D_t = diag(o_t * tanh'(c_t))``,
    ``P_t = diag(tanh(c_t) * sigma'(a_o)) W_ho`` and
    ``M_t = diag(c_{t-1} * sigma'(a_f)) W_hf + diag(g_t * sigma'(a_i)) W_hi
    + diag(i_t * tanh'(a_g)) W_hg``, where ``W_hi, W_hf, W_hg, W_ho`` are
    the gates' row blocks of ``W_hh``. Over many steps the Jacobian is the
    product of these matrices; the cell path keeps only ``F_t``.

    Args:
        x_proj: ``(1, 4H)``, the input's share of the gates.
        h: ``(1, H)``, ``h_{t-1}``.
        c: ``(1, H)``, ``c_{t-1}``.
        W_hh: ``(4H, H)``, rows ``(i, f, g, o)``.

    Returns:
        ``(2H, 2H)``: rows ``(c_t, h_t)``, columns ``(c_{t-1}, h_{t-1})``.
    """
    lstm_step(x_proj, h, c, W_hh)  # validates the shapes
    check_shape("h", h, (1, W_hh.shape[1]))  # one sequence
    a = (x_proj + h @ W_hh.T)[0]  # (4H,): the pre-activations
    a_i, a_f, a_g, a_o = a.chunk(4)
    i, f, g, o = a_i.sigmoid(), a_f.sigmoid(), a_g.tanh(), a_o.sigmoid()
    W_hi, W_hf, W_hg, W_ho = W_hh.chunk(4)  # (H, H) each
    c_prev = c[0]
    s = torch.tanh(f * c_prev + i * g)  # tanh(c_t)
    # diag(v) W is v[:, None] * W
    M_t = (
        (c_prev * f * (1 - f))[:, None] * W_hf
        + (g * i * (1 - i))[:, None] * W_hi
        + (i * (1 - g**2))[:, None] * W_hg
    )
    F_t = torch.diag(f)
    D_t = torch.diag(o * (1 - s**2))
    P_t = (s * o * (1 - o))[:, None] * W_ho
    top = torch.cat([F_t, M_t], dim=1)
    bottom = torch.cat([D_t @ F_t, D_t @ M_t + P_t], dim=1)
    return torch.cat([top, bottom])  # (2H, 2H)


@torch.no_grad()
def lstm_jacobian_product(cell, x, lags):
    """``||dc_T/dc_0||`` and ``||dh_T/dh_0||`` from the closed form.

    Multiplies :func:`lstm_step_jacobian` along the sequence (no autograd)
    and returns the norms of the ``(c, c)`` and ``(h, h)`` blocks of the
    product, to compare with :func:`lstm_gradient_flow`, and of the whole
    ``2H x 2H`` product, ``||d(c_T, h_T)/d(c_0, h_0)||_2`` (key
    ``"full"``), the LSTM's counterpart of a vanilla RNN's ``dh_T/dh_0``.

    Args and returns: as :func:`lstm_gradient_flow` (without
    ``cell_path_only``), plus ``"full"``.
    """
    W_ih, W_hh, b = lstm_weights(cell)
    _sequence(x, W_ih.shape[1])
    lags = _lags(lags)
    W_ih, W_hh, b = W_ih.double(), W_hh.double(), b.double()
    H = W_hh.shape[1]
    h = c = torch.zeros(1, H, dtype=torch.float64)
    J = torch.eye(2 * H, dtype=torch.float64)
    dc, dh, full = [], [], []
    for t in range(1, lags[-1] + 1):
        x_proj = (x[t - 1] @ W_ih.T + b)[None]  # (1, 4H)
        J = lstm_step_jacobian(x_proj, h, c, W_hh) @ J
        h, c = lstm_step(x_proj, h, c, W_hh)
        if t in lags:
            dc.append(_spectral_norm(J[:H, :H]))
            dh.append(_spectral_norm(J[H:, H:]))
            full.append(_spectral_norm(J))
    return {"dc": np.array(dc), "dh": np.array(dh), "full": np.array(full)}


def gru_weights(module):
    """``(W_ih, W_hh, b_ih, b_hh)`` of a GRU cell or one-layer GRU.

    Accepts :class:`rnnbook.gated.GRUCell`, ``torch.nn.GRUCell``, or a
    one-layer, one-direction :class:`rnnbook.gated.GRU` or
    ``torch.nn.GRU``. Shapes ``(3H, D)``, ``(3H, H)``, ``(3H,)``,
    ``(3H,)``, rows ``(r, z, n)``; zero biases if the module has none.
    """
    W_ih, W_hh, b = lstm_weights(module)  # the same attribute names
    if W_hh.shape[0] != 3 * W_hh.shape[1]:
        raise TypeError(
            f"expected a GRU (3H gate rows), got {type(module).__name__} "
            f"with {W_hh.shape[0]} rows for H = {W_hh.shape[1]}"
        )
    suffix = "" if hasattr(module, "weight_ih") else "_l0"
    b_ih = getattr(module, "bias_ih" + suffix, None)
    b_hh = getattr(module, "bias_hh" + suffix, None)
    if b_ih is None:
        b_ih = b_hh = torch.zeros(W_hh.shape[0], dtype=W_hh.dtype)
    return W_ih, W_hh, b_ih, b_hh


def gru_gradient_flow(cell, x, lags):
    """``||dh_T/dh_0||_2`` of a GRU (PyTorch's convention), per lag.

    The GRU (:func:`rnnbook.gated.gru_step`, reset after the matmul) reads
    one sequence from ``h_0 = 0``; autograd gives the ``H x H`` Jacobians
    (:func:`copies_jacobian`).

    Args:
        cell: a GRU cell or one-layer GRU (see :func:`gru_weights`).
        x: ``(T_max, D)``, one input sequence, float64.
        lags: increasing positive ints, at most ``T_max``.

    Returns:
        A float array of ``len(lags)``.
    """
    W_ih, W_hh, b_ih, b_hh = (p.detach().double() for p in gru_weights(cell))
    _sequence(x, W_ih.shape[1])
    lags = _lags(lags)
    if lags[-1] > len(x):
        raise ValueError(
            f"expected lags up to len(x) = {len(x)}, got {lags[-1]}"
        )
    H = W_hh.shape[1]
    h0 = torch.zeros(H, H, dtype=torch.float64, requires_grad=True)
    h, norms = h0, []
    for t in range(1, lags[-1] + 1):
        x_proj = (x[t - 1] @ W_ih.T + b_ih).expand(H, -1)  # (H, 3H)
        h = gru_step(x_proj, h, W_hh, b_hh)
        if t in lags:
            norms.append(_spectral_norm(copies_jacobian(h, h0)))
    return np.array(norms)


def gru_step_jacobian(x_proj, h, W_hh, b_hh):
    """``dh_t/dh_{t-1}`` of one GRU step (reset after the matmul).

    Book equation ``ch3-gru-jac``. For one sequence (``B = 1``) the step of
    :func:`rnnbook.gated.gru_step` with ``reset_after=True`` has

    ``dh_t/dh_{t-1} = diag(z_t) + diag((h_{t-1} - n_t) * sigma'_z) W_hz
    + diag((1 - z_t) * (1 - n_t**2)) [diag(r_t) W_hn
    + diag((W_hn h_{t-1} + b_hn) * sigma'_r) W_hr]``,

    where ``sigma'_z = z_t (1 - z_t)``, ``sigma'_r = r_t (1 - r_t)`` and
    ``W_hr, W_hz, W_hn`` are the row blocks of ``W_hh``. The first term is
    the GRU's highway: with ``z_t = 1`` the step copies its state.

    Args:
        x_proj: ``(1, 3H)``, ``x_t W_ih^T + b_ih``.
        h: ``(1, H)``, ``h_{t-1}``.
        W_hh: ``(3H, H)``, rows ``(r, z, n)``. b_hh: ``(3H,)``.

    Returns:
        ``(H, H)``, rows ``h_t``, columns ``h_{t-1}``.
    """
    gru_step(x_proj, h, W_hh, b_hh)  # validates the shapes
    check_shape("h", h, (1, W_hh.shape[1]))  # one sequence
    W_hr, W_hz, W_hn = W_hh.chunk(3)  # (H, H) each
    b_hr, b_hz, b_hn = b_hh.chunk(3)
    x_r, x_z, x_n = x_proj[0].chunk(3)
    h_prev = h[0]
    r = torch.sigmoid(x_r + W_hr @ h_prev + b_hr)
    z = torch.sigmoid(x_z + W_hz @ h_prev + b_hz)
    m = W_hn @ h_prev + b_hn  # the reset gate multiplies this
    n = torch.tanh(x_n + r * m)
    # diag(v) W is v[:, None] * W
    inner = r[:, None] * W_hn + (m * r * (1 - r))[:, None] * W_hr
    return (
        torch.diag(z)
        + ((h_prev - n) * z * (1 - z))[:, None] * W_hz
        + ((1 - z) * (1 - n**2))[:, None] * inner
    )


# -------------------------------------------------- the adding experiment


def torch_generator(stream, role):
    """A ``torch.Generator`` for one role of one run, from its seed stream.

    ``stream`` is the run's :class:`numpy.random.SeedSequence`; each role
    (for example 0 for the initial weights, 1 for the training batches, 2
    for the test set) gets the independent child stream
    ``SeedSequence(stream.entropy, spawn_key=stream.spawn_key + (role,))``.
    This is what ``stream.spawn`` would give, but computed without changing
    ``stream``, so asking twice gives the same generator: runs that share a
    stream are paired.

    Args:
        stream: a :class:`numpy.random.SeedSequence`.
        role: a non-negative int.
    """
    if not isinstance(stream, np.random.SeedSequence):
        raise TypeError(
            "expected stream to be a numpy.random.SeedSequence, "
            f"got {type(stream).__name__}"
        )
    if not isinstance(role, numbers.Integral) or isinstance(role, bool):
        raise TypeError(f"expected role to be an int, got {role!r}")
    if role < 0:
        raise ValueError(f"expected role >= 0, got {role}")
    child = np.random.SeedSequence(
        stream.entropy, spawn_key=tuple(stream.spawn_key) + (int(role),)
    )
    seed = int(child.generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(seed)


KINDS = ("rnn", "lstm", "gru")
"""The architectures :func:`adding_model` builds."""


def adding_model(kind, hidden_size, generator, forget_bias=1.0):
    """A one-layer network for the adding problem, returning ``(y, hs)``.

    - ``"rnn"``: :class:`rnnbook.torch_rnn.VanillaRNN` (tanh) with Chapter
      2's orthogonal initialization (``init_weights("orthogonal", ...)``:
      ``W_hh`` a random orthogonal matrix, small input and output weights);
    - ``"lstm"``: ``torch.nn.LSTM`` with PyTorch's initialization and the
      forget gate's total bias set to ``forget_bias``, as
      :class:`rnnbook.gated.LSTM` sets it;
    - ``"gru"``: ``torch.nn.GRU`` with PyTorch's initialization.

    The gated networks read out their final state with
    :class:`rnnbook.gated.FinalStateReadout`. Training uses PyTorch's own
    modules for speed; Chapter 3 proves :class:`rnnbook.gated.LSTM` and
    :class:`rnnbook.gated.GRU` compute the same functions. Every parameter
    is drawn from ``generator`` (PyTorch's ``U(-1/sqrt(H), 1/sqrt(H))``
    for the gated networks, the read-out included), so the same generator
    seed gives the same weights, and LSTMs that differ only in
    ``forget_bias`` differ only in those biases.

    Args:
        kind: one of :data:`KINDS`.
        hidden_size: ``H``.
        generator: a seeded ``torch.Generator``.
        forget_bias: the LSTM's forget bias ``b_f`` (ignored otherwise).

    Returns:
        A float32 module; ``model(x)`` with ``x`` ``(B, T, 2)`` returns
        ``(y, hs)`` with ``y`` ``(B, 1)``.
    """
    if kind not in KINDS:
        raise ValueError(f"expected kind in {KINDS}, got {kind!r}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            "expected generator to be a torch.Generator, "
            f"got {type(generator).__name__}"
        )
    H = check_int("hidden_size", hidden_size, low=1)
    if not isinstance(forget_bias, numbers.Real) or isinstance(
        forget_bias, bool
    ):
        raise TypeError(
            f"expected forget_bias to be a number, got {forget_bias!r}"
        )
    if not math.isfinite(forget_bias):
        raise ValueError(f"expected a finite forget_bias, got {forget_bias}")
    # the modules' own initialization would draw from the global generator:
    # fork it, so that building a model leaves it as it was
    with torch.random.fork_rng(devices=[]):
        if kind == "rnn":
            weights = init_weights("orthogonal", 2, H, 1, generator)
            return VanillaRNN(2, H, 1).load_weights(weights)
        if kind == "lstm":
            recurrent = torch.nn.LSTM(2, H, batch_first=True)
        else:
            recurrent = torch.nn.GRU(2, H, batch_first=True)
        model = FinalStateReadout(recurrent, 1)
    bound = 1 / math.sqrt(H)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=generator) * 2 - 1)
            p.mul_(bound)
        if kind == "lstm":  # the forget gate's rows, as gated.LSTM sets them
            recurrent.bias_ih_l0[H : 2 * H] = float(forget_bias)
            recurrent.bias_hh_l0[H : 2 * H] = 0.0
    return model


def adding_batches(batch_size, T, generator, labels=False, dtype=None):
    """A ``make_batch`` for :func:`rnnbook.train.train`: adding problems.

    Each call draws a fresh batch from
    :func:`rnnbook.tasks.adding_problem` with ``generator``.

    Args:
        batch_size: ``B``.
        T: the sequence length.
        generator: a seeded ``torch.Generator``.
        labels: ``False`` for regression targets ``(B, 1)``, the sum
            ``0.5 + (X1 + X2)/4``; ``True`` for class labels ``(B,)``,
            int64, 1 where ``X1 + X2 > 0``.
        dtype: the floating dtype of inputs and regression targets
            (``None``: float32, as the task makes them).

    Returns:
        A function of no arguments returning ``(inputs, targets)`` with
        ``inputs`` ``(B, T, 2)``.
    """
    batch_size = check_int("batch_size", batch_size, low=1)
    T = check_int("T", T, low=6)
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            "expected generator to be a torch.Generator, "
            f"got {type(generator).__name__}"
        )
    if not isinstance(labels, bool):
        raise TypeError(f"expected labels to be True or False, got {labels!r}")

    if dtype is not None and (
        not isinstance(dtype, torch.dtype) or not dtype.is_floating_point
    ):
        raise TypeError(f"expected a floating torch.dtype, got {dtype!r}")

    def make_batch():
        inputs, targets = adding_problem(batch_size, T, generator)
        if dtype is not None:
            inputs, targets = inputs.to(dtype), targets.to(dtype)
        if labels:
            return inputs, (targets > 0.5).long()
        return inputs, targets[:, None]

    return make_batch


@torch.no_grad()
def solved_fraction(model, inputs, targets, tolerance=0.04):
    """The fraction of sequences answered within ``tolerance``.

    Hochreiter & Schmidhuber's criterion for the adding problem: a sequence
    is solved when ``|y - target| < 0.04``.

    Args:
        model: returns ``(y, hs)`` with ``y`` ``(B, 1)``.
        inputs: ``(B, T, 2)``. targets: ``(B,)``.
        tolerance: the largest error that counts as solved.
    """
    check_tensor("targets", targets, 1, "(B,)")
    y, _ = model(inputs)
    check_shape("y", y, (len(targets), 1))
    return ((y[:, 0] - targets).abs() < tolerance).double().mean().item()


def smooth(losses, window=25):
    """The running mean of ``losses`` over ``window`` updates (``valid``).

    Returns an array of ``len(losses) - window + 1`` values; entry ``k`` is
    the mean of ``losses[k : k + window]``.
    """
    losses = np.asarray(losses, dtype=float)
    if losses.ndim != 1 or not 1 <= window <= len(losses):
        raise ValueError(
            f"expected a 1-d sequence of at least window={window} losses, "
            f"got shape {losses.shape}"
        )
    return np.convolve(losses, np.ones(window) / window, mode="valid")


def left_baseline(losses, level, window=25):
    """The first update whose trailing mean loss is below ``level``.

    The trailing mean at update ``t`` (0-based) is the mean of
    ``losses[t - window + 1 : t + 1]``, defined from ``t = window - 1``;
    returns the first such ``t`` with a mean below ``level``, or ``None``.
    Entry ``k`` of :func:`smooth` is the trailing mean at ``k + window - 1``.
    """
    k = first_below(smooth(losses, window), level)
    return None if k is None else k + window - 1


def first_below(curve, level):
    """The first index where ``curve < level``, or ``None`` if never."""
    below = np.flatnonzero(np.asarray(curve) < level)
    return int(below[0]) if len(below) else None


# --------------------------------------------------------------- checks


def max_disagreement(ours, reference, x, state):
    """The largest difference between two recurrent modules' computations.

    Runs both on ``x`` from ``state``, differentiates one loss that touches
    the output and every final state, and returns the largest absolute
    difference among the outputs, the final states, the gradients of every
    parameter (matched by name) and the gradient of ``x``.

    Args:
        ours, reference: modules with the same parameter names, returning
            ``(output, h_n)`` or ``(output, (h_n, c_n))``.
        x: the input. state: the initial state, or ``None``.
    """
    names = [n for n, _ in ours.named_parameters()]
    if sorted(names) != sorted(n for n, _ in reference.named_parameters()):
        raise ValueError("expected modules with the same parameter names")
    results = []
    for module in (ours, reference):
        module.zero_grad()
        x_leaf = x.detach().clone().requires_grad_(True)
        output, final = module(x_leaf, state)
        finals = list(final) if isinstance(final, tuple) else [final]
        loss = sum(
            (torch.cos(k + t) * (1 + k)).sum()
            for k, t in enumerate([output] + finals)
        )
        loss.backward()
        params = dict(module.named_parameters())
        grads = [params[n].grad for n in sorted(names)] + [x_leaf.grad]
        results.append([output] + finals + grads)
    return max((a - b).abs().max().item() for a, b in zip(*results))


def step_sensitivity(y, x):
    """``||d (sum of y) / d x_t||`` for every step ``t``: which steps count.

    Args:
        y: any tensor computed from ``x`` (its graph is kept).
        x: ``(B, T, D)``, ``requires_grad=True``.

    Returns:
        A float array of ``T`` norms, each over the batch and ``D``.
    """
    check_tensor("x", x, 3, "(B, T, D)")
    (grad,) = torch.autograd.grad(y.sum(), x, retain_graph=True)
    return grad.norm(dim=(0, 2)).numpy()  # (T,)


def seconds_per_step(modules, x, repeats=5):
    """Median seconds of one forward and backward pass, per module.

    The modules' repeats are interleaved (a, b, a, b, ...), so a change in
    the machine's load touches all of them alike; compare them as ratios.

    Args:
        modules: a list of recurrent modules taking ``x``.
        x: the input.
        repeats: timed passes per module.

    Returns:
        A list of medians, one per module.
    """
    times = [[] for _ in modules]
    for _ in range(repeats):
        for k, module in enumerate(modules):
            start = time.perf_counter()
            module(x)[0].pow(2).mean().backward()
            times[k].append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def _random(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def check_lstm_step_backward(backward, B=3, H=4, seed=0):
    """Check a hand-written LSTM step backward against autograd.

    ``backward(x_proj, h, c, W_hh, grad_h, grad_c)`` must return
    ``(dE/dh_{t-1}, dE/dc_{t-1}, dE/dW_hh, dE/dx_proj)`` for the step
    :func:`rnnbook.gated.lstm_step`, given ``grad_h = dE/dh_t`` and
    ``grad_c = dE/dc_t``. Raises ``AssertionError`` naming the first
    gradient that disagrees (beyond 1e-12); returns ``True`` otherwise.
    """
    gen = torch.Generator().manual_seed(seed)
    shapes = [(B, 4 * H), (B, H), (B, H), (4 * H, H)]
    leaves = [_random(gen, *s).requires_grad_(True) for s in shapes]
    grad_h, grad_c = _random(gen, B, H), _random(gen, B, H)
    h_new, c_new = lstm_step(*leaves)
    loss = (h_new * grad_h).sum() + (c_new * grad_c).sum()
    d_xproj, d_h, d_c, d_W = torch.autograd.grad(loss, leaves)
    given = [t.detach() for t in leaves]
    mine = backward(*given, grad_h, grad_c)
    names = ["dh", "dc", "dW_hh", "dx_proj"]
    for name, a, b in zip(names, mine, [d_h, d_c, d_W, d_xproj]):
        if not torch.allclose(a, b, rtol=0, atol=1e-12):
            raise AssertionError(f"{name} disagrees with autograd")
    return True


def check_cifg_step(cifg_step, B=3, H=4, seed=0):
    """Check a coupled input-forget gate (CIFG) LSTM step.

    ``cifg_step(x_proj, h, c, W_hh)`` has gate rows ``(f, g, o)`` and must
    compute ``c_t = f c_{t-1} + (1 - f) g``, ``h_t = o tanh(c_t)``. Since
    ``1 - sigma(a) = sigma(-a)``, :func:`rnnbook.gated.lstm_step` with the
    input gate's rows set to minus the forget gate's is the reference.
    Raises ``AssertionError`` on disagreement; returns ``True`` otherwise.
    """
    gen = torch.Generator().manual_seed(seed)
    x_proj = _random(gen, B, 3 * H)  # rows (f, g, o)
    W_hh = _random(gen, 3 * H, H)
    h, c = _random(gen, B, H), _random(gen, B, H)
    # (i, f, g, o) with a_i = -a_f
    x_proj_lstm = torch.cat([-x_proj[:, :H], x_proj], dim=1)
    W_hh_lstm = torch.cat([-W_hh[:H], W_hh], dim=0)
    expected = lstm_step(x_proj_lstm, h, c, W_hh_lstm)
    got = cifg_step(x_proj, h, c, W_hh)
    for name, a, b in zip(["h", "c"], got, expected):
        if not torch.allclose(a, b, rtol=0, atol=1e-12):
            raise AssertionError(f"{name} disagrees with the tied LSTM")
    return True
