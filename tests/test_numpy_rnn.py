"""rnnbook.numpy_rnn against torch (forward and autograd, float64),
central finite differences, and an independent autograd construction of
the truncated gradient; then bad input, one test per class."""

import numpy as np
import pytest
import torch

from rnnbook.numpy_rnn import (
    bptt,
    chunked_bptt,
    rnn_forward,
    state_gradients,
    step_jacobian,
)

B, T, D, H = 2, 6, 3, 4
KEYS = ("W_xh", "W_hh", "b", "h0")


def _problem(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return {
        "xs": rng.standard_normal((B, T, D)),
        "h0": 0.5 * rng.standard_normal((B, H)),
        "W_xh": rng.standard_normal((H, D)) / np.sqrt(D),
        "W_hh": scale * rng.standard_normal((H, H)) / np.sqrt(H),
        "b": 0.1 * rng.standard_normal(H),
        "dhs": rng.standard_normal((B, T, H)),
    }


def _torch_states(p, requires_grad=True, detach_before=None):
    """States as a list of torch tensors.

    With ``detach_before=s``, h_s is cut from its past.
    """
    t = {
        k: torch.tensor(v, requires_grad=requires_grad and k != "xs")
        for k, v in p.items()
        if k != "dhs"
    }
    hs = [t["h0"]]
    for step in range(1, T + 1):
        prev = hs[-1].detach() if detach_before == step - 1 else hs[-1]
        hs.append(
            torch.tanh(
                t["xs"][:, step - 1] @ t["W_xh"].T
                + prev @ t["W_hh"].T
                + t["b"]
            )
        )
    return t, hs


def _torch_grads(p):
    t, hs = _torch_states(p)
    loss = (torch.stack(hs[1:], dim=1) * torch.tensor(p["dhs"])).sum()
    grads = torch.autograd.grad(loss, [t[k] for k in KEYS])
    return {k: g.numpy() for k, g in zip(KEYS, grads)}


def _truncated_torch_grads(p, k):
    """Truncated gradient term by term: for step t, a graph cut k back."""
    total = {key: np.zeros_like(p[key]) for key in KEYS}
    for t_step in range(1, T + 1):
        # h_cut is a leaf for this term; no cut if it would be before h_0
        cut = t_step - k
        t, hs = _torch_states(p, detach_before=cut if cut >= 1 else None)
        term = (hs[t_step] * torch.tensor(p["dhs"][:, t_step - 1])).sum()
        grads = torch.autograd.grad(
            term, [t[key] for key in KEYS], allow_unused=True
        )
        for key, g in zip(KEYS, grads):
            if g is not None:
                total[key] += g.numpy()
    return total


def _call(p, **kwargs):
    hs = rnn_forward(p["W_xh"], p["W_hh"], p["b"], p["xs"], p["h0"])
    return bptt(p["W_xh"], p["W_hh"], p["b"], p["xs"], hs, p["dhs"], **kwargs)


def _rel_err(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def test_forward_matches_torch_rnn():
    p = _problem()
    rnn = torch.nn.RNN(D, H, batch_first=True, nonlinearity="tanh").double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(p["W_xh"]))
        rnn.weight_hh_l0.copy_(torch.tensor(p["W_hh"]))
        rnn.bias_ih_l0.copy_(torch.tensor(p["b"]))
        rnn.bias_hh_l0.zero_()
        out, _ = rnn(torch.tensor(p["xs"]), torch.tensor(p["h0"])[None])
    hs = rnn_forward(p["W_xh"], p["W_hh"], p["b"], p["xs"], p["h0"])
    assert hs.shape == (B, T + 1, H)
    np.testing.assert_array_equal(hs[:, 0], p["h0"])
    np.testing.assert_allclose(hs[:, 1:], out.numpy(), rtol=0, atol=1e-13)


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_full_bptt_matches_autograd(scale):
    p = _problem(seed=1, scale=scale)
    ours, ref = _call(p), _torch_grads(p)
    for key in KEYS:
        assert ours[key].shape == ref[key].shape
        assert _rel_err(ours[key], ref[key]) < 1e-10, key


def test_full_bptt_matches_finite_differences():
    p = _problem(seed=2)
    ours = _call(p)
    eps = 1e-6

    def loss(q):
        hs = rnn_forward(q["W_xh"], q["W_hh"], q["b"], q["xs"], q["h0"])
        return np.sum(hs[:, 1:] * q["dhs"])

    for key in KEYS:
        numeric = np.zeros_like(p[key])
        for idx in np.ndindex(p[key].shape):
            plus = {k: v.copy() for k, v in p.items()}
            minus = {k: v.copy() for k, v in p.items()}
            plus[key][idx] += eps
            minus[key][idx] -= eps
            numeric[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        assert _rel_err(ours[key], numeric) < 1e-7, key


@pytest.mark.parametrize("k", [1, 2, 3, T - 1])
def test_truncated_bptt_matches_cut_graphs(k):
    p = _problem(seed=3, scale=1.5)
    ours, ref = _call(p, truncate=k), _truncated_torch_grads(p, k)
    for key in KEYS:
        assert _rel_err(ours[key], ref[key]) < 1e-10, key
    # truncation really changes the answer for k < T (the test could fail)
    assert _rel_err(ours["W_hh"], _call(p)["W_hh"]) > 1e-6


@pytest.mark.parametrize("k", [T, T + 5, np.int64(T)])
def test_truncated_with_k_at_least_T_equals_full(k):
    """The slow per-term path (k >= T) and the single-sweep path must agree."""
    p = _problem(seed=4, scale=2.0)
    full, trunc = _call(p), _call(p, truncate=k)
    for key in KEYS:
        assert _rel_err(trunc[key], full[key]) < 1e-12, key


def _chunked_torch_grads(p, chunk):
    """Chunked truncation as training runs it: detach every chunk's start."""
    t = {
        k: torch.tensor(v, requires_grad=k != "xs")
        for k, v in p.items()
        if k != "dhs"
    }
    h, loss = t["h0"], 0.0
    for step in range(1, T + 1):
        if step > 1 and (step - 1) % chunk == 0:
            h = h.detach()  # a new chunk starts from a constant state
        h = torch.tanh(
            t["xs"][:, step - 1] @ t["W_xh"].T + h @ t["W_hh"].T + t["b"]
        )
        loss = loss + (h * torch.tensor(p["dhs"][:, step - 1])).sum()
    grads = torch.autograd.grad(loss, [t[k] for k in KEYS])
    return {k: g.numpy() for k, g in zip(KEYS, grads)}


def _call_chunked(p, chunk):
    hs = rnn_forward(p["W_xh"], p["W_hh"], p["b"], p["xs"], p["h0"])
    return chunked_bptt(
        p["W_xh"], p["W_hh"], p["b"], p["xs"], hs, p["dhs"], chunk
    )


@pytest.mark.parametrize("chunk", [1, 2, 4, np.int64(3)])
def test_chunked_bptt_matches_detached_chunks_in_torch(chunk):
    p = _problem(seed=6, scale=1.5)
    ours, ref = _call_chunked(p, chunk), _chunked_torch_grads(p, chunk)
    for key in KEYS:
        assert ours[key].shape == ref[key].shape
        assert _rel_err(ours[key], ref[key]) < 1e-10, key


def test_chunked_bptt_against_the_exact_truncation():
    p = _problem(seed=7, scale=1.5)
    # one step per chunk: every term sees exactly one transition, in both
    for key in KEYS:
        assert _rel_err(
            _call_chunked(p, 1)[key], _call(p, truncate=1)[key]
        ) < (1e-12)
    # one chunk: nothing is cut
    for chunk in (T, T + 3):
        for key in KEYS:
            assert _rel_err(_call_chunked(p, chunk)[key], _call(p)[key]) < (
                1e-12
            )
    # in between, early terms of a chunk see fewer than k transitions
    assert _rel_err(
        _call_chunked(p, 3)["W_hh"], _call(p, truncate=3)["W_hh"]
    ) > (1e-6)


@pytest.mark.parametrize(
    "chunk, error",
    [
        (0, ValueError),
        (-2, ValueError),
        (None, TypeError),
        (True, TypeError),
        (2.0, TypeError),
        ("3", TypeError),
    ],
)
def test_chunked_bptt_rejects_bad_chunk(chunk, error):
    p = _problem()
    with pytest.raises(error, match="chunk"):
        _call_chunked(p, chunk)


def test_h0_gradient_only_from_terms_within_k_steps():
    p = _problem(seed=5)
    p["dhs"][:, :2] = 0.0  # only terms t >= 3 remain
    assert np.all(_call(p, truncate=2)["h0"] == 0.0)
    assert np.any(_call(p, truncate=3)["h0"] != 0.0)


def test_state_gradients_and_jacobian_match_autograd():
    p = _problem(seed=6)
    t, hs = _torch_states(p)
    for h in hs:
        h.retain_grad()
    (torch.stack(hs[1:], dim=1) * torch.tensor(p["dhs"])).sum().backward()
    ours_hs = rnn_forward(p["W_xh"], p["W_hh"], p["b"], p["xs"], p["h0"])
    grads = state_gradients(p["W_hh"], ours_hs, p["dhs"])
    for step in range(T + 1):
        assert _rel_err(grads[:, step], hs[step].grad.numpy()) < 1e-10
    J = step_jacobian(p["W_hh"], ours_hs[:, 3])
    for n in range(B):
        ref = torch.autograd.functional.jacobian(
            lambda h: torch.tanh(
                t["xs"][n, 2].detach() @ t["W_xh"].detach().T
                + h @ t["W_hh"].detach().T
                + t["b"].detach()
            ),
            torch.tensor(ours_hs[n, 2]),
        )
        np.testing.assert_allclose(J[n], ref.numpy(), rtol=0, atol=1e-13)


# ------------------------------------------------------------------ bad input


def _bad(name, value):
    p = _problem()
    p[name] = value
    return p


@pytest.mark.parametrize(
    "name,value,expected",
    [
        ("xs", np.zeros((B, D)), "(B, T, D)"),
        ("h0", np.zeros((B, H, 1)), "(B, H)"),
        ("W_xh", np.zeros((H,)), "(H, D)"),
        ("W_hh", np.zeros((H, H, 1)), "(H, H)"),
        ("b", np.zeros((H, 1)), "(H,)"),
        ("h0", np.zeros((B + 1, H)), "(B, H)"),
        ("W_xh", np.zeros((H, D + 1)), "(H, D)"),
        ("W_hh", np.zeros((H, H + 1)), "(H, H)"),
        ("b", np.zeros(H + 1), "(H,)"),
        ("xs", np.full((B, T, D), np.nan), "(B, T, D)"),
        ("h0", np.full((B, H), np.inf), "(B, H)"),
        ("W_hh", np.full((H, H), -np.inf), "(H, H)"),
    ],
)
def test_forward_rejects_bad_input(name, value, expected):
    p = _bad(name, value)
    with pytest.raises(ValueError) as info:
        rnn_forward(p["W_xh"], p["W_hh"], p["b"], p["xs"], p["h0"])
    message = str(info.value)
    assert (
        name in message
        and expected in message
        and str(np.shape(value)) in message
    )


@pytest.mark.parametrize(
    "name,shape",
    [
        ("hs", (B, T, H)),
        ("hs", (B, T + 1)),
        ("dhs", (B, T + 1, H)),
        ("dhs", (B, T)),
        ("xs", (B, T, D, 1)),
        ("W_xh", (H + 1, D)),
        ("b", (H - 1,)),
    ],
)
def test_bptt_rejects_bad_shapes(name, shape):
    p = _problem()
    hs = rnn_forward(p["W_xh"], p["W_hh"], p["b"], p["xs"], p["h0"])
    args = {
        "xs": p["xs"],
        "hs": hs,
        "W_xh": p["W_xh"],
        "W_hh": p["W_hh"],
        "b": p["b"],
        "dhs": p["dhs"],
    }
    args[name] = np.zeros(shape)
    with pytest.raises(ValueError, match=name) as info:
        bptt(**args)
    assert str(shape) in str(info.value)


@pytest.mark.parametrize("name", ["hs", "dhs"])
def test_bptt_rejects_non_finite(name):
    p = _problem()
    hs = rnn_forward(p["W_xh"], p["W_hh"], p["b"], p["xs"], p["h0"])
    args = {
        "xs": p["xs"],
        "hs": hs,
        "W_xh": p["W_xh"],
        "W_hh": p["W_hh"],
        "b": p["b"],
        "dhs": p["dhs"],
    }
    args[name] = args[name].copy()
    args[name][0, 1, 2] = np.nan
    with pytest.raises(ValueError, match=f"expected {name} .*finite"):
        bptt(**args)


@pytest.mark.parametrize("truncate", [0, -3, np.int64(0)])
def test_bptt_rejects_truncate_below_one(truncate):
    p = _problem()
    with pytest.raises(ValueError, match="truncate") as info:
        _call(p, truncate=truncate)
    assert str(truncate) in str(info.value)


@pytest.mark.parametrize("truncate", [True, False, 2.0, "3", 1.5, [3]])
def test_bptt_rejects_truncate_of_the_wrong_type(truncate):
    """A bool is not an int here: truncate=True must not mean k = 1."""
    p = _problem()
    with pytest.raises(TypeError, match="truncate") as info:
        _call(p, truncate=truncate)
    assert type(truncate).__name__ in str(info.value)


@pytest.mark.parametrize("k", [np.int8(3), np.int32(3), np.uint16(3)])
def test_bptt_accepts_numpy_integer_truncate(k):
    p = _problem(seed=7)
    ours, ref = _call(p, truncate=k), _call(p, truncate=3)
    for key in KEYS:
        np.testing.assert_array_equal(ours[key], ref[key])


def test_non_numeric_input_is_a_type_error():
    p = _problem()
    with pytest.raises(TypeError, match="xs"):
        rnn_forward(p["W_xh"], p["W_hh"], p["b"], "not an array", p["h0"])


@pytest.mark.parametrize("name", ["W_xh", "W_hh", "b", "xs", "h0"])
def test_complex_input_is_a_type_error(name):
    """A complex array must not lose its imaginary part silently."""
    p = _problem()
    p[name] = p[name] + 1j
    with pytest.raises(TypeError, match=name) as info:
        rnn_forward(p["W_xh"], p["W_hh"], p["b"], p["xs"], p["h0"])
    assert "complex" in str(info.value)


@pytest.mark.parametrize("name", ["hs", "dhs"])
def test_complex_states_or_gradients_are_a_type_error(name):
    p = _problem()
    args = {
        "hs": rnn_forward(p["W_xh"], p["W_hh"], p["b"], p["xs"], p["h0"]),
        "dhs": p["dhs"],
    }
    args[name] = args[name] * (1 + 0j)  # complex dtype, imaginary part 0
    with pytest.raises(TypeError, match=name):
        bptt(p["W_xh"], p["W_hh"], p["b"], p["xs"], **args)
    with pytest.raises(TypeError, match=name):
        state_gradients(p["W_hh"], **args)
    if name == "hs":
        with pytest.raises(TypeError, match="h_t"):
            step_jacobian(p["W_hh"], args["hs"][:, 1])


def test_boolean_array_is_a_type_error():
    """Bits as bools are not silently read as 0.0 and 1.0."""
    p = _problem()
    with pytest.raises(TypeError, match="xs .*bool"):
        rnn_forward(p["W_xh"], p["W_hh"], p["b"], p["xs"] > 0, p["h0"])


def test_integer_arrays_are_accepted_as_reals():
    p = _problem()
    ints = np.arange(B * T * D).reshape(B, T, D) % 3 - 1  # int64
    ours = rnn_forward(p["W_xh"], p["W_hh"], p["b"], ints, p["h0"])
    ref = rnn_forward(p["W_xh"], p["W_hh"], p["b"], ints * 1.0, p["h0"])
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("truncate", [None, 1, 3])
def test_empty_sequence_has_zero_gradients(truncate):
    """T = 0: no steps, no loss terms, so every gradient is exactly zero."""
    p = _problem()
    xs, dhs = p["xs"][:, :0], p["dhs"][:, :0]  # (B, 0, D), (B, 0, H)
    hs = rnn_forward(p["W_xh"], p["W_hh"], p["b"], xs, p["h0"])
    assert hs.shape == (B, 1, H)
    np.testing.assert_array_equal(hs[:, 0], p["h0"])
    dh = state_gradients(p["W_hh"], hs, dhs)
    assert dh.shape == (B, 1, H) and np.all(dh == 0.0)
    grads = bptt(p["W_xh"], p["W_hh"], p["b"], xs, hs, dhs, truncate)
    for key in KEYS:
        assert grads[key].shape == np.shape(p[key]), key
        assert np.all(grads[key] == 0.0), key


@pytest.mark.parametrize("truncate", [None, 2])
def test_empty_batch_gives_empty_states_and_zero_gradients(truncate):
    """B = 0: empty states, zero parameter gradients, no NaN."""
    p = _problem()
    xs, h0, dhs = p["xs"][:0], p["h0"][:0], p["dhs"][:0]
    hs = rnn_forward(p["W_xh"], p["W_hh"], p["b"], xs, h0)
    assert hs.shape == (0, T + 1, H)
    assert state_gradients(p["W_hh"], hs, dhs).shape == (0, T + 1, H)
    assert step_jacobian(p["W_hh"], hs[:, 1]).shape == (0, H, H)
    grads = bptt(p["W_xh"], p["W_hh"], p["b"], xs, hs, dhs, truncate)
    assert grads["h0"].shape == (0, H)
    for key in ("W_xh", "W_hh", "b"):
        assert grads[key].shape == p[key].shape
        assert np.all(grads[key] == 0.0), key


def test_states_without_h0_are_a_value_error():
    p = _problem()
    with pytest.raises(ValueError, match="hs"):
        state_gradients(p["W_hh"], np.zeros((B, 0, H)), np.zeros((B, 0, H)))
