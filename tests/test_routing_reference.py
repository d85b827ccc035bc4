"""The routing reference against independent oracles: torch's softmax/topk, hand-made capacity
cases, per-token loops, the dense mixture (k = E), closed values of the balance loss,
torch.nn.GRUCell for the RMoE router step, and the toy task's definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minirec.routing import experiments as exp
from minirec.routing import reference as ref


def _linear_experts(rng, E, d, d_out):
    Ws = rng.normal(size=(E, d_out, d)) / np.sqrt(d)
    return [lambda x, W=W: np.tanh(x @ W.T) for W in Ws]


@pytest.mark.parametrize("N,E,k", [(1, 1, 1), (7, 5, 2), (13, 8, 3), (4, 3, 3)])
def test_top_k_route_against_torch_topk(N, E, k):
    logits = np.random.default_rng(N * E + k).normal(size=(N, E))
    weights, indices = ref.top_k_route(logits, k)
    p = torch.softmax(torch.as_tensor(logits), dim=-1)
    top, idx = torch.topk(p, k, dim=-1)
    np.testing.assert_array_equal(indices, idx.numpy())
    np.testing.assert_allclose(weights, (top / top.sum(-1, keepdim=True)).numpy(), rtol=1e-14)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-14)
    raw, _ = ref.top_k_route(logits, k, normalize=False)
    np.testing.assert_allclose(raw, top.numpy(), rtol=1e-14)


def test_top_k_route_is_finite_for_huge_logits_and_breaks_ties_by_index():
    w, i = ref.top_k_route(np.array([[1000.0, 999.0, -1000.0]]), 2)
    assert np.all(np.isfinite(w))
    np.testing.assert_allclose(w, [[1 / (1 + np.exp(-1)), 1 / (1 + np.e)]], rtol=1e-14)
    _, i = ref.top_k_route(np.array([[0.5, 2.0, 2.0, 0.5]]), 3)
    np.testing.assert_array_equal(i, [[1, 2, 0]])


def test_softmax_against_torch():
    z = np.random.default_rng(0).normal(size=(5, 4)) * 30
    np.testing.assert_allclose(ref.softmax(z), torch.softmax(torch.as_tensor(z), -1).numpy(),
                               rtol=1e-13, atol=1e-300)


# --- capacity: small hand-made cases ---------------------------------------------------------

def test_capacity_first_choices_before_second_choices():
    # 4 tokens, 3 experts, k = 2, capacity 2
    indices = np.array([[0, 1], [0, 2], [1, 0], [0, 1]])
    slots = ref.expert_slots(indices, 3, capacity=2)
    # first choices: expert 0 gets tokens 0, 1 (slots 0, 1), token 3 is dropped; expert 1 token 2
    # second choices: expert 1 gets token 0 (slot 1), token 3 dropped; expert 2 token 1;
    # expert 0 is full for token 2's second choice
    np.testing.assert_array_equal(slots, [[0, 1], [1, 0], [0, -1], [-1, -1]])


def test_capacity_none_keeps_everything_in_arrival_order():
    indices = np.array([[2], [2], [0], [2]])
    np.testing.assert_array_equal(ref.expert_slots(indices, 3), [[0], [1], [0], [2]])
    buffers, slots = ref.dispatch(np.arange(8.0).reshape(4, 2), indices, 3)
    assert buffers.shape == (3, 3, 2)                       # C = the largest load
    np.testing.assert_array_equal(buffers[2], [[0, 1], [2, 3], [6, 7]])
    np.testing.assert_array_equal(buffers[0], [[4, 5], [0, 0], [0, 0]])
    np.testing.assert_array_equal(buffers[1], 0)


def test_capacity_factor():
    assert ref.capacity_from_factor(64, 8, 2, 1.0) == 16
    assert ref.capacity_from_factor(10, 4, 1, 1.25) == 4       # ⌈3.125⌉
    assert ref.capacity_from_factor(1, 8, 1, 0.1) == 1


def test_dropped_choice_adds_nothing_and_a_fully_dropped_token_gets_zero():
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    indices = np.array([[0, 1], [1, 0], [0, 1]])
    weights = np.array([[0.75, 0.25], [0.5, 0.5], [0.9, 0.1]])
    buffers, slots = ref.dispatch(x, indices, 2, capacity=1)
    # first choices fill both experts (tokens 0 and 1); every later choice finds them full
    np.testing.assert_array_equal(slots, [[0, -1], [0, -1], [-1, -1]])
    y = ref.combine(2 * buffers, weights, indices, slots)     # expert e(x) = 2x for both
    np.testing.assert_allclose(y, [[0.75 * 2, 0.75 * 4], [0.5 * 6, 0.5 * 8], [0, 0]])


# --- dispatch and combine against per-token loops and the dense mixture -----------------------

@pytest.mark.parametrize("N,E,k,d", [(1, 2, 1, 3), (9, 4, 2, 5), (17, 6, 3, 2)])
def test_moe_layer_equals_a_per_token_loop(N, E, k, d):
    rng = np.random.default_rng(N)
    x, logits = rng.normal(size=(N, d)), rng.normal(size=(N, E))
    experts = _linear_experts(rng, E, d, 4)
    y, w, idx, slots = ref.moe_layer(x, logits, experts, k)
    assert np.all(slots >= 0)
    loop = np.array([sum(w[n, j] * experts[idx[n, j]](x[n:n + 1])[0] for j in range(k))
                     for n in range(N)])
    np.testing.assert_allclose(y, loop, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("E", [1, 3, 8])
def test_k_equal_to_the_number_of_experts_is_the_dense_mixture(E):
    rng = np.random.default_rng(E)
    x, logits = rng.normal(size=(11, 6)), rng.normal(size=(11, E))
    experts = _linear_experts(rng, E, 6, 6)
    y, *_ = ref.moe_layer(x, logits, experts, E)
    dense = ref.dense_mixture(x, ref.softmax(logits), experts)
    np.testing.assert_allclose(y, dense, rtol=1e-12, atol=1e-14)


def test_permuting_tokens_permutes_outputs():
    rng = np.random.default_rng(3)
    x, logits = rng.normal(size=(15, 4)), rng.normal(size=(15, 5))
    experts = _linear_experts(rng, 5, 4, 3)
    perm = rng.permutation(15)
    y, w, idx, _ = ref.moe_layer(x, logits, experts, 2)
    y_p, w_p, idx_p, _ = ref.moe_layer(x[perm], logits[perm], experts, 2)
    np.testing.assert_allclose(y_p, y[perm], rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(idx_p, idx[perm])
    np.testing.assert_allclose(w_p, w[perm], rtol=1e-14)


# --- the balance loss ------------------------------------------------------------------------

def test_balance_loss_closed_values():
    E, N = 4, 8
    uniform = np.full((N, E), 1 / E)
    balanced = np.arange(N)[:, None] % E
    assert ref.load_balance_loss(uniform, balanced) == pytest.approx(1.0, rel=1e-15)
    collapsed = np.zeros((N, E))
    collapsed[:, 2] = 1.0
    assert ref.load_balance_loss(collapsed, np.full((N, 1), 2)) == pytest.approx(E, rel=1e-15)
    # k = 2, hand computed: f = (3, 1, 0, 0)/4, P = mean of the rows
    probs = np.array([[0.5, 0.3, 0.1, 0.1], [0.4, 0.4, 0.1, 0.1]])
    indices = np.array([[0, 1], [0, 0]])
    P = np.array([0.45, 0.35, 0.1, 0.1])
    assert ref.load_balance_loss(probs, indices) == pytest.approx(4 * (0.75 * P[0] + 0.25 * P[1]))


def test_balance_loss_gradient_is_e_f_over_n():
    rng = np.random.default_rng(1)
    probs = torch.softmax(torch.as_tensor(rng.normal(size=(6, 3))), -1).requires_grad_()
    indices = np.array([[0, 1], [2, 1], [0, 2], [0, 1], [1, 0], [2, 0]])
    from minirec.routing import torch_ops
    torch_ops.load_balance_loss(probs, torch.as_tensor(indices)).backward()
    f = ref.expert_load(indices, 3)
    np.testing.assert_allclose(probs.grad.numpy(), np.tile(3 * f / 6, (6, 1)), rtol=1e-14)


# --- the RMoE router -------------------------------------------------------------------------

def test_gru_router_step_against_torch_gru_cell():
    rng = np.random.default_rng(5)
    N, d, H, E = 6, 5, 7, 3
    router = ref.init_gru_router(d, E, H, rng=rng)
    h, r_prev = rng.normal(size=(N, d)), rng.uniform(-1, 1, size=(N, H))
    logits, r = ref.gru_router_step(h, r_prev, router)
    cell = torch.nn.GRUCell(H, H).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(torch.as_tensor(router["gru"][name]))
        r_t = cell(torch.as_tensor(h) @ torch.as_tensor(router["W1"]).T, torch.as_tensor(r_prev))
    np.testing.assert_allclose(r, r_t.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(logits, r_t.numpy() @ router["W2"].T, rtol=1e-12, atol=1e-14)


def test_gru_stack_carries_the_router_state_across_layers():
    """Layer 2's logits depend on layer 1's input through the router state alone."""
    rng = np.random.default_rng(8)
    N, d, E, L = 5, 4, 3, 2
    router = ref.init_gru_router(d, E, 6, rng=rng)
    zero_experts = [[(lambda x: 0 * x)] * E for _ in range(L)]   # h stays the same
    h = rng.normal(size=(N, d))
    _, logits, _ = ref.moe_stack_forward(h, zero_experts, 1, gru_router=router)
    r1 = ref.gru_router_step(h, np.zeros((N, 6)), router)[1]
    np.testing.assert_allclose(logits[1], ref.gru_router_step(h, r1, router)[0], rtol=1e-13)
    assert not np.allclose(logits[0], logits[1])               # same input, different state
    W = [rng.normal(size=(E, d))] * L
    _, lin, _ = ref.moe_stack_forward(h, zero_experts, 1, router_weights=W)
    np.testing.assert_allclose(lin[0], lin[1])                 # independent routers: no memory


def test_stack_needs_exactly_one_router():
    with pytest.raises(ValueError, match="exactly one"):
        ref.moe_stack_forward(np.zeros((2, 3)), [[lambda x: x]], 1)


# --- the toy task ----------------------------------------------------------------------------

def test_program_task_follows_its_chain():
    task = exp.make_program_task(300, n_ops=4, n_layers=4, m=5, seed=3)
    x, ops, codes = task["x"], task["ops"], task["codes"]
    a, s = x[:, :4], x[:, 4:7]
    np.testing.assert_array_equal(ops[:, 0], a.argmax(1))
    for n in range(300):
        for layer in range(1, 4):
            assert ops[n, layer] == (ops[n, layer - 1] + 1 + int(s[n, layer - 1] > 0)) % 4
        np.testing.assert_allclose(task["y"][n], sum(codes[l_, ops[n, l_]] for l_ in range(4)),
                                   rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(x[:, -1], 1.0)
    again = exp.make_program_task(300, n_ops=4, n_layers=4, m=5, seed=4)
    np.testing.assert_array_equal(again["codes"], codes)       # codes shared across seeds


def test_information_measures():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=4000)
    assert exp.mutual_information(a, a, 4, 4) == pytest.approx(exp.entropy_bits(a, 4), rel=1e-12)
    assert exp.entropy_bits(np.arange(4000) % 4, 4) == pytest.approx(2.0)
    assert exp.entropy_bits(np.zeros(10, dtype=int), 4) == 0.0
    b = rng.integers(0, 4, size=4000)
    assert exp.mutual_information(a, b, 4, 4) < 0.01
    assert exp.mutual_information(a, (a + 1) % 4, 4, 4) == pytest.approx(exp.entropy_bits(a, 4))


def test_toy_training_runs_and_evaluates():
    train, test = exp.make_program_task(256, seed=1), exp.make_program_task(128, seed=2)
    for router in ("linear", "gru"):
        model, losses, _ = exp.train_program_net(router, train, steps=3, batch=32, seed=0)
        assert np.all(np.isfinite(losses))
        r = exp.evaluate_routing(model, test)
        assert r["choices"].shape == (4, 128)
        assert 0 <= r["usage_entropy"] <= 2 and 0 <= r["mi_consecutive"] <= 2


def test_oracle_router_follows_the_program():
    train, test = exp.make_program_task(256, seed=1), exp.make_program_task(128, seed=2)
    model, _, _ = exp.train_program_net("oracle", train, steps=2, batch=32, seed=0)
    r = exp.evaluate_routing(model, test)
    np.testing.assert_array_equal(r["choices"], test["ops"].T)
    assert r["mi_with_op"] == pytest.approx(np.mean([exp.entropy_bits(o, 4) for o in test["ops"].T]))


def test_the_paper_router_has_per_layer_projections_around_one_gru_cell():
    rng = np.random.default_rng(4)
    routers = ref.init_gru_router(5, 3, 4, rng=rng, n_layers=3)
    assert len(routers) == 3 and all(r["gru"] is routers[0]["gru"] for r in routers)
    assert not np.array_equal(routers[0]["W1"], routers[1]["W1"])
    h = rng.normal(size=(6, 5))
    experts = [[(lambda x, s=s: np.tanh(x) * s) for s in range(1, 4)] for _ in range(3)]
    out, logits, _ = ref.moe_stack_forward(h, experts, 1, gru_router=routers)
    r, u = np.zeros((6, 4)), h                         # layer by layer, each its own W1, W2
    for layer in range(3):
        want, r = ref.gru_router_step(u, r, routers[layer])
        np.testing.assert_allclose(logits[layer], want, rtol=1e-13)
        y, *_ = ref.moe_layer(u, want, experts[layer], 1)
        u = u + y
    np.testing.assert_allclose(out, u, rtol=1e-13)
    with pytest.raises(ValueError, match="one router dict per layer: 3; got 2"):
        ref.moe_stack_forward(h, experts, 1, gru_router=routers[:2])
    other = ref.init_gru_router(5, 3, 4, rng=rng)
    with pytest.raises(ValueError, match="must share one GRU cell"):
        ref.moe_stack_forward(h, experts, 1, gru_router=[routers[0], routers[1], other])
