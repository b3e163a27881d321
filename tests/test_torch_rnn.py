"""rnnbook.torch_rnn against Chapter 1's NumPy RNN, and its initializations
against their recipes."""

import numpy as np
import pytest
import torch

from rnnbook.numpy_rnn import rnn_forward
from rnnbook.torch_rnn import (
    SCHEMES,
    VanillaRNN,
    init_weights,
    spectral_radius,
)


def test_forward_equals_chapter_1_rnn_and_reads_the_last_state():
    weights = init_weights(
        "basic_tanh", 3, 7, 2, torch.Generator().manual_seed(0)
    )
    weights["b"] = 0.3 * torch.ones(7)
    model = VanillaRNN(3, 7, 2).load_weights(weights).double()
    xs = torch.randn(4, 9, 3, dtype=torch.float64)
    y, hs = model(xs)
    params = (weights[k].double().numpy() for k in ("W_xh", "W_hh", "b"))
    expected = rnn_forward(*params, xs.numpy(), np.zeros((4, 7)))
    np.testing.assert_allclose(
        hs.detach().numpy(), expected, rtol=1e-12, atol=1e-12
    )
    torch.testing.assert_close(
        y, hs[:, -1] @ weights["W_hy"].double().T + weights["b_y"].double()
    )


def test_forward_rejects_wrong_input_size_type_and_empty_sequences():
    model = VanillaRNN(3, 4, 2)
    with pytest.raises(
        ValueError,
        match=r"expected x of shape \(B, T, D\) with D=3.*got \(2, 5, 4\)",
    ):
        model(torch.zeros(2, 5, 4))
    with pytest.raises(ValueError, match="T >= 1"):
        model(torch.zeros(2, 0, 3))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model(np.zeros((2, 5, 3)))
    with pytest.raises(TypeError, match="dtype"):
        model(torch.zeros(2, 5, 3, dtype=torch.complex64))
    with pytest.raises(TypeError, match="dtype"):
        model(torch.zeros(2, 5, 3, dtype=torch.float64))
    y, hs = model(torch.zeros(0, 5, 3))  # B = 0 is a valid empty batch
    assert y.shape == (0, 2) and hs.shape == (0, 6, 4)


def test_smart_tanh_has_15_incoming_weights_per_unit_and_spectral_radius_095():
    W_hh = init_weights(
        "smart_tanh", 6, 50, 4, torch.Generator().manual_seed(0)
    )["W_hh"]
    assert torch.all((W_hh != 0).sum(dim=1) == 15)
    assert spectral_radius(W_hh) == pytest.approx(0.95, rel=1e-5)


def test_orthogonal_identity_and_gaussian_schemes():
    g = torch.Generator().manual_seed(0)
    Q = init_weights("orthogonal", 6, 50, 4, g)["W_hh"]
    torch.testing.assert_close(Q.T @ Q, torch.eye(50), atol=1e-5, rtol=0)
    assert torch.equal(
        init_weights("identity", 6, 50, 4, g)["W_hh"], torch.eye(50)
    )
    for scheme, std in (("sigmoid", 0.01), ("basic_tanh", 0.1)):
        W_hh = init_weights(scheme, 6, 200, 4, g)[
            "W_hh"
        ]  # 40,000 draws: the sample std is within 2%
        assert (
            W_hh.std().item() == pytest.approx(std, rel=0.02)
            and abs(W_hh.mean().item()) < 0.05 * std
        )
    assert set(SCHEMES.values()) == {"sigmoid", "tanh", "relu"}


def test_unknown_scheme_is_rejected():
    with pytest.raises(ValueError, match="scheme to be one of"):
        init_weights("xavier", 2, 3, 1, torch.Generator())


def test_spectral_radius_equals_numpy_and_rejects_non_square():
    W = torch.randn(7, 7, generator=torch.Generator().manual_seed(4))
    assert spectral_radius(W) == pytest.approx(
        np.abs(np.linalg.eigvals(W.double().numpy())).max(), rel=1e-12
    )
    with pytest.raises(
        ValueError, match=r"expected W of shape \(H, H\).*got \(3, 4\)"
    ):
        spectral_radius(torch.zeros(3, 4))


def test_spectral_radius_of_a_complex_matrix_keeps_the_imaginary_part():
    # diag(1 + 2i, 0.5): |1 + 2i| = sqrt(5); the real part alone gives 1
    W = torch.tensor([[1 + 2j, 0], [0, 0.5]], dtype=torch.complex64)
    assert spectral_radius(W) == pytest.approx(5**0.5, rel=1e-12)
    W = torch.randn(6, 6, dtype=torch.complex128)
    expected = np.abs(np.linalg.eigvals(W.numpy())).max()
    assert spectral_radius(W) == pytest.approx(expected, rel=1e-12)
    for bad, error in (
        (torch.zeros(0, 0), ValueError),
        (torch.tensor([[float("nan")]]), ValueError),
        (torch.eye(3, dtype=torch.int64), TypeError),
        (np.eye(3), TypeError),
    ):
        with pytest.raises(error):
            spectral_radius(bad)


def test_bad_sizes_generator_and_weights_are_rejected():
    with pytest.raises(ValueError, match="hidden_size to be a positive int"):
        init_weights("orthogonal", 2, 0, 1, torch.Generator())
    with pytest.raises(TypeError, match="torch.Generator"):
        init_weights("orthogonal", 2, 3, 1, generator=0)
    weights = init_weights("orthogonal", 2, 3, 1, torch.Generator())
    with pytest.raises(ValueError, match="keys"):
        VanillaRNN(2, 3, 1).load_weights(
            {k: v for k, v in weights.items() if k != "b"}
        )
    weights["W_hh"] = torch.zeros(3, 4)
    with pytest.raises(
        ValueError, match=r"expected W_hh of shape \(3, 3\), got \(3, 4\)"
    ):
        VanillaRNN(2, 3, 1).load_weights(weights)


def test_flags_and_sizes_of_the_wrong_type_raise_type_error():
    with pytest.raises(TypeError, match="nonlinearity"):
        VanillaRNN(2, 3, 1, nonlinearity=True)
    with pytest.raises(ValueError, match="nonlinearity"):
        VanillaRNN(2, 3, 1, nonlinearity="sigmoid")
    with pytest.raises(TypeError, match="hidden_size"):
        VanillaRNN(2, "3", 1)
    with pytest.raises(TypeError, match="scheme"):
        init_weights(["orthogonal"], 2, 3, 1, torch.Generator())
    weights = init_weights("orthogonal", np.int64(2), 3, 1, torch.Generator())
    assert weights["W_xh"].shape == (3, 2)  # numpy integers are accepted


def test_load_weights_rejects_complex_non_finite_and_non_dict_weights():
    model = VanillaRNN(2, 3, 1)
    weights = init_weights("orthogonal", 2, 3, 1, torch.Generator())
    with pytest.raises(TypeError, match="dict"):
        model.load_weights(list(weights.values()))
    for name, bad, error in (
        ("W_hh", weights["W_hh"].to(torch.complex64), TypeError),
        ("b", torch.full((3,), float("nan")), ValueError),
        ("W_xh", torch.zeros(3, 2, dtype=torch.int64), TypeError),
    ):
        with pytest.raises(error, match=name):
            model.load_weights({**weights, name: bad})
