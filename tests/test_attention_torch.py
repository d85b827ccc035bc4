"""Gradients of minirec.attention.torch_ops, and the AarenLayer module.

Every differentiable form against torch.autograd through a loop over time written like the
reference's definition (test-local, independent of torch_ops): the gradients of
L = Σ ⟨G, o⟩ + Σ ⟨G_state, final state⟩ with respect to every input, in float64 (1e-10) and
float32 (1e-5, against the float64 loop), T ∈ {1, 2, 7, 63, 300}. float64 finite differences
(torch.autograd.gradcheck) on tiny sizes. AarenLayer: equal to the reference layer with copied
parameters, streaming ``step`` equal to ``forward``, the three methods' parameter gradients equal.
"""

import numpy as np
import pytest
import torch

from minirec.attention import reference as ref
from minirec.attention import torch_ops as tops

try:  # `python -m pytest` (the repository root on sys.path) or plain `pytest` (tests/ on it)
    from tests._close import assert_close
except ImportError:
    from _close import assert_close

STEPS = [1, 2, 7, 63, 300]
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}
DTYPES = pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])


def draw(seed, *shape):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def grads_of(fn, inputs, seed=99):
    """Outputs of ``fn(*inputs)`` (a tensor or a tuple of tensors), and the gradients of
    L = Σ ⟨G_j, out_j⟩ (random G) with respect to every input."""
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    outs = fn(*leaves)
    outs = outs if isinstance(outs, tuple) else (outs,)
    loss = sum((o * draw(seed + j, *o.shape).to(o.dtype)).sum() for j, o in enumerate(outs))
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)  # at T = 1, s does not matter
    return outs, [torch.zeros_like(x) if g is None else g for g, x in zip(grads, leaves)]


def check_against_loop(fn, loop, inputs, dtype):
    """fn in ``dtype`` against the float64 loop: outputs and gradients.

    A gradient that is zero in exact arithmetic (q's and k's at T = 1, where o_0 = v_0) comes
    out as rounding noise: each gradient is compared relative to the largest of them all.
    """
    want_out, want_grad = grads_of(loop, inputs)
    got_out, got_grad = grads_of(fn, [x.to(dtype) for x in inputs])
    for i, (g, w) in enumerate(zip(got_out, want_out)):
        assert g.dtype == dtype
        assert_close(f"output {i}", g, w, tol=TOL[dtype])
    floor = max(w.abs().max().item() for w in want_grad)
    for i, (g, w) in enumerate(zip(got_grad, want_grad)):
        assert_close(f"grad of input {i}", g, w, tol=TOL[dtype], floor=floor)


# --------------------------------------------------------------------------------------------
# Loops over time, written from the definitions
# --------------------------------------------------------------------------------------------

def loop_softmax_attention(q, k, v):
    scale = q.shape[-1] ** -0.5
    outs = []
    for t in range(q.shape[0]):
        p = torch.softmax((q[t] * k[: t + 1]).sum(-1) * scale, dim=0)  # over i ≤ t
        outs.append((p.unsqueeze(-1) * v[: t + 1]).sum(0))
    return torch.stack(outs)


def loop_aaren(s, v):
    """o_t = Σ_{i≤t} softmax(s_{≤t})_i v_i, and the final (m, u, w)."""
    outs = [(torch.softmax(s[: t + 1], 0).unsqueeze(-1) * v[: t + 1]).sum(0)
            for t in range(s.shape[0])]
    m = s.max(0).values
    e = torch.exp(s - m)
    return torch.stack(outs), e.sum(0), (e.unsqueeze(-1) * v).sum(0)


def loop_linear_attention(fq, fk, v):
    """o_t = Σ_{i≤t} (φq_t·φk_i) v_i / Σ_{i≤t} φq_t·φk_i, and (S_T, z_T)."""
    outs = []
    for t in range(fq.shape[0]):
        a = (fq[t] * fk[: t + 1]).sum(-1)                           # (t+1, ...)
        outs.append((a.unsqueeze(-1) * v[: t + 1]).sum(0) / a.sum(0).unsqueeze(-1))
    return torch.stack(outs), torch.einsum("t...f,t...e->...fe", fk, v), fk.sum(0)


def loop_lightnet_additive(q, k, v):
    """S_t = Σ_{i≤t} softmax_i(k_{≤t}) v_iᵀ per key channel, o_t = S_tᵀ q_t."""
    outs = []
    for t in range(q.shape[0]):
        p = torch.softmax(k[: t + 1], dim=0)                        # (t+1, ..., d_k)
        S = torch.einsum("i...f,i...e->...fe", p, v[: t + 1])
        outs.append(torch.einsum("...fe,...f->...e", S, q[t]))
    return torch.stack(outs), S, torch.logsumexp(k, 0)


def loop_lightnet_multiplicative(q, k, v, lam):
    S = torch.zeros(*k.shape[1:], v.shape[-1], dtype=q.dtype)
    outs = []
    for t in range(q.shape[0]):
        S = lam[t].unsqueeze(-1) * S + k[t].unsqueeze(-1) * v[t].unsqueeze(-2)
        outs.append(torch.einsum("...fe,...f->...e", S, q[t]))
    return torch.stack(outs), S


def qkv(T, batch=(2, 3), d_k=4, d_v=5):
    return draw(1, T, *batch, d_k), draw(2, T, *batch, d_k), draw(3, T, *batch, d_v)


# --------------------------------------------------------------------------------------------
# Gradients against the loops
# --------------------------------------------------------------------------------------------

@DTYPES
@pytest.mark.parametrize("T", STEPS)
def test_softmax_attention_grads(T, dtype):
    check_against_loop(tops.softmax_attention, loop_softmax_attention, qkv(T), dtype)


@DTYPES
@pytest.mark.parametrize("T", STEPS)
@pytest.mark.parametrize("form", ["scan", "stream", "direct"])
def test_aaren_grads(form, T, dtype):
    _, k, v = qkv(T)
    q = draw(4, 3, 4)
    s = tops.aaren_scores(q, k)

    def fn(s, v):
        if form == "direct":
            return tops.aaren_direct(s, v), *tops.aaren_final_state(s, v)[1:]
        o, (_, u, w) = getattr(tops, f"aaren_{form}")(s, v)
        return o, u, w

    check_against_loop(fn, loop_aaren, [s, v], dtype)


@pytest.mark.parametrize("form", ["scan", "stream"])
def test_aaren_grads_logits_times_100(form):
    _, k, v = qkv(63)
    s = tops.aaren_scores(100 * draw(4, 3, 4), k)
    fn = lambda s, v: getattr(tops, f"aaren_{form}")(s, v)[0]
    check_against_loop(fn, lambda s, v: loop_aaren(s, v)[0], [s, v], torch.float64)


@DTYPES
@pytest.mark.parametrize("T", STEPS)
@pytest.mark.parametrize("form", ["parallel", "recurrent", "chunked"])
def test_linear_attention_grads(form, T, dtype):
    q, k, v = qkv(T)

    def fn(q, k, v):
        o, (S, z) = getattr(tops, f"linear_attention_{form}")(tops.elu_plus_one(q),
                                                              tops.elu_plus_one(k), v)
        return o, S, z

    loop = lambda q, k, v: loop_linear_attention(tops.elu_plus_one(q), tops.elu_plus_one(k), v)
    check_against_loop(fn, loop, [q, k, v], dtype)


@DTYPES
@pytest.mark.parametrize("T", STEPS)
def test_lightnet_additive_grads(T, dtype):
    def fn(q, k, v):
        o, (S, z) = tops.lightnet_additive(q, k, v)
        return o, S, z

    check_against_loop(fn, loop_lightnet_additive, qkv(T), dtype)


@DTYPES
@pytest.mark.parametrize("T", STEPS)
def test_lightnet_multiplicative_grads(T, dtype):
    q, k, v = qkv(T)
    lam = torch.sigmoid(draw(5, *k.shape)) * 0.5 + 0.5
    check_against_loop(tops.lightnet_multiplicative, loop_lightnet_multiplicative,
                       [q, k, v, lam], dtype)


def test_gradients_through_carried_states():
    """Whole sequence == two pieces with the state carried, gradients included."""
    q, k, v = qkv(20)
    lam = torch.sigmoid(draw(5, *k.shape))
    fq, fk = tops.elu_plus_one(q), tops.elu_plus_one(k)
    s = tops.aaren_scores(q[0], k)
    cases = {
        "aaren_scan": lambda s, v: tops.aaren_scan(s, v, state=tops.aaren_scan(s[:7], v[:7])[1]),
        "aaren_stream": lambda s, v: tops.aaren_stream(s, v,
                                                       state=tops.aaren_stream(s[:7], v[:7])[1]),
        "la_chunked": lambda a, b, v: tops.linear_attention_chunked(
            a, b, v, chunk_size=4, state=tops.linear_attention_parallel(a[:7], b[:7], v[:7])[1]),
        "lightnet": lambda q, k, v: tops.lightnet_additive(
            q, k, v, state=tops.lightnet_additive(q[:7], k[:7], v[:7])[1]),
        "lightnet_mult": lambda q, k, v, lam: tops.lightnet_multiplicative(
            q, k, v, lam, state=tops.lightnet_multiplicative(q[:7], k[:7], v[:7], lam[:7])[1]),
    }
    wholes = {
        "aaren_scan": lambda s, v: tops.aaren_scan(torch.cat([s[:7], s]), torch.cat([v[:7], v])),
        "aaren_stream": lambda s, v: tops.aaren_stream(torch.cat([s[:7], s]), torch.cat([v[:7], v])),
        "la_chunked": lambda a, b, v: tops.linear_attention_recurrent(
            torch.cat([a[:7], a]), torch.cat([b[:7], b]), torch.cat([v[:7], v])),
        "lightnet": lambda q, k, v: tops.lightnet_additive(
            torch.cat([q[:7], q]), torch.cat([k[:7], k]), torch.cat([v[:7], v])),
        "lightnet_mult": lambda q, k, v, lam: tops.lightnet_multiplicative(
            *(torch.cat([x[:7], x]) for x in (q, k, v, lam))),
    }
    args = {"aaren_scan": [s, v], "aaren_stream": [s, v], "la_chunked": [fq, fk, v],
            "lightnet": [q, k, v], "lightnet_mult": [q, k, v, lam]}
    for name, fn in cases.items():
        def pieces(*x, fn=fn):
            o, state = fn(*x)
            return (o, *state) if isinstance(state, tuple) else (o, state)

        def whole(*x, name=name):
            o, state = wholes[name](*x)
            o = o[7:]
            return (o, *state) if isinstance(state, tuple) else (o, state)

        check_against_loop(pieces, whole, args[name], torch.float64)


def test_gradcheck_finite_differences():
    """float64 central differences (torch.autograd.gradcheck) on tiny sizes."""
    q, k, v = (x.requires_grad_(True) for x in qkv(5, batch=(2,), d_k=3, d_v=2))
    lam = (torch.sigmoid(draw(5, 5, 2, 3))).requires_grad_(True)
    s = draw(6, 5, 2).requires_grad_(True)
    checks = [
        (lambda s, v: tops.aaren_scan(s, v)[0], (s, v)),
        (lambda s, v: tops.aaren_stream(s, v)[0], (s, v)),
        (lambda q, k, v: tops.linear_attention_chunked(
            tops.elu_plus_one(q), tops.taylor_exp(k)[..., :3], v, chunk_size=2)[0], (q, k, v)),
        (lambda q, k, v: tops.lightnet_additive(q, k, v)[0], (q, k, v)),
        (lambda q, k, v, lam: tops.lightnet_multiplicative(q, k, v, lam)[0], (q, k, v, lam)),
        (tops.softmax_attention, (q, k, v)),
    ]
    for fn, inputs in checks:
        assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# AarenLayer
# --------------------------------------------------------------------------------------------

def layer_and_params(d_model=6, d_head=4, heads=3, method="scan", seed=0):
    params = ref.aaren_init_params(d_model, d_head, heads, rng=np.random.default_rng(seed))
    layer = tops.AarenLayer(d_model, d_head, heads, method=method, dtype=torch.float64)
    layer.load_state_dict({k: torch.from_numpy(p) for k, p in params.items()})
    return layer, params


@pytest.mark.parametrize("T", [1, 7, 63])
@pytest.mark.parametrize("method", ["scan", "stream", "direct"])
def test_aaren_layer_matches_reference(method, T):
    layer, params = layer_and_params(method=method)
    x = np.random.default_rng(1).normal(size=(T, 2, 6))
    want = ref.aaren_layer(x, params, method="direct")
    assert_close(f"AarenLayer {method}", layer(torch.from_numpy(x)), torch.from_numpy(want),
                 tol=1e-10)


def test_aaren_layer_step_streams_with_constant_state():
    layer, _ = layer_and_params()
    x = draw(7, 40, 2, 6)
    want, final = layer(x, return_state=True)
    state, shapes = None, set()
    for t in range(40):
        o_t, state = layer.step(x[t], state)
        assert_close(f"o_{t}", o_t, want[t], tol=1e-10)
        shapes.add(tuple(tuple(s.shape) for s in state))
    assert shapes == {((2, 3), (2, 3), (2, 3, 4))}                  # O(1) in the tokens seen
    assert_close("state", tuple(state), tuple(final), tol=1e-10)


def test_aaren_layer_methods_have_equal_parameter_gradients():
    x = draw(8, 30, 2, 6)
    grads = {}
    for method in ("scan", "stream", "direct"):
        layer, _ = layer_and_params(method=method)
        (layer(x) * draw(9, 30, 2, 12)).sum().backward()
        grads[method] = {n: p.grad for n, p in layer.named_parameters()}
    assert set(grads["scan"]) == {"query", "weight_k", "weight_v"}
    for method in ("stream", "direct"):
        for name, g in grads[method].items():
            assert_close(f"{method}: {name}", g, grads["scan"][name], tol=1e-10)


def test_aaren_layers_stack_and_train():
    torch.manual_seed(0)
    model = torch.nn.Sequential(tops.AarenLayer(4, 8), tops.AarenLayer(8, 4))
    x = torch.randn(16, 3, 4)
    loss0 = ((model(x) - x) ** 2).mean()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        loss = ((model(x) - x) ** 2).mean()
        loss.backward()
        opt.step()
    assert loss.item() < loss0.item()


def test_aaren_layer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="method must be one of"):
        tops.AarenLayer(4, method="fast")
    with pytest.raises(ValueError, match="heads must be a positive integer"):
        tops.AarenLayer(4, heads=0)
    with pytest.raises(ValueError, match=r"x must have shape \(T, \.\.\., d_model\) with d_model=4"):
        tops.AarenLayer(4)(torch.zeros(3, 2, 5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    q, k, v = qkv(63)
    lam = torch.sigmoid(draw(5, *k.shape))
    fq, fk = tops.elu_plus_one(q), tops.elu_plus_one(k)
    s = tops.aaren_scores(q[0], k)
    calls = [
        ("softmax_attention", tops.softmax_attention, (q, k, v)),
        ("aaren_scan", lambda s, v: tops.aaren_scan(s, v)[0], (s, v)),
        ("aaren_stream", lambda s, v: tops.aaren_stream(s, v)[0], (s, v)),
        ("linear_attention_chunked",
         lambda a, b, v: tops.linear_attention_chunked(a, b, v, chunk_size=8)[0], (fq, fk, v)),
        ("linear_attention_recurrent",
         lambda a, b, v: tops.linear_attention_recurrent(a, b, v)[0], (fq, fk, v)),
        ("lightnet_additive", lambda q, k, v: tops.lightnet_additive(q, k, v)[0], (q, k, v)),
        ("lightnet_multiplicative",
         lambda q, k, v, lam: tops.lightnet_multiplicative(q, k, v, lam)[0], (q, k, v, lam)),
    ]
    for name, fn, args in calls:
        got = fn(*(a.cuda() for a in args))
        assert got.device.type == "cuda"
        assert_close(name, got.cpu(), fn(*args), tol=1e-10)
    layer, _ = layer_and_params()
    x = draw(7, 20, 2, 6)
    assert_close("AarenLayer", layer.cuda()(x.cuda()).cpu(), layer.cpu()(x), tol=1e-10)
