"""rnnbook.selective against an independent loop written here: one scalar
recurrence per (sequence, channel, state entry), in 0-d tensors, from the
equations of Mamba's Algorithm 2 (Gu and Dao, 2023) rather than from the
module's code; gradients by autograd through that loop and by
finite differences (gradcheck); recurrent mode against the scan."""

import itertools
import math

import pytest
import torch

from rnnbook.selective import (
    selective_scan,
    selective_scan_parallel,
    selective_step,
)

F64 = torch.float64
SCANS = {"loop": selective_scan, "parallel": selective_scan_parallel}


def scalar_loop(u, delta, A, B, C, D, z, delta_bias, softplus):
    """y and h_{L-1} from scalar recurrences, one state entry at a time.

    For sequence s, channel i and state entry k, with
    dt = softplus(delta[s, i, t] + delta_bias[i]):
        h <- exp(dt A[i, k]) h + dt B[s, k, t] u[s, i, t]
        y[s, i, t] = sum_k C[s, k, t] h_k + D[i] u[s, i, t],
    then times z / (1 + exp(-z)).
    """
    b, d, L = u.shape
    n = A.shape[1]
    ys, last = [], []
    for s in range(b):
        ys_s, last_s = [], []
        for i in range(d):
            h = [torch.zeros((), dtype=u.dtype) for _ in range(n)]
            ys_si = []
            for t in range(L):
                dt = delta[s, i, t]
                if delta_bias is not None:
                    dt = dt + delta_bias[i]
                if softplus:
                    dt = torch.log1p(torch.exp(dt))
                out = torch.zeros((), dtype=u.dtype)
                for k in range(n):
                    decay = torch.exp(dt * A[i, k])
                    h[k] = decay * h[k] + dt * B[s, k, t] * u[s, i, t]
                    out = out + C[s, k, t] * h[k]
                if D is not None:
                    out = out + D[i] * u[s, i, t]
                if z is not None:
                    gate = z[s, i, t] / (1 + torch.exp(-z[s, i, t]))
                    out = out * gate
                ys_si.append(out)
            ys_s.append(torch.stack(ys_si) if L else u.new_zeros(0))
            last_s.append(torch.stack(h))
        ys.append(torch.stack(ys_s))
        last.append(torch.stack(last_s))
    return torch.stack(ys), torch.stack(last)


def make_inputs(b, d, n, L, seed=0, dtype=F64, options=(True,) * 4):
    """Random inputs; ``options`` turns on D, z, delta_bias, softplus."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    with_D, with_z, with_bias, softplus = options
    inputs = dict(
        u=randn(b, d, L),
        delta=randn(b, d, L) if softplus else 0.05 + randn(b, d, L).abs(),
        A=-torch.exp(randn(d, n) * 0.5),
        B=randn(b, n, L),
        C=randn(b, n, L),
        D=randn(d) if with_D else None,
        z=randn(b, d, L) if with_z else None,
        delta_bias=(
            (randn(d) if softplus else randn(d).abs()) if with_bias else None
        ),
        delta_softplus=softplus,
    )
    return inputs


def reference_of(inputs):
    keys = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
    return scalar_loop(*(inputs[k] for k in keys), inputs["delta_softplus"])


OPTIONS = list(itertools.product([False, True], repeat=4))


def _ids(options):
    names = ("D", "z", "bias", "softplus")
    return "+".join(n for n, on in zip(names, options) if on) or "plain"


# ---------------------------------------------------------------- forward


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("options", OPTIONS, ids=_ids)
def test_scan_equals_the_scalar_loop(scan, options):
    inputs = make_inputs(2, 3, 4, 7, seed=1, options=options)
    y, h = SCANS[scan](**inputs, return_last_state=True)
    y_ref, h_ref = reference_of(inputs)
    assert y.shape == (2, 3, 7) and h.shape == (2, 3, 4)
    assert y.dtype == F64
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, h_ref, rtol=1e-12, atol=1e-12)
    assert torch.equal(SCANS[scan](**inputs), y)  # without the last state


@pytest.mark.parametrize("scan", SCANS)
def test_float32_in_float32_out(scan):
    inputs = make_inputs(2, 3, 4, 9, dtype=torch.float32)
    y = SCANS[scan](**inputs)
    assert y.dtype == torch.float32
    inputs64 = {
        k: v.double() if isinstance(v, torch.Tensor) else v
        for k, v in inputs.items()
    }
    torch.testing.assert_close(
        y.double(), SCANS[scan](**inputs64), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("L", [0, 1, 2])
def test_short_sequences(scan, L):
    inputs = make_inputs(2, 3, 4, L)
    y, h = SCANS[scan](**inputs, return_last_state=True)
    y_ref, h_ref = reference_of(inputs)
    assert y.shape == (2, 3, L) and h.shape == (2, 3, 4)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, h_ref, rtol=1e-12, atol=1e-12)
    if L == 0:  # no input: the state is still h_{-1} = 0
        assert not h.any()


@pytest.mark.parametrize("scan", SCANS)
def test_empty_batch(scan):
    y, h = SCANS[scan](**make_inputs(0, 3, 4, 5), return_last_state=True)
    assert y.shape == (0, 3, 5) and h.shape == (0, 3, 4)


def test_a_decay_of_one_step_is_exp_delta_A():
    # one channel, one state entry, u = 1 at t = 0 only, C = 1: y_t is the
    # impulse response delta_0 B_0 prod_{s=1..t} exp(delta_s A)
    L, A = 6, -0.7
    delta = torch.linspace(0.1, 0.6, L, dtype=F64).view(1, 1, L)
    u = torch.zeros(1, 1, L, dtype=F64)
    u[0, 0, 0] = 1.0
    ones = torch.ones(1, 1, L, dtype=F64)
    y = selective_scan(u, delta, torch.tensor([[A]], dtype=F64), ones, ones)
    dts = delta.flatten().tolist()
    expected = [dts[0] * math.exp(A * sum(dts[1 : t + 1])) for t in range(L)]
    assert y.flatten().tolist() == pytest.approx(expected, rel=1e-14)


# ---------------------------------------------------------------- backward

GRAD_KEYS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def _grads(fn, inputs, seed=5):
    """Gradients of <w, y> + <v, h_{L-1}> with respect to every input."""
    leaves = {
        k: inputs[k].detach().clone().requires_grad_(True) for k in GRAD_KEYS
    }
    y, h = fn({**inputs, **leaves})
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(y.shape, generator=g, dtype=y.dtype)
    v = torch.randn(h.shape, generator=g, dtype=h.dtype)
    loss = (w * y).sum() + (v * h).sum()
    return dict(zip(GRAD_KEYS, torch.autograd.grad(loss, leaves.values())))


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("softplus", [False, True])
def test_gradients_equal_the_scalar_loop(scan, softplus):
    inputs = make_inputs(2, 3, 4, 6, seed=2, options=(True,) * 3 + (softplus,))
    got = _grads(
        lambda ins: SCANS[scan](**ins, return_last_state=True), inputs
    )
    want = _grads(reference_of, inputs)
    for k in GRAD_KEYS:
        torch.testing.assert_close(got[k], want[k], rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("scan", SCANS)
def test_gradcheck(scan):
    inputs = make_inputs(1, 2, 2, 3, seed=3)
    leaves = [
        inputs[k].detach().clone().requires_grad_(True) for k in GRAD_KEYS
    ]

    def f(*tensors):
        ins = {**inputs, **dict(zip(GRAD_KEYS, tensors))}
        return SCANS[scan](**ins, return_last_state=True)

    assert torch.autograd.gradcheck(f, leaves, eps=1e-6, atol=1e-7)


# ----------------------------------------------------------- recurrent mode


@pytest.mark.parametrize("options", [(False,) * 4, (True,) * 4], ids=_ids)
def test_steps_iterated_equal_the_scan(options):
    inputs = make_inputs(2, 3, 4, 8, seed=4, options=options)
    y, h_last = selective_scan(**inputs, return_last_state=True)
    h = torch.zeros(2, 3, 4, dtype=F64)
    for t in range(8):
        y_t, h = selective_step(
            h,
            inputs["u"][:, :, t],
            inputs["delta"][:, :, t],
            inputs["A"],
            inputs["B"][:, :, t],
            inputs["C"][:, :, t],
            D=inputs["D"],
            z_t=None if inputs["z"] is None else inputs["z"][:, :, t],
            delta_bias=inputs["delta_bias"],
            delta_softplus=inputs["delta_softplus"],
        )
        assert y_t.shape == (2, 3) and h.shape == (2, 3, 4)
        torch.testing.assert_close(y_t, y[:, :, t], rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(h, h_last, rtol=1e-13, atol=1e-13)


# ------------------------------------------------------------- bad input


def _bad(**changes):
    inputs = make_inputs(2, 3, 4, 5)
    inputs.update(changes)
    return inputs


SHAPE_ERRORS = {
    "delta L": (dict(delta=torch.rand(2, 3, 6, dtype=F64)), "(2, 3, 6)"),
    "delta b": (dict(delta=torch.rand(1, 3, 5, dtype=F64)), "b=2"),
    "A d": (dict(A=-torch.rand(4, 4, dtype=F64) - 0.1), "d=3"),
    "B n": (dict(B=torch.rand(2, 5, 5, dtype=F64)), "n=4"),
    "B L": (dict(B=torch.rand(2, 4, 6, dtype=F64)), "L=5"),
    "C b": (dict(C=torch.rand(3, 4, 5, dtype=F64)), "b=2"),
    "D d": (dict(D=torch.rand(2, dtype=F64)), "d=3"),
    "z L": (dict(z=torch.rand(2, 3, 4, dtype=F64)), "L=5"),
    "bias d": (dict(delta_bias=torch.rand(4, dtype=F64)), "d=3"),
    "u 2-D": (dict(u=torch.rand(3, 5, dtype=F64)), "(b, d, L)"),
    "A 1-D": (dict(A=-torch.rand(3, dtype=F64)), "(d, n)"),
}


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("case", SHAPE_ERRORS)
def test_shape_errors_name_expected_and_received(scan, case):
    changes, expected = SHAPE_ERRORS[case]
    with pytest.raises(ValueError) as info:
        SCANS[scan](**_bad(**changes))
    message = str(info.value)
    assert expected in message and "got" in message


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("value", [0.0, 0.5, float("nan")])
def test_A_must_decay(scan, value):
    A = -torch.rand(3, 4, dtype=F64) - 0.1
    A[1, 2] = value
    with pytest.raises(ValueError, match="negative"):
        SCANS[scan](**_bad(A=A))


@pytest.mark.parametrize("scan", SCANS)
def test_negative_step_size_is_refused(scan):
    delta = torch.rand(2, 3, 5, dtype=F64)
    delta[0, 1, 2] = -0.1
    with pytest.raises(ValueError, match="delta >= 0"):
        SCANS[scan](**_bad(delta=delta, delta_softplus=False, delta_bias=None))
    # the same step through a softplus is positive: accepted
    SCANS[scan](**_bad(delta=delta, delta_softplus=True))


TYPE_ERRORS = {
    "u list": dict(u=[[[1.0]]]),
    "u int": dict(u=torch.ones(2, 3, 5, dtype=torch.int64)),
    "A complex": dict(A=-torch.ones(3, 4, dtype=torch.complex128)),
    "B float32": dict(B=torch.ones(2, 4, 5)),
    "D numpy": dict(D=[1.0, 2.0, 3.0]),
    "softplus str": dict(delta_softplus="False"),
    "last state int": dict(return_last_state=1),
}


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("case", TYPE_ERRORS)
def test_type_errors(scan, case):
    with pytest.raises(TypeError):
        SCANS[scan](**_bad(**TYPE_ERRORS[case]))


def test_step_checks_its_input():
    inputs = make_inputs(2, 3, 4, 1)
    args = dict(
        h=torch.zeros(2, 3, 4, dtype=F64),
        u_t=inputs["u"][:, :, 0],
        delta_t=inputs["delta"][:, :, 0],
        A=inputs["A"],
        B_t=inputs["B"][:, :, 0],
        C_t=inputs["C"][:, :, 0],
        delta_softplus=True,
    )
    selective_step(**args)
    with pytest.raises(ValueError, match="n=4"):
        selective_step(**{**args, "B_t": torch.ones(2, 5, dtype=F64)})
    with pytest.raises(ValueError, match="d=3"):
        selective_step(**{**args, "u_t": torch.ones(2, 2, dtype=F64)})
    with pytest.raises(ValueError, match="negative"):
        selective_step(**{**args, "A": -args["A"]})
    with pytest.raises(ValueError, match="z_t"):
        selective_step(**args, z_t=torch.ones(2, 3, 1, dtype=F64))
    with pytest.raises(TypeError):
        selective_step(**{**args, "delta_softplus": "yes"})
    with pytest.raises(TypeError):
        selective_step(**{**args, "h": torch.zeros(2, 3, 4)})


# ------------------------------------------------------- the parallel scan


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


@pytest.mark.parametrize("K", [1, 2, 3, 7, 40, 41, 100])
def test_parallel_with_any_chunk_size(K, monkeypatch):
    # the chunk size only groups the same products: any K gives the loop's
    # results, K = 1 (one step per chunk) and K >= L (one chunk) included
    import rnnbook.selective as module

    monkeypatch.setattr(module, "_chunk_size", lambda L: K)
    inputs = make_inputs(2, 3, 4, 41, seed=K)
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
