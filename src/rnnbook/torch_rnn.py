"""The vanilla RNN in PyTorch, and the initializations Chapter 2 compares.

Chapter 1 wrote the RNN and its gradients by hand in NumPy; the experiments of
Chapter 2 train thousands of them, so here the recurrence runs in PyTorch's own
``torch.nn.RNN`` kernel (the same equation) and only the read-out and the
initializations are ours.

Glossary (the package's one letter set): ``B`` batch size, ``T`` sequence length,
``D`` input size, ``H`` hidden size, ``O`` output size.

.. math::

    h_t = f(W_{hh} h_{t-1} + W_{xh} x_t + b), \\qquad y = W_{hy} h_T + b_y,

with ``f = tanh`` (or ReLU for the identity initialization of Le et al., 2015), the
answer read from the last state as in the synthetic tasks of Pascanu et al. (2013).
``torch.nn.RNN`` keeps two bias vectors, ``b = bias_ih + bias_hh``.
"""

import torch
from torch import nn

from rnnbook._checks import check_positive_int, check_shape, check_tensor

SCHEMES = {
    # name: the activation it is meant for
    "sigmoid": "sigmoid",
    "basic_tanh": "tanh",
    "smart_tanh": "tanh",
    "orthogonal": "tanh",
    "identity": "relu",
}
"""The initializations of :func:`init_weights`, each with the activation it is meant for."""


def spectral_radius(W):
    """The largest absolute eigenvalue of a square matrix ``W`` (a tensor of shape ``(H, H)``)."""
    check_tensor("W", W, 2, "(H, H)")
    check_shape("W", W, (W.shape[0], W.shape[0]))
    return torch.linalg.eigvals(W.double()).abs().max().item()


def init_weights(scheme, input_size, hidden_size, output_size, generator):
    """Draw a vanilla RNN's weights by one of five recipes.

    Pascanu et al. (2013, §4) compare three:

    - ``"sigmoid"``: sigmoid units, every weight from ``N(0, 0.01^2)``;
    - ``"basic_tanh"``: tanh units, every weight from ``N(0, 0.1^2)``;
    - ``"smart_tanh"``: tanh units, ``W_xh`` and ``W_hy`` from ``N(0, 0.01^2)``, ``W_hh``
      sparse with 15 nonzero incoming weights per unit (drawn from ``N(0, 1)``),
      rescaled to spectral radius 0.95.

    and two later ones:

    - ``"orthogonal"``: ``W_hh`` a random orthogonal matrix (Saxe et al., 2014), the input
      and output weights as in smart tanh;
    - ``"identity"``: ``W_hh = I`` with ReLU units (the IRNN of Le, Jaitly & Hinton, 2015),
      the input and output weights as in smart tanh.

    All biases start at zero.

    Args:
        scheme: one of :data:`SCHEMES`.
        input_size, hidden_size, output_size: ``D``, ``H``, ``O``.
        generator: a seeded ``torch.Generator``.

    Returns:
        A dict of float32 tensors: ``W_xh (H, D)``, ``W_hh (H, H)``, ``b (H,)``,
        ``W_hy (O, H)``, ``b_y (O,)``.
    """
    if scheme not in SCHEMES:
        raise ValueError(
            f"expected scheme to be one of {sorted(SCHEMES)}, got {scheme!r}"
        )
    for name, value in (
        ("input_size", input_size),
        ("hidden_size", hidden_size),
        ("output_size", output_size),
    ):
        check_positive_int(name, value)
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"expected generator to be a torch.Generator, got {type(generator).__name__}"
        )
    D, H, O = input_size, hidden_size, output_size

    def normal(std, *shape):
        return torch.randn(*shape, generator=generator) * std

    if scheme in ("sigmoid", "basic_tanh"):
        std = 0.01 if scheme == "sigmoid" else 0.1
        return {
            "W_xh": normal(std, H, D),
            "W_hh": normal(std, H, H),
            "b": torch.zeros(H),
            "W_hy": normal(std, O, H),
            "b_y": torch.zeros(O),
        }
    if scheme == "smart_tanh":
        fan_in = min(15, H)
        W_hh = torch.zeros(H, H)
        for i in range(H):  # unit i receives from fan_in random units
            sources = torch.randperm(H, generator=generator)[:fan_in]
            W_hh[i, sources] = normal(1.0, fan_in)
        W_hh *= 0.95 / spectral_radius(W_hh)
    elif scheme == "orthogonal":
        Q, R = torch.linalg.qr(normal(1.0, H, H))
        W_hh = Q * torch.sign(
            torch.diagonal(R)
        )  # the sign fix makes Q uniformly distributed
    else:  # identity
        W_hh = torch.eye(H)
    return {
        "W_xh": normal(0.01, H, D),
        "W_hh": W_hh,
        "b": torch.zeros(H),
        "W_hy": normal(0.01, O, H),
        "b_y": torch.zeros(O),
    }


class VanillaRNN(nn.Module):
    """A one-layer RNN that reads a sequence and answers from its last state.

    Args:
        input_size: ``D``.
        hidden_size: ``H``.
        output_size: ``O``.
        nonlinearity: ``"tanh"`` or ``"relu"`` (the activations ``torch.nn.RNN`` offers).

    Shapes:
        ``forward(x)`` takes ``x (B, T, D)`` and returns ``(y, hs)``: the answer
        ``y (B, O)`` and the states ``hs (B, T+1, H)`` with ``hs[:, 0] = h_0 = 0``.
    """

    def __init__(
        self, input_size, hidden_size, output_size, nonlinearity="tanh"
    ):
        super().__init__()
        for name, value in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("output_size", output_size),
        ):
            check_positive_int(name, value)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"expected nonlinearity 'tanh' or 'relu', got {nonlinearity!r}"
            )
        self.nonlinearity = nonlinearity
        self.rnn = nn.RNN(
            input_size,
            hidden_size,
            nonlinearity=nonlinearity,
            batch_first=True,
        )
        self.readout = nn.Linear(hidden_size, output_size)

    @property
    def W_hh(self):
        """The recurrent matrix, shape ``(H, H)`` (a view of ``rnn.weight_hh_l0``)."""
        return self.rnn.weight_hh_l0

    def load_weights(self, weights):
        """Copy a dict from :func:`init_weights` into the module (``b`` goes to ``bias_ih``); return the module."""
        D, H, O = (
            self.rnn.input_size,
            self.rnn.hidden_size,
            self.readout.out_features,
        )
        expected = {
            "W_xh": (H, D),
            "W_hh": (H, H),
            "b": (H,),
            "W_hy": (O, H),
            "b_y": (O,),
        }
        if not isinstance(weights, dict) or set(weights) != set(expected):
            got = (
                sorted(weights)
                if isinstance(weights, dict)
                else type(weights).__name__
            )
            raise ValueError(
                f"expected a dict with keys {sorted(expected)}, got {got}"
            )
        for name, shape in expected.items():
            check_shape(name, weights[name], shape)
        with torch.no_grad():
            self.rnn.weight_ih_l0.copy_(weights["W_xh"])
            self.rnn.weight_hh_l0.copy_(weights["W_hh"])
            self.rnn.bias_ih_l0.copy_(weights["b"])
            self.rnn.bias_hh_l0.zero_()
            self.readout.weight.copy_(weights["W_hy"])
            self.readout.bias.copy_(weights["b_y"])
        return self

    def forward(self, x):
        if (
            not isinstance(x, torch.Tensor)
            or x.dim() != 3
            or x.shape[-1] != self.rnn.input_size
        ):
            shape = (
                tuple(x.shape)
                if isinstance(x, torch.Tensor)
                else type(x).__name__
            )
            raise ValueError(
                f"expected x of shape (B, T, D) with D={self.rnn.input_size}, got {shape}"
            )
        out, _ = self.rnn(x)  # (B, T, H): h_1 .. h_T
        h0 = out.new_zeros(out.shape[0], 1, out.shape[2])
        hs = torch.cat([h0, out], dim=1)  # (B, T+1, H)
        return self.readout(
            hs[:, -1]
        ), hs  # y read from hs, so autograd sees dE/dhs
