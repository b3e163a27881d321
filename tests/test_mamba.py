"""rnnbook.mamba: the block against a loop written from its equations, the
recurrent mode against the full forward, and the selective=False ablation.
"""

import math

import pytest
import torch

from rnnbook.mamba import MambaBlock, MambaCache, MambaModel

D, N, EXPAND, K_CONV, R = 8, 4, 2, 3, 2
E = EXPAND * D


def make_block(selective=True, **kwargs):
    torch.manual_seed(0)
    block = MambaBlock(
        D, N, EXPAND, K_CONV, R, selective=selective, **kwargs
    ).double()
    if not selective:  # move B and C away from their initial values
        with torch.no_grad():
            block.B.normal_()
    return block


def reference_block(block, u):
    """The block's equations, one time step and one tap at a time."""
    Bsz, L, _ = u.shape
    xz = u @ block.in_proj.weight.T  # (B, L, 2E)
    x, z = xz[..., :E], xz[..., E:]
    w, c = block.conv1d.weight[:, 0, :], block.conv1d.bias  # (E, k), (E,)
    k = w.shape[1]
    conv = torch.zeros_like(x)
    for t in range(L):
        conv[:, t] = c
        for j in range(k):  # tap j multiplies the input k - 1 - j back
            if t - (k - 1) + j >= 0:
                conv[:, t] = conv[:, t] + w[:, j] * x[:, t - (k - 1) + j]
    x = conv * torch.sigmoid(conv)  # SiLU
    A = -torch.exp(block.A_log)  # (E, N)
    h = torch.zeros(Bsz, E, N, dtype=u.dtype)
    ys = []
    for t in range(L):
        x_t = x[:, t]  # (B, E)
        if block.selective:
            p = x_t @ block.x_proj.weight.T  # (B, R + 2N)
            a = p[:, :R] @ block.dt_proj.weight.T + block.dt_proj.bias
            B_t = p[:, R : R + N][:, None, :]  # (B, 1, N)
            C_t = p[:, R + N :][:, None, :]
        else:
            a = block.dt_bias.expand(Bsz, E)
            B_t, C_t = block.B, block.C  # (E, N)
        delta = torch.log(1 + torch.exp(a))[..., None]  # softplus, (B, E, 1)
        h = torch.exp(delta * A) * h + delta * B_t * x_t[..., None]
        y = (h * C_t).sum(-1) + block.D * x_t  # (B, E)
        ys.append(y * z[:, t] * torch.sigmoid(z[:, t]))
    return torch.stack(ys, 1) @ block.out_proj.weight.T


@pytest.mark.parametrize("selective", [True, False])
def test_block_equals_its_equations(selective):
    block = make_block(selective)
    u = torch.randn(2, 11, D, dtype=torch.float64)
    y = block(u)
    assert y.shape == (2, 11, D)
    torch.testing.assert_close(
        y, reference_block(block, u), rtol=0, atol=1e-10
    )


@pytest.mark.parametrize("selective", [True, False])
def test_step_by_step_equals_the_full_forward(selective):
    block = make_block(selective)
    u = torch.randn(3, 13, D, dtype=torch.float64)
    full = block(u)
    cache = block.empty_cache(3)
    assert isinstance(cache, MambaCache)
    assert cache.conv.shape == (3, E, K_CONV - 1)
    assert cache.ssm.shape == (3, E, N)
    outs = []
    for t in range(u.shape[1]):
        y_t, new = block.step(u[:, t], cache)
        assert new.conv.shape == cache.conv.shape  # constant size per token
        assert new.ssm.shape == cache.ssm.shape
        outs.append(y_t)
        cache = new
    steps = torch.stack(outs, 1)
    assert (steps - full).abs().max().item() <= 1e-9


def storage_bytes(tensors):
    """Bytes of the distinct storages behind ``tensors``, each in full:
    what stays in memory, a view counting its whole base."""
    storages = {t.untyped_storage().data_ptr(): t for t in tensors}
    return sum(t.untyped_storage().nbytes() for t in storages.values())


@pytest.mark.parametrize("selective", [True, False])
def test_a_cache_from_step_owns_exactly_its_numbers(selective):
    block = make_block(selective)
    cache = block.empty_cache(3)
    with torch.no_grad():
        for t in range(5):
            _, cache = block.step(
                torch.randn(3, D, dtype=torch.float64), cache
            )
            # E (d_conv - 1 + N) float64 numbers per sequence, no more
            assert storage_bytes(cache) == 3 * E * (K_CONV - 1 + N) * 8


@pytest.mark.parametrize("selective", [True, False])
def test_model_step_equals_forward_and_is_causal(selective):
    torch.manual_seed(1)
    model = MambaModel(
        7, D=D, n_layers=2, N=N, d_conv=K_CONV, selective=selective
    ).double()
    tokens = torch.randint(0, 7, (2, 10))
    y, hs = model(tokens)
    assert y.shape == (2, 10, 7) and hs.shape == (2, 10, D)
    caches = model.empty_caches(2)
    steps = []
    for t in range(10):
        logits, caches = model.step(tokens[:, t], caches)
        steps.append(logits)
    assert (torch.stack(steps, 1) - y).abs().max().item() <= 1e-9
    changed = tokens.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 7  # the future changes
    torch.testing.assert_close(model(changed)[0][:, :6], y[:, :6])


@pytest.mark.parametrize("selective", [True, False])
def test_gradients_reach_every_parameter(selective):
    torch.manual_seed(2)
    model = MambaModel(5, D=D, n_layers=2, N=N, selective=selective)
    tokens = torch.randint(0, 5, (3, 12))
    y, _ = model(tokens)
    torch.nn.functional.cross_entropy(
        y.flatten(0, 1), tokens.flatten()
    ).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_time_invariant_block_has_constant_delta_B_C():
    lti, sel = make_block(False), make_block(True)
    x1 = torch.randn(2, 6, E, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(2, 6, E, dtype=torch.float64)
    for a, b in zip(lti.selection(x1), lti.selection(x2)):
        assert torch.equal(a, b)
    delta, B, C = lti.selection(x1)
    assert delta.shape == (E,) and B.shape == C.shape == (E, N)
    total = sum(t.sum() for t in lti.selection(x1))
    assert torch.autograd.grad(total, x1, allow_unused=True)[0] is None
    # the selective block's are functions of x
    d1, B1, C1 = sel.selection(x1)
    d2, B2, C2 = sel.selection(x2)
    assert d1.shape == (2, 6, E) and B1.shape == C1.shape == (2, 6, N)
    assert not torch.allclose(d1, d2) and not torch.allclose(B1, B2)
    # so the time-invariant SSM is linear in x, the selective one is not
    x1 = x1.detach()
    for block, linear in ((lti, True), (sel, False)):
        lhs = block.ssm(2 * x1 - 3 * x2)
        rhs = 2 * block.ssm(x1) - 3 * block.ssm(x2)
        assert torch.allclose(lhs, rhs, atol=1e-10) == linear


def test_initialization_follows_the_paper():
    torch.manual_seed(3)
    block = MambaBlock(64, 16, dt_min=1e-3, dt_max=1e-1)
    expected = -torch.arange(1, 17, dtype=torch.float32).repeat(128, 1)
    torch.testing.assert_close(block.A, expected)  # S4D-Real
    dt = torch.nn.functional.softplus(block.dt_proj.bias.detach())
    assert dt.min() >= 1e-3 * (1 - 1e-5) and dt.max() <= 1e-1 * (1 + 1e-5)
    # log-uniform: about half the steps below the geometric mean 1e-2
    assert 0.3 < (dt < 1e-2).float().mean().item() < 0.7
    assert block.R == 4  # ceil(64 / 16)
    torch.testing.assert_close(block.D.detach(), torch.ones(128))
    lti = MambaBlock(64, 16, selective=False)
    dt = torch.nn.functional.softplus(lti.dt_bias.detach())
    assert dt.min() >= 1e-3 * (1 - 1e-5) and dt.max() <= 1e-1 * (1 + 1e-5)


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts():
    d, n, ex, k = 64, 16, 2, 4
    e, r = ex * d, math.ceil(d / 16)
    shared = d * 2 * e + e * k + e + e * n + e + e * d  # in, conv, A, D, out
    sel = MambaBlock(d, n, ex, k)
    assert count(sel) == shared + e * (r + 2 * n) + r * e + e
    lti = MambaBlock(d, n, ex, k, selective=False)
    assert count(lti) == shared + e + 2 * e * n  # dt_bias, B, C
    V, layers = 16, 2
    model = MambaModel(V, d, layers, n, ex, k)
    assert count(model) == 2 * V * d + layers * (count(sel) + d) + d


def test_bad_input_is_rejected():
    block = make_block(True)
    with pytest.raises(ValueError, match="D=8"):
        block(torch.randn(2, 5, 7, dtype=torch.float64))
    with pytest.raises(ValueError, match="L >= 1"):
        block(torch.randn(2, 0, D, dtype=torch.float64))
    with pytest.raises(ValueError, match="B = 0"):
        block(torch.randn(0, 5, D, dtype=torch.float64))
    with pytest.raises(TypeError, match="floating"):
        block(torch.ones(2, 5, D, dtype=torch.long))
    with pytest.raises(ValueError, match="cache"):
        block.step(
            torch.randn(3, D, dtype=torch.float64), block.empty_cache(2)
        )
    with pytest.raises(TypeError, match="MambaCache"):
        block.step(torch.randn(2, D, dtype=torch.float64), (1, 2))
    with pytest.raises(TypeError, match="True or False"):
        MambaBlock(D, selective="False")
    with pytest.raises(ValueError, match="scan"):
        MambaBlock(D, scan="fast")
    with pytest.raises(ValueError, match="dt_max"):
        MambaBlock(D, dt_min=0.1, dt_max=0.01)
    model = MambaModel(5, D=D, N=N)
    with pytest.raises(ValueError, match="0..4"):
        model(torch.tensor([[0, 5]]))
    with pytest.raises(TypeError, match="int64"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        model(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="L >= 1"):
        model(torch.zeros(2, 0, dtype=torch.long))


def test_loop_and_parallel_scans_give_the_same_block():
    block = make_block(True, scan="loop")
    u = torch.randn(2, 37, D, dtype=torch.float64, requires_grad=True)
    y_loop = block(u)
    (g_loop,) = torch.autograd.grad(y_loop.square().sum(), u)
    block.scan = "parallel"
    y_par = block(u)
    (g_par,) = torch.autograd.grad(y_par.square().sum(), u)
    assert (y_loop - y_par).abs().max().item() <= 1e-10
    assert (g_loop - g_par).abs().max().item() <= 1e-10
