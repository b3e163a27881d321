"""rnnbook.gated against torch.nn's LSTM/GRU (copied weights, float64) and
against a direct NumPy transcription of Cho et al.'s GRU equations; bad
input, one test per class."""

import itertools

import numpy as np
import pytest
import torch

from rnnbook.gated import (
    GRU,
    LSTM,
    FinalStateReadout,
    GRUCell,
    LSTMCell,
    gru_step,
    lstm_step,
)

D, H, B, T = 3, 4, 2, 5
TOL = 1e-12


def _pair(cls, torch_cls, **kwargs):
    """Our module and torch's, same configuration, torch's weights in ours."""
    torch.manual_seed(0)
    ref = torch_cls(D, H, **kwargs).double()
    ours = cls(D, H, **kwargs).double()
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def _flat(result):
    """``(output, h_n)`` or ``(output, (h_n, c_n))`` as a flat list."""
    output, state = result
    return [output] + (list(state) if isinstance(state, tuple) else [state])


def _assert_same_function(ours, ref, x, state):
    """Same outputs/states, and the same gradients for every parameter, x
    and the state."""
    inputs = [x] + (
        []
        if state is None
        else (list(state) if isinstance(state, tuple) else [state])
    )
    results = {}
    for name, module in (("ours", ours), ("torch", ref)):
        leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
        s = (
            None
            if state is None
            else (tuple(leaves[1:]) if isinstance(state, tuple) else leaves[1])
        )
        module.zero_grad()
        outs = _flat(module(leaves[0], s))
        weights = [
            torch.linspace(-1, 1, o.numel(), dtype=o.dtype).reshape(o.shape)
            for o in outs
        ]
        sum(
            ((w * o).sum() for w, o in zip(weights, outs))
        ).backward()  # touches every output
        grads = [p.grad for _, p in sorted(module.named_parameters())] + [
            t.grad for t in leaves
        ]
        results[name] = (outs, grads)
    (outs_a, grads_a), (outs_b, grads_b) = results["ours"], results["torch"]
    assert [o.shape for o in outs_a] == [o.shape for o in outs_b]
    for a, b in zip(outs_a + grads_a, outs_b + grads_b):
        assert a is not None and b is not None
        torch.testing.assert_close(a, b, rtol=0, atol=TOL)


CONFIGS = list(
    itertools.product([1, 2, 3], [False, True], [False, True], [True, False])
)


@pytest.mark.parametrize("num_layers,bidirectional,with_state,bias", CONFIGS)
def test_lstm_matches_torch(num_layers, bidirectional, with_state, bias):
    ours, ref = _pair(
        LSTM,
        torch.nn.LSTM,
        num_layers=num_layers,
        bidirectional=bidirectional,
        bias=bias,
        batch_first=True,
    )
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [
        (n, p.shape) for n, p in ref.named_parameters()
    ]
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, D, generator=gen, dtype=torch.float64)
    S = num_layers * (2 if bidirectional else 1)
    state = (
        (
            torch.randn(S, B, H, generator=gen, dtype=torch.float64),
            torch.randn(S, B, H, generator=gen, dtype=torch.float64),
        )
        if with_state
        else None
    )
    _assert_same_function(ours, ref, x, state)


@pytest.mark.parametrize("num_layers,bidirectional,with_state,bias", CONFIGS)
def test_gru_matches_torch(num_layers, bidirectional, with_state, bias):
    ours, ref = _pair(
        GRU,
        torch.nn.GRU,
        num_layers=num_layers,
        bidirectional=bidirectional,
        bias=bias,
        batch_first=True,
    )
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [
        (n, p.shape) for n, p in ref.named_parameters()
    ]
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(B, T, D, generator=gen, dtype=torch.float64)
    S = num_layers * (2 if bidirectional else 1)
    state = (
        torch.randn(S, B, H, generator=gen, dtype=torch.float64)
        if with_state
        else None
    )
    _assert_same_function(ours, ref, x, state)


@pytest.mark.parametrize(
    "cls,torch_cls", [(LSTM, torch.nn.LSTM), (GRU, torch.nn.GRU)]
)
def test_time_major_layout_matches_torch(cls, torch_cls):
    ours, ref = _pair(
        cls, torch_cls, num_layers=2, bidirectional=True, batch_first=False
    )
    x = torch.randn(T, B, D, dtype=torch.float64)  # (T, B, D)
    _assert_same_function(ours, ref, x, None)


@pytest.mark.parametrize(
    "cls,torch_cls", [(LSTM, torch.nn.LSTM), (GRU, torch.nn.GRU)]
)
def test_dropout_between_layers(cls, torch_cls):
    ours, ref = _pair(
        cls, torch_cls, num_layers=2, dropout=0.5, batch_first=True
    )
    x = torch.randn(B, T, D, dtype=torch.float64)
    (
        ours.eval(),
        ref.eval(),
    )  # no dropout in evaluation: the same function as torch's
    _assert_same_function(ours, ref, x, None)
    # in training the first layer's output is dropped: a different, random
    # function
    ours.train()
    torch.manual_seed(3)
    assert not torch.allclose(ours(x)[0], ref(x)[0])


@pytest.mark.parametrize(
    "bias,with_state", list(itertools.product([True, False], [False, True]))
)
def test_lstm_cell_matches_torch(bias, with_state):
    ours, ref = _pair(LSTMCell, torch.nn.LSTMCell, bias=bias)
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(
        B, D, generator=gen, dtype=torch.float64, requires_grad=True
    )
    state = (
        (
            torch.randn(B, H, generator=gen, dtype=torch.float64),
            torch.randn(B, H, generator=gen, dtype=torch.float64),
        )
        if with_state
        else None
    )
    (h_a, c_a), (h_b, c_b) = ours(x, state), ref(x, state)
    torch.testing.assert_close(h_a, h_b, rtol=0, atol=TOL)
    torch.testing.assert_close(c_a, c_b, rtol=0, atol=TOL)
    (h_a.sum() + 2 * c_a.sum()).backward()
    (h_b.sum() + 2 * c_b.sum()).backward()
    for (name, p), (_, q) in zip(
        sorted(ours.named_parameters()), sorted(ref.named_parameters())
    ):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=TOL, msg=name)


@pytest.mark.parametrize(
    "bias,with_state", list(itertools.product([True, False], [False, True]))
)
def test_gru_cell_matches_torch(bias, with_state):
    ours, ref = _pair(GRUCell, torch.nn.GRUCell, bias=bias)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(B, D, generator=gen, dtype=torch.float64)
    h = (
        torch.randn(B, H, generator=gen, dtype=torch.float64)
        if with_state
        else None
    )
    h_a, h_b = ours(x, h), ref(x, h)
    torch.testing.assert_close(h_a, h_b, rtol=0, atol=TOL)
    h_a.pow(2).sum().backward()
    h_b.pow(2).sum().backward()
    for (name, p), (_, q) in zip(
        sorted(ours.named_parameters()), sorted(ref.named_parameters())
    ):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=TOL, msg=name)


def _cho_gru_numpy(x, h, W_ih, W_hh, b_ih, b_hh):
    """Cho et al.'s GRU from the paper's equations, unit by unit, in NumPy.

    r = sigma(W_r x + U_r h), z = sigma(W_z x + U_z h),
    h~ = tanh(W x + U (r * h)), h_new = z * h + (1 - z) * h~ (plus the biases).
    """
    B_, T_, _ = x.shape
    H_ = h.shape[1]
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))  # noqa: E731
    W_r, W_z, W_n = W_ih[:H_], W_ih[H_ : 2 * H_], W_ih[2 * H_ :]
    U_r, U_z, U_n = W_hh[:H_], W_hh[H_ : 2 * H_], W_hh[2 * H_ :]
    out = np.zeros((B_, T_, H_))
    for b in range(B_):
        h_b = h[b].copy()
        for t in range(T_):
            r = np.array(
                [
                    sig(W_r[j] @ x[b, t] + b_ih[j] + U_r[j] @ h_b + b_hh[j])
                    for j in range(H_)
                ]
            )
            z = np.array(
                [
                    sig(
                        W_z[j] @ x[b, t]
                        + b_ih[H_ + j]
                        + U_z[j] @ h_b
                        + b_hh[H_ + j]
                    )
                    for j in range(H_)
                ]
            )
            cand = np.array(
                [
                    np.tanh(
                        W_n[j] @ x[b, t]
                        + b_ih[2 * H_ + j]
                        + U_n[j] @ (r * h_b)
                        + b_hh[2 * H_ + j]
                    )
                    for j in range(H_)
                ]
            )
            h_b = z * h_b + (1 - z) * cand
            out[b, t] = h_b
    return out


def test_cho_variant_matches_direct_equations():
    torch.manual_seed(6)
    gru = GRU(D, H, reset_after=False).double()
    cell = GRUCell(D, H, reset_after=False).double()
    cell.load_state_dict(
        {k[:-3]: v for k, v in gru.state_dict().items()}
    )  # weight_ih_l0 -> weight_ih
    x = torch.randn(B, T, D, dtype=torch.float64)
    h_0 = torch.randn(1, B, H, dtype=torch.float64)
    expected = _cho_gru_numpy(
        x.numpy(),
        h_0[0].numpy(),
        *(
            p.detach().numpy()
            for p in (
                gru.weight_ih_l0,
                gru.weight_hh_l0,
                gru.bias_ih_l0,
                gru.bias_hh_l0,
            )
        ),
    )
    output, h_n = gru(x, h_0)
    np.testing.assert_allclose(
        output.detach().numpy(), expected, rtol=0, atol=TOL
    )
    np.testing.assert_allclose(
        h_n[0].detach().numpy(), expected[:, -1], rtol=0, atol=TOL
    )
    np.testing.assert_allclose(
        cell(x[:, 0], h_0[0]).detach().numpy(),
        expected[:, 0],
        rtol=0,
        atol=TOL,
    )
    # The two conventions are different functions of the same weights.
    gru.reset_after = True
    assert not np.allclose(
        gru(x, h_0)[0].detach().numpy(), expected, atol=1e-3
    )


def test_forget_bias_initialization():
    lstm = LSTM(D, H, num_layers=2, bidirectional=True, forget_bias=2.0)
    for name, _ in lstm.named_parameters():
        if name.startswith("bias_ih"):
            total = getattr(lstm, name) + getattr(
                lstm, name.replace("bias_ih", "bias_hh")
            )
            torch.testing.assert_close(total[H : 2 * H], torch.full((H,), 2.0))
            assert not torch.allclose(
                total[:H], torch.full((H,), 2.0)
            )  # other gates untouched
    cell = LSTMCell(D, H, forget_bias=1.0)
    torch.testing.assert_close(
        (cell.bias_ih + cell.bias_hh)[H : 2 * H], torch.ones(H)
    )
    with pytest.raises(ValueError, match="bias=True"):
        LSTM(D, H, bias=False, forget_bias=1.0)
    with pytest.raises(ValueError, match="forget_bias"):
        LSTMCell(D, H, forget_bias=float("nan"))


def test_bidirectional_h_n_is_not_the_last_output():
    """The trap the docstring warns about: h_n[-1] is output[:, 0, H:], not
    output[:, -1, H:]."""
    lstm = LSTM(D, H, bidirectional=True).double()
    x = torch.randn(B, T, D, dtype=torch.float64)
    output, (h_n, _) = lstm(x)
    torch.testing.assert_close(h_n[0], output[:, -1, :H])
    torch.testing.assert_close(h_n[1], output[:, 0, H:])
    assert not torch.allclose(h_n[1], output[:, -1, H:])
    single_step = lstm(x[:, -1:])[0][
        :, 0, H:
    ]  # backward direction after one step
    torch.testing.assert_close(output[:, -1, H:], single_step)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_bad_input_raises(cls):
    net = cls(D, H, num_layers=2, bidirectional=True)
    with pytest.raises(ValueError, match=r"D=3.*got \(2, 5, 4\)"):
        net(torch.randn(B, T, D + 1))
    with pytest.raises(ValueError, match=r"3 dims.*got \(5, 3\)"):
        net(torch.randn(T, D))
    with pytest.raises(TypeError, match="torch.Tensor"):
        net(np.zeros((B, T, D)))
    bad = torch.zeros(4, B + 1, H)
    state = (bad, torch.zeros(4, B, H)) if cls is LSTM else bad
    with pytest.raises(
        ValueError, match=r"h_0 of shape \(4, 2, 4\), got \(4, 3, 4\)"
    ):
        net(torch.randn(B, T, D), state)
    time_major = cls(D, H, batch_first=False)
    with pytest.raises(
        ValueError, match=r"\(T, B, D\) with D=3.*got \(5, 2, 2\)"
    ):
        time_major(torch.randn(T, B, D - 1))


def test_bad_state_and_arguments_raise():
    lstm = LSTM(D, H)
    x = torch.randn(B, T, D)
    with pytest.raises(
        ValueError, match=r"c_0 of shape \(1, 2, 4\), got \(1, 2, 5\)"
    ):
        lstm(x, (torch.zeros(1, B, H), torch.zeros(1, B, H + 1)))
    with pytest.raises(TypeError, match=r"pair \(h_0, c_0\)"):
        lstm(x, torch.zeros(1, B, H))
    with pytest.raises(ValueError, match=r"pair \(h_0, c_0\), got 3"):
        lstm(x, (torch.zeros(1, B, H),) * 3)
    with pytest.raises(
        ValueError, match=r"x of shape \(B, D\) with D=3, got \(2, 5\)"
    ):
        LSTMCell(D, H)(torch.randn(B, D + 2))
    with pytest.raises(ValueError, match=r"h of shape \(2, 4\), got \(2, 3\)"):
        GRUCell(D, H)(torch.randn(B, D), torch.zeros(B, H - 1))
    with pytest.raises(ValueError, match="hidden_size"):
        LSTM(D, 0)
    with pytest.raises(ValueError, match="dropout"):
        GRU(D, H, dropout=1.5)


# ---------------------------------------------- bad input, one test per class


@pytest.mark.parametrize(
    "make",
    [
        lambda: LSTM(D, H, batch_first="False"),
        lambda: GRU(D, H, bidirectional="True"),
        lambda: LSTM(D, H, bias=1),
        lambda: GRU(D, H, reset_after="no"),
        lambda: LSTMCell(D, H, bias="True"),
        lambda: GRUCell(D, H, reset_after=0),
    ],
)
def test_flags_must_be_bools(make):
    """A string "False" must not become True (it used to run batch-first)."""
    with pytest.raises(TypeError, match="True or False"):
        make()


def test_numpy_flags_and_sizes_are_accepted():
    lstm = LSTM(
        np.int64(D),
        np.int32(H),
        num_layers=np.int64(2),
        batch_first=np.bool_(True),
        dropout=np.float32(0.25),
        forget_bias=np.float32(1.5),
    )
    assert (lstm.input_size, lstm.hidden_size, lstm.num_layers) == (D, H, 2)
    assert type(lstm.hidden_size) is int and lstm.batch_first is True
    torch.testing.assert_close(
        (lstm.bias_ih_l1 + lstm.bias_hh_l1)[H : 2 * H], torch.full((H,), 1.5)
    )
    assert lstm(torch.randn(B, T, D))[0].shape == (B, T, H)
    assert GRUCell(np.int16(D), np.uint8(H))(torch.randn(B, D)).shape == (B, H)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(hidden_size="4"), TypeError, "hidden_size to be a positive int"),
        (dict(hidden_size=4.0), TypeError, "hidden_size"),
        (dict(hidden_size=True), TypeError, "hidden_size"),
        (dict(num_layers=0), ValueError, "num_layers"),
        (dict(dropout="0.1"), TypeError, "dropout"),
        (dict(dropout=float("nan")), ValueError, "dropout"),
        (dict(forget_bias="1"), TypeError, "forget_bias"),
        (dict(forget_bias=True), TypeError, "forget_bias"),
    ],
)
def test_bad_sizes_and_numbers(kwargs, error, match):
    args = dict(input_size=D, hidden_size=H) | kwargs
    with pytest.raises(error, match=match):
        LSTM(**args)


def _step_args(B_=B, H_=H, gates=4):
    gen = torch.Generator().manual_seed(0)
    x_proj = torch.randn(B_, gates * H_, generator=gen, dtype=torch.float64)
    W_hh = torch.randn(gates * H_, H_, generator=gen, dtype=torch.float64)
    h = torch.randn(B_, H_, generator=gen, dtype=torch.float64)
    return x_proj, h, W_hh


def test_step_states_do_not_broadcast():
    x_proj, h, W_hh = _step_args()
    one = h[:1]  # (1, H): used to broadcast silently over the batch
    with pytest.raises(ValueError, match=r"h of shape \(2, 4\), got \(1, 4\)"):
        lstm_step(x_proj, one, h, W_hh)
    with pytest.raises(ValueError, match=r"c of shape \(2, 4\), got \(1, 4\)"):
        lstm_step(x_proj, h, one, W_hh)
    with pytest.raises(ValueError, match=r"x_proj of shape \(2, 16\)"):
        lstm_step(x_proj[:, :-1], h, h, W_hh)
    with pytest.raises(ValueError, match=r"W_hh of shape \(16, 4\)"):
        lstm_step(x_proj, h, h, W_hh[:-1])
    x_proj, h, W_hh = _step_args(gates=3)
    b_hh = torch.zeros(3 * H, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"h of shape \(2, 4\), got \(1, 4\)"):
        gru_step(x_proj, h[:1], W_hh, b_hh)
    with pytest.raises(ValueError, match=r"b_hh of shape \(12,\)"):
        gru_step(x_proj, h, W_hh, b_hh[:-1])
    with pytest.raises(TypeError, match="reset_after"):
        gru_step(x_proj, h, W_hh, b_hh, reset_after="False")


def test_empty_sequences_and_batches():
    for net in (LSTM(D, H), GRU(D, H)):
        with pytest.raises(ValueError, match=r"T >= 1.*got \(2, 0, 3\)"):
            net(torch.zeros(2, 0, D))
        with pytest.raises(ValueError, match=r"B >= 1.*got \(0, 5, 3\)"):
            net(torch.zeros(0, T, D))
    time_major = LSTM(D, H, batch_first=False)
    with pytest.raises(ValueError, match=r"T >= 1.*got \(0, 2, 3\)"):
        time_major(torch.zeros(0, B, D))  # (T, B, D)
    # an empty batch is fine for one step: no sequence, nothing to do
    h, c = LSTMCell(D, H)(torch.zeros(0, D))
    assert h.shape == c.shape == (0, H)
    assert GRUCell(D, H)(torch.zeros(0, D)).shape == (0, H)
    x_proj, h, W_hh = _step_args(B_=0)
    assert lstm_step(x_proj, h, h, W_hh)[0].shape == (0, H)


@pytest.mark.parametrize("cls", [LSTM, GRU, LSTMCell, GRUCell])
def test_complex_integer_and_mixed_dtypes_raise(cls):
    net = cls(D, H)
    shape = (B, T, D) if cls in (LSTM, GRU) else (B, D)
    with pytest.raises(TypeError, match="real floating-point"):
        net(torch.zeros(shape, dtype=torch.complex64))
    with pytest.raises(TypeError, match="real floating-point"):
        net(torch.zeros(shape, dtype=torch.int64))
    with pytest.raises(TypeError, match="dtype torch.float32"):
        net(torch.zeros(shape, dtype=torch.float64))
    x_proj, h, W_hh = _step_args()
    with pytest.raises(TypeError, match="real floating-point"):
        lstm_step(
            x_proj.to(torch.complex128),
            h.to(torch.complex128),
            h.to(torch.complex128),
            W_hh.to(torch.complex128),
        )


def test_state_dtype_must_match_the_input():
    lstm = LSTM(D, H).double()
    x = torch.randn(B, T, D, dtype=torch.float64)
    h_0 = torch.zeros(1, B, H)  # float32
    with pytest.raises(TypeError, match="h_0 of dtype torch.float64"):
        lstm(x, (h_0, h_0.double()))


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize(
    "torch_cls", [torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN]
)
def test_final_state_readout(torch_cls, bidirectional):
    torch.manual_seed(0)
    recurrent = torch_cls(D, H, batch_first=True, bidirectional=bidirectional)
    model = FinalStateReadout(recurrent, 2)
    x = torch.randn(B, T, D)
    y, hs = model(x)
    output, state = recurrent(x)
    h_n = state[0] if isinstance(state, tuple) else state
    # the final states, read from the output itself: the forward direction
    # at t = T-1, the backward direction at t = 0
    final = output[:, -1, :H]
    if bidirectional:
        final = torch.cat([final, output[:, 0, H:]], dim=1)
    torch.testing.assert_close(y, model.readout(final))
    torch.testing.assert_close(hs, output)
    assert y.shape == (B, 2) and h_n.shape[0] == (2 if bidirectional else 1)


def test_final_state_readout_bad_input():
    with pytest.raises(ValueError, match="batch_first=True"):
        FinalStateReadout(torch.nn.LSTM(D, H), 1)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        FinalStateReadout("lstm", 1)
    with pytest.raises(ValueError, match="out_features"):
        FinalStateReadout(LSTM(D, H), 0)
