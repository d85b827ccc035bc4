r"""Checks for the exercises on attention as recurrence (lesson 04: Aaren, linear attention).

Each ``check_*`` function takes the learner's function, runs it and the reference
(:mod:`minirec.attention.reference`, :mod:`minirec.scan.reference`) on a few float64 cases,
prints ``✓ <name>: passed on N cases`` when they agree, and otherwise raises
:class:`~minirec.check.CheckFailed` with a per-tensor table and a diagnosis.

Exercise signatures (``...`` = batch axes; the cases use one, ``B``)::

    attention_combine((mA, uA, wA), (mB, uB, wB)) -> (m, u, w)      m, u (...), w (..., d_v)
    aaren_stream_step((m, u, w), s_t, v_t) -> ((m, u, w), o_t)       s_t (...), v_t (..., d_v)
    linear_attention_recurrent(q, k, v, (S0, z0)) -> (o, (S, z))     q, k (T, d_k), v (T, d_v),
                                                                     S (d_k, d_v), z (d_k,)

The sizes separate mistakes: ``B = 1, d_v = 1`` (where a factor broadcast along the wrong axis is
invisible), ``B ≠ d_v`` (it fails on shapes), ``B = d_v`` (it runs and is caught by value), and
one case of scores near 700 — logits ×50, as a large query-key product gives — where e^s
overflows float64 (e^709.8 is the largest finite value): only a combine that subtracts the max
before exponentiating survives it. The combine cases have an empty prefix (−inf, 0, 0) on one
side of a row, and in the large case on both sides of one row, where m = −inf and only the
guarded shift avoids e^{−inf − (−inf)} = NaN. The Aaren checks run the learner's function with
NumPy's overflow and invalid-value errors raised (:mod:`minirec.check._guards`), so an
overflowing ``np.exp`` or an ``inf − inf`` shows as a ``FloatingPointError`` at the line that
made it, instead of an ``inf`` or ``nan`` three steps later, and the check names the missing
guard.

The combine is commutative (it adds two sums), so swapping its operands is not a mistake and no
suspect looks for it. The linear-attention cases start from a non-zero state (the summary of an
earlier prefix), so that reading the output before updating the state gives finite numbers that
can be diagnosed, not 0/0.

The *suspects* below are written from the equations, one mistake each, and named in the
learner's terms. A learner's result that equals a suspect's on every case gets its message.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from minirec.attention import reference as ref
from minirec.check._core import Case, CheckFailed, Exercise, Suspect, run_check
from minirec.check._guards import raising, run_guarded_check, with_unguarded_twins
from minirec.scan.reference import softmax_attention_combine as _combine

__all__ = [
    "check_attention_combine", "check_aaren_stream_step", "check_linear_attention_recurrent",
    "COMBINE_SIZES", "STREAM_SIZES", "LINEAR_ATTENTION_SIZES", "OVERFLOW",
]

#: (B, d_v) of the combine and stream cases; the last is the large-score case.
COMBINE_SIZES = ((1, 1), (3, 5), (4, 4), (7, 2))
STREAM_SIZES = ((1, 1), (3, 5), (4, 4), (6, 2))
#: (T, d_k, d_v) of the linear-attention cases.
LINEAR_ATTENTION_SIZES = ((1, 1, 1), (5, 3, 2), (7, 4, 4), (6, 2, 5))

#: The diagnosis for an exponential that overflowed, whatever else the code does.
OVERFLOW = ("no max shift: exp overflows for large scores — e^s is inf in float64 once s > 709, "
            "and scores of 700 are what ×50 logits give. Keep every exponent ≤ 0: subtract "
            "the running max m first, e^{s − m}")


#: The diagnosis for the combine of two empty prefixes that made a NaN.
EMPTY_BOTH = ("no −inf guard: when both sides are the empty prefix (m = −inf, u = 0, w = 0), "
              "m = max(mA, mB) is −inf and e^{mA − m} = e^{−inf − (−inf)} is NaN; the result "
              "is the empty prefix again. Shift by 0 where m is −inf, "
              "np.where(np.isfinite(m), m, 0), so that e^{−inf} = 0")

#: The floating-point errors of the combine's guards, and their diagnoses.
_COMBINE_GUARDS = (("overflow", OVERFLOW), ("invalid value", EMPTY_BOTH))


def _triple_outputs(names):
    def outputs(result, case):
        if not (isinstance(result, (tuple, list)) and len(result) == 3):
            what = (f"a {type(result).__name__} of length {len(result)}"
                    if isinstance(result, (tuple, list)) else f"a {type(result).__name__}")
            raise CheckFailed(f"the result must be the triple ({', '.join(names)}); got {what}")
        return dict(zip(names, result, strict=True))
    return outputs


def _stream_outputs(result, case):
    if not (isinstance(result, (tuple, list)) and len(result) == 2
            and isinstance(result[0], (tuple, list)) and len(result[0]) == 3):
        raise CheckFailed("the result must be the pair (state, o_t) with state = (m, u, w): "
                          "return (m_new, u_new, w_new), o_t")
    (m, u, w), o = result
    return {"m": m, "u": u, "w": w, "o": o}


def _la_outputs(result, case):
    if not (isinstance(result, (tuple, list)) and len(result) == 2
            and isinstance(result[1], (tuple, list)) and len(result[1]) == 2):
        raise CheckFailed("the result must be the pair (o, state) with state = (S, z): "
                          "return o, (S, z)")
    o, (S, z) = result
    return {"o": o, "S": S, "z": z}


_SHAPE_HINT = "w has one more axis than m and u: (..., d_v) against (...)"
_BROADCAST_HINT = ("m and u have the batch shape (...) and w has one more axis, (..., d_v): a "
                   "factor e^{…} of shape (...) multiplies w as e[..., None]")


# ---------------------------------------------------------------------------------------------
# The (m, u, w) combine
# ---------------------------------------------------------------------------------------------

def _element(rng, B, d_v, *, large=False):
    """One batch of (m, u, w): m a score (≈ 700 in the large case), u > 0, w any."""
    m = 50.0 * (14.0 + rng.normal(size=B)) if large else rng.normal(size=B)
    return m, rng.uniform(0.5, 3.0, size=B), rng.normal(size=(B, d_v))


def _empty(element, row):
    """``element`` with its row ``row`` made the empty prefix (−inf, 0, 0)."""
    m, u, w = element
    m[row], u[row], w[row] = -np.inf, 0.0, 0.0


def _combine_cases():
    rng = np.random.default_rng(2405)
    cases = []
    for B, d_v in COMBINE_SIZES:
        large = (B, d_v) == COMBINE_SIZES[-1]
        left, right = _element(rng, B, d_v, large=large), _element(rng, B, d_v, large=large)
        if B == 3:                                    # row 0 of the left is the empty prefix
            _empty(left, 0)
        if large:                                     # row 3 is empty on both sides
            _empty(left, 3)
            _empty(right, 3)
        cases.append(Case((left, right), {"B": B, "d_v": d_v}))
    return tuple(cases)


def _combine_variant(left, right, *, shift="max", sides="right", rescale="uw", m_as="max",
                     broadcast=True, guard=True, sign=1.0, clean=False):
    """The combine with one mistake switched on: ``shift="none"`` (no max shift, the sums
    e^{mA} uA + e^{mB} uB themselves), ``"min"`` (the smaller max); ``sides="swapped"`` (each
    side rescaled by the other side's max), ``"left"`` / ``"right_only"`` (only that side
    rescaled, the other taken as it is), ``"global"`` (one shift, the batch's largest max, for
    every row), ``"global_returned"`` (that shift also returned as every row's m); ``rescale``
    which of u, w get rescaled; ``m_as="sum"``
    (m = mA + mB); ``broadcast=False`` (the factor multiplies w along its last axis);
    ``guard=False`` (the shift m even where it is −inf); ``sign=-1`` (e^{m − mA}, the exponent
    negated), with ``clean`` its non-finite factors set to 0."""
    mA, uA, wA = left
    mB, uB, wB = right
    m = np.maximum(mA, mB) if m_as == "max" else mA + mB
    if shift == "min":
        m = np.minimum(mA, mB)
    ref_m = 0.0 if shift == "none" else np.where(np.isfinite(m), m, 0.0) if guard else m
    if shift in ("global", "global_returned"):               # one max for the whole batch
        finite = m[np.isfinite(m)]
        ref_m = np.full_like(m, finite.max() if finite.size else 0.0)
        if shift == "global_returned":
            m = ref_m
    with np.errstate(over="ignore" if clean else "raise"):
        fA, fB = np.exp(sign * (mA - ref_m)), np.exp(sign * (mB - ref_m))
    if clean:
        fA, fB = np.where(np.isfinite(fA), fA, 0.0), np.where(np.isfinite(fB), fB, 0.0)
    if sides == "swapped":
        fA, fB = fB, fA
    elif sides == "left":
        fB = np.ones_like(fB)
    elif sides == "right_only":
        fA = np.ones_like(fA)
    gA, gB = (fA[..., None], fB[..., None]) if broadcast else (fA, fB)
    u = uA * fA + uB * fB if "u" in rescale else uA + uB
    w = wA * gA + wB * gB if "w" in rescale else wA + wB
    return m, u, w


def _combine_suspects(cases):
    return (*with_unguarded_twins(_combine_mistakes, "no −inf guard for two empty prefixes "
                                  "(shift by np.where(np.isfinite(m), m, 0))", cases),
            Suspect(EMPTY_BOTH, raising(lambda left, right: _combine_variant(left, right,
                                                                             guard=False),
                                        quiet=True)))


_ONE_SIDE = ("only the {side} side was rescaled: each side's u and w are relative to its own "
             "max, so both get a factor, e^{{mA − m}} on the left and e^{{mB − m}} on the right "
             "(the side that holds the max gets e^0 = 1, but either side may hold it)")
_GLOBAL_SHIFT = ("one shift for the whole batch: each row is its own prefix, so its u and w are "
                 "relative to its own max m = max(mA, mB), element by element; you rescaled "
                 "every row by the batch's largest max")
_EXPONENT_SIGN = ("the exponent's sign is flipped: the factors are e^{mA − m} and e^{mB − m}, "
                  "both ≤ 1 (m is the larger max); you used e^{m − mA}, e^{m − mB}")


def _combine_mistakes(guard):
    def _combine_suspect(message, **mistake):
        return Suspect(message, lambda left, right: _combine_variant(left, right, guard=guard,
                                                                     **mistake))
    return (
        _combine_suspect(OVERFLOW, shift="none"),
        _combine_suspect("rescaled by the wrong side's max: each side's sums are relative to its "
                         "own max, so the left side needs e^{mA − m} and the right e^{mB − m}; "
                         "you multiplied the left by e^{mB − m} and the right by e^{mA − m}",
                         sides="swapped"),
        _combine_suspect("m taken as a sum instead of a max: m is the running maximum of the "
                         "scores, m = max(mA, mB) (max of the two prefixes' maxima), not mA + mB",
                         m_as="sum"),
        _combine_suspect("shifted by the smaller max: m = max(mA, mB), so that both factors "
                         "e^{mA − m}, e^{mB − m} are ≤ 1; with the min one of them is > 1 and "
                         "can overflow", shift="min"),
        _combine_suspect("w not rescaled: the weighted sum of values w is relative to the same "
                         "max as u, so it gets the same factors: w = wA e^{mA − m} + wB e^{mB − m}",
                         rescale="u"),
        _combine_suspect("u not rescaled: the normaliser u is relative to the same max as w, so "
                         "it gets the same factors: u = uA e^{mA − m} + uB e^{mB − m}",
                         rescale="w"),
        _combine_suspect("u and w are added without rescaling: before adding, bring both sides "
                         "to the common max m: uA e^{mA − m} + uB e^{mB − m}, and the same for w",
                         rescale=""),
        _combine_suspect("the factor for w is broadcast along the wrong axis: " + _BROADCAST_HINT,
                         broadcast=False),
        _combine_suspect(_ONE_SIDE.format(side="left"), sides="left"),
        _combine_suspect(_ONE_SIDE.format(side="right"), sides="right_only"),
        _combine_suspect(_EXPONENT_SIGN, sign=-1.0),
        _combine_suspect(_EXPONENT_SIGN, sign=-1.0, clean=True),
        _combine_suspect(_GLOBAL_SHIFT + "; and you returned that one number as every row's m",
                         shift="global_returned"),
        _combine_suspect(_GLOBAL_SHIFT, shift="global"),
    )



@cache
def _attention_combine_exercise():
    cases = _combine_cases()
    return Exercise(
        name="attention_combine", reference=_combine, cases=cases,
        suspects=_combine_suspects(cases), outputs=_triple_outputs(("m", "u", "w")),
        shapes={"m": ("B",), "u": ("B",), "w": ("B", "d_v")}, arg_names=("left", "right"),
        matmul_hint=_SHAPE_HINT,
    )


def check_attention_combine(attention_combine) -> None:
    """Check ``attention_combine((mA, uA, wA), (mB, uB, wB)) -> (m, u, w)``: the combine of
    two prefixes' softmax summaries, m = max(mA, mB), u = uA e^{mA−m} + uB e^{mB−m},
    w = wA e^{mA−m} + wB e^{mB−m} (m, u ``(B,)``, w ``(B, d_v)``)."""
    run_guarded_check(_attention_combine_exercise(), attention_combine, _COMBINE_GUARDS)


# ---------------------------------------------------------------------------------------------
# The streaming step
# ---------------------------------------------------------------------------------------------

def _stream_cases():
    rng = np.random.default_rng(1395)
    cases = []
    for n, (B, d_v) in enumerate(STREAM_SIZES):
        large = n == len(STREAM_SIZES) - 1
        scale = 50.0 * 14.0 if large else 0.0
        if n == 0:                                    # the first token: the empty state
            state = ref.aaren_initial_state((B,), d_v)
            s_t = rng.normal(size=B)
        else:
            prefix = scale + (50.0 if large else 1.0) * rng.normal(size=(3 + n, B))
            _, state = ref.aaren_stream(prefix, rng.normal(size=(3 + n, B, d_v)))
            jump = (np.abs(rng.normal(size=B)) + 0.5) * (50.0 if large else 1.0)
            grows = np.arange(B) % 2 == 0             # even rows: a new maximum
            s_t = np.where(grows, state[0] + jump, state[0] - jump)
        cases.append(Case((state, s_t, rng.normal(size=(B, d_v))), {"B": B, "d_v": d_v}))
    return tuple(cases)


def _stream_variant(state, s_t, v_t, *, rescale=True, normalise=True, weight="shifted",
                    update_m=True, read="after", broadcast=True, returned="new", rescale_w=True):
    """The streaming step with one mistake switched on: ``rescale=False`` (old sums kept as
    they are when the max grows), ``rescale_w=False`` (only u rescaled), ``normalise=False``
    (o = w), ``weight`` of the new token ("one": 1, "raw": e^{s_t}, "old_max":
    e^{s_t − m_{t−1}}), ``update_m`` False (the max is never updated) or "current" (m_t = s_t),
    ``read`` "before" (o from the old state) or "old_u" (the new w over the old u),
    ``broadcast=False``, ``returned="old"`` (the state passed in is returned, o_t right)."""
    m, u, w = state
    m_new = {True: lambda: np.maximum(m, s_t), False: lambda: m,
             "current": lambda: s_t}[update_m]()
    keep = np.exp(m - m_new) if rescale else np.ones_like(m)
    new = {"shifted": lambda: np.exp(s_t - m_new), "one": lambda: np.ones_like(s_t),
           "raw": lambda: np.exp(s_t), "old_max": lambda: np.exp(s_t - m)}[weight]()
    u_new = u * keep + new
    w_keep = keep if rescale_w else np.ones_like(keep)
    if broadcast:
        w_new = w * w_keep[..., None] + new[..., None] * v_t
    else:
        w_new = w * w_keep + new * v_t
    if read == "before":
        o = w / u[..., None]
    elif read == "old_u":
        o = w_new / u[..., None]
    else:
        o = w_new / u_new[..., None] if normalise else w_new
    return ((m_new, u_new, w_new) if returned == "new" else (m, u, w)), o


def _stream_suspect(message, **mistake):
    return Suspect(message, raising(lambda state, s_t, v_t:
                                    _stream_variant(state, s_t, v_t, **mistake), quiet=True))


def _stream_suspects():
    return (
        _stream_suspect("state not rescaled when the max grows: u and w are sums of e^{s_i − m} "
                        "relative to the old max m; when s_t raises the max to m' they must be "
                        "multiplied by e^{m − m'} before the new token is added", rescale=False),
        _stream_suspect("output not normalised by u (w returned): the output is the weighted "
                        "average o_t = w_t / u_t, not the weighted sum w_t", normalise=False),
        _stream_suspect("the new token's weight not e^{s_t − m}: you gave it weight 1; its "
                        "weight is e^{s_t − m_t}, relative to the new max m_t", weight="one"),
        _stream_suspect("the new token's weight not e^{s_t − m}: you used e^{s_t} without the max "
                        "shift, which overflows for large scores; its weight is e^{s_t − m_t}, "
                        "with m_t = max(m_{t−1}, s_t)", weight="raw"),
        _stream_suspect("the new token's weight not e^{s_t − m}: you shifted by the old max "
                        "m_{t−1}; the state after the step is relative to the new max "
                        "m_t = max(m_{t−1}, s_t), so the new token gets e^{s_t − m_t}",
                        weight="old_max"),
        _stream_suspect("the max is not updated: m_t = max(m_{t−1}, s_t) (from the empty state, "
                        "m = −inf, it is the first score)", update_m=False),
        _stream_suspect("the output is read from the old state (off by one in time): o_t "
                        "includes token t, so compute it from the updated u_t and w_t",
                        read="before"),
        _stream_suspect("the factors for w are broadcast along the wrong axis: " + _BROADCAST_HINT,
                        broadcast=False),
        _stream_suspect("the state is not carried: you returned the state you were given; "
                        "return the updated (m_t, u_t, w_t), which the next token starts from "
                        "(o_t is right)", returned="old"),
        _stream_suspect("w not rescaled when the max grows: u and w are both relative to the "
                        "old max m, so both get the factor e^{m − m'}; you rescaled u only",
                        rescale_w=False),
        _stream_suspect("the running max was replaced by the current score: m_t = max(m_{t−1}, "
                        "s_t), the largest score so far, not s_t", update_m="current"),
        _stream_suspect("no max shift at all: u and w were kept as plain sums of e^{s} (which "
                        "overflow for large scores), while the state is relative to m: "
                        "u_t = u e^{m − m_t} + e^{s_t − m_t}", rescale=False, weight="raw"),
        _stream_suspect("o_t divides by the old u: o_t = w_t / u_t with the UPDATED u_t (the old "
                        "u is 0 at the first token, so w / u is inf there)", read="old_u"),
    )


@cache
def _aaren_stream_step_exercise():
    return Exercise(
        name="aaren_stream_step", reference=ref.aaren_stream_step, cases=_stream_cases(),
        suspects=_stream_suspects(), outputs=_stream_outputs,
        shapes={"m": ("B",), "u": ("B",), "w": ("B", "d_v"), "o": ("B", "d_v")},
        arg_names=("state", "s_t", "v_t"), matmul_hint=_SHAPE_HINT,
        calls={"attention_combine": _combine},
    )


def check_aaren_stream_step(aaren_stream_step) -> None:
    """Check ``aaren_stream_step((m, u, w), s_t, v_t) -> ((m, u, w), o_t)``: one token into
    Aaren's state, m, u, s_t ``(B,)``, w, v_t, o_t ``(B, d_v)``."""
    run_guarded_check(_aaren_stream_step_exercise(), aaren_stream_step, (("overflow", OVERFLOW),))


# ---------------------------------------------------------------------------------------------
# Causal linear attention, recurrent form
# ---------------------------------------------------------------------------------------------

phi = ref.elu_plus_one


def _la_reference(q, k, v, state):
    return ref.linear_attention_recurrent(phi(q), phi(k), v, normalize=True, state=state)


def _la_cases():
    rng = np.random.default_rng(2006)
    cases = []
    for T, d_k, d_v in LINEAR_ATTENTION_SIZES:
        prefix_k, prefix_v = rng.normal(size=(3, d_k)), rng.normal(size=(3, d_v))
        S0 = phi(prefix_k).T @ prefix_v                   # the state after a 3-token prefix
        z0 = phi(prefix_k).sum(axis=0)
        args = (rng.normal(size=(T, d_k)), rng.normal(size=(T, d_k)), rng.normal(size=(T, d_v)),
                (S0, z0))
        cases.append(Case(args, {"T": T, "d_k": d_k, "d_v": d_v}))
    return tuple(cases)


def _la_variant(q, k, v, state, *, normalise=True, read="after", phi_q=True, phi_k=True,
                outer="kv", carry="accumulate", phi_k_in="both"):
    """The recurrent loop with one mistake switched on: ``normalise=False``; ``read="before"``
    (o_t from S_{t−1}, z_{t−1}); ``phi_q``/``phi_k`` False (raw queries/keys); ``outer="vk"``
    (S_t = S_{t−1} + v_t φ(k_t)ᵀ, read as φ(q_t) @ S: runs only when d_k = d_v); ``carry``
    "overwrite" (S_t = φ(k_t) v_tᵀ, z_t = φ(k_t)) or "from_start" (S_t = S_0 + φ(k_t) v_tᵀ:
    every step adds to the state passed in, not to the previous step's) or "from_zeros" (the
    state passed in is ignored: S_0 = 0, z_0 = 0); ``phi_k_in`` "S" or "z": φ(k_t) in that
    sum only, the raw k_t in the other."""
    fq = phi(q) if phi_q else q
    fk = phi(k) if phi_k else k
    fk_S = fk if phi_k_in in ("both", "S") else k
    fk_z = fk if phi_k_in in ("both", "z") else k
    S, z = state
    S0, z0 = state
    if carry == "from_zeros":
        S, z = np.zeros_like(S), np.zeros_like(z)

    def read_out(t):
        num = fq[t] @ S                                   # S_tᵀ φ(q_t)
        return num / (fq[t] @ z) if normalise else num

    o = np.empty((q.shape[0], v.shape[1]))
    for t in range(q.shape[0]):
        if read == "before":
            o[t] = read_out(t)
        if carry == "overwrite":
            S, z = 0.0 * S, 0.0 * z
        elif carry == "from_start":
            S, z = S0, z0
        S = S + (np.outer(fk_S[t], v[t]) if outer == "kv" else np.outer(v[t], fk_S[t]))
        z = z + fk_z[t]
        if read == "after":
            o[t] = read_out(t)
    return o, (S, z)


def _la_suspect(message, **mistake):
    return Suspect(message, lambda q, k, v, state: _la_variant(q, k, v, state, **mistake))


def _la_suspects():
    return (
        _la_suspect("no normaliser: o_t = S_tᵀ φ(q_t) / (z_t·φ(q_t)); you returned the numerator "
                    "S_tᵀ φ(q_t) alone (that is linear attention without the softmax's "
                    "denominator)", normalise=False),
        _la_suspect("state updated after the output is read (off by one in time): causal "
                    "attention at step t includes token t, so add φ(k_t) v_tᵀ to S and φ(k_t) "
                    "to z first, then read o_t", read="before"),
        _la_suspect("φ not applied to the queries: the feature map replaces the softmax's "
                    "e^{q·k} by φ(q)·φ(k), so both sides go through φ: read with φ(q_t)",
                    phi_q=False),
        _la_suspect("φ not applied to the keys: the feature map replaces the softmax's "
                    "e^{q·k} by φ(q)·φ(k), so both sides go through φ: S += φ(k_t) v_tᵀ, "
                    "z += φ(k_t)", phi_k=False),
        _la_suspect("φ not applied to the keys or the queries: φ(q)·φ(k) replaces e^{q·k}; with "
                    "raw q and k the weights can be negative and the normaliser can vanish",
                    phi_q=False, phi_k=False),
        _la_suspect("φ not applied to the keys in the normaliser: z_t = z_{t−1} + φ(k_t), the "
                    "same φ(k_t) as in S_t = S_{t−1} + φ(k_t) v_tᵀ; you added the raw k_t to z",
                    phi_k_in="S"),
        _la_suspect("φ not applied to the keys in the state: S_t = S_{t−1} + φ(k_t) v_tᵀ, the "
                    "same φ(k_t) as in z_t = z_{t−1} + φ(k_t); you used the raw k_t in S",
                    phi_k_in="z"),
        _la_suspect("outer product transposed (v kᵀ instead of k vᵀ): S is (d_k, d_v), "
                    "S_t = S_{t−1} + φ(k_t) v_tᵀ, and it is read as o_t = S_tᵀ φ(q_t)",
                    outer="vk"),
        _la_suspect("the state does not accumulate: S and z were overwritten by token t's "
                    "φ(k_t) v_tᵀ and φ(k_t); they are running sums, S_t = S_{t−1} + φ(k_t) v_tᵀ "
                    "and z_t = z_{t−1} + φ(k_t), starting from the state passed in",
                    carry="overwrite"),
        _la_suspect("the state is not carried between steps: every step added φ(k_t) v_tᵀ to the "
                    "state passed in (S_0, z_0); add it to the previous step's, "
                    "S_t = S_{t−1} + φ(k_t) v_tᵀ", carry="from_start"),
        _la_suspect("the state passed in was ignored: you started from S = 0, z = 0; start "
                    "from (S_0, z_0), the summary of the prefix before these tokens",
                    carry="from_zeros"),
    )


@cache
def _linear_attention_recurrent_exercise():
    return Exercise(
        name="linear_attention_recurrent", reference=_la_reference, cases=_la_cases(),
        suspects=_la_suspects(), outputs=_la_outputs,
        shapes={"o": ("T", "d_v"), "S": ("d_k", "d_v"), "z": ("d_k",)},
        arg_names=("q", "k", "v", "state"),
        matmul_hint="S is (d_k, d_v)",
        shape_hints={"S": "S_t = S_{t−1} + φ(k_t) v_tᵀ is (d_k, d_v): np.outer(φ(k_t), v_t)"},
    )


def check_linear_attention_recurrent(linear_attention_recurrent) -> None:
    """Check ``linear_attention_recurrent(q, k, v, (S0, z0)) -> (o, (S, z))``: causal linear
    attention with φ = elu + 1 as an RNN, q, k ``(T, d_k)``, v, o ``(T, d_v)``, S ``(d_k, d_v)``,
    z ``(d_k,)``."""
    run_check(_linear_attention_recurrent_exercise(), linear_attention_recurrent)
