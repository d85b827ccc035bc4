r"""Checks for the exercises on neural memory (lesson 09: the delta rule, the linear memory's
gradient, Titans' momentum and forgetting, the chunked update).

Each ``check_*`` function takes the learner's function, runs it and the reference
(:mod:`minirec.memory.reference`) on a few float64 cases, prints ``✓ <name>: passed on N cases``
when they agree, and otherwise raises :class:`~minirec.check.CheckFailed` with a per-tensor table
and a diagnosis.

Memories are rectangular (d_v ≠ d_k) so that a transposed outer product shows as a shape error,
keys are not unit vectors (so that a normalised update differs from the plain one), and gates
are not 0 or 1 except where a case says so (θ = 1 in one delta-rule case).

Exercise signatures::

    delta_rule_write(M, k, v, theta) -> M_new                      M + θ (v − M k) kᵀ
    linear_memory_grad(M, k, v) -> G                               ∇_M ‖M k − v‖² = 2 (M k − v) kᵀ
    titans_step(M, S, k, v, eta, theta, alpha) -> (M_new, S_new)    S' = η S − θ ∇ℓ, M' = (1 − α) M + S'
    titans_chunk(M, S, k, v, q, eta, theta, alpha) -> (y, M_new, S_new)   one chunk, k (C, d_k)
"""

from __future__ import annotations

from functools import cache

import numpy as np

from minirec.check._core import Case, CheckFailed, Exercise, Suspect, one_output, run_check
from minirec.memory import reference as ref

__all__ = ["check_delta_rule_write", "check_linear_memory_grad", "check_titans_step",
           "check_titans_chunk"]

#: (d_v, d_k) of the cases: rectangular both ways, one square, one with a single row.
MEMORY_SIZES = ((3, 5), (4, 2), (1, 3), (3, 3))


def _tuple(fn_name, names):
    def outputs(result, case):
        if not (isinstance(result, (tuple, list)) and len(result) == len(names)):
            what = (f"a {type(result).__name__} of length {len(result)}"
                    if isinstance(result, (tuple, list)) else f"a {type(result).__name__}")
            raise CheckFailed(f"{fn_name} must return the tuple ({', '.join(names)}); got {what}")
        return dict(zip(names, result))
    return outputs


def _memory_case(rng, d_v, d_k):
    M = rng.normal(scale=0.5, size=(d_v, d_k))
    k = rng.normal(scale=0.7, size=d_k)                      # not unit: ‖k‖ matters
    v = rng.normal(size=d_v)
    return M, k, v


# ---------------------------------------------------------------------------------------------
# The delta-rule write
# ---------------------------------------------------------------------------------------------

def _memory_hint(case):
    """What the memory's shape says about its products (appended to a matmul diagnosis)."""
    d_v, d_k = case.sizes["d_v"], case.sizes["d_k"]
    return (f"M is (d_v, d_k) = ({d_v}, {d_k}): M @ k, (d_v,), is what the memory returns for "
            f"the key k (d_k,); Mᵀ (d_k, d_v) maps the other way, so M.T @ k needs d_v = d_k")


def _delta_reference(M, k, v, theta):
    return ref.delta_rule_memory(k[None], v[None], k[None], np.array([theta]), M)[1]


def _delta_variant(M, k, v, theta, *, kind):
    error = v - M @ k
    unit = k / np.linalg.norm(k)
    return {"unit_key": M + theta * np.outer(v - M @ unit, unit),
            "hebbian": M + theta * np.outer(v, k),
            "sign": M + theta * np.outer(M @ k - v, k),
            "no_theta": M + np.outer(error, k),
            "no_old": theta * np.outer(error, k),
            "normalised": M + theta * np.outer(error, k) / (k @ k)}[kind]


def _delta_suspects():
    def s(message, kind):
        return Suspect(message, lambda M, k, v, theta: _delta_variant(M, k, v, theta, kind=kind))
    return (
        s("Hebbian write, not the delta rule: you added θ v kᵀ; the delta rule writes only the "
          "error, θ (v − M k) kᵀ, what the memory does not already return for k", "hebbian"),
        s("the error has the wrong sign: it is v − M k (what is missing), not M k − v — with "
          "M k − v the write pushes the memory away from v", "sign"),
        s("θ is missing: the write is θ (v − M k) kᵀ, scaled by the step θ", "no_theta"),
        s("the old memory is dropped: M_new = M + θ (v − M k) kᵀ; you returned only the "
          "increment θ (v − M k) kᵀ", "no_old"),
        s("you divided by ‖k‖² (the normalised delta rule, NLMS): this lesson's rule is "
          "M + θ (v − M k) kᵀ without the normalisation (with unit keys the two agree)",
          "normalised"),
        s("you normalised the key to unit length first (k / ‖k‖ in both places): this "
          "lesson's rule writes with the key as given, M + θ (v − M k) kᵀ (with unit keys the "
          "two agree)", "unit_key"),
    )


def _delta_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for (d_v, d_k), theta in zip(MEMORY_SIZES, (0.3, 0.7, 1.0, 0.45)):
        cases.append(Case((*_memory_case(rng, d_v, d_k), theta), {"d_v": d_v, "d_k": d_k}))
    return tuple(cases)


@cache
def _delta_exercise():
    return Exercise(
        name="delta_rule_write", reference=_delta_reference, cases=_delta_cases(seed=1986),
        suspects=_delta_suspects(), outputs=one_output("M_new"), shapes={"M_new": ("d_v", "d_k")},
        arg_names=("M", "k", "v", "theta"),
        matmul_hint=_memory_hint,
        shape_hints={"M_new": "The memory maps a key (d_k,) to a value (d_v,): the outer "
                              "product is np.outer(error (d_v,), k (d_k,))"},
    )


def check_delta_rule_write(delta_rule_write) -> None:
    """Check ``delta_rule_write(M, k, v, theta) -> M_new``: M_new = M + θ (v − M k) kᵀ with
    ``M (d_v, d_k)``, ``k (d_k,)``, ``v (d_v,)``, θ a float."""
    run_check(_delta_exercise(), delta_rule_write)


# ---------------------------------------------------------------------------------------------
# The linear memory's gradient
# ---------------------------------------------------------------------------------------------

def _grad_variant(M, k, v, *, kind):
    r = M @ k - v
    return {"no_two": np.outer(r, k),
            "sign": 2 * np.outer(v - M @ k, k),
            "no_v": 2 * np.outer(M @ k, k),
            "mean": 2 * np.outer(r, k) / len(v)}[kind]


def _grad_suspects():
    def s(message, kind):
        return Suspect(message, lambda M, k, v: _grad_variant(M, k, v, kind=kind))
    return (
        s("the factor 2 is missing: d/dM ‖M k − v‖² = 2 (M k − v) kᵀ (the square's derivative)",
          "no_two"),
        s("the sign is flipped: the gradient points uphill, 2 (M k − v) kᵀ; you wrote "
          "2 (v − M k) kᵀ, the descent direction", "sign"),
        s("v is missing from the residual: the loss is ‖M k − v‖², so the residual is M k − v, "
          "not M k", "no_v"),
        s("you divided by d_v (the gradient of the MEAN squared error): the loss here is the "
          "sum ‖M k − v‖²", "mean"),
    )


def _grad_cases(seed):
    rng = np.random.default_rng(seed)
    return tuple(Case(_memory_case(rng, d_v, d_k), {"d_v": d_v, "d_k": d_k})
                 for d_v, d_k in MEMORY_SIZES)


@cache
def _grad_exercise():
    return Exercise(
        name="linear_memory_grad", reference=ref.linear_memory_grad, cases=_grad_cases(2024),
        suspects=_grad_suspects(), outputs=one_output("G"), shapes={"G": ("d_v", "d_k")},
        arg_names=("M", "k", "v"),
        shape_hints={"G": "The gradient has the memory's shape: np.outer(residual (d_v,), k (d_k,))"},
    )


def check_linear_memory_grad(linear_memory_grad) -> None:
    """Check ``linear_memory_grad(M, k, v) -> G``: G = ∇_M ‖M k − v‖² = 2 (M k − v) kᵀ,
    ``(d_v, d_k)``."""
    run_check(_grad_exercise(), linear_memory_grad)


# ---------------------------------------------------------------------------------------------
# One Titans step: momentum and forgetting
# ---------------------------------------------------------------------------------------------

def _step_reference(M, S, k, v, eta, theta, alpha):
    _, (M_new, S_new) = ref.titans_linear(k[None], v[None], k[None], np.array([eta]),
                                          np.array([theta]), np.array([alpha]), (M, S))
    return M_new, S_new


def _step_variant(M, S, k, v, eta, theta, alpha, *, kind):
    at = (1 - alpha) * M if kind == "grad_at_decayed" else M
    G = ref.linear_memory_grad(at, k, v) / (2.0 if kind == "grad_no_two" else 1.0)
    S_new = {"plus": eta * S + theta * G,
             "no_eta": S - theta * G,
             "no_theta": eta * S - G,
             "eta_all": eta * (S - theta * G),
             "ema": eta * S - (1 - eta) * theta * G}.get(kind, eta * S - theta * G)
    M_new = {"forget_all": (1 - alpha) * (M + S_new),
             "old_S": (1 - alpha) * M + S,
             "alpha_keeps": alpha * M + S_new}.get(kind, (1 - alpha) * M + S_new)
    return (S_new, M_new) if kind == "swapped" else (M_new, S_new)


def _step_suspects():
    def s(message, kind):
        return Suspect(message, lambda *a: _step_variant(*a, kind=kind))
    return (
        s("the forgetting also scales the new surprise: M_t = (1 − α) M_{t−1} + S_t — only the "
          "old memory decays; you wrote (1 − α)(M + S_t)", "forget_all"),
        s("the memory is updated with the OLD momentum S_{t−1}: compute S_t first, then "
          "M_t = (1 − α) M_{t−1} + S_t", "old_S"),
        s("α is the forgetting rate, not the retention: the old memory is kept with weight "
          "1 − α, not α", "alpha_keeps"),
        s("the gradient is added: surprise is a descent step, S_t = η S_{t−1} − θ ∇ℓ", "plus"),
        s("the momentum does not decay: S_t = η S_{t−1} − θ ∇ℓ; you left out η", "no_eta"),
        s("an exponential moving average (1 − η) θ ∇ℓ: Titans' momentum is S_t = η S_{t−1} − "
          "θ ∇ℓ, with no (1 − η) on the gradient", "ema"),
        s("the pair is returned in the wrong order: titans_step returns (M_new, S_new), the "
          "memory first; you returned (S_new, M_new)", "swapped"),
        s("θ is missing: the surprise is the gradient step −θ ∇ℓ, scaled by the step size θ",
          "no_theta"),
        s("the gradient's factor 2 is missing: ∇ℓ = 2 (M k − v) kᵀ, the derivative of the "
          "square ‖M k − v‖²", "grad_no_two"),
        s("η also multiplies the gradient step: S_t = η S_{t−1} − θ ∇ℓ, the momentum decays "
          "by η but the new surprise −θ ∇ℓ enters undecayed; you wrote η (S − θ ∇ℓ)",
          "eta_all"),
        s("the gradient was taken at the decayed memory (1 − α) M_{t−1}: the surprise is the "
          "gradient of the loss of the memory as it is, ∇ℓ(M_{t−1}; k, v); the forgetting "
          "(1 − α) applies to M_{t−1} in the memory's update only", "grad_at_decayed"),
    )


def _step_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for (d_v, d_k), (eta, theta, alpha) in zip(MEMORY_SIZES, ((0.6, 0.3, 0.2), (0.9, 0.5, 0.05),
                                                             (0.3, 0.8, 0.4), (0.75, 0.2, 0.1))):
        M, k, v = _memory_case(rng, d_v, d_k)
        S = rng.normal(scale=0.3, size=(d_v, d_k))
        cases.append(Case((M, S, k, v, eta, theta, alpha), {"d_v": d_v, "d_k": d_k}))
    return tuple(cases)


@cache
def _step_exercise():
    return Exercise(
        name="titans_step", reference=_step_reference, cases=_step_cases(2501),
        suspects=_step_suspects(), outputs=_tuple("titans_step", ("M_new", "S_new")),
        shapes={"M_new": ("d_v", "d_k"), "S_new": ("d_v", "d_k")},
        arg_names=("M", "S", "k", "v", "eta", "theta", "alpha"),
        calls={"linear_memory_grad": ref.linear_memory_grad},
    )


def check_titans_step(titans_step) -> None:
    """Check ``titans_step(M, S, k, v, eta, theta, alpha) -> (M_new, S_new)``:
    S_new = η S − θ ∇ℓ(M; k, v), M_new = (1 − α) M + S_new, with ∇ℓ = 2 (M k − v) kᵀ."""
    run_check(_step_exercise(), titans_step)


# ---------------------------------------------------------------------------------------------
# The chunked update
# ---------------------------------------------------------------------------------------------

def _chunk_reference(M, S, k, v, q, eta, theta, alpha):
    y, (M_new, S_new) = ref.titans_linear_chunked(k, v, q, eta, theta, alpha, len(k), (M, S))
    return y, M_new, S_new


def _chunk_loop(M, S, k, v, q, eta, theta, alpha, *, kind):
    """The chunk as a loop, with one mistake switched on ("read_start": every y_t read from
    the chunk's first memory)."""
    M0, ys = M, []
    if kind == "no_S0":
        S = np.zeros_like(S)
    for t in range(len(k)):
        at = M if kind == "per_token" else M0
        G = ref.linear_memory_grad(at, k[t], v[t]) / (2.0 if kind == "no_two" else 1.0)
        before = M
        S = eta[t] * S - theta[t] * G
        keep = {"alpha_keeps": alpha[t], "no_forgetting": 1.0}.get(kind, 1 - alpha[t])
        M = keep * M + (-theta[t] * G if kind == "no_momentum" else S)
        ys.append({"read_before": before, "read_start": M0}.get(kind, M) @ q[t])
    return np.stack(ys), M, S


def _chunk_suspects():
    def s(message, kind):
        return Suspect(message, lambda *a: _chunk_loop(*a, kind=kind))
    return (
        s("each gradient was taken at the memory as it is being updated (the per-token rule): "
          "in the chunked form every gradient of the chunk is ∇ℓ(M_{t0−1}; k_t, v_t), against "
          "the memory at the chunk's START — that is what makes the chunk parallel", "per_token"),
        s("y_t reads the memory before step t's write: retrieval is y_t = M_t q_t, after the "
          "update of step t", "read_before"),
        s("the momentum carried in from the previous chunk was dropped: the first step of the "
          "chunk is S = η S_{t0−1} − θ G, with the S passed in", "no_S0"),
        s("α is the forgetting rate, not the retention: M_t = (1 − α_t) M_{t−1} + S_t",
          "alpha_keeps"),
        s("the momentum is missing from the memory: M_t = (1 − α_t) M_{t−1} + S_t, fed by the "
          "momentum scan, not by −θ_t G_t directly", "no_momentum"),
        s("every y_t reads the chunk's first memory: only the gradients are taken at M_{t0−1}; "
          "retrieval reads the memory after step t's write, y_t = M_t q_t", "read_start"),
        s("the gradient's factor 2 is missing: G_t = 2 (M_{t0−1} k_t − v_t) k_tᵀ, the "
          "derivative of the square ‖M k − v‖²", "no_two"),
        s("no forgetting in the memory's scan: M_t = (1 − α_t) M_{t−1} + S_t, the old memory "
          "decays by 1 − α_t at every step; you kept it whole (a decay of 1)", "no_forgetting"),
    )


def _chunk_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for C, (d_v, d_k) in zip((1, 5, 7, 4), MEMORY_SIZES):
        M = rng.normal(scale=0.5, size=(d_v, d_k))
        S = rng.normal(scale=0.3, size=(d_v, d_k))
        k, q = rng.normal(scale=0.6, size=(2, C, d_k))
        v = rng.normal(size=(C, d_v))
        eta, theta, alpha = rng.uniform(0.2, 0.9, C), rng.uniform(0.1, 0.6, C), \
            rng.uniform(0.05, 0.4, C)
        cases.append(Case((M, S, k, v, q, eta, theta, alpha), {"C": C, "d_v": d_v, "d_k": d_k}))
    return tuple(cases)


@cache
def _chunk_exercise():
    return Exercise(
        name="titans_chunk", reference=_chunk_reference, cases=_chunk_cases(2025),
        suspects=_chunk_suspects(), outputs=_tuple("titans_chunk", ("y", "M_new", "S_new")),
        shapes={"y": ("C", "d_v"), "M_new": ("d_v", "d_k"), "S_new": ("d_v", "d_k")},
        arg_names=("M", "S", "k", "v", "q", "eta", "theta", "alpha"),
        calls={"linear_memory_grad": ref.linear_memory_grad},
        shape_hints={"M_new": "Return the memory after the chunk's last step, not every step's",
                     "S_new": "Return the momentum after the chunk's last step"},
    )


def check_titans_chunk(titans_chunk) -> None:
    """Check ``titans_chunk(M, S, k, v, q, eta, theta, alpha) -> (y, M_new, S_new)`` for one
    chunk of C tokens (``k, q (C, d_k)``, ``v (C, d_v)``, gates ``(C,)``): every gradient at the
    chunk's first memory M, then S_t = η_t S_{t−1} − θ_t G_t and M_t = (1 − α_t) M_{t−1} + S_t
    across the chunk, y_t = M_t q_t."""
    run_check(_chunk_exercise(), titans_chunk)
