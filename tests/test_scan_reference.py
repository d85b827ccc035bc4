"""minirec.scan.reference against oracles that do not depend on it.

- the linear recurrence: np.cumsum (a = 1), geometric sums (constant decay), the double sum
  h_t = Σ_s (Π_{r=s+1..t} a_r) b_s written as loops, torch.autograd through a Python loop
  (the backward), float64 finite differences;
- every combine: brute force (products of small matrices, best paths over all state sequences,
  masked softmax attention computed directly), and hypothesis properties (associativity,
  identity);
- the four scan methods agree with the sequential loop for every combine, at T ∈ {1, 2, 7, 63,
  1000}; known wrong variants (a non-associative combine, operands swapped, an off-by-one chunk
  carry) make them disagree;
- log space stays finite over long sequences where the closed form overflows.
"""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec.scan import reference as R

try:  # `python -m pytest` (the repository root on sys.path) or plain `pytest` (tests/ on it)
    from tests._close import assert_close
except ImportError:
    from _close import assert_close

STEPS = [1, 2, 7, 63, 1000]
PARALLEL = ["hillis_steele", "blelloch", "chunked"]
TOL64 = 1e-10


# --------------------------------------------------------------------------------------------
# Elements for every combine, with trailing shapes that are not powers of two.
# --------------------------------------------------------------------------------------------

def make_elems(name, T, rng, trailing=(3,)):
    name = name.removesuffix("_combine")
    if name == "add":
        return rng.normal(size=(T, *trailing))
    if name == "affine":
        return rng.uniform(0.3, 1.1, size=(T, *trailing)), rng.normal(size=(T, *trailing))
    if name == "matrix_affine":
        A = rng.normal(size=(T, *trailing, 3, 3)) / 2.0
        return A, rng.normal(size=(T, *trailing, 3))
    if name == "logaddexp":
        return 3.0 * rng.normal(size=(T, *trailing))
    if name in ("log_matmul", "max_plus"):
        return rng.normal(size=(T, *trailing, 3, 3)) - 1.0
    if name == "softmax_attention":
        return R.softmax_attention_elements(2.0 * rng.normal(size=(T, *trailing)),
                                            rng.normal(size=(T, *trailing, 5)))
    raise KeyError(name)


COMBINES = list(R.COMBINES)


def _sizes(name):
    small = ("matrix_affine_combine", "log_matmul_combine", "max_plus_combine")
    return [1, 2, 7, 63] if name in small else STEPS


@pytest.mark.parametrize("method", PARALLEL)
@pytest.mark.parametrize("name", COMBINES)
def test_parallel_scans_match_sequential(name, method):
    rng = np.random.default_rng(1)
    combine = R.COMBINES[name]
    for T in _sizes(name):
        x = make_elems(name, T, rng)
        want = R.sequential(combine, x)
        got = R.associative_scan(combine, x, method=method)
        # matrix products of T matrices: rounding grows with the length of the product
        assert_close(f"{name} T={T}", got, want, tol=1e-9 if name == "matrix_affine_combine" else TOL64)


@pytest.mark.parametrize("chunk", [1, 3, 8, 10])
@pytest.mark.parametrize("inner", ["sequential", "hillis_steele", "blelloch"])
def test_chunked_any_chunk_and_inner_method(chunk, inner):
    rng = np.random.default_rng(2)
    for name in ("affine_combine", "softmax_attention_combine", "log_matmul_combine"):
        for T in (1, 2, 7, 63):
            x = make_elems(name, T, rng, trailing=(2,))
            want = R.sequential(R.COMBINES[name], x)
            assert_close(f"{name} T={T} chunk={chunk}",
                         R.chunked(R.COMBINES[name], x, chunk_size=chunk, method=inner), want, tol=TOL64)


def test_scans_keep_bare_arrays_and_tuples_apart():
    x = np.arange(5.0)
    for method in ["sequential", *PARALLEL]:
        assert isinstance(R.associative_scan(R.add_combine, x, method=method), np.ndarray)
        y = R.associative_scan(R.affine_combine, (np.ones(5), x), method=method)
        assert isinstance(y, tuple) and len(y) == 2


def test_unknown_method_and_ragged_elements_are_refused():
    with pytest.raises(ValueError, match="method must be one of"):
        R.associative_scan(R.add_combine, np.zeros(3), method="fast")
    with pytest.raises(ValueError, match="sharing the leading axis T"):
        R.sequential(R.affine_combine, (np.zeros(3), np.zeros(4)))


# --------------------------------------------------------------------------------------------
# Each combine against brute force.
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["sequential", *PARALLEL])
def test_add_is_cumsum(method):
    x = np.random.default_rng(3).normal(size=(63, 5))
    assert_close("add scan", R.associative_scan(R.add_combine, x, method=method), np.cumsum(x, axis=0),
                 tol=TOL64)


@pytest.mark.parametrize("method", ["sequential", *PARALLEL])
def test_logaddexp_is_log_cumsum_exp(method):
    x = np.random.default_rng(4).normal(size=(63, 5)) * 3
    want = np.log(np.cumsum(np.exp(x), axis=0))
    assert_close("logaddexp scan", R.associative_scan(R.logaddexp_combine, x, method=method), want,
                 tol=TOL64)


@pytest.mark.parametrize("method", ["sequential", *PARALLEL])
def test_affine_scan_is_cumprod_and_the_recurrence(method):
    rng = np.random.default_rng(5)
    a, b = rng.uniform(0.5, 1.0, size=(63, 5)), rng.normal(size=(63, 5))
    A, B = R.associative_scan(R.affine_combine, (a, b), method=method)
    assert_close("A (decay products)", A, np.cumprod(a, axis=0), tol=TOL64)
    assert_close("B (states)", B, brute_force_recurrence(a, b), tol=TOL64)


@pytest.mark.parametrize("method", ["sequential", *PARALLEL])
def test_matrix_affine_is_the_matrix_recurrence(method):
    rng = np.random.default_rng(6)
    T, N = 7, 4
    A, b = rng.normal(size=(T, 2, N, N)) / 2, rng.normal(size=(T, 2, N))
    h = np.zeros((2, N))
    want_h, want_A, P = [], [], np.broadcast_to(np.eye(N), (2, N, N))
    for t in range(T):
        h = np.einsum("bij,bj->bi", A[t], h) + b[t]               # h_t = A_t h_{t−1} + b_t
        P = A[t] @ P                                               # A_t … A_0
        want_h.append(h)
        want_A.append(P)
    gA, gb = R.associative_scan(R.matrix_affine_combine, (A, b), method=method)
    assert_close("h", gb, np.stack(want_h), tol=TOL64)
    assert_close("A_t … A_0", gA, np.stack(want_A), tol=TOL64)


def test_log_matmul_is_the_log_of_matrix_products():
    rng = np.random.default_rng(7)
    M = rng.uniform(0.05, 1.0, size=(7, 2, 3, 3))
    got = R.sequential(R.log_matmul_combine, np.log(M))
    P = np.broadcast_to(np.eye(3), (2, 3, 3))
    for t in range(7):
        P = P @ M[t]                                               # M_0 M_1 … M_t (left = earlier)
        assert_close(f"log M_0…M_{t}", got[t], np.log(P), tol=TOL64)


def hmm(rng, T, K=3, V=4):
    pi = rng.dirichlet(np.ones(K))
    A = rng.dirichlet(np.ones(K), size=K)                          # A[i, j] = p(j | i)
    B = rng.dirichlet(np.ones(V), size=K)                          # B[j, v] = p(v | j)
    x = rng.integers(V, size=T)
    return pi, A, B, x


@pytest.mark.parametrize("method", ["sequential", *PARALLEL])
def test_log_matmul_scan_is_the_hmm_likelihood_by_enumeration(method):
    rng = np.random.default_rng(8)
    T, K = 6, 3
    pi, A, B, x = hmm(rng, T, K)
    # brute force: sum over all K^T state paths
    want = 0.0
    for z in itertools.product(range(K), repeat=T):
        p = pi[z[0]] * B[z[0], x[0]]
        for t in range(1, T):
            p *= A[z[t - 1], z[t]] * B[z[t], x[t]]
        want += p
    # scan: α_0 = π ⊙ B[:, x_0];  α_t = α_{t−1} M_t,  M_t[i, j] = A[i, j] B[j, x_t]
    M = np.log(A[None] * B[:, x[1:]].T[:, None, :])                # (T−1, K, K)
    P = R.associative_scan(R.log_matmul_combine, M, method=method)
    log_alpha0 = np.log(pi * B[:, x[0]])
    log_alpha = np.logaddexp.reduce(log_alpha0[:, None] + P[-1], axis=0)
    assert_close("log-likelihood", np.logaddexp.reduce(log_alpha), np.log(want), tol=TOL64)


def test_log_matmul_is_stable_where_exp_underflows():
    rng = np.random.default_rng(9)
    L = rng.normal(size=(5, 3, 3)) - 2000.0                        # exp(L) == 0 in float64
    got = R.sequential(R.log_matmul_combine, L)
    shifted = R.sequential(R.log_matmul_combine, L + 2000.0)                # log(e^{−c}M) = log M − c
    assert_close("log product + 5·2000", got[-1] + 2000.0 * 5, shifted[-1], tol=1e-12)


def test_log_matmul_with_forbidden_transitions():
    with np.errstate(divide="ignore"):
        L = np.log(np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]]))
    got = R.sequential(R.log_matmul_combine, L)
    assert_close("log(I·P)", got[1], L[1], tol=TOL64)                # I·P = P, zeros stay −inf


@pytest.mark.parametrize("method", ["sequential", *PARALLEL])
def test_max_plus_is_the_best_path_by_enumeration(method):
    rng = np.random.default_rng(10)
    T, K = 5, 3
    L = rng.normal(size=(T, K, K))
    got = R.associative_scan(R.max_plus_combine, L, method=method)
    for t in range(T):
        for i, j in itertools.product(range(K), repeat=2):
            best = -np.inf
            for mid in itertools.product(range(K), repeat=t):      # states between 0 and t
                path = (i, *mid, j)
                best = max(best, sum(L[s, path[s], path[s + 1]] for s in range(t + 1)))
            assert abs(got[t, i, j] - best) < 1e-12, (t, i, j)


def masked_attention(s, v):
    """o_t = Σ_{i≤t} softmax(s_{0..t})_i v_i, directly: a (T, T) causal mask on the scores."""
    T = s.shape[0]
    scores = np.where(np.tril(np.ones((T, T), bool))[(...,) + (None,) * (s.ndim - 1)],
                      s[None], -np.inf)                            # [t, i]: score i seen at t
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return np.einsum("ti...,i...d->t...d", p, v)


@pytest.mark.parametrize("method", ["sequential", *PARALLEL])
@pytest.mark.parametrize("T", [1, 2, 7, 63])
def test_softmax_attention_scan_is_masked_softmax_attention(method, T):
    rng = np.random.default_rng(11)
    s, v = 5.0 * rng.normal(size=(T, 2)), rng.normal(size=(T, 2, 3))
    elems = R.softmax_attention_elements(s, v)
    o = R.softmax_attention_output(R.associative_scan(R.softmax_attention_combine, elems, method=method))
    assert_close("o", o, masked_attention(s, v), tol=TOL64)
    # with torch's own attention, one query whose scores are s (q = 1, k_i = s_i)
    ts, tv = torch.from_numpy(s), torch.from_numpy(v)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for b in range(2):
        q = torch.ones(T, 1, dtype=torch.float64)
        ref = torch.nn.functional.scaled_dot_product_attention(
            q[None], ts[:, b, None][None], tv[:, b][None], attn_mask=mask, scale=1.0)[0]
        assert_close(f"o[:, {b}] vs sdpa", o[:, b], ref.numpy(), tol=TOL64)


def test_softmax_attention_with_minus_inf_scores_has_no_nan():
    s = np.array([-np.inf, -np.inf, 0.5, -np.inf, 1.0])
    v = np.arange(10.0).reshape(5, 2)
    for method in ["sequential", *PARALLEL]:
        m, u, w = R.associative_scan(R.softmax_attention_combine, R.softmax_attention_elements(s, v),
                                     method=method)
        assert not np.isnan(u).any() and not np.isnan(w).any()
        assert np.all(u[:2] == 0) and np.all(w[:2] == 0) and np.all(np.isneginf(m[:2]))
        assert_close(f"{method} o[2:]", R.softmax_attention_output((m[2:], u[2:], w[2:])),
                     masked_attention(s[2:], v[2:]), tol=TOL64)


def test_softmax_attention_with_huge_scores_stays_finite():
    s = np.array([1000.0, 1001.0, -1000.0, 999.0])
    v = np.arange(8.0).reshape(4, 2)
    o = R.softmax_attention_output(R.associative_scan(R.softmax_attention_combine,
                                                      R.softmax_attention_elements(s, v),
                                                      method="blelloch"))
    assert_close("o", o, masked_attention(s, v), tol=TOL64)


# --------------------------------------------------------------------------------------------
# Properties: associativity and the identity, on random elements.
# --------------------------------------------------------------------------------------------

def _element_tol(name):
    return 1e-9 if name in ("matrix_affine_combine", "log_matmul_combine") else 1e-11


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(COMBINES), seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4))
def test_every_combine_is_associative(name, seed, n):
    rng = np.random.default_rng(seed)
    combine = R.COMBINES[name]
    x, y, z = (make_elems(name, n, rng, trailing=(2,)) for _ in range(3))
    assert_close(f"{name}: (x∘y)∘z vs x∘(y∘z)", combine(combine(x, y), z), combine(x, combine(y, z)),
                 tol=_element_tol(name))


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(COMBINES), seed=st.integers(0, 2**32 - 1))
def test_every_combine_has_its_documented_identity(name, seed):
    rng = np.random.default_rng(seed)
    combine = R.COMBINES[name]
    x = make_elems(name, 1, rng, trailing=(2,))
    e = combine.identity(x)
    assert_close(f"{name}: e∘x", combine(e, x), x, tol=1e-15)
    assert_close(f"{name}: x∘e", combine(x, e), x, tol=1e-15)
    assert "Identity" in combine.__doc__ and "ssociative" in combine.__doc__


# --------------------------------------------------------------------------------------------
# Wrong variants must be caught: the parallel scans disagree with the sequential loop.
# --------------------------------------------------------------------------------------------

def affine_non_associative(left, right):
    (a1, b1), (a2, _) = left, right
    return a1 * a2, a2 * b1 + b1                                   # b1 where b2 belongs


def affine_own_decay(left, right):
    (a1, b1), (a2, b2) = left, right
    return a1 * a2, a1 * b1 + b2                                   # b1 decayed by its own a1


def affine_swapped(left, right):
    return R.affine_combine(right, left)                                   # the later map applied first


def _disagree(x, y):
    return any(not np.allclose(p, q, rtol=1e-6, atol=1e-9) for p, q in zip(R._parts(x), R._parts(y)))


@pytest.mark.parametrize("method", PARALLEL)
@pytest.mark.parametrize("mutant", [affine_non_associative, affine_own_decay])
def test_non_associative_combines_make_parallel_scans_disagree(mutant, method):
    rng = np.random.default_rng(12)
    x = make_elems("affine", 63, rng)
    assert _disagree(R.associative_scan(mutant, x, method=method), R.sequential(mutant, x))
    assert not _disagree(R.associative_scan(R.affine_combine, x, method=method),
                         R.sequential(R.affine_combine, x))


@pytest.mark.parametrize("method", ["sequential", *PARALLEL])
def test_swapped_operands_are_caught_by_the_loop_not_by_agreement(method):
    """x ⊕' y = y ⊕ x is associative whenever ⊕ is (composition in the other order), so every
    scan computes the same wrong answer: agreement between methods cannot catch it; the
    recurrence's own loop does."""
    x = make_elems("affine", 63, np.random.default_rng(12))
    got = R.associative_scan(affine_swapped, x, method=method)
    assert not _disagree(got, R.sequential(affine_swapped, x))
    assert _disagree(got[1], R.linear_recurrence(*x))


def test_off_by_one_chunk_carry_is_detected(monkeypatch):
    real = R._carry_in

    def carry_one_chunk_late(combine, local):
        """Chunk k fixed up with the total of chunks 0 … k−2: the chunk just before is missed."""
        carry = real(combine, local)                               # (1, n − 1, ...)
        none = combine.identity(R._take(carry, (slice(None), slice(0, 1))))
        return R._like(carry, [np.concatenate([e, c[:, :-1]], axis=1)
                               for e, c in zip(R._parts(none), R._parts(carry))])

    x = make_elems("affine", 63, np.random.default_rng(13))
    assert not _disagree(R.chunked(R.affine_combine, x, chunk_size=8), R.sequential(R.affine_combine, x))
    monkeypatch.setattr(R, "_carry_in", carry_one_chunk_late)
    assert _disagree(R.chunked(R.affine_combine, x, chunk_size=8), R.sequential(R.affine_combine, x))


# --------------------------------------------------------------------------------------------
# Work and depth.
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("T", [1, 2, 3, 7, 8, 63, 64, 1000])
def test_work_and_depth_counters(T):
    seq = R.count_combines("sequential", T)
    hs = R.count_combines("hillis_steele", T)
    bl = R.count_combines("blelloch", T)
    lg = math.ceil(math.log2(T)) if T > 1 else 0
    assert seq == {"work": T - 1, "depth": T - 1}
    assert hs["depth"] == lg
    assert hs["work"] == sum(T - 2**k for k in range(lg))          # Σ_d (T − d)
    assert T - 1 <= bl["work"] <= 2 * (T - 1)                      # work-efficient
    assert bl["depth"] <= 2 * lg
    ch = R.count_combines("chunked", T, chunk_size=8)
    assert ch["work"] <= 2 * 8 * math.ceil(T / 8)


# --------------------------------------------------------------------------------------------
# The linear recurrence.
# --------------------------------------------------------------------------------------------

def brute_force_recurrence(a, b, h0=None):
    """h_t = Σ_{s≤t} (Π_{r=s+1..t} a_r) b_s + (Π_{r≤t} a_r) h0, as the double sum."""
    T = a.shape[0]
    h = np.zeros(np.broadcast_shapes(a.shape, b.shape))
    for t in range(T):
        for s in range(t + 1):
            h[t] += np.prod(a[s + 1:t + 1], axis=0) * b[s]
        if h0 is not None:
            h[t] += np.prod(a[:t + 1], axis=0) * h0
    return h


@pytest.mark.parametrize("T", STEPS[:4])
def test_recurrence_is_the_double_sum(T):
    rng = np.random.default_rng(14)
    a, b, h0 = rng.uniform(-1, 1, size=(T, 5)), rng.normal(size=(T, 5)), rng.normal(size=5)
    assert_close("h", R.linear_recurrence(a, b, h0), brute_force_recurrence(a, b, h0), tol=TOL64)
    assert_close("h with h0 = 0", R.linear_recurrence(a, b), brute_force_recurrence(a, b), tol=TOL64)


def test_recurrence_with_unit_decay_is_cumsum():
    b = np.random.default_rng(15).normal(size=(1000, 3))
    assert_close("h", R.linear_recurrence(np.ones((1000, 1)), b), np.cumsum(b, axis=0), tol=1e-12)


@pytest.mark.parametrize("decay", [1e-6, 0.5, 0.999, 1 - 1e-9])
def test_constant_decay_is_a_geometric_sum(decay):
    T = 1000
    t = np.arange(T)[:, None]
    h = R.linear_recurrence(np.full((T, 1), decay), np.ones((T, 2)), h0=np.array([2.0, -1.0]))
    # Σ_{s≤t} a^{t−s} + a^{t+1} h0 = (1 − a^{t+1}) / (1 − a) + a^{t+1} h0
    want = -np.expm1((t + 1) * np.log(decay)) / (1 - decay) + decay ** (t + 1) * np.array([2.0, -1.0])
    assert_close("h", h, want, tol=1e-9 if decay > 0.99 else 1e-12)  # 1/(1−a) amplifies rounding


def test_time_is_never_broadcast():
    a, b = np.ones((4, 3)), np.ones((4, 3))
    with pytest.raises(ValueError, match=r"share the time axis"):
        R.linear_recurrence(a[:1], b)
    with pytest.raises(ValueError, match=r"\(T, \.\.\.\)"):
        R.linear_recurrence(np.float64(0.5), b)


def test_trailing_axes_broadcast_after_time():
    rng = np.random.default_rng(16)
    a, b = rng.uniform(size=(6,)), rng.normal(size=(6, 2, 3))     # a per step, shared by all
    h = R.linear_recurrence(a, b)
    assert h.shape == (6, 2, 3)
    assert_close("h", h, brute_force_recurrence(a[:, None, None] * np.ones((1, 2, 3)), b),
                 tol=TOL64)
    assert R.linear_recurrence(np.ones((6, 3)), np.ones((6, 2, 1))).shape == (6, 2, 3)


def loop_in_torch(a, b, h0):
    h, out = h0, []
    for t in range(a.shape[0]):
        h = a[t] * h + b[t]
        out.append(h)
    return torch.stack(out)


@pytest.mark.parametrize("with_h0", [True, False])
@pytest.mark.parametrize("T", [1, 2, 7, 63])
def test_backward_matches_autograd_through_the_loop(T, with_h0):
    rng = np.random.default_rng(17)
    a, b = rng.uniform(-1, 1, size=(T, 1, 5)), rng.normal(size=(T, 4, 5))  # a broadcasts over 4
    h0 = rng.normal(size=(5,)) if with_h0 else None                         # h0 over (4, 5)
    g = rng.normal(size=(T, 4, 5))
    h = R.linear_recurrence(a, b, h0)
    grads = R.linear_recurrence_backward(a, h, h0, g, b_shape=b.shape)
    ta, tb = (torch.tensor(x, requires_grad=True) for x in (a, b))
    th0 = torch.tensor(h0, requires_grad=True) if with_h0 else torch.zeros(5, dtype=torch.float64)
    torch.autograd.backward(loop_in_torch(ta, tb, th0), torch.from_numpy(g))
    assert grads["a"].shape == a.shape and grads["b"].shape == b.shape
    assert_close("∂a", grads["a"], ta.grad.numpy(), tol=TOL64)
    assert_close("∂b", grads["b"], tb.grad.numpy(), tol=TOL64)
    if with_h0:
        assert grads["h0"].shape == h0.shape
        assert_close("∂h0", grads["h0"], th0.grad.numpy(), tol=TOL64)
    else:
        assert grads["h0"] is None


def test_backward_matches_finite_differences():
    rng = np.random.default_rng(18)
    a, b, h0 = rng.uniform(-1, 1, size=(5, 3)), rng.normal(size=(5, 3)), rng.normal(size=3)
    g = rng.normal(size=(5, 3))
    loss = lambda a, b, h0: float(np.sum(g * R.linear_recurrence(a, b, h0)))
    grads = R.linear_recurrence_backward(a, R.linear_recurrence(a, b, h0), h0, g)
    for name, x in (("a", a), ("b", b), ("h0", h0)):
        num = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            args = {"a": a, "b": b, "h0": h0}
            up, down = x.copy(), x.copy()
            up[i] += 1e-6
            down[i] -= 1e-6
            num[i] = (loss(**{**args, name: up}) - loss(**{**args, name: down})) / 2e-6
        assert_close(f"∂{name}", grads[name], num, tol=1e-6)


# --------------------------------------------------------------------------------------------
# Log space and the closed form.
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("with_h0", [True, False])
def test_log_space_matches_the_loop(with_h0):
    rng = np.random.default_rng(19)
    a, b = rng.uniform(0.5, 1.0, size=(63, 4)), rng.normal(size=(63, 4)) + 0.5
    h0 = rng.normal(size=4) if with_h0 else None
    want = R.linear_recurrence(a, b, h0)
    # cancellation between h⁺ and h⁻: error relative to the size of the terms, not of h
    scale = float(np.abs(R.linear_recurrence(a, np.abs(b), None if h0 is None else np.abs(h0))).max())
    assert_close("log space", R.linear_recurrence_log(np.log(a), b, h0), want, tol=1e-12,
                 scale=scale)
    assert_close("closed form", R.linear_recurrence_closed_form(a, b, h0), want,
                 tol=1e-9)                                          # short: still fine


def test_long_sequence_near_one_stays_finite_in_log_space_only():
    T = 100_000
    a = np.full((T, 2), 0.99)
    b = np.ones((T, 2))
    b[:, 1] = np.where(np.arange(T) % 3 == 0, 2.0, -0.5)            # a sign change too
    want = R.linear_recurrence(a, b)
    with np.errstate(all="ignore"):
        closed = R.linear_recurrence_closed_form(a, b)
    assert not np.all(np.isfinite(closed)), "the closed form was expected to break"
    got = R.linear_recurrence_log(np.log(a), b)
    assert np.all(np.isfinite(got))
    scale = float(np.abs(R.linear_recurrence(a, np.abs(b))).max())
    assert_close("log space", got, want, tol=1e-10, scale=scale)
    assert_close("h_T", got[-1, 0], 1 / (1 - 0.99), tol=1e-10)      # geometric limit
