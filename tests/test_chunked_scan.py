"""rnnbook.chunked_scan: the chunked parallel scan against the reference
loop of rnnbook.selective and against the scalar loop written in
test_selective.py, forward and backward, at every length and chunk size,
where cumulative decays underflow; its public pieces (chunk_size,
chunked_states, chunked_outputs) against the loop's states and outputs.
The contract the two scans share (results, gradients, bad input) is tested
on both in test_selective.py."""

import math

import numpy as np
import pytest
import torch
from test_selective import GRAD_KEYS, _grads, make_inputs, reference_of

from rnnbook import chunked_scan
from rnnbook.chunked_scan import (
    chunk_size,
    chunked_outputs,
    chunked_states,
    selective_scan_parallel,
)
from rnnbook.selective import selective_scan, selective_update

F64 = torch.float64


def _relative(got, want):
    return ((got - want).norm() / want.norm().clamp_min(1e-300)).item()


def _assert_parallel_matches(inputs, reference):
    """The parallel scan's (y, h_last) and every input's gradient against
    ``reference(inputs) -> (y, h_last)``: 1e-12 forward, 1e-9 backward."""
    y, h = selective_scan_parallel(**inputs, return_last_state=True)
    y_ref, h_ref = reference(inputs)
    assert _relative(y, y_ref) <= 1e-12 and _relative(h, h_ref) <= 1e-12
    got = _grads(
        lambda ins: selective_scan_parallel(**ins, return_last_state=True),
        inputs,
    )
    want = _grads(reference, inputs)
    for k in GRAD_KEYS:
        assert _relative(got[k], want[k]) <= 1e-9, k


@pytest.mark.parametrize(
    "L", [1, 2, 3, 4, 5, 8, 15, 16, 17, 33, 64, 99, 100, 257]
)
def test_parallel_equals_the_loop_at_any_length(L):
    inputs = make_inputs(2, 3, 4, L, seed=L)
    _assert_parallel_matches(
        inputs, lambda ins: selective_scan(**ins, return_last_state=True)
    )


@pytest.mark.parametrize("c", [1, 2, 3, 7, 40, 41, 100])
def test_parallel_with_any_chunk_size(c, monkeypatch):
    # the chunk size only groups the same products: any c gives the loop's
    # results, c = 1 (one step per chunk) and c >= L (one chunk) included
    monkeypatch.setattr(chunked_scan, "chunk_size", lambda L: c)
    inputs = make_inputs(2, 3, 4, 41, seed=c)
    _assert_parallel_matches(
        inputs, lambda ins: selective_scan(**ins, return_last_state=True)
    )


def test_parallel_equals_the_scalar_loop_on_a_longer_sequence():
    inputs = make_inputs(1, 2, 3, 50, seed=6)
    _assert_parallel_matches(inputs, reference_of)


@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_parallel_is_safe_where_cumulative_sums_of_delta_A_are_huge(dtype):
    # delta up to ~9 (softplus of up to 9) and A near -16 over L = 512:
    # sum_t delta_t A reaches about -30000, so exp(-cumsum) would overflow
    # and a division by cumulative products would give 0/0. Single decays
    # exp(delta A) reach exp(-150) and underflow in float32.
    g = torch.Generator().manual_seed(7)
    b, d, n, L = 2, 3, 4, 512
    inputs = make_inputs(b, d, n, L, seed=7, dtype=F64)
    inputs["delta"] = 3 * torch.randn(b, d, L, generator=g, dtype=F64) + 4
    inputs["A"] = -16 + 0.5 * torch.rand(d, n, generator=g, dtype=F64)
    inputs = {
        k: v.to(dtype) if isinstance(v, torch.Tensor) else v
        for k, v in inputs.items()
    }
    total = inputs["delta_bias"][:, None] + inputs["delta"]
    assert (torch.nn.functional.softplus(total).sum(-1) > 1000).all()
    y, h = selective_scan_parallel(**inputs, return_last_state=True)
    y_ref, h_ref = selective_scan(**inputs, return_last_state=True)
    assert torch.isfinite(y).all() and torch.isfinite(h).all()
    tol = 1e-12 if dtype == F64 else 1e-5
    assert _relative(y, y_ref) <= tol and _relative(h, h_ref) <= tol
    got = _grads(
        lambda ins: selective_scan_parallel(**ins, return_last_state=True),
        inputs,
    )
    want = _grads(
        lambda ins: selective_scan(**ins, return_last_state=True), inputs
    )
    for k in GRAD_KEYS:
        assert torch.isfinite(got[k]).all(), k
        assert _relative(got[k], want[k]) <= (1e-9 if dtype == F64 else 1e-4)


@pytest.mark.parametrize("wrt", ["y", "h"])
def test_parallel_gradients_of_one_output_only(wrt):
    # the backward pass receives no gradient for the other output
    inputs = make_inputs(2, 3, 4, 10, seed=8)

    def only(scan):
        def run(ins):
            y, h = scan(**ins, return_last_state=True)
            return (y, 0 * h) if wrt == "y" else (0 * y, h)

        return run

    def detached_other(ins):  # the other output never reaches the loss
        y, h = selective_scan_parallel(**ins, return_last_state=True)
        return (y, h.detach()) if wrt == "y" else (y.detach(), h)

    def loss_of(run, ins):
        y, h = run(ins)
        g = torch.Generator().manual_seed(9)
        w = torch.randn(y.shape, generator=g, dtype=F64)
        v = torch.randn(h.shape, generator=g, dtype=F64)
        return (w * y).sum() if wrt == "y" else (v * h).sum()

    leaves = {
        k: inputs[k].detach().clone().requires_grad_(True) for k in GRAD_KEYS
    }
    ins = {**inputs, **leaves}
    got = torch.autograd.grad(
        loss_of(detached_other, ins), leaves.values(), allow_unused=True
    )
    want = torch.autograd.grad(
        loss_of(only(selective_scan), ins), leaves.values(), allow_unused=True
    )
    for k, g_got, g_want, leaf in zip(GRAD_KEYS, got, want, leaves.values()):
        if g_want is None or not g_want.any():  # C, z, D do not reach h
            assert wrt == "h" and k in ("C", "z", "D"), k
            assert g_got is None or not g_got.any(), k
        else:
            assert _relative(g_got, g_want) <= 1e-9, k


def test_parallel_without_the_last_state_backpropagates():
    inputs = make_inputs(2, 3, 4, 12, seed=10)
    leaves = {
        k: inputs[k].detach().clone().requires_grad_(True) for k in GRAD_KEYS
    }
    ins = {**inputs, **leaves}
    got = torch.autograd.grad(
        selective_scan_parallel(**ins).square().sum(), leaves.values()
    )
    want = torch.autograd.grad(
        selective_scan(**ins).square().sum(), leaves.values()
    )
    for k, a, b in zip(GRAD_KEYS, got, want):
        assert _relative(a, b) <= 1e-9, k


# ------------------------------------------------------ the public pieces


def test_chunk_size():
    expected = {0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 256: 8, 2048: 23, 16384: 64}
    assert {L: chunk_size(L) for L in expected} == expected
    for L in range(0, 3000, 7):
        c = chunk_size(L)
        assert 1 <= c <= max(1, L)
        assert L < 4 or abs(c - math.sqrt(L / 4)) <= 0.5  # round(...)
    assert chunk_size(np.int64(2048)) == 23
    with pytest.raises(ValueError, match=">= 0"):
        chunk_size(-1)
    for bad in (2048.0, True, "2048"):
        with pytest.raises(TypeError):
            chunk_size(bad)


def _loop_states(inputs):
    """Every state h_t, (L, b, d, n), by L steps of the reference update."""
    u, delta, A, B, C = (inputs[k] for k in ("u", "delta", "A", "B", "C"))
    h, states = u.new_zeros(u.shape[0], u.shape[1], A.shape[1]), []
    for t in range(u.shape[2]):
        _, h = selective_update(
            h, u[:, :, t], delta[:, :, t], A, B[:, :, t], C[:, :, t]
        )
        states.append(h)
    return torch.stack(states) if states else h.new_zeros(0, *h.shape)


@pytest.mark.parametrize("L", [0, 1, 5, 23, 41, 100])
def test_chunked_states_are_the_loops_states(L):
    inputs = make_inputs(2, 3, 4, L, seed=20 + L, options=(False,) * 4)
    h, c = chunked_states(*(inputs[k] for k in ("delta", "u", "A", "B")))
    L_pad = h.shape[0]
    assert c == chunk_size(L) and L_pad % c == 0 and L <= L_pad < L + c
    assert h.shape == (L_pad, 2, 3, 4)
    torch.testing.assert_close(
        h[:L], _loop_states(inputs), rtol=1e-12, atol=1e-12
    )
    if L:  # the padding is zero input: h unchanged after h_{L-1}
        torch.testing.assert_close(
            h[L:], h[L - 1].expand(L_pad - L, 2, 3, 4), rtol=0, atol=0
        )


@pytest.mark.parametrize("L", [0, 1, 5, 23, 41, 100])
def test_chunked_outputs_are_the_loops_outputs(L):
    inputs = make_inputs(2, 3, 4, L, seed=30 + L, options=(False,) * 4)
    y, h_last = chunked_outputs(
        *(inputs[k] for k in ("delta", "u", "A", "B", "C"))
    )
    y_ref, h_ref = selective_scan(**inputs, return_last_state=True)
    assert y.shape == (2, 3, L) and h_last.shape == (2, 3, 4)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h_last, h_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("function", [chunked_states, chunked_outputs])
def test_chunked_passes_refuse_bad_input_with_a_clear_error(function):
    inputs = make_inputs(2, 3, 4, 9, seed=40, options=(False,) * 4)
    names = ("delta", "u", "A", "B", "C")[
        : 4 if function is chunked_states else 5
    ]

    def call(**change):
        return function(*({**inputs, **change}[k] for k in names))

    with pytest.raises(ValueError, match="B"):
        call(B=inputs["B"][:, :, :5])  # L differs from u's
    with pytest.raises(ValueError, match="A"):
        call(A=-inputs["A"])  # a growing state
    with pytest.raises(ValueError, match="delta"):
        call(delta=-inputs["delta"])  # a negative step
    with pytest.raises(ValueError, match="u"):
        call(u=inputs["u"][0])  # not (b, d, L)
