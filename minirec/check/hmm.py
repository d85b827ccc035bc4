r"""Checks for the exercises on hidden Markov models (lesson 10).

Each ``check_*`` function runs the learner's function and the reference
(:mod:`minirec.hmm.reference`, :mod:`minirec.scan.reference`) on a few float64 cases, prints
``✓ <name>: passed on N cases`` when they agree, and otherwise raises
:class:`~minirec.check.CheckFailed` with a per-tensor table and a diagnosis.

The cases use odd sizes (K = 1, 3, 5 states; T = 1, 5, 7, 13 steps), forbidden transitions
(log 0 = −inf entries whose result is still finite), log-probabilities near −800, where
``exp`` underflows to 0 unless the largest term is shifted out first (also beside others near
0 in one call, where one shift for the whole batch underflows), and sums whose every term
is −inf (a left-to-right HMM's unreached states; a row of L1 and a column of L2 of −inf), where
the answer is −inf and a max shift without its −inf guard makes −inf − (−inf) = NaN. The
forward-step, log-matmul and emission checks run the learner's function with NumPy's invalid
values raised (:mod:`minirec.check._guards`), so that such a NaN stops at its line and the check
names the missing guard (for the emissions: a sequence of one symbol has no pairs to average).
The comparison takes a −inf where −inf is expected as right, and a NaN as wrong wherever it is.

Exercise signatures::

    forward_step(log_alpha, log_A, log_b) -> log_alpha_new         (N, K), (K, K), (N, K) -> (N, K)
    viterbi_backtrack(backpointers, last_state) -> path            (N, T, K), (N,) -> (N, T)
    log_matmul_combine(L1, L2) -> L                                 (T, K, K) x 2 -> (T, K, K)
    compare_emissions(obs_model, obs_target, n_symbols) -> dict     freq_*, total_variation, switch_*
"""

from __future__ import annotations

from functools import cache

import numpy as np

from minirec.check._core import Case, CheckFailed, Exercise, Suspect, one_output, run_check
from minirec.check._guards import raising, run_guarded_check, with_unguarded_twins
from minirec.hmm import reference as hmm
from minirec.scan import reference as scan

__all__ = ["check_forward_step", "check_viterbi_backtrack", "check_log_matmul_combine",
           "check_compare_emissions"]


def _log(x):
    with np.errstate(divide="ignore"):
        return np.log(x)


def _lse(x, axis, guard=True):
    """logsumexp with the max shift (the reference's way, for the suspects); ``guard=False``
    leaves out the −inf guard, so that an all −inf slice gives −inf − (−inf) = NaN."""
    m = np.max(x, axis=axis, keepdims=True)
    if guard:
        m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m, axis)


def _finite_or_zero(m, guard=True):
    """The shift m, 0 where it is ±inf (with ``guard``)."""
    return np.where(np.isfinite(m), m, 0.0) if guard else m


def _naive_lse(x, axis):
    with np.errstate(divide="ignore", over="ignore"):
        return np.log(np.sum(np.exp(x), axis=axis))


# ---------------------------------------------------------------------------------------------
# The forward step
# ---------------------------------------------------------------------------------------------

def _forward_step_variant(log_alpha, log_A, log_b, *, kind, guard=True):
    """The forward step with one mistake; ``guard=False``: the max shift without the −inf
    guard."""
    la = log_alpha[:, :, None]
    if kind == "transposed":
        return _lse(la + log_A.T[None], 1, guard) + log_b
    if kind == "max":
        return np.max(la + log_A[None], axis=1) + log_b
    if kind == "sum_of_logs":
        return np.sum(la + log_A[None], axis=1) + log_b
    if kind == "no_emission":
        return _lse(la + log_A[None], 1, guard)
    if kind == "emission_of_source":
        return _lse(la + log_A[None] + log_b[:, :, None], 1, guard)
    if kind == "over_destination":
        return _lse(la + log_A[None], 2, guard) + log_b
    if kind == "naive":
        return _naive_lse(la + log_A[None], axis=1) + log_b
    if kind == "alpha_shift":                          # exp(log_alpha − m) @ exp(log_A) + m
        m = _finite_or_zero(log_alpha.max(axis=1, keepdims=True), guard)
        return _log(np.exp(log_alpha - m) @ np.exp(log_A)) + m + log_b
    if kind == "A_shift":                              # exp(log_alpha) @ exp(log_A − c) + c
        c = _finite_or_zero(log_A.max(axis=0, keepdims=True), guard)
        return _log(np.exp(log_alpha) @ np.exp(log_A - c)) + c + log_b
    if kind == "global":                               # one max for every sequence and state
        scores = la + log_A[None]
        finite = scores[np.isfinite(scores)]
        m = finite.max() if finite.size else 0.0
        return _log(np.exp(scores - m).sum(axis=1)) + m + log_b
    if kind == "right":
        return _lse(la + log_A[None], 1, guard) + log_b
    raise ValueError(kind)


#: The diagnosis of a max shift without its −inf guard (the forward step, the log-matmul).
NEG_INF_GUARD = ("the max shift has no −inf guard: where every term is −inf (a state that no "
                 "path reaches: log α = −inf, or a forbidden transition), the max m is −inf and "
                 "s − m = −inf − (−inf) is NaN; the answer there is log 0 = −inf. Shift by 0 "
                 "where m is not finite, m = np.where(np.isfinite(m), m, 0), before subtracting")
_NO_GUARD = "the max shift has no −inf guard (m = np.where(np.isfinite(m), m, 0))"


def _forward_step_suspects(cases):
    return (*with_unguarded_twins(_forward_step_mistakes, _NO_GUARD, cases),
            Suspect(NEG_INF_GUARD, raising(lambda la, lA, lb: _forward_step_variant(
                la, lA, lb, kind="right", guard=False), quiet=True)))


#: The diagnosis of a max shift that leaves one operand unshifted: what the values show, then
#: what computes them.
_TOO_COARSE = ("the max shift is too coarse: where {where} your log α is −inf, not the finite "
               "value near −800 — the terms log_alpha[i] + log_A[i, j] of each sum must be "
               "shifted by their own max over i ({how} underflows to 0 there); add it back "
               "after the log")


def _forward_step_mistakes(guard):
    def suspect(message, kind):
        return Suspect(message, lambda la, lA, lb: _forward_step_variant(la, lA, lb, kind=kind,
                                                                         guard=guard))
    return (
        suspect("A used transposed: the sum runs over the PREVIOUS state i with "
                "A[i, j] = P(j | i), i.e. log_A[i, j] with i the row — "
                "log_alpha[:, :, None] + log_A[None], summed over axis 1",
                "transposed"),
        suspect("max instead of a sum: that is Viterbi's step (the best path); "
                "the forward pass adds the probabilities of ALL paths, "
                "logsumexp over i", "max"),
        suspect("the log terms were summed: in log space a sum of probabilities "
                "is logsumexp, not a sum of logs (that would be a product)",
                "sum_of_logs"),
        suspect("the emission log B[j, x_t] is missing: add log_b after the sum",
                "no_emission"),
        suspect("the emission belongs to the NEW state j: add log_b[:, j] to the "
                "result, not log_b[:, i] inside the sum over i",
                "emission_of_source"),
        suspect("summed over the wrong axis: alpha_t[j] sums over the previous "
                "state i (axis 1 of log_alpha[:, :, None] + log_A[None]), not "
                "over the next state j", "over_destination"),
        suspect("exp underflows: log Σ exp(...) without the max shift gives −inf "
                "when every term is below about −745 (so does leaving log space, "
                "exp(log_alpha) @ exp(log_A)); subtract the largest term m first "
                "and add it back, log Σ exp(s − m) + m",
                "naive"),
        suspect(_TOO_COARSE.format(where="a column of log_A is near −800",
                                   how="exp(log_A) taken unshifted, a shift of log_alpha "
                                       "alone,"), "alpha_shift"),
        suspect(_TOO_COARSE.format(where="log_alpha is near −800",
                                   how="exp(log_alpha) taken unshifted, a shift of log_A "
                                       "alone,"), "A_shift"),
        suspect("the max shift is one number for the whole batch: where one sequence's log α "
                "lie far below another's (near −800 beside near 0 in one call) your log α is "
                "−inf, not the finite value near −800 — shift each sum by its own max over i, "
                "for every sequence n and next state j, and add it back after the log",
                "global"),
    )



def _forward_step_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for N, K, shift in ((1, 1, 0.0), (2, 3, 0.0), (3, 5, -20.0), (2, 4, -800.0)):
        log_alpha = rng.normal(scale=2.0, size=(N, K)) + shift
        A = rng.dirichlet(np.ones(K), size=K)
        if K >= 3:
            A[0, 1] = 0.0                              # a forbidden transition: log 0 = −inf
            A /= A.sum(axis=1, keepdims=True)
        log_b = _log(rng.dirichlet(np.ones(K), size=N))
        cases.append(Case((log_alpha, _log(A), log_b), {"N": N, "K": K}))
    cases.append(_left_to_right_case(rng))
    cases.append(_unlikely_state_case(rng))
    cases.append(_sequences_apart_case(rng))
    return tuple(cases)


def _sequences_apart_case(rng, K=3):
    """Three sequences whose log α lie near 0, −800 and −400: only a shift of each sum by its
    own max keeps them finite (one max for the whole batch underflows below it)."""
    log_alpha = rng.normal(scale=2.0, size=(3, K)) + np.array([[0.0], [-800.0], [-400.0]])
    log_A = _log(rng.dirichlet(np.ones(K), size=K))
    log_b = _log(rng.dirichlet(np.ones(K), size=3))
    return Case((log_alpha, log_A, log_b), {"N": 3, "K": K})


def _unlikely_state_case(rng, N=3, K=4, j=2):
    """log_alpha near 0 and a column of log_A near −800 (state j is almost never entered): the
    new log α of state j is about −800, finite, and only a shift of the whole term
    log_alpha[i] + log_A[i, j] (or of log_A's columns) keeps exp from underflowing to 0."""
    log_A = _log(rng.dirichlet(np.ones(K), size=K))
    log_A[:, j] = -800.0 + rng.normal(scale=2.0, size=K)
    log_alpha = rng.normal(scale=2.0, size=(N, K))
    log_b = _log(rng.dirichlet(np.ones(K), size=N))
    return Case((log_alpha, log_A, log_b), {"N": N, "K": K})


def _left_to_right_case(rng):
    """A left-to-right HMM one step after pi = [1, 0, 0]: states 1 and 2 are unreached in the
    first sequence (log α = −inf) and 0 → 2 is forbidden, so the new α of state 2 is a sum of
    −inf terms only (log 0 = −inf); the second sequence has reached states 0 and 1."""
    A = np.array([[0.6, 0.4, 0.0], [0.0, 0.7, 0.3], [0.0, 0.0, 1.0]])
    log_alpha = np.array([[0.0, -np.inf, -np.inf], [-1.2, -0.4, -np.inf]])
    log_alpha += _log(rng.dirichlet(np.ones(3), size=2))
    log_b = _log(rng.dirichlet(np.ones(3), size=2))
    return Case((log_alpha, _log(A), log_b), {"N": 2, "K": 3})


@cache
def _forward_step_exercise():
    cases = _forward_step_cases(seed=2510)
    return Exercise(
        name="forward_step", reference=hmm.forward_step, cases=cases,
        suspects=_forward_step_suspects(cases), outputs=one_output("log_alpha_new"),
        shapes={"log_alpha_new": ("N", "K")}, arg_names=("log_alpha", "log_A", "log_b"),
        matmul_hint="log_alpha is (N, K): broadcast log_alpha[:, :, None] + log_A[None]",
    )


def check_forward_step(forward_step) -> None:
    """Check ``forward_step(log_alpha (N, K), log_A (K, K), log_b (N, K)) -> (N, K)``:
    log alpha_t[j] = logsumexp_i (log alpha_{t−1}[i] + log A[i, j]) + log b[j]."""
    run_guarded_check(_forward_step_exercise(), forward_step, (("invalid value", NEG_INF_GUARD),))


# ---------------------------------------------------------------------------------------------
# The Viterbi backtrack
# ---------------------------------------------------------------------------------------------

def _backtrack_variant(backpointers, last_state, *, kind):
    N, T, K = backpointers.shape
    rows = np.arange(N)
    path = np.empty((N, T), dtype=np.int64)
    path[:, T - 1] = 0 if kind == "from_zero" else last_state
    for t in range(T - 1, 0, -1):
        if kind == "row_before":
            path[:, t - 1] = backpointers[rows, t - 1, path[:, t]]
        elif kind == "fixed_state":
            path[:, t - 1] = backpointers[rows, t, last_state]
        elif kind == "first_sequence":
            path[:, t - 1] = backpointers[0, t, path[:, t]]
        else:
            path[:, t - 1] = backpointers[rows, t, path[:, t]]
    if kind == "reversed":
        return path[:, ::-1]
    return path


def _backtrack_suspect(message, kind):
    return Suspect(message, lambda bp, last: _backtrack_variant(bp, last, kind=kind))


def _backtrack_suspects():
    return (
        _backtrack_suspect("off by one in time: the best predecessor of path[t] is stored at "
                           "step t, path[t−1] = backpointers[t, path[t]] (row t−1 belongs to "
                           "the step before)", "row_before"),
        _backtrack_suspect("the pointer was always read at the LAST state: follow the path, "
                           "path[t−1] = backpointers[t, path[t]] with the state you just "
                           "found, not last_state", "fixed_state"),
        _backtrack_suspect("the path comes out reversed: it is built from the end, so write "
                           "path[t−1] (or reverse the list you appended to)", "reversed"),
        _backtrack_suspect("the path does not start from last_state: path[T−1] = last_state, "
                           "the best final state", "from_zero"),
        _backtrack_suspect("every sequence followed sequence 0's pointers: backpointers[:, t, "
                           "path[:, t]] is an (N, N) table (every sequence's row at every "
                           "sequence's state); pair them up, backpointers[np.arange(N), t, "
                           "path[:, t]]", "first_sequence"),
    )


def _backtrack_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for N, T, K in ((1, 1, 3), (2, 5, 3), (3, 7, 4), (2, 13, 5)):
        back = rng.integers(0, K, size=(N, T, K))
        back[:, 0] = 0                                  # row 0 is never read
        last = rng.integers(1, K, size=N)               # never 0: "from state 0" shows
        cases.append(Case((back, last), {"N": N, "T": T, "K": K}))
    pi, A, B = hmm.random_model(4, 3, rng=rng)           # and the pointers of a real Viterbi run
    _, obs = hmm.sample(pi, A, B, 9, rng=rng, n=2)
    log_A, log_B = _log(A), _log(B)
    back = np.zeros((2, 9, 4), dtype=np.int64)
    delta = _log(pi)[None] + log_B[:, obs[:, 0]].T
    for t in range(1, 9):
        scores = delta[:, :, None] + log_A[None]
        back[:, t] = np.argmax(scores, axis=1)
        delta = scores.max(axis=1) + log_B[:, obs[:, t]].T
    cases.append(Case((back, np.argmax(delta, axis=1)), {"N": 2, "T": 9, "K": 4}))
    return tuple(cases)


@cache
def _backtrack_exercise():
    return Exercise(
        name="viterbi_backtrack", reference=hmm.viterbi_backtrack,
        cases=_backtrack_cases(seed=20), suspects=_backtrack_suspects(),
        outputs=one_output("path"), shapes={"path": ("N", "T")},
        arg_names=("backpointers", "last_state"),
        shape_hints={"path": "One state per step of every sequence: path[:, T−1] = last_state"},
    )


def check_viterbi_backtrack(viterbi_backtrack) -> None:
    """Check ``viterbi_backtrack(backpointers (N, T, K), last_state (N,)) -> path (N, T)``:
    path[T−1] = last_state, path[t−1] = backpointers[t, path[t]] for each sequence."""
    run_check(_backtrack_exercise(), viterbi_backtrack)


# ---------------------------------------------------------------------------------------------
# The log-matmul combine
# ---------------------------------------------------------------------------------------------

def _shifted_log_matmul(L1, L2, guard, add_back="both"):
    """The reference's log(exp(L1 − r) @ exp(L2 − c)) + r + c; ``guard=False`` leaves out the
    −inf guard on the row maxima r and column maxima c; ``add_back`` "r" or "c" adds back only
    that shift."""
    r, c = L1.max(axis=-1, keepdims=True), L2.max(axis=-2, keepdims=True)
    if guard:
        r, c = np.where(np.isfinite(r), r, 0.0), np.where(np.isfinite(c), c, 0.0)
    with np.errstate(divide="ignore"):
        product = np.log(np.exp(L1 - r) @ np.exp(L2 - c))
    return product + {"both": r + c, "r": r, "c": c}[add_back]


def _log_matmul_variant(L1, L2, *, kind, guard=True):
    if kind == "swapped":
        return _shifted_log_matmul(L2, L1, guard)
    if kind == "max_plus":
        return scan.max_plus(L1, L2)
    if kind == "elementwise":
        return L1 + L2
    if kind == "transposed":
        return _shifted_log_matmul(L1, np.swapaxes(L2, -1, -2), guard)
    if kind == "right":
        return _shifted_log_matmul(L1, L2, guard)
    if kind in ("r", "c"):
        return _shifted_log_matmul(L1, L2, guard, add_back=kind)
    if kind == "naive":
        with np.errstate(divide="ignore", over="ignore"):
            return np.log(np.exp(L1) @ np.exp(L2))
    if kind in ("one_shift", "one_shift_per_matrix", "shift_axes_swapped", "L1_axis",
                "L2_axis"):
        return _coarse_log_matmul(L1, L2, kind, guard)
    raise ValueError(kind)


def _coarse_log_matmul(L1, L2, kind, guard):
    """log(exp(L1 − r) @ exp(L2 − c)) + r + c with shifts that are not the rows' and columns'
    maxima: one number per operand ("one_shift"), one per matrix of the batch
    ("one_shift_per_matrix"), or the maxima over the other axis, which depend on the middle
    index k and do not factor out of the sum: for both operands ("shift_axes_swapped"), for L1
    only ("L1_axis": its column maxima) or for L2 only ("L2_axis": its row maxima)."""
    rows, cols = L1.max(axis=-1, keepdims=True), L2.max(axis=-2, keepdims=True)
    if kind == "one_shift":
        r, c = np.max(L1), np.max(L2)
    elif kind == "one_shift_per_matrix":
        r, c = L1.max(axis=(-2, -1), keepdims=True), L2.max(axis=(-2, -1), keepdims=True)
    elif kind == "L1_axis":
        r, c = L1.max(axis=-2, keepdims=True), cols
    elif kind == "L2_axis":
        r, c = rows, L2.max(axis=-1, keepdims=True)
    else:
        r, c = L1.max(axis=-2, keepdims=True), L2.max(axis=-1, keepdims=True)
    r, c = _finite_or_zero(r, guard), _finite_or_zero(c, guard)
    return _log(np.exp(L1 - r) @ np.exp(L2 - c)) + r + c


def _log_matmul_suspects(cases):
    return (*with_unguarded_twins(_log_matmul_mistakes, _NO_GUARD, cases),
            Suspect(NEG_INF_GUARD, raising(lambda L1, L2: _log_matmul_variant(
                L1, L2, kind="right", guard=False), quiet=True)))


#: The diagnosis of a max shift too coarse for rows (or matrices) at different scales.
_ONE_SHIFT = ("the max shift is too coarse: you shifted by {what}, so the rows of L1 (or "
              "columns of L2) far below it underflow, e^(−800) = 0, and give −inf where the "
              "answer is finite; shift each row of L1 by its own max (axis −1) and each column "
              "of L2 by its own max (axis −2), then add both back")


#: The diagnosis of one operand's shift taken along the wrong axis.
_WRONG_AXIS = ("{operand} is shifted along the wrong axis: its {got} depend on the middle "
               "index k of Σ_k, so they do not factor out of the sum and the result is wrong "
               "even where nothing underflows; shift {right}, and add it back after the log")


def _log_matmul_mistakes(guard):
    def suspect(message, kind):
        return Suspect(message, lambda L1, L2: _log_matmul_variant(L1, L2, kind=kind,
                                                                   guard=guard))
    return (
        suspect("operands in the wrong order: left is earlier, so the result is "
                "L1 ⊕ L2 = log(exp(L1) @ exp(L2)), not L2 before L1", "swapped"),
        suspect("max instead of logsumexp: that is the max-plus (Viterbi) "
                "combine; the forward pass sums over the middle state k",
                "max_plus"),
        suspect("element-wise instead of a matrix product: L1 + L2 multiplies "
                "entry by entry; sum over the middle index k, "
                "log Σ_k exp(L1[i, k] + L2[k, j])", "elementwise"),
        suspect("L2 used transposed: the middle index k is L2's ROW, "
                "L1[..., i, k] + L2[..., k, j]", "transposed"),
        suspect("exp underflows: log(exp(L1) @ exp(L2)) gives −inf when the "
                "entries are below about −745; shift the rows of L1 and the "
                "columns of L2 by their maxima first and add them back",
                "naive"),
        suspect("only the row maxima were added back: log(exp(L1 − r) @ exp(L2 − c)) "
                "is the product shifted by r_i + c_j, so add back both, + r + c", "r"),
        suspect("only the column maxima were added back: log(exp(L1 − r) @ exp(L2 − c)) "
                "is the product shifted by r_i + c_j, so add back both, + r + c", "c"),
        suspect(_ONE_SHIFT.format(what="one number for a whole operand (its global max)"),
                "one_shift"),
        suspect(_ONE_SHIFT.format(what="one number per matrix"), "one_shift_per_matrix"),
        suspect("the shifts are taken along the wrong axes: L1 by its column maxima and L2 by "
                "its row maxima depend on the middle index k, so they do not factor out of "
                "Σ_k; shift each row of L1 by its max over k (axis −1) and each column of L2 by "
                "its max over k (axis −2)", "shift_axes_swapped"),
        suspect(_WRONG_AXIS.format(operand="L1", got="column maxima (axis −2)",
                                   right="each row of L1 by its max over k (axis −1)"),
                "L1_axis"),
        suspect(_WRONG_AXIS.format(operand="L2", got="row maxima (axis −1)",
                                   right="each column of L2 by its max over k (axis −2)"),
                "L2_axis"),
    )



def _log_matmul_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for T, K, shift in ((1, 1, 0.0), (5, 2, 0.0), (7, 3, -30.0), (13, 4, 0.0), (3, 3, -800.0)):
        L1 = rng.normal(scale=1.5, size=(T, K, K)) + shift
        L2 = rng.normal(scale=1.5, size=(T, K, K)) + shift
        if K >= 3:
            L1[:, 0, 1] = -np.inf                          # log 0 entries; results stay finite
            L2[:, 2, 0] = -np.inf
        cases.append(Case((L1, L2), {"T": T, "K": K}))
    L1, L2 = rng.normal(scale=1.5, size=(2, 4, 3, 3))
    L1[:, 1, :] = -np.inf                                  # a state that reaches nothing
    L2[:, :, 2] = -np.inf                                  # a state that nothing reaches
    cases.append(Case((L1, L2), {"T": 4, "K": 3}))         # rows and columns of −inf: −inf
    cases.append(_scales_case(rng, rows=True))
    cases.append(_scales_case(rng, rows=False))
    return tuple(cases)


def _scales_case(rng, *, rows, T=3, K=3):
    """Every answer finite, but at very different scales: with ``rows``, row 1 of every L1 and
    column 0 of every L2 near −800 (one shift per matrix underflows there); without, the
    second matrix of both operands near −800 (one shift for the whole batch underflows)."""
    L1, L2 = rng.normal(scale=1.5, size=(2, T, K, K))
    if rows:
        L1[:, 1, :] -= 800.0
        L2[:, :, 0] -= 800.0
    else:
        L1[1] -= 800.0
        L2[1] -= 800.0
    return Case((L1, L2), {"T": T, "K": K})


@cache
def _log_matmul_exercise():
    cases = _log_matmul_cases(seed=7)
    return Exercise(
        name="log_matmul_combine", reference=scan.log_matmul,
        cases=cases, suspects=_log_matmul_suspects(cases),
        outputs=one_output("L"), shapes={"L": ("T", "K", "K")}, arg_names=("L1", "L2"),
    )


def check_log_matmul_combine(log_matmul_combine) -> None:
    """Check ``log_matmul_combine(L1 (T, K, K), L2 (T, K, K)) -> (T, K, K)``:
    L[i, j] = log Σ_k exp(L1[i, k] + L2[k, j]), finite whenever the exact value is."""
    run_guarded_check(_log_matmul_exercise(), log_matmul_combine,
                      (("invalid value", NEG_INF_GUARD),))


# ---------------------------------------------------------------------------------------------
# Comparing emission statistics
# ---------------------------------------------------------------------------------------------

EMISSION_KEYS = ("freq_model", "freq_target", "total_variation", "switch_model", "switch_target")


def _emissions_outputs(result, case):
    if not isinstance(result, dict):
        raise CheckFailed(f"compare_emissions must return a dict with keys "
                          f"{list(EMISSION_KEYS)}; got a {type(result).__name__}")
    return dict(result)


def _rate(pairs, guard):
    """The fraction of True in ``pairs``; with ``guard``, 0 when there are no pairs (T = 1)
    instead of the NaN (0 / 0) of an empty mean."""
    return np.mean(pairs) if pairs.size or not guard else 0.0


def _stats_variant(obs, M, *, kind, guard=True):
    counts = np.bincount(obs.ravel(), minlength=M)
    freq = {"counts": counts, "per_row": counts / obs.shape[0]}.get(kind, counts / obs.size)
    changes = obs[:, 1:] != obs[:, :-1]
    if kind == "across":
        flat = obs.ravel()
        switch = _rate(flat[1:] != flat[:-1], guard)
    elif kind == "between_sequences":
        switch = _rate(obs[1:, :] != obs[:-1, :], guard)
    elif kind == "per_T":
        switch = changes.sum() / obs.size
    elif kind == "stays":
        switch = _rate(~changes, guard)
    else:
        switch = _rate(changes, guard)
    return freq, float(switch)


def _emissions_variant(obs_model, obs_target, n_symbols, *, kind, guard=True):
    fm, sm = _stats_variant(obs_model, n_symbols, kind=kind, guard=guard)
    ft, st = _stats_variant(obs_target, n_symbols, kind=kind, guard=guard)
    tv = np.abs(fm - ft).sum() * (1.0 if kind == "no_half" else 0.5)
    return {"freq_model": fm, "freq_target": ft, "total_variation": tv,
            "switch_model": sm, "switch_target": st}


#: The diagnosis of a switch rate without its guard for sequences of one symbol.
NO_PAIRS = ("a sequence of one symbol (T = 1) has no consecutive pairs: the mean over an empty "
            "array is 0 / 0 = NaN (NumPy warns 'Mean of empty slice'); its switch rate is 0 "
            "by definition: rate = pairs.mean() if pairs.size else 0.0")


def _emissions_suspects(cases):
    return (*with_unguarded_twins(_emissions_mistakes, "a sequence of one symbol has no pairs: "
                                  "its switch rate is 0, not the NaN of an empty mean", cases),
            Suspect(NO_PAIRS, raising(lambda a, b, M: _emissions_variant(a, b, M, kind="right",
                                                                         guard=False),
                                      quiet=True)))


def _emissions_mistakes(guard):
    def suspect(message, kind):
        return Suspect(message, lambda a, b, M: _emissions_variant(a, b, M, kind=kind,
                                                                   guard=guard))
    return (
        suspect("frequencies not normalised: divide the counts by the number of "
                "symbols N·T so that they sum to 1", "counts"),
        suspect("frequencies divided by the number of sequences N (len(obs)): there are N·T "
                "symbols, obs.size, and the frequencies must sum to 1", "per_row"),
        suspect("switches counted across sequence boundaries: compare obs[:, 1:] "
                "with obs[:, :-1] row by row, never the last symbol of one sequence "
                "with the first of the next", "across"),
        suspect("switches counted between sequences, along axis 0: obs[1:, :] != obs[:-1, :] "
                "compares sequence n with sequence n + 1 at the same step; a switch is a change "
                "along time, obs[:, 1:] != obs[:, :-1] (obs is (N, T), batch first)",
                "between_sequences"),
        suspect("switch rate over the wrong number of pairs: a sequence of T "
                "symbols has T − 1 consecutive pairs, N·(T − 1) in all", "per_T"),
        suspect("you counted the pairs that STAY: a switch is obs[t] ≠ obs[t−1]",
                "stays"),
        suspect("total variation without the ½: TV = ½ Σ_m |p_m − q_m| (between 0 "
                "and 1)", "no_half"),
    )


def _emissions_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for (Na, Ta), (Nb, Tb), M in (((3, 5), (2, 7), 3), ((2, 1), (1, 5), 2),
                                  ((2, 13), (4, 7), 4), ((5, 7), (3, 13), 3)):
        pi, A, B = hmm.linear_chain(2, n_symbols=3) if M == 3 else hmm.random_model(
            3, M, rng=rng)
        a = hmm.sample(pi, A, B, Ta, rng=rng, n=Na)[1]
        b = rng.integers(0, M, size=(Nb, Tb))
        if M == 4:
            b[b == 3] = 0                                 # a symbol the target never emits
        cases.append(Case((a, b, M), {"N": Na, "T": Ta, "M": M}))
    return tuple(cases)


@cache
def _emissions_exercise():
    cases = _emissions_cases(seed=3)
    return Exercise(
        name="compare_emissions", reference=hmm.compare_emissions,
        cases=cases, suspects=_emissions_suspects(cases),
        outputs=_emissions_outputs,
        shapes={"freq_model": ("M",), "freq_target": ("M",), "total_variation": (),
                "switch_model": (), "switch_target": ()},
        arg_names=("obs_model", "obs_target", "n_symbols"),
        shape_hints={"freq_model": "One frequency per symbol, zeros included "
                                   "(np.bincount(..., minlength=M))",
                     "freq_target": "One frequency per symbol, zeros included "
                                    "(np.bincount(..., minlength=M))"},
    )


def check_compare_emissions(compare_emissions) -> None:
    """Check ``compare_emissions(obs_model (N, T), obs_target (N', T'), n_symbols) -> dict``
    with ``freq_model (M,)``, ``freq_target (M,)``, ``total_variation ()``,
    ``switch_model ()``, ``switch_target ()``."""
    run_guarded_check(_emissions_exercise(), compare_emissions, (("invalid value", NO_PAIRS),))
