"""The LSTM and the GRU, written from their equations (Chapter 3).

Every line below is one of the book's equations; nothing calls ``torch.nn.LSTM``,
``torch.nn.GRU`` or ``torch.nn.RNNBase``. The parameters carry the names and shapes
of PyTorch's modules, so ``ours.load_state_dict(torch_module.state_dict())`` works
and the tests can prove the two compute the same function.

Glossary (the package's one letter set):

- ``B`` batch size, ``T`` sequence length, ``D`` input size, ``H`` hidden size,
- ``L`` number of layers, ``K`` number of directions (1, or 2 if bidirectional).
- ``x`` the input sequence, ``h`` the hidden state, ``c`` the LSTM's cell state.
- ``W_ih`` / ``W_hh`` the input-to-gates / hidden-to-gates matrices, ``b_ih`` / ``b_hh``
  their biases (PyTorch's ``weight_ih_l{k}`` and friends), gates stacked in PyTorch's
  order: LSTM ``(i, f, g, o)``, GRU ``(r, z, n)``.

Speed: the input projection ``x W_ih^T`` is one matmul for all time steps, each step
does one matmul for all gates (``torch.addmm`` with the bias folded in), and the
per-step work is a handful of element-wise operations. The benchmark
``tests/benchmarks/bench_lstm.py`` compares the result with ``torch.nn.LSTM``.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from rnnbook._checks import check_positive_int as _check_positive_int
from rnnbook._checks import check_shape as _check_shape
from rnnbook._checks import check_tensor as _check_tensor

# --------------------------------------------------------------------------- one step


def lstm_step(x_proj, h, c, W_hh):
    """One LSTM step, given the input's contribution to the gates (book eqs. ch3-gates, ch3-cell).

    .. math::
        [a_i, a_f, a_g, a_o] &= x_t W_{ih}^\\top + b_{ih} + h_{t-1} W_{hh}^\\top + b_{hh} \\\\
        i_t = \\sigma(a_i),\\; f_t &= \\sigma(a_f),\\; g_t = \\tanh(a_g),\\; o_t = \\sigma(a_o) \\\\
        c_t &= f_t \\odot c_{t-1} + i_t \\odot g_t \\\\
        h_t &= o_t \\odot \\tanh(c_t)

    Args:
        x_proj: ``(B, 4H)``, the input's share ``x_t W_ih^T + b_ih + b_hh``.
        h: ``(B, H)``, the previous hidden state ``h_{t-1}``.
        c: ``(B, H)``, the previous cell state ``c_{t-1}``.
        W_hh: ``(4H, H)``, the hidden-to-gates matrix.

    Returns:
        ``(h_t, c_t)``, each ``(B, H)``.
    """
    gates = torch.addmm(
        x_proj, h, W_hh.t()
    )  # (B, 4H): one matmul for all four gates
    a_i, a_f, a_g, a_o = gates.chunk(
        4, dim=1
    )  # chunk, not slicing: its backward is one concatenation
    i = torch.sigmoid(a_i)  # input gate
    f = torch.sigmoid(a_f)  # forget gate
    g = torch.tanh(a_g)  # candidate cell
    o = torch.sigmoid(a_o)  # output gate
    c = torch.addcmul(
        f * c, i, g
    )  # c_t = f * c_{t-1} + i * g: the additive update
    h = o * torch.tanh(c)
    return h, c


def gru_step(x_proj, h, W_hh, b_hh, reset_after=True):
    """One GRU step, given the input's contribution to the gates (book eq. ch3-gru).

    PyTorch's convention (``reset_after=True``), which cuDNN uses too:

    .. math::
        r_t &= \\sigma(x_t W_{ir}^\\top + b_{ir} + h_{t-1} W_{hr}^\\top + b_{hr}) \\\\
        z_t &= \\sigma(x_t W_{iz}^\\top + b_{iz} + h_{t-1} W_{hz}^\\top + b_{hz}) \\\\
        n_t &= \\tanh\\big(x_t W_{in}^\\top + b_{in} + r_t \\odot (h_{t-1} W_{hn}^\\top + b_{hn})\\big) \\\\
        h_t &= (1 - z_t) \\odot n_t + z_t \\odot h_{t-1}

    With ``reset_after=False`` the reset gate acts *before* the matmul, as in
    Cho et al. (2014): ``n_t = tanh(x_t W_in^T + b_in + (r_t * h_{t-1}) W_hn^T + b_hn)``.
    In both, ``z_t = 1`` copies the previous state.

    Args:
        x_proj: ``(B, 3H)``, the input's share ``x_t W_ih^T + b_ih``.
        h: ``(B, H)``, the previous hidden state.
        W_hh: ``(3H, H)``, the hidden-to-gates matrix, rows ``(r, z, n)``.
        b_hh: ``(3H,)`` or ``None``.
        reset_after: ``True`` for PyTorch's convention, ``False`` for Cho et al.'s.

    Returns:
        ``h_t`` of shape ``(B, H)``.
    """
    H = h.shape[-1]
    x_rz, x_n = x_proj.split(
        [2 * H, H], dim=1
    )  # split, not slicing: one concatenation in backward
    if reset_after:
        h_proj = (
            h @ W_hh.t() if b_hh is None else torch.addmm(b_hh, h, W_hh.t())
        )  # (B, 3H)
        h_rz, h_n = h_proj.split([2 * H, H], dim=1)
        r, z = torch.sigmoid(x_rz + h_rz).chunk(2, dim=1)  # (B, H) each
        n = torch.tanh(
            torch.addcmul(x_n, r, h_n)
        )  # the reset acts after the matmul
    else:
        W_hrz, W_hn = W_hh.split([2 * H, H])
        h_rz = (
            h @ W_hrz.t()
            if b_hh is None
            else torch.addmm(b_hh[: 2 * H], h, W_hrz.t())
        )  # (B, 2H)
        r, z = torch.sigmoid(x_rz + h_rz).chunk(2, dim=1)
        n_pre = torch.addmm(
            x_n, r * h, W_hn.t()
        )  # the reset acts before the matmul
        n = torch.tanh(n_pre if b_hh is None else n_pre + b_hh[2 * H :])
    return torch.lerp(n, h, z)  # (1 - z) * n + z * h


# --------------------------------------------------------------------------- cells


class _Cell(nn.Module):
    """Shared parameters of the two cells: PyTorch's names, shapes and initialization."""

    n_gates = None

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        _check_positive_int("input_size", input_size)
        _check_positive_int("hidden_size", hidden_size)
        self.input_size, self.hidden_size, self.bias = (
            input_size,
            hidden_size,
            bool(bias),
        )
        G = self.n_gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G, input_size))
        self.weight_hh = nn.Parameter(torch.empty(G, hidden_size))
        if self.bias:
            self.bias_ih = nn.Parameter(torch.empty(G))
            self.bias_hh = nn.Parameter(torch.empty(G))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        bound = 1.0 / math.sqrt(
            hidden_size
        )  # PyTorch's U(-1/sqrt(H), 1/sqrt(H)) for every parameter
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _check(self, x):
        """Validate x of shape (B, D); return the state shape (B, H)."""
        _check_tensor("x", x, 2, f"(B, D) with D={self.input_size}")
        if x.shape[1] != self.input_size:
            raise ValueError(
                f"expected x of shape (B, D) with D={self.input_size}, got {tuple(x.shape)}"
            )
        return x.shape[0], self.hidden_size

    def _x_proj(self, x):
        return (
            x @ self.weight_ih.t()
            if self.bias_ih is None
            else torch.addmm(self.bias_ih, x, self.weight_ih.t())
        )

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


class LSTMCell(_Cell):
    """One LSTM step as a module, with ``torch.nn.LSTMCell``'s parameters.

    Computes :func:`lstm_step` (the book's LSTM equations, Hochreiter & Schmidhuber
    1997 with the forget gate of Gers et al. 2000) on a batch.

    Args:
        input_size: ``D``. hidden_size: ``H``. bias: learn ``b_ih`` and ``b_hh``.
        forget_bias: if a number, the forget gate's bias starts at this value
            (``b_ih[H:2H] = forget_bias``, ``b_hh[H:2H] = 0``); ``None`` keeps PyTorch's
            uniform initialization. Needs ``bias=True``.

    Shapes: ``forward(x, state=None)`` takes ``x`` ``(B, D)`` and ``state = (h, c)``,
    each ``(B, H)`` (zeros if ``None``), and returns ``(h_t, c_t)``, each ``(B, H)``.
    """

    n_gates = 4

    def __init__(self, input_size, hidden_size, bias=True, forget_bias=None):
        super().__init__(input_size, hidden_size, bias)
        if forget_bias is not None:
            _init_forget_bias(
                self.bias_ih, self.bias_hh, hidden_size, forget_bias
            )

    def forward(self, x, state=None):
        B, H = self._check(x)
        if state is None:
            h = c = x.new_zeros(B, H)
        else:
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise ValueError(
                    f"expected state to be a pair (h, c), each of shape {(B, H)}, got {type(state).__name__}"
                )
            h, c = state
            _check_shape("h", h, (B, H))
            _check_shape("c", c, (B, H))
        b_hh = 0 if self.bias_hh is None else self.bias_hh
        return lstm_step(self._x_proj(x) + b_hh, h, c, self.weight_hh)


class GRUCell(_Cell):
    """One GRU step as a module, with ``torch.nn.GRUCell``'s parameters.

    Computes :func:`gru_step` (Cho et al. 2014; PyTorch's placement of the reset
    gate unless ``reset_after=False``).

    Args:
        input_size: ``D``. hidden_size: ``H``. bias: learn ``b_ih`` and ``b_hh``.
        reset_after: ``True`` (PyTorch, loads its weights) or ``False`` (Cho et al.).

    Shapes: ``forward(x, state=None)`` takes ``x`` ``(B, D)`` and ``state = h`` ``(B, H)``
    (zeros if ``None``) and returns ``h_t`` ``(B, H)``.
    """

    n_gates = 3

    def __init__(self, input_size, hidden_size, bias=True, reset_after=True):
        super().__init__(input_size, hidden_size, bias)
        self.reset_after = bool(reset_after)

    def forward(self, x, state=None):
        B, H = self._check(x)
        h = x.new_zeros(B, H) if state is None else state
        _check_shape("h", h, (B, H))
        return gru_step(
            self._x_proj(x), h, self.weight_hh, self.bias_hh, self.reset_after
        )


def _init_forget_bias(bias_ih, bias_hh, H, value):
    """Set the forget gate's total bias ``b_ih[H:2H] + b_hh[H:2H]`` to ``value``."""
    if bias_ih is None:
        raise ValueError(
            f"forget_bias={value!r} needs bias=True, got bias=False"
        )
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
    ):
        raise ValueError(
            f"expected forget_bias to be None or a finite number, got {value!r}"
        )
    with torch.no_grad():
        bias_ih[H : 2 * H].fill_(float(value))
        bias_hh[H : 2 * H].zero_()


# --------------------------------------------------------------------------- layers


class _Recurrent(nn.Module):
    """Stacked, optionally bidirectional recurrences with PyTorch's parameter layout."""

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
        _check_positive_int("input_size", input_size)
        _check_positive_int("hidden_size", hidden_size)
        _check_positive_int("num_layers", num_layers)
        if (
            not isinstance(dropout, (int, float))
            or isinstance(dropout, bool)
            or not 0.0 <= dropout < 1.0
        ):
            raise ValueError(
                f"expected dropout to be a number in [0, 1), got {dropout!r}"
            )
        self.input_size, self.hidden_size, self.num_layers = (
            input_size,
            hidden_size,
            num_layers,
        )
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        self.dropout, self.bidirectional = float(dropout), bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        G, H, K = self.n_gates * hidden_size, hidden_size, self.num_directions
        bound = 1.0 / math.sqrt(hidden_size)
        for layer in range(num_layers):
            D_in = (
                input_size if layer == 0 else K * H
            )  # a layer reads both directions of the one below
            for suffix in self._suffixes(layer):
                shapes = {"weight_ih": (G, D_in), "weight_hh": (G, H)}
                if self.bias:
                    shapes.update(bias_ih=(G,), bias_hh=(G,))
                for name, shape in shapes.items():
                    p = nn.Parameter(torch.empty(shape))
                    nn.init.uniform_(
                        p, -bound, bound
                    )  # PyTorch's initialization
                    self.register_parameter(name + suffix, p)

    def _suffixes(self, layer):
        return [f"_l{layer}"] + (
            [f"_l{layer}_reverse"] if self.bidirectional else []
        )

    def _weights(self, suffix):
        get = lambda name: getattr(self, name + suffix, None)  # noqa: E731 (local, not stored)
        return (
            get("weight_ih"),
            get("weight_hh"),
            get("bias_ih"),
            get("bias_hh"),
        )

    def _check_input(self, x):
        layout, dims = (
            ("(B, T, D)", "batch_first=True")
            if self.batch_first
            else ("(T, B, D)", "batch_first=False")
        )
        _check_tensor("x", x, 3, f"{layout} with D={self.input_size} ({dims})")
        if x.shape[2] != self.input_size:
            raise ValueError(
                f"expected x of shape {layout} with D={self.input_size} ({dims}), got {tuple(x.shape)}"
            )
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(
                f"expected x with at least one sequence of at least one step, got {tuple(x.shape)}"
            )
        return (
            x if self.batch_first else x.transpose(0, 1)
        )  # inside, everything is (B, T, D)

    def _check_state(self, name, value, B):
        _check_shape(
            name,
            value,
            (self.num_layers * self.num_directions, B, self.hidden_size),
        )

    def _run(self, x, states):
        """Run every layer and direction. ``states[s]``: tuple of ``(B, H)`` tensors for slot ``s``."""
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
            layer_input = (
                outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
            )  # (B, T, K*H)
            if (
                self.dropout > 0
                and self.training
                and layer < self.num_layers - 1
            ):
                layer_input = F.dropout(
                    layer_input, self.dropout, training=True
                )  # between layers, as in torch
        output = (
            layer_input if self.batch_first else layer_input.transpose(0, 1)
        )
        return output, finals

    def extra_repr(self):
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, bias={self.bias}, "
            f"batch_first={self.batch_first}, dropout={self.dropout}, bidirectional={self.bidirectional}"
        )


def _time_steps(T, reverse):
    return range(T - 1, -1, -1) if reverse else range(T)


class LSTM(_Recurrent):
    """A multi-layer LSTM written from its equations, with ``torch.nn.LSTM``'s parameters.

    Each layer and direction runs :func:`lstm_step` along the sequence (book
    equations ``ch3-gates`` and ``ch3-cell``; Hochreiter & Schmidhuber 1997, with the forget gate of
    Gers et al. 2000). Layer ``l > 0`` reads the output of layer ``l - 1``
    (both directions concatenated), with dropout between layers in training.

    Args:
        input_size: ``D``. hidden_size: ``H``. num_layers: ``L``.
        bias: learn ``b_ih`` and ``b_hh``.
        batch_first: ``True`` (the book's layout, default) for ``x`` of shape
            ``(B, T, D)``. ``False`` accepts PyTorch's time-major default
            ``(T, B, D)`` so code written for ``torch.nn.LSTM`` runs unchanged: the
            input is transposed on entry and the output on exit, never inside.
        dropout: probability of zeroing an element of every layer's output except the last.
        bidirectional: if ``True``, ``K = 2``: a second recurrence runs from ``t = T-1`` down to 0.
        forget_bias: ``None`` (PyTorch's uniform initialization) or a number the
            forget gate's total bias starts at (Gers et al. 2000; Jozefowicz et al. 2015 use 1).

    Shapes (``B`` batch, ``T`` time, ``D`` input, ``H`` hidden, ``L`` layers, ``K`` directions):

    - ``forward(x, state=None)``: ``x`` ``(B, T, D)``; ``state = (h_0, c_0)``, each ``(L*K, B, H)``, zeros if ``None``.
    - returns ``(output, (h_n, c_n))``: ``output`` ``(B, T, K*H)`` is the last layer's ``h_t``
      for every ``t`` (forward direction in ``[..., :H]``, backward in ``[..., H:]``);
      ``h_n``, ``c_n`` ``(L*K, B, H)`` are the final states, ordered layer 0 forward,
      layer 0 backward, layer 1 forward, ...

    The ``h_n`` trap: for a bidirectional layer, ``output[:, -1, H:]`` is the backward
    direction's state after reading only ``x[:, T-1]`` (its *first* step); its final
    state, after reading the whole sequence, is ``output[:, 0, H:]`` = ``h_n[-1]``.
    A classifier on ``output[:, -1]`` therefore sees one step of the backward pass.
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
            for layer in range(num_layers):
                for suffix in self._suffixes(layer):
                    _, _, b_ih, b_hh = self._weights(suffix)
                    _init_forget_bias(b_ih, b_hh, hidden_size, forget_bias)

    def _direction(self, x, state, weights, reverse):
        W_ih, W_hh, b_ih, b_hh = weights
        h, c = state
        x_proj = (
            x @ W_ih.t()
        )  # (B, T, 4H): the input's share, all time steps in one matmul
        if b_ih is not None:
            x_proj = x_proj + (b_ih + b_hh)
        x_steps = x_proj.unbind(
            dim=1
        )  # T views (B, 4H); unbind's backward stacks once, where
        hs = [None] * len(
            x_steps
        )  # x_proj[:, t] would allocate a (B, T, 4H) gradient per step
        for t in _time_steps(len(x_steps), reverse):
            h, c = lstm_step(x_steps[t], h, c, W_hh)
            hs[t] = h
        return torch.stack(hs, dim=1), (h, c)  # (B, T, H)

    def forward(self, x, state=None):
        x = self._check_input(x)
        B, L, K, H = (
            x.shape[0],
            self.num_layers,
            self.num_directions,
            self.hidden_size,
        )
        if state is None:
            h_0 = c_0 = x.new_zeros(L * K, B, H)
        else:
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise ValueError(
                    f"expected state to be a pair (h_0, c_0), each of shape {(L * K, B, H)}, "
                    f"got {type(state).__name__}"
                )
            h_0, c_0 = state
            self._check_state("h_0", h_0, B)
            self._check_state("c_0", c_0, B)
        output, finals = self._run(x, [(h_0[s], c_0[s]) for s in range(L * K)])
        h_n = torch.stack([h for h, _ in finals])  # (L*K, B, H)
        c_n = torch.stack([c for _, c in finals])
        return output, (h_n, c_n)


class GRU(_Recurrent):
    """A multi-layer GRU written from its equations, with ``torch.nn.GRU``'s parameters.

    Each layer and direction runs :func:`gru_step` (Cho et al. 2014) along the
    sequence. ``reset_after=True`` (default) is PyTorch's convention, so its weights
    load; ``reset_after=False`` applies the reset gate before the hidden matmul, as
    Cho et al. did (same parameters, a different function).

    Args and shapes: as :class:`LSTM`, without the cell state:
    ``forward(x, state=None)`` takes ``x`` ``(B, T, D)`` and ``state = h_0`` ``(L*K, B, H)`` and
    returns ``(output, h_n)`` with ``output`` ``(B, T, K*H)`` and ``h_n`` ``(L*K, B, H)``.
    The same ``h_n`` trap holds: ``output[:, -1, H:]`` is the backward direction's first step.
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
        self.reset_after = bool(reset_after)

    def _direction(self, x, h, weights, reverse):
        W_ih, W_hh, b_ih, b_hh = weights
        x_proj = x @ W_ih.t()  # (B, T, 3H)
        if b_ih is not None:
            x_proj = x_proj + b_ih
        x_steps = x_proj.unbind(dim=1)  # T views (B, 3H), see LSTM._direction
        hs = [None] * len(x_steps)
        for t in _time_steps(len(x_steps), reverse):
            h = gru_step(x_steps[t], h, W_hh, b_hh, self.reset_after)
            hs[t] = h
        return torch.stack(hs, dim=1), h

    def forward(self, x, state=None):
        x = self._check_input(x)
        B, L, K, H = (
            x.shape[0],
            self.num_layers,
            self.num_directions,
            self.hidden_size,
        )
        h_0 = x.new_zeros(L * K, B, H) if state is None else state
        self._check_state("h_0", h_0, B)
        output, finals = self._run(x, [h_0[s] for s in range(L * K)])
        return output, torch.stack(finals)  # (B, T, K*H), (L*K, B, H)
