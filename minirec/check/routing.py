r"""Checks for the exercises on mixture-of-experts routing (lesson 07).

Each ``check_*`` function takes the learner's function, runs it and the reference
(:mod:`minirec.routing.reference`) on a few float64 cases, prints ``✓ <name>: passed on N cases``
when they agree, and otherwise raises :class:`~minirec.check.CheckFailed` with a per-tensor
table and a diagnosis.

The cases use awkward sizes (N tokens ≠ E experts ≠ d ≠ H_r, so that a transposed weight or a
softmax over the wrong axis changes a shape or a value), k = 1, 2 and k = E, one case of
logits near 720, where a softmax without its max shift overflows, one with rows near 800 beside
rows near 0, where one max shift for the whole batch makes 0 / 0 (the top-k check runs the
learner's function with NumPy's overflow and invalid values raised,
:mod:`minirec.check._guards`, and names both), and one with E = 1000 experts and k = 300, where
``np.argpartition`` leaves the k best unsorted.

Exercise signatures::

    top_k_route(logits, k) -> (weights (N, k), indices (N, k))       best first, rows sum to 1
    load_balance_loss(probs, indices) -> loss ()                      E · Σ_e f_e · P_e
    gru_router_step(h, r_prev, router) -> (logits (N, E), r (N, H_r)) the RMoE router, one layer

The *suspects* below are written from the equations, one mistake each, in the learner's terms.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from minirec.cells import reference as cells
from minirec.check._core import Case, CheckFailed, Exercise, Suspect, pair_output, run_check
from minirec.check._guards import (
    SOFTMAX_GUARD,
    raising,
    run_guarded_check,
    softmax_overflow,
    with_unguarded_twins,
)
from minirec.routing import reference as ref

__all__ = ["check_top_k_route", "check_load_balance_loss", "check_gru_router_step"]


def _scalar(name):
    def outputs(result, case):
        if isinstance(result, (tuple, list, dict)):
            raise CheckFailed(f"{name} must return one number (a 0-d array or a float); got a "
                              f"{type(result).__name__}")
        return {"loss": result}
    return outputs


# ---------------------------------------------------------------------------------------------
# Top-k routing
# ---------------------------------------------------------------------------------------------

def _top_k_variant(logits, k, *, axis=1, renormalize=True, largest=True, order="best",
                   from_logits=False, guard=True):
    """top_k_route with one mistake switched on; ``guard=False`` takes the softmax without
    its max shift (it overflows on the large-logits case), ``guard="global"`` shifts by one
    max for the whole batch (a row far below it underflows to 0 / 0)."""
    if from_logits:
        score = logits
    else:
        shift = {True: lambda: logits.max(axis=axis, keepdims=True), False: lambda: 0.0,
                 "global": lambda: logits.max()}[guard]()
        e = np.exp(logits - shift)
        score = e / e.sum(axis=axis, keepdims=True)                    # p
    ranked = np.argsort(-score if largest else score, axis=1, kind="stable")[:, :k]
    if order == "index":
        ranked = np.sort(ranked, axis=1)
    elif order == "ascending":                         # the k best, worst of them first
        ranked = ranked[:, ::-1]
    w = np.take_along_axis(score, ranked, axis=1)
    if renormalize:                      # 0 / 0 raises here as in the learner's code (_guards)
        w = w / w.sum(axis=1, keepdims=True)
    return w, ranked


def _top_k_suspect(message, **mistake):
    return Suspect(message, lambda logits, k: _top_k_variant(logits, k, **mistake))


#: The diagnosis for a softmax that overflowed.
SOFTMAX_OVERFLOW = softmax_overflow(720)

#: The diagnosis for a softmax shifted by one max for the whole batch.
GLOBAL_SHIFT = ("the max shift is one number for the whole batch (logits.max()): a token whose "
                "logits all lie far below the batch's largest (rows near 0 beside rows near "
                "800 in one call) gets e^{z − max} = 0 for every expert, and 0 / 0 is NaN. "
                "Shift each row by its own max, logits.max(axis=1, keepdims=True)")


def _top_k_suspects(cases):
    return (*with_unguarded_twins(_top_k_mistakes, SOFTMAX_GUARD, cases),
            Suspect(SOFTMAX_OVERFLOW, raising(lambda logits, k: _top_k_variant(logits, k,
                                                                               guard=False),
                                              quiet=True)),
            Suspect(GLOBAL_SHIFT, raising(lambda logits, k: _top_k_variant(logits, k,
                                                                           guard="global"),
                                          quiet=True)))


def _top_k_mistakes(guard):
    def suspect(message, **mistake):
        return _top_k_suspect(message, guard=guard, **mistake)
    return (
        suspect("softmax over the wrong axis: the probabilities of one token are over the "
                "E experts (axis 1, each row sums to 1); you normalised each expert over "
                "the N tokens (axis 0)", axis=0),
        suspect("the kept weights are not renormalised: after taking the top k "
                "probabilities divide them by their sum, w_j = p_j / Σ_j p_j, so that the "
                "k weights of a token sum to 1", renormalize=False),
        suspect("you kept the k LEAST likely experts: sort by decreasing probability "
                "(np.argsort(-p) or p.argsort()[:, ::-1])", largest=False),
        suspect("the experts are in index order, not best first: return them sorted by "
                "decreasing probability (indices[:, 0] is the top choice)", order="index"),
        suspect("the k best experts, worst of them first: np.argsort(p)[:, -k:] is in "
                "ascending order; reverse it ([:, ::-1]) so that indices[:, 0] is the top "
                "choice", order="ascending"),
        suspect("the weights are the raw logits renormalised, not probabilities: apply "
                "the softmax first, p = softmax(logits), then take p of the top k",
                from_logits=True),
    )


def _top_k_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for N, E, k, scale in ((7, 5, 2, 1.0), (3, 4, 1, 2.0), (6, 3, 3, 1.0)):
        cases.append(Case((rng.normal(scale=scale, size=(N, E)), k), {"N": N, "E": E, "k": k}))
    # logits around 720: exp overflows float64 (above 709.8) without the max shift, while
    # p stays above the underflow limit (logit gaps below 745) so every weight is finite
    big = 720.0 + rng.normal(scale=8.0, size=(5, 6))
    cases.append(Case((big, 2), {"N": 5, "E": 6, "k": 2}))
    cases.append(_mixed_scales_case(rng))
    cases.append(_many_experts_case(rng))
    return tuple(cases)


def _mixed_scales_case(rng, N=4, E=5, k=2):
    """Rows of logits near 800 beside rows near 0 in one call: only each row's own max shift
    keeps both finite (one max for the batch makes the rows near 0 underflow to 0 / 0)."""
    logits = rng.normal(size=(N, E))
    logits[::2] += 800.0
    return Case((logits, k), {"N": N, "E": E, "k": k})


def _many_experts_case(rng, N=3, E=1000, k=300):
    """Many experts: np.argpartition's k best come in no sorted order here (for a few experts
    NumPy happens to leave them sorted), so only a sort puts them best first."""
    return Case((rng.normal(size=(N, E)), k), {"N": N, "E": E, "k": k})


def _top_k_reference(logits, k):
    return ref.top_k_route(logits, k)


@cache
def _top_k_exercise():
    cases = _top_k_cases(seed=2024)
    return Exercise(
        name="top_k_route", reference=_top_k_reference, cases=cases,
        suspects=_top_k_suspects(cases),
        outputs=pair_output("top_k_route", "weights", "indices", integer=("indices",)),
        shapes={"weights": ("N", "k"), "indices": ("N", "k")}, arg_names=("logits", "k"),
        shape_hints={"weights": "Keep one row per token and k columns (the chosen experts)",
                     "indices": "Keep one row per token and k columns (the chosen experts)"},
    )


def check_top_k_route(top_k_route) -> None:
    """Check ``top_k_route(logits (N, E), k) -> (weights (N, k), indices (N, k))``: p = softmax
    over the experts, the k most probable experts best first, their p renormalised to sum 1."""
    run_guarded_check(_top_k_exercise(), top_k_route,
                      (("overflow", SOFTMAX_OVERFLOW), ("invalid value", SOFTMAX_OVERFLOW)))


# ---------------------------------------------------------------------------------------------
# The load-balancing loss
# ---------------------------------------------------------------------------------------------

def _balance_variant(probs, indices, *, f_from="counts", per="choices", P_from="mean",
                     factor=True, first_only=False):
    N, E = probs.shape
    chosen = indices[:, :1] if first_only else indices
    counts = np.bincount(chosen.ravel(), minlength=E)
    if f_from == "probs":
        f = probs.mean(axis=0)
    elif per == "floor":
        f = counts // chosen.size
    else:
        f = counts / (chosen.size if per == "choices" else N)
    P = probs.mean(axis=0) if P_from == "mean" else probs.sum(axis=0)
    return (E if factor else 1) * np.sum(f * P)


def _balance_suspect(message, **mistake):
    return Suspect(message, lambda probs, indices: _balance_variant(probs, indices, **mistake))


def _balance_suspects():
    return (
        _balance_suspect("the factor E is missing: the loss is E · Σ_e f_e · P_e, so that "
                         "perfectly uniform routing gives 1 whatever the number of experts",
                         factor=False),
        _balance_suspect("f_e counts per token, not per choice: with k choices per token there "
                         "are N·k choices; f_e = (choices of e) / (N·k) sums to 1 over the "
                         "experts", per="tokens"),
        _balance_suspect("f_e is the mean probability, not the fraction of choices: f_e counts "
                         "the tokens actually sent to e (from indices); only P_e is the mean "
                         "of probs", f_from="probs"),
        _balance_suspect("P_e is a sum over the tokens, not a mean: P_e = (1/N) Σ_n p_ne",
                         P_from="sum"),
        _balance_suspect("only the first choices are counted: f_e counts every one of the k "
                         "choices (all columns of indices)", first_only=True),
        _balance_suspect("an integer division: the counts are integers, and count // (N·k) is "
                         "0 for every expert, so the loss is 0; divide with / (a true "
                         "division gives the fraction f_e)", per="floor"),
    )


def _balance_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for N, E, k in ((9, 4, 2), (5, 3, 1), (12, 5, 3), (6, 4, 4)):
        probs = ref.softmax(rng.normal(scale=1.5, size=(N, E)), axis=1)
        indices = ref.top_k_route(np.log(probs), k)[1]
        cases.append(Case((probs, indices), {"N": N, "E": E, "k": k}))
    return tuple(cases)


@cache
def _balance_exercise():
    return Exercise(
        name="load_balance_loss", reference=ref.load_balance_loss, cases=_balance_cases(seed=7),
        suspects=_balance_suspects(), outputs=_scalar("load_balance_loss"),
        shapes={"loss": ()}, arg_names=("probs", "indices"),
        shape_hints={"loss": "Return one number: sum over the experts (and average over the "
                             "tokens), keeping no axis"},
    )


def check_load_balance_loss(load_balance_loss) -> None:
    """Check ``load_balance_loss(probs (N, E), indices (N, k)) -> loss ()``:
    E · Σ_e f_e · P_e, f_e the fraction of the N·k choices sent to e, P_e = mean_n p_ne."""
    run_check(_balance_exercise(), load_balance_loss)


# ---------------------------------------------------------------------------------------------
# The RMoE router step
# ---------------------------------------------------------------------------------------------

def _router_variant(h, r_prev, router, *, state="carried", skip_gru=False, swap=False,
                    logits_from="new", result="new", squash=None):
    """The router step with one mistake switched on (see the suspects); ``squash`` a
    nonlinearity applied to the projection x = W1 h, which the router does not have."""
    x = h @ router["W1"].T
    if squash is not None:
        x = _SQUASHES[squash](x)
    r0 = np.zeros_like(r_prev) if state == "zeros" else r_prev
    r = cells.gru_step(r0, x, router["gru"]) if swap else cells.gru_step(x, r0, router["gru"])
    if skip_gru:
        r = x
    source = {"new": r, "old": r_prev}[logits_from]
    return source @ router["W2"].T, (r if result == "new" else r_prev)


_SQUASHES = {"tanh": np.tanh, "sigmoid": cells.sigmoid, "relu": lambda x: np.maximum(x, 0.0)}


def _router_suspect(message, **mistake):
    return Suspect(message, lambda h, r_prev, router: _router_variant(h, r_prev, router,
                                                                      **mistake))


def _router_suspects():
    return (
        _router_suspect("the router's state is not carried: r = GRU(x, r_prev) must start from "
                        "the previous layer's r_prev, not from zeros (that is what makes the "
                        "router recurrent over layers)", state="zeros"),
        _router_suspect("the GRU was skipped: logits = W2 · GRU(W1 h, r_prev); you used "
                        "x = W1 h directly as the new state", skip_gru=True),
        _router_suspect("GRU input and state swapped: the GRU reads the token's projection "
                        "x = W1 h as input and r_prev as state: gru_step(x, r_prev, params)",
                        swap=True),
        _router_suspect("the logits come from the OLD state: compute r = GRU(x, r_prev) first, "
                        "then logits = W2 r with the new r", logits_from="old"),
        _router_suspect("the state returned is the old one: return the new r, which the next "
                        "layer will receive as r_prev", result="old"),
        *(_router_suspect(f"a {name} on the projection: the router's GRU reads x = W1 h "
                          f"itself (a linear map, no nonlinearity); its own gates and tanh do "
                          f"the squashing", squash=name) for name in _SQUASHES),
    )


def _router_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for N, d, H, E, zero in ((5, 6, 7, 4, False), (3, 4, 5, 3, True), (8, 3, 4, 6, False)):
        router = ref.init_gru_router(d, E, H, rng=rng)
        router["gru"] = {k: v * 2.0 for k, v in router["gru"].items()}   # gates far from ½
        h = rng.normal(size=(N, d))
        r_prev = np.zeros((N, H)) if zero else rng.uniform(-0.9, 0.9, size=(N, H))
        cases.append(Case((h, r_prev, router), {"N": N, "d": d, "H_r": H, "E": E}))
    return tuple(cases)


@cache
def _router_exercise():
    return Exercise(
        name="gru_router_step", reference=ref.gru_router_step, cases=_router_cases(seed=11),
        suspects=_router_suspects(), outputs=pair_output("gru_router_step", "logits", "r"),
        shapes={"logits": ("N", "E"), "r": ("N", "H_r")}, arg_names=("h", "r_prev", "router"),
        weights=True,
        matmul_hint=lambda case: ("W1 is (H_r, d) and W2 is (E, H_r): x = h @ W1.T, "
                                  "logits = r @ W2.T"),
        shape_hints={"logits": "logits has one score per expert: W2 r with W2 (E, H_r)",
                     "r": "r is the GRU's new state (N, H_r), not the logits"},
    )


def check_gru_router_step(gru_router_step) -> None:
    """Check ``gru_router_step(h (N, d), r_prev (N, H_r), router) -> (logits (N, E), r (N, H_r))``:
    x = W1 h, r = GRU(x, r_prev) with minirec's GRU step, logits = W2 r."""
    run_check(_router_exercise(), gru_router_step)
