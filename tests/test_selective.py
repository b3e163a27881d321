"""rnnbook.selective against an independent loop written here: one scalar
recurrence per (sequence, channel, state entry), in 0-d tensors, from the
equations of Mamba's Algorithm 2 (Gu and Dao, 2023) rather than from the
module's code; gradients by autograd through that loop and by
finite differences (gradcheck); recurrent mode against the scan.

The semantics of the scan's signature (results, gradients, bad input) are
tested on both of its computations, the loop here and the chunked scan of
rnnbook.chunked_scan; what is particular to the chunked scan is in
test_chunked_scan.py, which reuses this file's reference."""

import itertools
import math

import pytest
import torch

from rnnbook.chunked_scan import selective_scan_parallel
from rnnbook.selective import selective_scan, selective_step, selective_update

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


def test_one_update_is_the_scalar_recurrence():
    # from a nonzero state, every (sequence, channel, entry) separately
    g = torch.Generator().manual_seed(11)
    b, d, n = 2, 3, 4
    h = torch.randn(b, d, n, generator=g, dtype=F64)
    u_t, delta_t = (
        torch.randn(b, d, generator=g, dtype=F64),
        torch.rand(b, d, generator=g, dtype=F64),
    )
    A = -torch.rand(d, n, generator=g, dtype=F64) - 0.1
    B_t = torch.randn(b, n, generator=g, dtype=F64)
    C_t = torch.randn(b, n, generator=g, dtype=F64)
    y_t, h_t = selective_update(h, u_t, delta_t, A, B_t, C_t)
    assert y_t.shape == (b, d) and h_t.shape == (b, d, n)
    for s in range(b):
        for i in range(d):
            out = 0.0
            for k in range(n):
                dt = delta_t[s, i].item()
                want = math.exp(dt * A[i, k].item()) * h[s, i, k].item()
                want += dt * B_t[s, k].item() * u_t[s, i].item()
                assert h_t[s, i, k].item() == pytest.approx(want, rel=1e-14)
                out += C_t[s, k].item() * want
            assert y_t[s, i].item() == pytest.approx(out, rel=1e-12, abs=1e-14)
