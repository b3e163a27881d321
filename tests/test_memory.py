"""rnnbook.memory: the storage counter against closed forms, the torch RNN
loop against the NumPy one, checkpointing against the plain loop."""

import numpy as np
import pytest
import torch

from rnnbook.memory import (
    checkpointed_rnn_steps,
    interleaved_seconds,
    mean_square_per_step,
    rnn_steps,
    saved_bytes,
)
from rnnbook.numpy_rnn import rnn_forward

F32 = 4  # bytes per float32


# ------------------------------------------------------------ saved_bytes


def test_a_view_counts_its_whole_storage_and_a_clone_only_itself():
    """Closed form: y has 10 x 100 floats; its last column has 10."""
    x = torch.randn(10, 100, requires_grad=True)

    def loss_of(boundary):
        y = x * 2.0  # (10, 100), a new storage; mul by a number saves none
        last = y[:, -1]  # (10,), a view of y's storage
        return (boundary(last)).square().sum()  # square saves its input

    view, _ = saved_bytes(lambda: loss_of(lambda v: v))
    clone, _ = saved_bytes(lambda: loss_of(lambda v: v.clone()))
    assert view == 10 * 100 * F32
    assert clone == 10 * F32


def test_a_storage_saved_twice_is_counted_once():
    x = torch.randn(7, 3, requires_grad=True)

    def two_uses():
        y = x * 2.0
        return (y.square() + y.sin()).sum()  # both save y

    nbytes, _ = saved_bytes(two_uses)
    assert nbytes == 7 * 3 * F32


def test_exclude_leaves_out_the_given_storages():
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    assert saved_bytes(lambda: x.square().sum())[0] == 5 * 6 * 8
    assert saved_bytes(lambda: x.square().sum(), exclude=(x,))[0] == 0
    # a view of an excluded tensor shares its storage: left out too
    assert saved_bytes(lambda: x[0].square().sum(), exclude=(x,))[0] == 0


def test_saved_bytes_returns_what_fn_returns():
    x = torch.ones(3, requires_grad=True)
    _, result = saved_bytes(lambda: (x.exp().sum(), "tag"))
    assert result[1] == "tag"
    assert abs(result[0].item() - 3 * np.e) < 1e-6


@pytest.mark.parametrize("fn,exclude", [(3, ()), (lambda: 0, (1.0,))])
def test_saved_bytes_rejects_bad_arguments(fn, exclude):
    with pytest.raises(TypeError):
        saved_bytes(fn, exclude)


# ------------------------------------------------------- the RNN in torch

B, T, D, H = 3, 12, 2, 5


def _params(dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "W_xh": torch.randn(H, D, generator=g, dtype=dtype) / D**0.5,
        "W_hh": torch.randn(H, H, generator=g, dtype=dtype) / H**0.5,
        "b": 0.1 * torch.randn(H, generator=g, dtype=dtype),
        "xs": torch.randn(B, T, D, generator=g, dtype=dtype),
        "h0": 0.5 * torch.randn(B, H, generator=g, dtype=dtype),
    }


def test_rnn_steps_matches_numpy_forward():
    p = _params()
    ours = rnn_steps(**p)
    ref = rnn_forward(*(p[k].numpy() for k in ("W_xh", "W_hh", "b")),
                      p["xs"].numpy(), p["h0"].numpy())  # fmt: skip
    assert ours.shape == (B, T, H)
    np.testing.assert_allclose(ours.numpy(), ref[:, 1:], rtol=0, atol=1e-14)


@pytest.mark.parametrize("segment", [1, 4, 5, T, T + 3, np.int64(4)])
@pytest.mark.parametrize("clone_boundary", [True, False])
def test_checkpointing_changes_neither_states_nor_gradients(
    segment, clone_boundary
):
    p = _params(seed=1)
    for key in ("W_xh", "W_hh", "b", "h0"):
        p[key].requires_grad_()
    weights = torch.randn(B, T, H, dtype=torch.float64)
    plain = rnn_steps(**p)
    ckpt = checkpointed_rnn_steps(
        **p, segment=segment, clone_boundary=clone_boundary
    )
    # equal up to rounding: a slice of xs may take another matmul kernel
    torch.testing.assert_close(ckpt, plain, rtol=0, atol=1e-14)
    keys = ("W_xh", "W_hh", "b", "h0")
    g_plain = torch.autograd.grad(
        (plain * weights).sum(), [p[k] for k in keys]
    )
    g_ckpt = torch.autograd.grad((ckpt * weights).sum(), [p[k] for k in keys])
    for key, a, b in zip(keys, g_plain, g_ckpt):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-13, msg=key)


def _memory(run, p):
    """Saved bytes of ``run`` with a loss on every step, inputs left out."""
    return saved_bytes(
        lambda: run().square().mean(),
        exclude=[p[k] for k in ("W_xh", "W_hh", "b", "xs", "h0")],
    )[0]


@pytest.mark.parametrize("T_long,M", [(40, 10), (60, 4), (30, 30)])
def test_memory_of_the_three_versions_in_closed_form(T_long, M):
    """In units of one state, B*H floats:

    - plain: T states (tanh saves its output) + T for the stacked outputs
      that the loss saves;
    - checkpointed, boundary cloned: T/M - 1 boundary states + T;
    - checkpointed, boundary a view: (T/M - 1) whole segments of M + T.
    """
    p = _params(dtype=torch.float32, seed=2)
    p["xs"] = torch.randn(B, T_long, D)
    for key in ("W_xh", "W_hh", "b"):
        p[key].requires_grad_()
    state = B * H * F32
    boundaries = T_long // M - 1
    assert _memory(lambda: rnn_steps(**p), p) == 2 * T_long * state
    clone = _memory(lambda: checkpointed_rnn_steps(**p, segment=M), p)
    assert clone == (boundaries + T_long) * state
    view = _memory(
        lambda: checkpointed_rnn_steps(**p, segment=M, clone_boundary=False),
        p,
    )
    assert view == (boundaries * M + T_long) * state


@pytest.mark.parametrize(
    "change,error",
    [
        ({"xs": np.zeros((B, T, D))}, TypeError),
        ({"W_hh": torch.zeros(H, H, dtype=torch.complex128)}, TypeError),
        ({"xs": torch.zeros(B, T, D, dtype=torch.int64)}, TypeError),
        ({"xs": torch.zeros(B, T)}, ValueError),
        ({"h0": torch.zeros(B + 1, H, dtype=torch.float64)}, ValueError),
        ({"W_xh": torch.zeros(H, D + 1, dtype=torch.float64)}, ValueError),
        ({"b": torch.zeros(H, 1, dtype=torch.float64)}, ValueError),
        ({"xs": torch.zeros(B, 0, D, dtype=torch.float64)}, ValueError),
    ],
)
def test_rnn_steps_rejects_bad_input(change, error):
    p = _params()
    p.update(change)
    name = next(iter(change))
    with pytest.raises(error, match=name):
        rnn_steps(**p)
    with pytest.raises(error, match=name):
        checkpointed_rnn_steps(**p, segment=2)


def test_empty_batch_works():
    p = _params()
    p["xs"], p["h0"] = p["xs"][:0], p["h0"][:0]
    assert rnn_steps(**p).shape == (0, T, H)
    assert checkpointed_rnn_steps(**p, segment=5).shape == (0, T, H)


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"segment": 0}, ValueError),
        ({"segment": True}, TypeError),
        ({"segment": 2.0}, TypeError),
        ({"segment": 2, "clone_boundary": "False"}, TypeError),
        ({"segment": 2, "clone_boundary": 0}, TypeError),
    ],
)
def test_checkpointing_rejects_bad_settings(kwargs, error):
    with pytest.raises(error):
        checkpointed_rnn_steps(**_params(), **kwargs)


# ------------------------------------------------------------------ timing


def test_interleaved_seconds_interleaves_and_returns_the_best():
    calls = []
    best = interleaved_seconds(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        repeats=np.int32(3),
    )
    assert calls == ["a", "b"] * 3
    assert set(best) == {"a", "b"}
    assert all(0 <= s < 1 for s in best.values())


@pytest.mark.parametrize(
    "fns,repeats,error",
    [
        ([lambda: 0], 2, TypeError),
        ({"a": 3}, 2, TypeError),
        ({"a": lambda: 0}, 0, ValueError),
        ({"a": lambda: 0}, True, TypeError),
    ],
)
def test_interleaved_seconds_rejects_bad_arguments(fns, repeats, error):
    with pytest.raises(error):
        interleaved_seconds(fns, repeats)


# ------------------------------------------------- mean_square_per_step


def _weights(B_, T_, D_, H_, seed=0):
    g = torch.Generator().manual_seed(seed)
    W_xh = torch.randn(H_, D_, generator=g).requires_grad_()
    W_hh = (torch.randn(H_, H_, generator=g) / H_**0.5).requires_grad_()
    b = torch.randn(H_, generator=g).requires_grad_()
    xs = torch.randn(B_, T_, D_, generator=g)
    h0 = torch.randn(B_, H_, generator=g)
    return W_xh, W_hh, b, xs, h0


def test_mean_square_per_step_equals_the_stacked_loss_and_its_gradients():
    args = [
        a.double().detach().requires_grad_(a.requires_grad)
        for a in _weights(3, 7, 2, 5)
    ]
    ours = mean_square_per_step(*args)
    ref = rnn_steps(*args).square().mean()
    assert torch.allclose(ours, ref, rtol=1e-12, atol=0)
    g_ours = torch.autograd.grad(ours, args[:3])
    g_ref = torch.autograd.grad(ref, args[:3])
    for a, r in zip(g_ours, g_ref):
        assert torch.allclose(a, r, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("T_long", [1, 9, 40])
def test_mean_square_per_step_keeps_one_state_per_step(T_long):
    """Closed form: T states of (B, H); the stacked loss keeps 2T."""
    B_, H_ = 4, 6
    args = _weights(B_, T_long, 3, H_)
    ours, _ = saved_bytes(lambda: mean_square_per_step(*args), exclude=args)
    stacked, _ = saved_bytes(
        lambda: rnn_steps(*args).square().mean(), exclude=args
    )
    assert ours == T_long * B_ * H_ * F32
    assert stacked == 2 * T_long * B_ * H_ * F32


@pytest.mark.parametrize("shape", [(0, 5, 3), (2, 0, 3)])
def test_mean_square_per_step_needs_a_sequence_and_a_step(shape):
    W_xh, W_hh, b, _, _ = _weights(2, 5, 3, 4)
    xs, h0 = torch.randn(*shape), torch.zeros(shape[0], 4)
    with pytest.raises(ValueError, match="at least one"):
        mean_square_per_step(W_xh, W_hh, b, xs, h0)
    with pytest.raises(TypeError, match="torch.Tensor"):
        mean_square_per_step(W_xh, W_hh, b, np.zeros((2, 5, 3)), h0)
