"""The vanilla RNN in PyTorch, and the initializations Chapter 2 compares.

Chapter 1 wrote the RNN and its gradients by hand in NumPy; the experiments of
Chapter 2 train thousands of them, so here the recurrence runs in PyTorch's own
``torch.nn.RNN`` kernel (the same equation) and only the read-out and the
initializations are ours.

The letters follow the package's one glossary (in :mod:`rnnbook` and on the
notation page); ``O`` is the output size.

.. math::

    h_t = f(W_{hh} h_{t-1} + W_{xh} x_t + b), \\qquad y = W_{hy} h_T + b_y,

with ``f = tanh`` (or ReLU for the identity initialization of Le et al.,
2015), the answer read from the last state as in the synthetic tasks of
Pascanu et al. (2013).
``torch.nn.RNN`` keeps two bias vectors, ``b = bias_ih + bias_hh``.
"""

import torch
from torch import nn

from rnnbook._checks import (
    check_choice,
    check_generator,
    check_positive_int,
    check_shape,
)

SCHEMES = {
    # name: the activation it is meant for
    "sigmoid": "sigmoid",
    "basic_tanh": "tanh",
    "smart_tanh": "tanh",
    "orthogonal": "tanh",
    "identity": "relu",
}
"""The schemes of :func:`init_weights`, each with its activation."""


def spectral_radius(W):
    """The largest absolute eigenvalue of a square matrix, ``max |lambda_i|``.

    Args:
        W: a real or complex tensor of shape ``(H, H)``, ``H >= 1``, with
            finite entries. (A complex ``W`` is handled in complex128, not
            cast to real.)

    Returns:
        A float.
    """
    if not isinstance(W, torch.Tensor):
        raise TypeError(
            f"expected W to be a torch.Tensor of shape (H, H), "
            f"got {type(W).__name__}"
        )
    if not (W.dtype.is_floating_point or W.is_complex()):
        raise TypeError(f"expected W to hold numbers, got dtype {W.dtype}")
    if W.dim() != 2 or W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise ValueError(
            f"expected W of shape (H, H) with H >= 1, got {tuple(W.shape)}"
        )
    if not bool(W.isfinite().all()):
        raise ValueError("expected W to have finite entries")
    W = W.to(torch.complex128) if W.is_complex() else W.double()
    return torch.linalg.eigvals(W).abs().max().item()


def init_weights(scheme, input_size, hidden_size, output_size, generator):
    """Draw a vanilla RNN's weights by one of five recipes.

    Pascanu et al. (2013, §4) compare three:

    - ``"sigmoid"``: sigmoid units, every weight from ``N(0, 0.01^2)``;
    - ``"basic_tanh"``: tanh units, every weight from ``N(0, 0.1^2)``;
    - ``"smart_tanh"``: tanh units, ``W_xh`` and ``W_hy`` from
      ``N(0, 0.01^2)``, ``W_hh`` sparse with 15 nonzero incoming weights
      per unit (drawn from ``N(0, 1)``), rescaled to spectral radius 0.95.

    and two later ones:

    - ``"orthogonal"``: ``W_hh`` a random orthogonal matrix (Saxe et al.,
      2014), the input and output weights as in smart tanh;
    - ``"identity"``: ``W_hh = I`` with ReLU units (the IRNN of Le, Jaitly
      & Hinton, 2015), the input and output weights as in smart tanh.

    All biases start at zero.

    Args:
        scheme: one of :data:`SCHEMES`.
        input_size, hidden_size, output_size: ``D``, ``H``, ``O``.
        generator: a seeded ``torch.Generator``.

    Returns:
        A dict of float32 tensors: ``W_xh (H, D)``, ``W_hh (H, H)``,
        ``b (H,)``, ``W_hy (O, H)``, ``b_y (O,)``.
    """
    check_choice("scheme", scheme, SCHEMES)
    D, H, O = (  # noqa: E741 (O is the output size)
        check_positive_int(name, value)
        for name, value in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("output_size", output_size),
        )
    )
    check_generator("generator", generator)

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
        nonlinearity: ``"tanh"`` or ``"relu"`` (what ``torch.nn.RNN``
            offers).

    Shapes:
        ``forward(x)`` takes ``x (B, T, D)`` and returns ``(y, hs)``: the
        answer ``y (B, O)`` and the states ``hs (B, T+1, H)`` with
        ``hs[:, 0] = h_0 = 0``.
    """

    def __init__(
        self, input_size, hidden_size, output_size, nonlinearity="tanh"
    ):
        super().__init__()
        input_size, hidden_size, output_size = (
            check_positive_int(name, value)
            for name, value in (
                ("input_size", input_size),
                ("hidden_size", hidden_size),
                ("output_size", output_size),
            )
        )
        check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
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
        """The recurrent matrix ``(H, H)``, a view of ``rnn.weight_hh_l0``."""
        return self.rnn.weight_hh_l0

    def load_weights(self, weights):
        """Copy a dict from :func:`init_weights` into the module.

        ``b`` goes to ``bias_ih`` and ``bias_hh`` is set to zero. Every
        entry must be a real tensor of the shape :func:`init_weights` gives,
        with finite values. Returns the module.
        """
        D, H, O = (  # noqa: E741
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
            error = TypeError if not isinstance(weights, dict) else ValueError
            raise error(
                f"expected a dict with keys {sorted(expected)}, got {got}"
            )
        for name, shape in expected.items():
            check_shape(name, weights[name], shape, real=True)
            if not bool(weights[name].isfinite().all()):
                raise ValueError(f"expected {name} to have finite entries")
        with torch.no_grad():
            self.rnn.weight_ih_l0.copy_(weights["W_xh"])
            self.rnn.weight_hh_l0.copy_(weights["W_hh"])
            self.rnn.bias_ih_l0.copy_(weights["b"])
            self.rnn.bias_hh_l0.zero_()
            self.readout.weight.copy_(weights["W_hy"])
            self.readout.bias.copy_(weights["b_y"])
        return self

    def forward(self, x):
        """``(y, hs)`` for ``x`` of shape ``(B, T, D)``, ``T >= 1``.

        ``x`` must have the module's dtype (float32 unless converted with
        ``.double()``).
        """
        D = self.rnn.input_size
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"expected x to be a torch.Tensor of shape (B, T, D) with "
                f"D={D}, got {type(x).__name__}"
            )
        if x.dtype != self.W_hh.dtype:
            raise TypeError(
                f"expected x of dtype {self.W_hh.dtype} (the model's), "
                f"got {x.dtype}"
            )
        if x.dim() != 3 or x.shape[-1] != D or x.shape[1] == 0:
            raise ValueError(
                f"expected x of shape (B, T, D) with D={D} and T >= 1, "
                f"got {tuple(x.shape)}"
            )
        out, _ = self.rnn(x)  # (B, T, H): h_1 .. h_T
        h0 = out.new_zeros(out.shape[0], 1, out.shape[2])
        hs = torch.cat([h0, out], dim=1)  # (B, T+1, H)
        # y is read from hs, so autograd sees dE/dhs
        return self.readout(hs[:, -1]), hs
