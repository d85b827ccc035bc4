"""The NumPy reference of minirec.attention against oracles that do not depend on it.

- softmax attention and Aaren's direct form against torch's scaled_dot_product_attention
  (Aaren = attention with its one query repeated at every position);
- Aaren's scan (three scan methods) == direct == streaming, also with logits ×100;
- causal linear attention against a brute-force double loop, its three forms against each other,
  whole sequence == chunk by chunk with the state carried;
- LightNet against brute-force sums, and the scan-order experiment on a 2-D grid.

All in float64, to ~1e-12 relative to the magnitude of the result unless said otherwise.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from minirec.attention import reference as ref

try:  # `python -m pytest` (the repository root on sys.path) or plain `pytest` (tests/ on it)
    from tests._close import assert_close
except ImportError:
    from _close import assert_close

STEPS = [1, 2, 7, 63, 300]
TOL = 1e-12


def qkv(T, batch=(2, 3), d_k=4, d_v=5, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(T, *batch, d_k)), rng.normal(size=(T, *batch, d_k)),
            rng.normal(size=(T, *batch, d_v)))


def sdpa(q, k, v, *, causal=True, scale=None):
    """torch's attention on time-first arrays (T, ..., d): time moved next to the feature axis."""
    to = lambda a: torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, 0, -2)))
    o = F.scaled_dot_product_attention(to(q), to(k), to(v), is_causal=causal, scale=scale)
    return np.moveaxis(o.numpy(), -2, 0)


# --------------------------------------------------------------------------------------------
# softmax attention
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("T", STEPS)
@pytest.mark.parametrize("causal", [True, False])
def test_softmax_attention_matches_sdpa(T, causal):
    q, k, v = qkv(T)
    assert_close("o", ref.softmax_attention(q, k, v, causal=causal), sdpa(q, k, v, causal=causal),
                 tol=TOL)


def test_softmax_attention_without_batch_axes_and_with_scale():
    q, k, v = qkv(9, batch=())
    assert_close("o", ref.softmax_attention(q, k, v, scale=0.3), sdpa(q, k, v, scale=0.3), tol=TOL)


def test_softmax_attention_with_huge_logits_stays_finite():
    q, k, v = qkv(63)
    assert_close("o", ref.softmax_attention(100 * q, k, v), sdpa(100 * q, k, v), tol=TOL)


# --------------------------------------------------------------------------------------------
# Aaren
# --------------------------------------------------------------------------------------------

def aaren_case(T, batch=(2, 3), d_k=4, d_v=5, seed=1, logit_scale=1.0):
    rng = np.random.default_rng(seed)
    q = logit_scale * rng.normal(size=(batch[-1], d_k))             # one query per head
    k = rng.normal(size=(T, *batch, d_k))
    v = rng.normal(size=(T, *batch, d_v))
    return q, k, v


@pytest.mark.parametrize("T", STEPS)
def test_aaren_direct_is_sdpa_with_the_query_repeated(T):
    q, k, v = aaren_case(T)
    want = sdpa(np.broadcast_to(q, k.shape), k, v, scale=1.0)       # s_i = q·k_i, no 1/√d
    assert_close("direct", ref.aaren_direct(ref.aaren_scores(q, k), v), want, tol=TOL)


@pytest.mark.parametrize("T", STEPS)
@pytest.mark.parametrize("logit_scale", [1.0, 100.0])
def test_aaren_scan_direct_and_stream_agree(T, logit_scale):
    """Scores of size ~100·√d: e^s alone would overflow; the max-shifted forms stay exact."""
    q, k, v = aaren_case(T, logit_scale=logit_scale)
    s = ref.aaren_scores(q, k)
    want = sdpa(np.broadcast_to(q, k.shape), k, v, scale=1.0)
    assert_close("direct", ref.aaren_direct(s, v), want, tol=TOL)
    for method in ("sequential", "hillis_steele", "blelloch"):
        assert_close(method, ref.aaren_scan(s, v, method=method)[0], want, tol=TOL)
    assert_close("stream", ref.aaren_stream(s, v)[0], want, tol=TOL)


def test_aaren_huge_logits_do_overflow_without_the_max_shift():
    """The reason for m: a naive Σ e^{s} v / Σ e^{s} is NaN at logits ×300."""
    q, k, v = aaren_case(63, logit_scale=300.0)
    s = ref.aaren_scores(q, k)
    assert s.max() > 710                                            # e^s overflows float64
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(s)[..., None]
        naive = np.cumsum(e * v, axis=0) / np.cumsum(e, axis=0)
    assert np.isnan(naive).any()
    assert np.isfinite(ref.aaren_stream(s, v)[0]).all()


@pytest.mark.parametrize("method", ["stream", "hillis_steele", "blelloch"])
def test_aaren_whole_equals_pieces_with_carried_state(method):
    q, k, v = aaren_case(63)
    s = ref.aaren_scores(q, k)
    run = (lambda s, v, state: ref.aaren_stream(s, v, state=state)) if method == "stream" else (
        lambda s, v, state: ref.aaren_scan(s, v, method=method, state=state))
    whole, final = run(s, v, None)
    outs, state = [], None
    for a, b in [(0, 1), (1, 20), (20, 21), (21, 63)]:
        o, state = run(s[a:b], v[a:b], state)
        outs.append(o)
    assert_close("o in pieces", np.concatenate(outs), whole, tol=TOL)
    assert_close("state", state, final, tol=TOL)


def test_aaren_state_size_is_independent_of_T_and_matches_closed_form():
    for T in (1, 7, 300):
        q, k, v = aaren_case(T)
        s = ref.aaren_scores(q, k)
        state = ref.aaren_stream(s, v)[1]
        assert [x.shape for x in state] == [(2, 3), (2, 3), (2, 3, 5)]
        assert_close(f"state T={T}", state, ref.aaren_final_state(s, v), tol=TOL)


def test_aaren_stream_step_is_one_token():
    q, k, v = aaren_case(5)
    s = ref.aaren_scores(q, k)
    state = ref.aaren_initial_state((2, 3), 5)
    want = ref.aaren_direct(s, v)
    for t in range(5):
        state, o_t = ref.aaren_stream_step(state, s[t], v[t])
        assert_close(f"o_{t}", o_t, want[t], tol=TOL)


def test_aaren_layer_is_per_head_attention_with_a_fixed_query():
    rng = np.random.default_rng(2)
    T, B, D, heads, d_head = 11, 2, 6, 3, 4
    params = ref.aaren_init_params(D, d_head, heads, rng=rng)
    x = rng.normal(size=(T, B, D))
    want = []
    for h in range(heads):                                           # each head on its own
        rows = slice(h * d_head, (h + 1) * d_head)
        k, v = x @ params["weight_k"][rows].T, x @ params["weight_v"][rows].T
        Q = np.broadcast_to(params["query"][h], k.shape)
        want.append(sdpa(Q, k, v, scale=1.0))
    want = np.concatenate(want, axis=-1)
    for method in ("direct", "stream", "hillis_steele", "blelloch"):
        assert_close(method, ref.aaren_layer(x, params, method=method), want, tol=TOL)


# --------------------------------------------------------------------------------------------
# causal linear attention
# --------------------------------------------------------------------------------------------

def brute_force_linear_attention(fq, fk, v, normalize):
    """o_t = Σ_{i≤t} (φ(q_t)·φ(k_i)) v_i / Σ_{i≤t} φ(q_t)·φ(k_i): a double loop, no state."""
    o = np.zeros_like(v)
    for t in range(fq.shape[0]):
        num, den = 0.0, 0.0
        for i in range(t + 1):
            a = np.sum(fq[t] * fk[i], axis=-1)                      # φ(q_t)·φ(k_i), per batch
            num = num + a[..., None] * v[i]
            den = den + a
        o[t] = num / den[..., None] if normalize else num
    return o


FORMS = {
    "parallel": ref.linear_attention_parallel,
    "recurrent": ref.linear_attention_recurrent,
    "chunked": lambda *a, **kw: ref.linear_attention_chunked(*a, chunk_size=16, **kw),
}


@pytest.mark.parametrize("T", STEPS)
@pytest.mark.parametrize("fmap,normalize", [("elu+1", True), ("elu+1", False),
                                            ("taylor", True), ("identity", False)])
def test_linear_attention_forms_match_brute_force(T, fmap, normalize):
    q, k, v = qkv(T, d_k=3)
    phi = ref.FEATURE_MAPS[fmap]
    fq, fk = phi(q), phi(k)
    want = brute_force_linear_attention(fq, fk, v, normalize)
    for name, form in FORMS.items():
        assert_close(name, form(fq, fk, v, normalize=normalize)[0], want, tol=1e-11)


@pytest.mark.parametrize("chunk_size", [1, 5, 16, 63, 100])
def test_linear_attention_chunked_any_chunk_size(chunk_size):
    q, k, v = qkv(63)
    fq, fk = ref.elu_plus_one(q), ref.elu_plus_one(k)
    want, (S, z) = ref.linear_attention_recurrent(fq, fk, v)
    got, (S2, z2) = ref.linear_attention_chunked(fq, fk, v, chunk_size=chunk_size)
    assert_close("o", got, want, tol=TOL)
    assert_close("S", S2, S, tol=TOL)
    assert_close("z", z2, z, tol=TOL)


@pytest.mark.parametrize("form", FORMS)
def test_linear_attention_whole_equals_pieces_with_carried_state(form):
    q, k, v = qkv(63)
    fq, fk = ref.elu_plus_one(q), ref.elu_plus_one(k)
    whole, (S, z) = FORMS[form](fq, fk, v)
    outs, state = [], None
    for a, b in [(0, 1), (1, 10), (10, 40), (40, 63)]:
        o, state = FORMS[form](fq[a:b], fk[a:b], v[a:b], state=state)
        outs.append(o)
    assert_close("o in pieces", np.concatenate(outs), whole, tol=TOL)
    assert_close("state", state, (S, z), tol=TOL)


def test_linear_attention_state_is_the_sum_of_outer_products():
    q, k, v = qkv(7)
    fk = ref.elu_plus_one(k)
    _, (S, z) = ref.linear_attention_recurrent(ref.elu_plus_one(q), fk, v)
    assert_close("S", S, sum(np.einsum("...f,...e->...fe", fk[t], v[t]) for t in range(7)),
                 tol=TOL)
    assert_close("z", z, fk.sum(axis=0), tol=TOL)


def test_feature_maps():
    x = np.random.default_rng(3).normal(size=(5, 16)) * 3
    assert_close("elu+1", ref.elu_plus_one(x), (F.elu(torch.from_numpy(x)) + 1).numpy(), tol=TOL)
    y = np.random.default_rng(4).normal(size=(5, 16))
    phi_x, phi_y = ref.taylor_exp(x), ref.taylor_exp(y)
    assert phi_x.shape == (5, 1 + 16 + 16 * 16) == (5, 273)
    a = np.sum(x * y, axis=-1) / np.sqrt(16)
    assert_close("φ(x)·φ(y)", np.sum(phi_x * phi_y, axis=-1), 1 + a + a**2 / 2, tol=TOL)  # ≈ e^{q·k/√d}


# --------------------------------------------------------------------------------------------
# LightNet
# --------------------------------------------------------------------------------------------

def brute_force_additive(q, k, v):
    """S_t = Σ_{i≤t} e^{k_i} v_iᵀ / Σ_{i≤t} e^{k_i} per key channel (small k: no overflow)."""
    e = np.exp(k)
    S = np.cumsum(e[..., :, None] * v[..., None, :], axis=0) / np.cumsum(e, axis=0)[..., None]
    return np.einsum("t...fe,t...f->t...e", S, q), S


@pytest.mark.parametrize("T", STEPS)
def test_lightnet_additive_is_the_normalised_sum(T):
    q, k, v = qkv(T)
    want_o, want_S = brute_force_additive(q, k, v)
    S, z = ref.lightnet_additive_states(k, v)
    assert_close("S", S, want_S, tol=TOL)
    assert_close("z", z, np.log(np.exp(k).sum(axis=0)), tol=TOL)    # z_T = log Σ e^{k_i}
    o, (S_T, z_T) = ref.lightnet_additive(q, k, v)
    assert_close("o", o, want_o, tol=TOL)
    assert_close("S_T", S_T, want_S[-1], tol=TOL)


def test_lightnet_additive_is_finite_for_large_keys():
    """|k| up to ~1200: e^k overflows float64, the log-space gate does not."""
    q, k, v = qkv(63)
    k = 400 * k
    assert np.abs(k).max() > 710
    S, z = ref.lightnet_additive_states(k, v)
    assert np.isfinite(S).all() and np.isfinite(z).all()
    # the largest key of each channel takes (almost) all the weight
    p = np.exp(k - k.max(axis=0))
    p = p / p.sum(axis=0)
    assert_close("S[-1]", S[-1], np.einsum("t...f,t...e->...fe", p, v), tol=TOL)


def test_lightnet_multiplicative_matches_loop():
    q, k, v = qkv(63)
    lam = np.random.default_rng(5).uniform(0.5, 1.0, size=k.shape)
    S = np.zeros((2, 3, 4, 5))
    want = []
    for t in range(63):
        S = lam[t][..., None] * S + k[t][..., :, None] * v[t][..., None, :]
        want.append(np.einsum("...fe,...f->...e", S, q[t]))
    o, S_T = ref.lightnet_multiplicative(q, k, v, lam)
    assert_close("o", o, np.stack(want), tol=TOL)
    assert_close("S_T", S_T, S, tol=TOL)


def test_lightnet_whole_equals_pieces_with_carried_state():
    q, k, v = qkv(63)
    lam = np.random.default_rng(6).uniform(0.5, 1.0, size=k.shape)
    whole, (S, z) = ref.lightnet_additive(q, k, v)
    whole_m, S_m = ref.lightnet_multiplicative(q, k, v, lam)
    state, state_m, outs, outs_m = None, None, [], []
    for a, b in [(0, 1), (1, 30), (30, 63)]:
        o, state = ref.lightnet_additive(q[a:b], k[a:b], v[a:b], state=state)
        om, state_m = ref.lightnet_multiplicative(q[a:b], k[a:b], v[a:b], lam[a:b], state=state_m)
        outs.append(o)
        outs_m.append(om)
    assert_close("additive o in pieces", np.concatenate(outs), whole, tol=TOL)
    assert_close("additive state", state, (S, z), tol=TOL)
    assert_close("multiplicative o in pieces", np.concatenate(outs_m), whole_m, tol=TOL)
    assert_close("multiplicative state", state_m, S_m, tol=TOL)


def grid(seed=7, H=8, W=8, d_k=4, d_v=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(H, W, d_k)), rng.normal(size=(H, W, d_v)), rng


def test_scan_orders_are_permutations():
    rng = np.random.default_rng(0)
    orders = {name: ref.scan_order(name, 3, 4, rng=rng) for name in ref.SCAN_ORDERS}
    assert orders["raster"].tolist() == list(range(12))
    assert orders["column"].tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    assert orders["reversed"].tolist() == list(range(11, -1, -1))
    assert sorted(orders["random"].tolist()) == list(range(12))
    assert orders["random"].tolist() != list(range(12))


def test_additive_final_state_is_invariant_to_scan_order():
    k, v, rng = grid()
    states = ref.grid_final_states(k, v, rng=rng)
    assert set(states) == set(ref.SCAN_ORDERS)
    want = ref.normalized_global_sum(k, v)
    brute = sum(np.exp(k[i, j])[:, None] * v[i, j][None, :] for i in range(8) for j in range(8))
    brute = brute / np.exp(k).sum(axis=(0, 1))[:, None]
    assert_close("normalized_global_sum", want, brute, tol=TOL)
    for name, S in states.items():
        assert_close(name, S, want, tol=TOL)                        # to ~1e-12 in every order
        assert_close(f"{name} vs raster", S, states["raster"], tol=TOL)


def test_multiplicative_final_state_depends_on_scan_order():
    k, v, rng = grid()
    lam = rng.uniform(0.5, 0.95, size=k.shape)
    states = ref.grid_final_states(k, v, decay=lam, rng=np.random.default_rng(0))
    base = states["raster"]
    for name in ("column", "reversed", "random"):
        rel = np.abs(states[name] - base).max() / np.abs(base).max()
        assert rel > 1e-2, f"{name}: relative difference {rel:.2g}"
    # with no decay (λ = 1) the multiplicative state is a plain sum: order-free again
    plain = ref.grid_final_states(k, v, decay=np.ones_like(k), rng=np.random.default_rng(0))
    for name, S in plain.items():
        assert_close(name, S, plain["raster"], tol=TOL)
