"""The NumPy HMM reference against oracles that do not depend on it: brute-force enumeration
over all K^T paths, hmmlearn, the closed forms of tiny models; and its own modes against each
other (log space vs scaling, sequential vs scan); EM never decreases the likelihood."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec.hmm import reference as ref


def model(K, M, seed, concentration=1.0):
    return ref.random_model(K, M, rng=np.random.default_rng(seed), concentration=concentration)


def draw(pi, A, B, T, seed, n=None):
    return ref.sample(pi, A, B, T, rng=np.random.default_rng(seed + 1000), n=n)[1]


CASES = [(1, 2, 1), (2, 3, 4), (3, 2, 6), (4, 5, 5), (3, 3, 1)]


@pytest.mark.parametrize("K,M,T", CASES)
def test_forward_viterbi_posteriors_match_brute_force(K, M, T):
    pi, A, B = model(K, M, seed=K * 10 + T)
    obs = draw(pi, A, B, T, seed=T)
    bf = ref.brute_force(pi, A, B, obs)
    for method in ("log", "scaled", "scan"):
        np.testing.assert_allclose(ref.log_likelihood(pi, A, B, obs, method=method),
                                   bf["log_likelihood"], rtol=1e-12)
    np.testing.assert_allclose(ref.posteriors(pi, A, B, obs), bf["posteriors"], atol=1e-13)
    path, lp = ref.viterbi(pi, A, B, obs)
    np.testing.assert_array_equal(path, bf["path"])
    np.testing.assert_allclose(lp, bf["log_prob"], rtol=1e-12)
    path_s, lp_s = ref.viterbi_scan(pi, A, B, obs)
    np.testing.assert_array_equal(path_s, bf["path"])
    np.testing.assert_allclose(lp_s, bf["log_prob"], rtol=1e-12)


def test_brute_force_itself_on_a_hand_computed_model():
    """Two states, T = 2, every path written out by hand."""
    pi = np.array([0.6, 0.4])
    A = np.array([[0.7, 0.3], [0.2, 0.8]])
    B = np.array([[0.9, 0.1], [0.3, 0.7]])
    obs = np.array([0, 1])
    joint = {(i, j): pi[i] * B[i, 0] * A[i, j] * B[j, 1] for i in range(2) for j in range(2)}
    total = sum(joint.values())
    bf = ref.brute_force(pi, A, B, obs)
    assert bf["log_likelihood"] == pytest.approx(np.log(total), rel=1e-14)
    best = max(joint, key=joint.get)
    assert tuple(bf["path"]) == best
    assert bf["posteriors"][1, 1] == pytest.approx((joint[0, 1] + joint[1, 1]) / total)


@settings(max_examples=25, deadline=None)
@given(K=st.integers(1, 4), M=st.integers(1, 4), T=st.integers(1, 5), seed=st.integers(0, 10**6))
def test_property_reference_equals_enumeration(K, M, T, seed):
    pi, A, B = model(K, M, seed, concentration=0.5)
    obs = draw(pi, A, B, T, seed)
    bf = ref.brute_force(pi, A, B, obs)
    np.testing.assert_allclose(ref.log_likelihood(pi, A, B, obs), bf["log_likelihood"], rtol=1e-11,
                               atol=1e-14)
    np.testing.assert_allclose(ref.posteriors(pi, A, B, obs), bf["posteriors"], atol=1e-11)
    _, lp = ref.viterbi(pi, A, B, obs)
    np.testing.assert_allclose(lp, bf["log_prob"], rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("method", ["sequential", "hillis_steele", "blelloch", "chunked"])
def test_scan_forward_equals_sequential_forward(method):
    pi, A, B = model(4, 3, seed=1)
    obs = draw(pi, A, B, 37, seed=2, n=3)
    elems = np.moveaxis(ref.transition_elements(pi, A, B, obs), 1, 0)
    from minirec.scan import reference as scan
    prefix = scan.associative_scan(scan.log_matmul, elems, method=method)
    np.testing.assert_allclose(np.moveaxis(prefix[:, :, 0, :], 0, 1),
                               ref.forward_log(pi, A, B, obs), rtol=1e-11)
    path, lp = ref.viterbi_scan(pi, A, B, obs, method=method)
    want = ref.viterbi(pi, A, B, obs)
    np.testing.assert_array_equal(path, want[0])
    np.testing.assert_allclose(lp, want[1], rtol=1e-12)


def test_log_and_scaled_agree_and_gamma_is_a_distribution():
    pi, A, B = model(5, 4, seed=3)
    obs = draw(pi, A, B, 200, seed=3, n=4)
    alpha, c = ref.forward_scaled(pi, A, B, obs)
    log_alpha = ref.forward_log(pi, A, B, obs)
    # alpha_hat_t = alpha_t / P(x_0..t), and P(x_0..t) = Π c
    np.testing.assert_allclose(np.log(alpha) + np.cumsum(np.log(c), axis=1)[..., None],
                               log_alpha, rtol=1e-10)
    gamma = ref.posteriors(pi, A, B, obs)
    np.testing.assert_allclose(gamma.sum(-1), 1.0, atol=1e-12)
    ll = ref.log_likelihood(pi, A, B, obs)
    log_beta = ref.backward_log(A, B, obs)
    np.testing.assert_allclose(np.exp(log_alpha + log_beta - ll[:, None, None]), gamma, atol=1e-10)


def test_long_sequences_stay_finite():
    pi, A, B = ref.linear_chain(3)
    obs = draw(pi, A, B, 100_000, seed=5)
    lls = [ref.log_likelihood(pi, A, B, obs, method=m) for m in ("log", "scaled")]
    assert np.all(np.isfinite(lls)) and lls[0] < -1000
    np.testing.assert_allclose(lls[0], lls[1], rtol=1e-10)
    path, lp = ref.viterbi(pi, A, B, obs)
    assert np.isfinite(lp) and lp <= lls[0]


def test_forbidden_transitions_and_impossible_sequences():
    pi = np.array([1.0, 0.0])
    A = np.array([[0.0, 1.0], [1.0, 0.0]])                    # must alternate
    B = np.array([[1.0, 0.0], [0.0, 1.0]])                    # state = symbol
    assert ref.log_likelihood(pi, A, B, np.array([0, 1, 0, 1])) == pytest.approx(0.0, abs=1e-15)
    for method in ("log", "scaled", "scan"):
        assert ref.log_likelihood(pi, A, B, np.array([0, 0, 1]), method=method) == -np.inf
    np.testing.assert_array_equal(ref.viterbi(pi, A, B, np.array([0, 1, 0]))[0], [0, 1, 0])


def test_hmmlearn_agrees():
    hmm = pytest.importorskip("hmmlearn.hmm")
    pi, A, B = model(6, 4, seed=11)
    obs = draw(pi, A, B, 300, seed=11, n=3)
    h = hmm.CategoricalHMM(6, n_features=4, implementation="log")
    h.startprob_, h.transmat_, h.emissionprob_ = pi, A, B
    X, lengths = obs.reshape(-1, 1), [300] * 3
    ll = ref.log_likelihood(pi, A, B, obs)
    assert h.score(X, lengths) == pytest.approx(ll.sum(), rel=1e-10)
    lp, path = h.decode(X, lengths, algorithm="viterbi")
    mine, mine_lp = ref.viterbi(pi, A, B, obs)
    np.testing.assert_array_equal(path, mine.ravel())
    assert lp == pytest.approx(mine_lp.sum(), rel=1e-10)
    np.testing.assert_allclose(h.predict_proba(X, lengths),
                               ref.posteriors(pi, A, B, obs).reshape(-1, 6), atol=1e-10)


def test_viterbi_breaks_exact_ties_as_hmmlearn():
    """With a repeated symbol, 0 → 1 → 0 → 0 and 0 → 0 → 1 → 0 have the same probability:
    exact ties are common, and the paths agree only if ties are broken the same way."""
    hmm = pytest.importorskip("hmmlearn.hmm")
    for pi, A, B, obs in ((np.full(2, 0.5), np.full((2, 2), 0.5), np.full((2, 2), 0.5),
                           np.zeros((1, 6), dtype=int)),
                          (*model(8, 4, seed=0), None)):
        if obs is None:
            obs = draw(pi, A, B, 300, seed=0, n=3)
        h = hmm.CategoricalHMM(A.shape[0], n_features=B.shape[1])
        h.startprob_, h.transmat_, h.emissionprob_ = pi, A, B
        _, want = h.decode(obs.reshape(-1, 1), [obs.shape[1]] * obs.shape[0])
        np.testing.assert_array_equal(ref.viterbi(pi, A, B, obs)[0].ravel(), want)


def test_em_never_decreases_the_likelihood_and_recovers_a_planted_model():
    rng = np.random.default_rng(0)
    pi = np.array([0.5, 0.5])
    A = np.array([[0.9, 0.1], [0.2, 0.8]])
    B = np.array([[0.8, 0.15, 0.05], [0.05, 0.15, 0.8]])
    obs = ref.sample(pi, A, B, 300, rng=rng, n=20)[1]
    fit = ref.fit(obs, 2, 3, rng=rng, n_iter=200, tol=1e-10)
    assert np.all(np.diff(fit.log_likelihoods) >= -1e-9 * np.abs(fit.log_likelihoods[1:]))
    order = np.argsort(fit.B[:, 0])[::-1]                     # label switching
    np.testing.assert_allclose(fit.A[np.ix_(order, order)], A, atol=0.05)
    np.testing.assert_allclose(fit.B[order], B, atol=0.05)
    assert fit.log_likelihoods[-1] >= ref.log_likelihood(pi, A, B, obs).sum() - 1e-6


def test_em_step_matches_hmmlearn_one_iteration():
    hmm = pytest.importorskip("hmmlearn.hmm")
    pi, A, B = model(3, 4, seed=8)
    obs = draw(pi, A, B, 120, seed=8, n=2)
    h = hmm.CategoricalHMM(3, n_features=4, n_iter=1, init_params="", params="ste",
                           implementation="scaling", tol=0)
    h.startprob_, h.transmat_, h.emissionprob_ = pi, A, B
    h.fit(obs.reshape(-1, 1), [120] * 2)
    new_pi, new_A, new_B, _ = ref.em_step(pi, A, B, obs)
    np.testing.assert_allclose(h.startprob_, new_pi, atol=1e-10)
    np.testing.assert_allclose(h.transmat_, new_A, atol=1e-10)
    np.testing.assert_allclose(h.emissionprob_, new_B, atol=1e-10)


def test_sampling_matches_the_model_statistics():
    pi, A, B = ref.linear_chain(2)
    states, obs = ref.sample(pi, A, B, 2000, rng=np.random.default_rng(1), n=20)
    switches = np.mean(states[:, 1:] != states[:, :-1])
    assert switches == pytest.approx(0.05, abs=0.006)
    emitted = np.bincount(obs[states == 0], minlength=3) / np.sum(states == 0)
    np.testing.assert_allclose(emitted, B[0], atol=0.01)
    first = ref.sample(pi, A, B, 50, rng=np.random.default_rng(7), n=3)
    again = ref.sample(pi, A, B, 50, rng=np.random.default_rng(7), n=3)
    np.testing.assert_array_equal(first[1], again[1])


def test_model_families():
    pi, A, B = ref.linear_chain(2, target_prob=0.05)
    np.testing.assert_allclose(A, [[0.95, 0.05], [0.05, 0.95]])
    np.testing.assert_allclose(B, [[0.99, 0.01, 0.0], [0.0, 0.01, 0.99]])
    _, A3, B3 = ref.linear_chain(3, target_prob=0.05)
    q = np.sqrt(0.05)
    np.testing.assert_allclose(A3[1], [q, 1 - 2 * q, q])
    np.testing.assert_allclose(B3[1], [0.495, 0.01, 0.495])
    _, C, _ = ref.cyclic(4, stay_prob=0.9)
    np.testing.assert_allclose(C[3], [0.1, 0, 0, 0.9])
    _, D, _ = ref.random_dense(4, 3, rng=np.random.default_rng(0), stay_prob=0.5)
    assert np.all(np.diag(D) > 0.5) and np.all(D > 0)
    dense = ref.random_dense(3, 2, rng=np.random.default_rng(1))
    for _, A_, B_ in (ref.linear_chain(5), ref.cyclic(3), dense):
        np.testing.assert_allclose(A_.sum(1), 1)
        np.testing.assert_allclose(B_.sum(1), 1)
    with pytest.raises(ValueError, match="1 − 2q < 0"):
        ref.linear_chain(3, target_prob=0.5)


def test_emission_statistics_by_hand():
    obs = np.array([[0, 0, 1, 1], [2, 0, 2, 2]])
    freq, switch = ref.emission_statistics(obs, 4)
    np.testing.assert_allclose(freq, [3 / 8, 2 / 8, 3 / 8, 0])
    assert switch == pytest.approx(3 / 6)          # 1 switch in row 0, 2 in row 1; 6 pairs
    out = ref.compare_emissions(obs, np.array([[3, 3, 3]]), 4)
    assert out["total_variation"] == pytest.approx(1.0)
    assert out["switch_target"] == 0.0
