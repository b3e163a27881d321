"""The LSTM and the GRU, written from their equations (Chapter 3).

Every line below is one of the book's equations; nothing calls
``torch.nn.LSTM``, ``torch.nn.GRU`` or ``torch.nn.RNNBase``. The parameters
carry the names and shapes of PyTorch's modules, so
``ours.load_state_dict(torch_module.state_dict())`` works and the tests can
prove that the two compute the same function.

The letters (``B``, ``T``, ``D``, ``H``, ...) are the package's glossary: see
the book's notation page and :mod:`rnnbook`. Two more are used here: ``L``
the number of layers and ``K`` the number of directions (1, or 2 if
bidirectional). ``W_ih``, ``W_hh``, ``b_ih``, ``b_hh`` are PyTorch's
``weight_ih_l{k}`` and friends, with the gates' rows stacked in PyTorch's
order: LSTM ``(i, f, g, o)``, GRU ``(r, z, n)``. The candidates are ``g_t``
(LSTM) and ``n_t`` (GRU), as in PyTorch and on the notation page.

Speed: the input projection ``x W_ih^T`` is one matmul for all time steps,
each step does one matmul for all gates (``torch.addmm`` with the bias
folded in), and the rest of a step is a handful of element-wise operations.
The benchmark ``tests/benchmarks/bench_lstm.py`` compares the result with
``torch.nn.LSTM``.
"""

import math
import numbers

import torch
from torch import nn
from torch.nn import functional as F

from rnnbook._checks import (
    check_bool,
    check_positive_int,
    check_shape,
    check_tensor,
)

# ------------------------------------------------------------ input checks


def _check_real(name, x):
    """A real floating-point tensor (complex or integer input raises)."""
    if x.is_complex() or not x.is_floating_point():
        raise TypeError(
            f"expected {name} to be a real floating-point tensor, "
            f"got dtype {x.dtype}"
        )


def _check_step(x_proj, h, W_hh, n_gates, c=None):
    """Shapes of one step's arguments (no broadcasting); returns ``(B, H)``."""
    gates = "(i, f, g, o)" if n_gates == 4 else "(r, z, n)"
    check_tensor("W_hh", W_hh, 2, f"({n_gates}H, H), rows {gates}")
    H = W_hh.shape[1]
    check_shape("W_hh", W_hh, (n_gates * H, H))
    check_tensor("x_proj", x_proj, 2, f"(B, {n_gates}H) with H={H}")
    B = x_proj.shape[0]
    check_shape("x_proj", x_proj, (B, n_gates * H))
    check_shape("h", h, (B, H))
    if c is not None:
        check_shape("c", c, (B, H))
    for name, value in (("x_proj", x_proj), ("h", h), ("W_hh", W_hh)):
        _check_real(name, value)
    return B, H


# --------------------------------------------------------------- one step


def lstm_step(x_proj, h, c, W_hh):
    """One LSTM step, given the input's share of the gates.

    Book equations ``ch3-gates`` and ``ch3-cell``:

    .. math::
        [a_i, a_f, a_g, a_o] &= x_t W_{ih}^\\top + b_{ih}
            + h_{t-1} W_{hh}^\\top + b_{hh} \\\\
        i_t = \\sigma(a_i),\\; f_t &= \\sigma(a_f),\\;
            g_t = \\tanh(a_g),\\; o_t = \\sigma(a_o) \\\\
        c_t &= f_t \\odot c_{t-1} + i_t \\odot g_t \\\\
        h_t &= o_t \\odot \\tanh(c_t)

    Args:
        x_proj: ``(B, 4H)``, the input's share ``x_t W_ih^T + b_ih + b_hh``.
        h: ``(B, H)``, the previous hidden state ``h_{t-1}``.
        c: ``(B, H)``, the previous cell state ``c_{t-1}``.
        W_hh: ``(4H, H)``, the hidden-to-gates matrix, rows ``(i, f, g, o)``.

    Returns:
        ``(h_t, c_t)``, each ``(B, H)``.
    """
    _check_step(x_proj, h, W_hh, 4, c)
    # (B, 4H): one matmul for all four gates, x_proj added as the bias
    gates = torch.addmm(x_proj, h, W_hh.t())
    # chunk, not slicing: its backward is one concatenation
    a_i, a_f, a_g, a_o = gates.chunk(4, dim=1)
    i = torch.sigmoid(a_i)  # input gate
    f = torch.sigmoid(a_f)  # forget gate
    g = torch.tanh(a_g)  # candidate g_t
    o = torch.sigmoid(a_o)  # output gate
    c = torch.addcmul(f * c, i, g)  # f * c_{t-1} + i * g: additive
    h = o * torch.tanh(c)
    return h, c


def gru_step(x_proj, h, W_hh, b_hh, reset_after=True):
    """One GRU step, given the input's share of the gates (book ``ch3-gru``).

    PyTorch's convention (``reset_after=True``), which cuDNN uses too:

    .. math::
        r_t &= \\sigma(x_t W_{ir}^\\top + b_{ir}
            + h_{t-1} W_{hr}^\\top + b_{hr}) \\\\
        z_t &= \\sigma(x_t W_{iz}^\\top + b_{iz}
            + h_{t-1} W_{hz}^\\top + b_{hz}) \\\\
        n_t &= \\tanh\\big(x_t W_{in}^\\top + b_{in}
            + r_t \\odot (h_{t-1} W_{hn}^\\top + b_{hn})\\big) \\\\
        h_t &= (1 - z_t) \\odot n_t + z_t \\odot h_{t-1}

    With ``reset_after=False`` the reset gate acts *before* the matmul, as
    in Cho et al. (2014):
    ``n_t = tanh(x_t W_in^T + b_in + (r_t * h_{t-1}) W_hn^T + b_hn)``.
    In both, ``z_t = 1`` copies the previous state.

    Args:
        x_proj: ``(B, 3H)``, the input's share ``x_t W_ih^T + b_ih``.
        h: ``(B, H)``, the previous hidden state.
        W_hh: ``(3H, H)``, the hidden-to-gates matrix, rows ``(r, z, n)``.
        b_hh: ``(3H,)`` or ``None``.
        reset_after: ``True`` for PyTorch's convention, ``False`` for
            Cho et al.'s.

    Returns:
        ``h_t`` of shape ``(B, H)``.
    """
    B, H = _check_step(x_proj, h, W_hh, 3)
    if b_hh is not None:
        check_shape("b_hh", b_hh, (3 * H,))
    check_bool("reset_after", reset_after)
    # split, not slicing: one concatenation in backward
    x_rz, x_n = x_proj.split([2 * H, H], dim=1)
    if reset_after:
        if b_hh is None:
            h_proj = h @ W_hh.t()  # (B, 3H)
        else:
            h_proj = torch.addmm(b_hh, h, W_hh.t())
        h_rz, h_n = h_proj.split([2 * H, H], dim=1)
        r, z = torch.sigmoid(x_rz + h_rz).chunk(2, dim=1)  # (B, H) each
        # the reset acts after the matmul
        n = torch.tanh(torch.addcmul(x_n, r, h_n))
    else:
        W_hrz, W_hn = W_hh.split([2 * H, H])
        if b_hh is None:
            h_rz = h @ W_hrz.t()  # (B, 2H)
        else:
            h_rz = torch.addmm(b_hh[: 2 * H], h, W_hrz.t())
        r, z = torch.sigmoid(x_rz + h_rz).chunk(2, dim=1)
        # the reset acts before the matmul
        n_pre = torch.addmm(x_n, r * h, W_hn.t())
        n = torch.tanh(n_pre if b_hh is None else n_pre + b_hh[2 * H :])
    return torch.lerp(n, h, z)  # (1 - z) * n + z * h


# ------------------------------------------------------------------ cells


def _check_input(x, D, layout, note):
    """``x`` a real float tensor of ``layout`` (text) with last dim ``D``."""
    ndim = layout.count(",") + 1
    check_tensor("x", x, ndim, f"{layout} with D={D}{note}")
    _check_real("x", x)
    if x.shape[-1] != D:
        raise ValueError(
            f"expected x of shape {layout} with D={D}{note}, "
            f"got {tuple(x.shape)}"
        )


def _check_dtype(name, value, x):
    if value.dtype != x.dtype:
        raise TypeError(
            f"expected {name} of dtype {x.dtype} (the input's), "
            f"got {value.dtype}"
        )


class _Cell(nn.Module):
    """The two cells' parameters: PyTorch's names, shapes, initialization."""

    n_gates = None

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.bias = check_bool("bias", bias)
        G = self.n_gates * self.hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G, self.input_size))
        self.weight_hh = nn.Parameter(torch.empty(G, self.hidden_size))
        if self.bias:
            self.bias_ih = nn.Parameter(torch.empty(G))
            self.bias_hh = nn.Parameter(torch.empty(G))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        # PyTorch's U(-1/sqrt(H), 1/sqrt(H)) for every parameter
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _check(self, x):
        """Validate x of shape (B, D); return the state shape (B, H)."""
        _check_input(x, self.input_size, "(B, D)", "")
        _check_dtype("x", x, self.weight_ih)
        return x.shape[0], self.hidden_size

    def _x_proj(self, x):
        if self.bias_ih is None:
            return x @ self.weight_ih.t()
        return torch.addmm(self.bias_ih, x, self.weight_ih.t())

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


class LSTMCell(_Cell):
    """One LSTM step as a module, with ``torch.nn.LSTMCell``'s parameters.

    Computes :func:`lstm_step` (the book's LSTM equations, Hochreiter &
    Schmidhuber 1997 with the forget gate of Gers et al. 2000) on a batch.

    Args:
        input_size: ``D``.
        hidden_size: ``H``.
        bias: learn ``b_ih`` and ``b_hh``.
        forget_bias: if a number, the forget gate's bias starts at it
            (``b_ih[H:2H] = forget_bias``, ``b_hh[H:2H] = 0``); ``None``
            keeps PyTorch's uniform initialization. Needs ``bias=True``.

    Shapes: ``forward(x, state=None)`` takes ``x`` ``(B, D)`` and
    ``state = (h, c)``, each ``(B, H)`` (zeros if ``None``), and returns
    ``(h_t, c_t)``, each ``(B, H)``.
    """

    n_gates = 4

    def __init__(self, input_size, hidden_size, bias=True, forget_bias=None):
        super().__init__(input_size, hidden_size, bias)
        if forget_bias is not None:
            _init_forget_bias(
                self.bias_ih, self.bias_hh, self.hidden_size, forget_bias
            )

    def forward(self, x, state=None):
        B, H = self._check(x)
        if state is None:
            h = c = x.new_zeros(B, H)
        else:
            h, c = _check_pair(state, "(h, c)", (B, H))
            _check_shape_dtype("h", h, (B, H), x)
            _check_shape_dtype("c", c, (B, H), x)
        b_hh = 0 if self.bias_hh is None else self.bias_hh
        return lstm_step(self._x_proj(x) + b_hh, h, c, self.weight_hh)


class GRUCell(_Cell):
    """One GRU step as a module, with ``torch.nn.GRUCell``'s parameters.

    Computes :func:`gru_step` (Cho et al. 2014; PyTorch's placement of the
    reset gate unless ``reset_after=False``).

    Args:
        input_size: ``D``.
        hidden_size: ``H``.
        bias: learn ``b_ih`` and ``b_hh``.
        reset_after: ``True`` (PyTorch, loads its weights) or ``False``
            (Cho et al.).

    Shapes: ``forward(x, state=None)`` takes ``x`` ``(B, D)`` and
    ``state = h`` ``(B, H)`` (zeros if ``None``) and returns ``h_t``
    ``(B, H)``.
    """

    n_gates = 3

    def __init__(self, input_size, hidden_size, bias=True, reset_after=True):
        super().__init__(input_size, hidden_size, bias)
        self.reset_after = check_bool("reset_after", reset_after)

    def forward(self, x, state=None):
        B, H = self._check(x)
        h = x.new_zeros(B, H) if state is None else state
        _check_shape_dtype("h", h, (B, H), x)
        return gru_step(
            self._x_proj(x), h, self.weight_hh, self.bias_hh, self.reset_after
        )


def _check_pair(state, names, shape):
    """``state`` must be a pair of tensors, e.g. ``(h, c)``."""
    if not isinstance(state, (tuple, list)):
        raise TypeError(
            f"expected state to be a pair {names}, each of shape "
            f"{shape}, got {type(state).__name__}"
        )
    if len(state) != 2:
        raise ValueError(
            f"expected state to be a pair {names}, got {len(state)} items"
        )
    return state


def _check_shape_dtype(name, value, shape, x):
    check_shape(name, value, shape)
    _check_dtype(name, value, x)


def _init_forget_bias(bias_ih, bias_hh, H, value):
    """Set the forget gate's total bias ``b_ih[H:2H] + b_hh[H:2H]``."""
    if bias_ih is None:
        raise ValueError(
            f"forget_bias={value!r} needs bias=True, got bias=False"
        )
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(
            "expected forget_bias to be None or a real number, "
            f"got {type(value).__name__} {value!r}"
        )
    if not math.isfinite(value):
        raise ValueError(
            f"expected forget_bias to be a finite number, got {value!r}"
        )
    with torch.no_grad():
        bias_ih[H : 2 * H].fill_(float(value))
        bias_hh[H : 2 * H].zero_()


# ----------------------------------------------------------------- layers


class _Recurrent(nn.Module):
    """Stacked, optionally bidirectional recurrences, PyTorch's layout."""

    n_gates = None

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=True,
        dropout=0.0,
        bidirectional=False,
    ):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.bias = check_bool("bias", bias)
        self.batch_first = check_bool("batch_first", batch_first)
        self.bidirectional = check_bool("bidirectional", bidirectional)
        if not isinstance(dropout, numbers.Real) or isinstance(dropout, bool):
            raise TypeError(
                "expected dropout to be a number in [0, 1), "
                f"got {type(dropout).__name__} {dropout!r}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"expected dropout to be a number in [0, 1), got {dropout!r}"
            )
        self.dropout = float(dropout)
        self.num_directions = 2 if bidirectional else 1
        H, K = self.hidden_size, self.num_directions
        G = self.n_gates * H
        bound = 1.0 / math.sqrt(H)
        for layer in range(self.num_layers):
            # a layer reads both directions of the one below
            D_in = self.input_size if layer == 0 else K * H
            for suffix in self._suffixes(layer):
                shapes = {"weight_ih": (G, D_in), "weight_hh": (G, H)}
                if self.bias:
                    shapes.update(bias_ih=(G,), bias_hh=(G,))
                for name, shape in shapes.items():
                    p = nn.Parameter(torch.empty(shape))
                    nn.init.uniform_(p, -bound, bound)  # PyTorch's init
                    self.register_parameter(name + suffix, p)

    def _suffixes(self, layer):
        """Parameter-name suffixes of one layer: forward, then backward."""
        suffixes = [f"_l{layer}"]
        if self.bidirectional:
            suffixes.append(f"_l{layer}_reverse")
        return suffixes

    def _weights(self, suffix):
        """``(W_ih, W_hh, b_ih, b_hh)`` of one layer and direction."""
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        return tuple(getattr(self, name + suffix, None) for name in names)

    def _check_input(self, x):
        """Validate x; return it batch-first, ``(B, T, D)``."""
        layout = "(B, T, D)" if self.batch_first else "(T, B, D)"
        note = f" (batch_first={self.batch_first})"
        _check_input(x, self.input_size, layout, note)
        _check_dtype("x", x, self.weight_ih_l0)
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(
                "expected x with at least one sequence (B >= 1) of at "
                f"least one step (T >= 1), got {tuple(x.shape)}"
            )
        # inside, everything is (B, T, D)
        return x if self.batch_first else x.transpose(0, 1)

    def _check_state(self, name, value, x):
        B, H = x.shape[0], self.hidden_size
        shape = (self.num_layers * self.num_directions, B, H)
        _check_shape_dtype(name, value, shape, x)

    def _run(self, x, states):
        """Run every layer and direction on ``x`` ``(B, T, D)``.

        ``states[s]`` is the initial state of slot ``s`` (a ``(B, H)``
        tensor, or a pair for the LSTM); returns the last layer's output
        and the final state of every slot.
        """
        finals = []
        layer_input = x  # (B, T, D)
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self._suffixes(layer)):
                slot = layer * self.num_directions + direction
                out, final = self._direction(
                    layer_input,
                    states[slot],
                    self._weights(suffix),
                    reverse=direction == 1,
                )
                outputs.append(out)
                finals.append(final)
            layer_input = torch.cat(outputs, dim=2)  # (B, T, K*H)
            last = layer == self.num_layers - 1
            if self.dropout > 0 and self.training and not last:
                # between layers, as in torch
                layer_input = F.dropout(layer_input, self.dropout, True)
        if not self.batch_first:
            layer_input = layer_input.transpose(0, 1)
        return layer_input, finals

    def extra_repr(self):
        return (
            f"{self.input_size}, {self.hidden_size}, "
            f"num_layers={self.num_layers}, bias={self.bias}, "
            f"batch_first={self.batch_first}, dropout={self.dropout}, "
            f"bidirectional={self.bidirectional}"
        )


def _time_steps(T, reverse):
    return range(T - 1, -1, -1) if reverse else range(T)


class LSTM(_Recurrent):
    """A multi-layer LSTM from its equations, ``torch.nn.LSTM``'s parameters.

    Each layer and direction runs :func:`lstm_step` along the sequence (book
    equations ``ch3-gates`` and ``ch3-cell``; Hochreiter & Schmidhuber 1997,
    with the forget gate of Gers et al. 2000). Layer ``l > 0`` reads the
    output of layer ``l - 1`` (both directions concatenated), with dropout
    between layers in training.

    Args:
        input_size: ``D``.
        hidden_size: ``H``.
        num_layers: ``L``.
        bias: learn ``b_ih`` and ``b_hh``.
        batch_first: ``True`` (the book's layout, default) for ``x`` of
            shape ``(B, T, D)``. ``False`` accepts PyTorch's time-major
            default ``(T, B, D)`` so code written for ``torch.nn.LSTM`` runs
            unchanged: the input is transposed on entry and the output on
            exit, never inside.
        dropout: probability of zeroing an element of every layer's output
            except the last.
        bidirectional: if ``True``, ``K = 2``: a second recurrence runs from
            ``t = T-1`` down to 0.
        forget_bias: ``None`` (PyTorch's uniform initialization) or a number
            the forget gate's total bias starts at (Gers et al. 2000;
            Jozefowicz et al. 2015 use 1).

    Shapes (``L`` layers, ``K`` directions; ``T, B >= 1``):

    - ``forward(x, state=None)``: ``x`` ``(B, T, D)``;
      ``state = (h_0, c_0)``, each ``(L*K, B, H)``, zeros if ``None``.
    - returns ``(output, (h_n, c_n))``: ``output`` ``(B, T, K*H)`` is the
      last layer's ``h_t`` for every ``t`` (forward direction in
      ``[..., :H]``, backward in ``[..., H:]``); ``h_n``, ``c_n``
      ``(L*K, B, H)`` are the final states, ordered layer 0 forward,
      layer 0 backward, layer 1 forward, ...

    The ``h_n`` trap: for a bidirectional layer, ``output[:, -1, H:]`` is
    the backward direction's state after reading only ``x[:, T-1]`` (its
    *first* step); its final state, after reading the whole sequence, is
    ``output[:, 0, H:]`` = ``h_n[-1]``. A classifier on ``output[:, -1]``
    therefore sees one step of the backward pass.
    """

    n_gates = 4

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=True,
        dropout=0.0,
        bidirectional=False,
        forget_bias=None,
    ):
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
        )
        if forget_bias is not None:
            for layer in range(self.num_layers):
                for suffix in self._suffixes(layer):
                    _, _, b_ih, b_hh = self._weights(suffix)
                    _init_forget_bias(
                        b_ih, b_hh, self.hidden_size, forget_bias
                    )

    def _direction(self, x, state, weights, reverse):
        W_ih, W_hh, b_ih, b_hh = weights
        h, c = state
        # (B, T, 4H): the input's share, all time steps in one matmul
        x_proj = x @ W_ih.t()
        if b_ih is not None:
            x_proj = x_proj + (b_ih + b_hh)
        # T views (B, 4H); unbind's backward stacks once, where indexing
        # x_proj[:, t] would allocate a (B, T, 4H) gradient per step
        x_steps = x_proj.unbind(dim=1)
        hs = [None] * len(x_steps)
        for t in _time_steps(len(x_steps), reverse):
            h, c = lstm_step(x_steps[t], h, c, W_hh)
            hs[t] = h
        return torch.stack(hs, dim=1), (h, c)  # (B, T, H)

    def forward(self, x, state=None):
        x = self._check_input(x)
        B, H = x.shape[0], self.hidden_size
        S = self.num_layers * self.num_directions
        if state is None:
            h_0 = c_0 = x.new_zeros(S, B, H)
        else:
            h_0, c_0 = _check_pair(state, "(h_0, c_0)", (S, B, H))
            self._check_state("h_0", h_0, x)
            self._check_state("c_0", c_0, x)
        slots = [(h_0[s], c_0[s]) for s in range(S)]
        output, finals = self._run(x, slots)
        h_n = torch.stack([h for h, _ in finals])  # (L*K, B, H)
        c_n = torch.stack([c for _, c in finals])
        return output, (h_n, c_n)


class GRU(_Recurrent):
    """A multi-layer GRU from its equations, ``torch.nn.GRU``'s parameters.

    Each layer and direction runs :func:`gru_step` (Cho et al. 2014) along
    the sequence. ``reset_after=True`` (default) is PyTorch's convention, so
    its weights load; ``reset_after=False`` applies the reset gate before
    the hidden matmul, as Cho et al. did (same parameters, a different
    function).

    Args and shapes: as :class:`LSTM`, without the cell state:
    ``forward(x, state=None)`` takes ``x`` ``(B, T, D)`` and
    ``state = h_0`` ``(L*K, B, H)`` and returns ``(output, h_n)`` with
    ``output`` ``(B, T, K*H)`` and ``h_n`` ``(L*K, B, H)``. The same
    ``h_n`` trap holds: ``output[:, -1, H:]`` is the backward direction's
    first step.
    """

    n_gates = 3

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=True,
        dropout=0.0,
        bidirectional=False,
        reset_after=True,
    ):
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
        )
        self.reset_after = check_bool("reset_after", reset_after)

    def _direction(self, x, h, weights, reverse):
        W_ih, W_hh, b_ih, b_hh = weights
        x_proj = x @ W_ih.t()  # (B, T, 3H)
        if b_ih is not None:
            x_proj = x_proj + b_ih
        x_steps = x_proj.unbind(dim=1)  # T views (B, 3H), see LSTM
        hs = [None] * len(x_steps)
        for t in _time_steps(len(x_steps), reverse):
            h = gru_step(x_steps[t], h, W_hh, b_hh, self.reset_after)
            hs[t] = h
        return torch.stack(hs, dim=1), h

    def forward(self, x, state=None):
        x = self._check_input(x)
        B, H = x.shape[0], self.hidden_size
        S = self.num_layers * self.num_directions
        h_0 = x.new_zeros(S, B, H) if state is None else state
        self._check_state("h_0", h_0, x)
        output, finals = self._run(x, [h_0[s] for s in range(S)])
        return output, torch.stack(finals)  # (B, T, K*H), (L*K, B, H)


# ---------------------------------------------------------------- a head


class FinalStateReadout(nn.Module):
    """A recurrent layer and a linear read-out of its final state.

    The model the chapters train with :func:`rnnbook.train.train`, which
    expects ``model(x)`` to return ``(y, hs)``:

    .. math::
        y = W_{hy} \\, [h_T^{\\rightarrow}; h_T^{\\leftarrow}] + b_y

    where the final states are read from ``h_n`` (the last layer's forward
    state, and for a bidirectional layer its backward state after the whole
    sequence, ``h_n[-1]``), never from ``output[:, -1]``, which for the
    backward direction is the state after one step (the ``h_n`` trap of
    :class:`LSTM`).

    Args:
        recurrent: a batch-first recurrent module returning
            ``(output, h_n)`` or ``(output, (h_n, c_n))``: :class:`LSTM`,
            :class:`GRU`, or ``torch.nn.LSTM/GRU/RNN(batch_first=True)``.
        out_features: ``O``, the size of ``y``.

    Shapes: ``forward(x)`` takes ``x`` ``(B, T, D)`` and returns
    ``(y, hs)``: ``y`` ``(B, O)`` and ``hs = output`` ``(B, T, K*H)``, the
    last layer's states.
    """

    def __init__(self, recurrent, out_features):
        super().__init__()
        if not isinstance(recurrent, nn.Module):
            raise TypeError(
                "expected recurrent to be a torch.nn.Module, "
                f"got {type(recurrent).__name__}"
            )
        if getattr(recurrent, "batch_first", None) is not True:
            raise ValueError(
                "expected a batch-first recurrent module "
                "(batch_first=True), got "
                f"batch_first={getattr(recurrent, 'batch_first', None)!r}"
            )
        self.recurrent = recurrent
        self.num_directions = 2 if recurrent.bidirectional else 1
        features = self.num_directions * recurrent.hidden_size
        self.readout = nn.Linear(
            features, check_positive_int("out_features", out_features)
        )

    def forward(self, x):
        output, state = self.recurrent(x)  # output (B, T, K*H)
        h_n = state[0] if isinstance(state, tuple) else state
        final = torch.cat(list(h_n[-self.num_directions :]), dim=1)
        return self.readout(final), output  # (B, O), (B, T, K*H)
