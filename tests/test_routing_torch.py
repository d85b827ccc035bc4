"""The Torch twins and modules: the MoE stacks (independent and shared-GRU routers) against the
NumPy reference in float64, gradients by gradcheck, the router's GRU is minirec's and loads
torch.nn.GRU weights, k = E is the dense mixture, permutation equivariance, and CUDA when present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minirec.routing import reference as ref
from minirec.routing import torch_ops as T


def _stack(router, *, seed=0, **kw):
    torch.manual_seed(seed)
    defaults = dict(d=6, n_experts=4, k=2, n_layers=3, d_ff=5)
    defaults.update(kw)
    return T.MoEStack(defaults.pop("d"), defaults.pop("n_experts"), defaults.pop("k"),
                      defaults.pop("n_layers"), defaults.pop("d_ff"), router=router,
                      dtype=torch.float64, **defaults)


@pytest.mark.parametrize("router,projections", [("linear", None), ("gru", "per_layer"),
                                                ("gru", "tied")])
@pytest.mark.parametrize("norm", [False, True])
@pytest.mark.parametrize("k,normalize", [(1, False), (2, True), (4, True)])
def test_stack_matches_reference(router, projections, norm, k, normalize):
    kw = {} if projections is None else {"router_projections": projections}
    model = _stack(router, k=k, norm=norm, normalize=normalize, router_hidden=7, **kw)
    h = torch.randn(11, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out, info = model(h)
    ref_out, ref_logits, ref_idx = ref.moe_stack_forward(h.numpy(), **model.reference_kwargs())
    np.testing.assert_allclose(out.detach().numpy(), ref_out, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(info["logits"].detach().numpy(), ref_logits, rtol=1e-11,
                               atol=1e-13)
    np.testing.assert_array_equal(info["indices"].numpy(), ref_idx)


def test_subclasses_pick_their_router():
    assert T.LinearRouterMoE(4, 3, 1, 2, 4).router_kind == "linear"
    gru = T.GRURouterMoE(4, 3, 1, 2, 4, router_hidden=5)
    assert gru.router_kind == "gru" and gru.router.hidden_size == 5
    # one GRU cell for all layers: it does not grow with depth; the paper's per-layer
    # projections W1 (5, 4) and W2 (3, 5) do, by 35 numbers a layer; tied ones do not
    deeper = T.GRURouterMoE(4, 3, 1, 6, 4, router_hidden=5)
    assert gru.router.projections == "per_layer"

    def count(module):
        return sum(p.numel() for p in module.parameters())

    assert count(gru.router.gru) == count(deeper.router.gru)
    assert count(deeper.router) - count(gru.router) == 4 * (5 * 4 + 3 * 5)
    tied = [T.GRURouterMoE(4, 3, 1, L, 4, router_hidden=5, router_projections="tied")
            for L in (2, 6)]
    assert count(tied[0].router) == count(tied[1].router) == count(gru.router) - 35


def test_gru_router_uses_minirecs_gru_and_loads_torch_nn_weights():
    from minirec.cells.torch_ops import GRU
    router = T.GRURouter(5, 3, 4, dtype=torch.float64)
    assert isinstance(router.gru, GRU)
    ref_gru = torch.nn.GRU(4, 4).double()
    router.gru.load_state_dict(ref_gru.state_dict())
    h = torch.randn(6, 5, dtype=torch.float64)
    r_prev = torch.randn(6, 4, dtype=torch.float64)
    logits, r = router(h, r_prev)
    cell = torch.nn.GRUCell(4, 4).double()
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in ref_gru.state_dict().items()})
    expect = cell(router.W1[0](h), r_prev)
    torch.testing.assert_close(r, expect, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(logits, router.W2[0](expect), rtol=1e-12, atol=1e-14)


def test_functions_match_reference_and_gradcheck():
    g = torch.Generator().manual_seed(3)
    N, E, k, d = 9, 5, 2, 4
    logits = torch.randn(N, E, dtype=torch.float64, generator=g, requires_grad=True)
    x = torch.randn(N, d, dtype=torch.float64, generator=g, requires_grad=True)
    W = torch.randn(E, d, d, dtype=torch.float64, generator=g)

    def layer(logits, x, capacity=None):
        w, idx = T.top_k_route(logits, k)
        buf, slots = T.dispatch(x, idx, E, capacity)
        return T.combine(torch.tanh(torch.bmm(buf, W)), w, idx, slots)

    for capacity in (None, 3):
        torch.autograd.gradcheck(lambda a, b, c=capacity: layer(a, b, c), (logits, x))
    experts = [lambda z, e=e: np.tanh(z @ W[e].numpy()) for e in range(E)]
    y_ref, *_ = ref.moe_layer(x.detach().numpy(), logits.detach().numpy(), experts, k,
                              capacity=3)
    np.testing.assert_allclose(layer(logits, x, 3).detach().numpy(), y_ref, rtol=1e-12)


def test_k_equal_to_e_is_the_dense_mixture():
    torch.manual_seed(0)
    layer = T.MoELayer(5, 3, 3, 4, dtype=torch.float64)
    h, logits = torch.randn(8, 5, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64)
    y, info = layer(h, logits)
    dense = T.dense_mixture(h, torch.softmax(logits, 1), layer.experts)
    torch.testing.assert_close(y, dense, rtol=1e-12, atol=1e-14)
    experts = layer.experts.reference_experts()
    np.testing.assert_allclose(dense.detach().numpy(),
                               ref.dense_mixture(h.numpy(), torch.softmax(logits, 1).numpy(),
                                                 experts), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("router", ["linear", "gru"])
def test_permuting_tokens_permutes_outputs(router):
    model = _stack(router)
    h = torch.randn(13, 6, dtype=torch.float64)
    perm = torch.randperm(13, generator=torch.Generator().manual_seed(2))
    out, info = model(h)
    out_p, info_p = model(h[perm])
    torch.testing.assert_close(out_p, out[perm], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(info_p["indices"], info["indices"][:, perm])


def test_capacity_factor_drops_tokens_and_gradients_flow():
    torch.manual_seed(0)
    layer = T.MoELayer(4, 2, 1, 3, capacity_factor=0.5)
    h = torch.randn(10, 4, requires_grad=True)
    logits = torch.zeros(10, 2)
    logits[:, 0] = 5.0                                      # every token wants expert 0
    logits.requires_grad_()
    y, info = layer(h, logits)
    assert (info["slots"] >= 0).sum() == 3                 # ⌈0.5 · 10 · 1 / 2⌉
    assert torch.all(y[(info["slots"] < 0).squeeze(1)] == 0)
    (y.sum() + info["balance_loss"]).backward()
    assert h.grad.abs().sum() > 0 and logits.grad.abs().sum() > 0


def test_stack_rejects_a_time_axis_and_bad_router():
    with pytest.raises(ValueError, match=r"h must have shape \(N, d\)"):
        _stack("linear")(torch.zeros(2, 3, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="router must be"):
        T.MoEStack(4, 2, 1, 2, 4, router="lstm")
    with pytest.raises(ValueError, match="k must be between 1 and n_experts = 2"):
        T.MoELayer(4, 2, 3, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("router", ["linear", "gru"])
def test_cuda_matches_cpu(router):
    model = _stack(router)
    h = torch.randn(64, 6, dtype=torch.float64)
    out, info = model(h)
    out_c, info_c = model.cuda()(h.cuda())
    torch.testing.assert_close(out_c.cpu(), out, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(info_c["indices"].cpu(), info["indices"])
    info_c["balance_loss"].backward()


def test_forced_logits_route_as_given():
    model = _stack("gru", k=1, normalize=False)
    h = torch.randn(9, 6, dtype=torch.float64)
    choice = torch.randint(0, 4, (3, 9), generator=torch.Generator().manual_seed(0))
    forced = 30.0 * torch.nn.functional.one_hot(choice, 4).to(torch.float64)
    _, info = model(h, forced)
    torch.testing.assert_close(info["indices"][..., 0], choice)
