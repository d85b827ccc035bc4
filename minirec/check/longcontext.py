r"""Checks for the exercises of lesson 13 (long context: selective SSM, JRT, recall).

Each ``check_*`` function takes the learner's function, runs it and the reference on a few
float64 cases, prints ``✓ <name>: passed on N cases`` when they agree, and otherwise raises
:class:`~minirec.check.CheckFailed` with a per-tensor table and a diagnosis.

Exercise signatures::

    selective_scan_step(h, x_t, delta_t, A, B_t, C_t) -> (h_new, y_t)
        h (B, D, N), x_t, delta_t (B, D), A (D, N), B_t, C_t (B, N); h_new (B, D, N), y_t (B, D)
    prefix_linear_attention(q, k, v, k_enc, v_enc) -> o            φ = elu + 1
        q, k (T, d_k), v (T, d_v), k_enc (M, d_k), v_enc (M, d_v); o (T, d_v)
    recall_accuracy(logits, targets) -> accuracy                    a float
        logits (T, B, V), targets (T, B) ints, IGNORE (−100) where nothing is asked

The sizes separate mistakes: a case with every size 1, cases with distinct sizes (a wrong axis
fails on shapes) and a case where the sizes that a transposition would confuse are equal (it
runs, and is caught by value). The SSM cases draw Δ between 0.05 and 2, so that exp(ΔA) is far
from both exp(A) and 1 + ΔA. The recall cases score about half of the queried positions right
(every one in the first case, and every one of sequence 0 in the others, so that an integer
division and scoring whole sequences differ), and have V = B in one case so that an argmax over
the batch axis runs.

The *suspects* are written from the equations, one mistake each, and named in the learner's
terms; a learner's result equal to a suspect's on every case gets its message.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from minirec.attention.reference import elu_plus_one as phi
from minirec.check._core import Case, CheckFailed, Exercise, Suspect, one_output, pair_output, run_check
from minirec.longcontext import reference as lc
from minirec.ssm import reference as ssm
from minirec.tasks.recall import IGNORE, recall_accuracy

__all__ = ["check_selective_scan_step", "check_prefix_linear_attention",
           "check_recall_accuracy", "recall_accuracy", "SSM_SIZES", "PREFIX_SIZES",
           "RECALL_SIZES"]

#: (B, D, N) of the selective-scan-step cases.
SSM_SIZES = ((1, 1, 1), (2, 3, 5), (3, 4, 4), (2, 5, 2))
#: (T, M, d_k, d_v) of the prefix-linear-attention cases.
PREFIX_SIZES = ((1, 1, 1, 1), (6, 3, 2, 4), (5, 2, 3, 3), (7, 4, 4, 2))
#: (T, B, V) of the recall-accuracy cases.
RECALL_SIZES = ((4, 1, 3), (9, 3, 5), (8, 4, 4), (10, 5, 7))


# ---------------------------------------------------------------------------------------------
# One step of the selective scan
# ---------------------------------------------------------------------------------------------

def _ssm_cases():
    rng = np.random.default_rng(2312)
    cases = []
    for B, D, N in SSM_SIZES:
        h = rng.normal(size=(B, D, N))
        x_t = rng.normal(size=(B, D))
        delta_t = rng.uniform(0.05, 2.0, size=(B, D))
        A = -rng.uniform(0.5, 3.0, size=(D, N))
        cases.append(Case((h, x_t, delta_t, A, rng.normal(size=(B, N)), rng.normal(size=(B, N))),
                          {"B": B, "D": D, "N": N}))
    return tuple(cases)


def _ssm_variant(h, x_t, delta_t, A, B_t, C_t, *, decay="zoh", input_delta=True, use_x=True,
                 read="after", swap_bc=False, input_zoh=False):
    """The step with one mistake switched on: ``decay`` "zoh" (exp(ΔA)), "no_delta" (exp(A)),
    "minus" (exp(−ΔA)), "euler" (1 + ΔA); ``input_delta=False`` (B x without Δ);
    ``use_x=False`` (Δ B without x); ``read="before"`` (y from h_{t−1}); ``swap_bc``;
    ``input_zoh`` (the exact zero-order hold of the input, (exp(ΔA) − 1)/A · B x)."""
    if swap_bc:
        B_t, C_t = C_t, B_t
    dA = delta_t[..., None] * A                                     # (B, D, N)
    a = {"zoh": np.exp(dA), "no_delta": np.exp(A) + 0 * dA, "minus": np.exp(-dA),
         "euler": 1.0 + dA}[decay]
    u = (delta_t if input_delta else 1.0) * (x_t if use_x else 1.0)
    if input_zoh:
        h_new = a * h + (a - 1.0) / A * x_t[..., None] * B_t[:, None, :]
    else:
        h_new = a * h + np.asarray(u)[..., None] * B_t[:, None, :]
    y = np.einsum("bdn,bn->bd", h_new if read == "after" else h, C_t)
    return h_new, y


def _ssm_suspect(message, **mistake):
    return Suspect(message, lambda *args: _ssm_variant(*args, **mistake))


def _ssm_suspects():
    return (
        _ssm_suspect("the decay has no Δ: Ā = exp(Δ_t A), the continuous A integrated over a "
                     "step of length Δ_t; exp(A) is a step of length 1 whatever the input says",
                     decay="no_delta"),
        _ssm_suspect("the decay's sign is flipped: A is already negative (A = −e^{A_log}), so "
                     "Ā = exp(Δ A) is in (0, 1); exp(−Δ A) > 1 makes the state grow without "
                     "bound", decay="minus"),
        _ssm_suspect("Euler discretisation of A: 1 + Δ A is the first-order approximation of "
                     "exp(Δ A) (negative when Δ|A| > 1); the zero-order hold is exp(Δ A)",
                     decay="euler"),
        _ssm_suspect("the input is not scaled by Δ: B̄_t x_t = Δ_t B_t x_t — a small Δ_t (keep "
                     "the state) must also write little", input_delta=False),
        _ssm_suspect("x_t is missing from the input term: B̄_t x_t = Δ_t B_t x_t, the outer "
                     "product of (Δ_t x_t) (B, D) with B_t (B, N)", use_x=False),
        _ssm_suspect("the output is read from the old state (off by one in time): update h "
                     "first, then y_t = Σ_n h_t[..., n] C_t[n]", read="before"),
        _ssm_suspect("B_t and C_t are swapped: B_t writes into the state (Δ_t B_t x_t), C_t "
                     "reads it out (y_t = h_t C_t)", swap_bc=True),
        _ssm_suspect("the input term is the exact zero-order hold, (e^{Δ A} − 1)/A · B_t x_t: "
                     "that is the textbook ZOH, but this step (as Mamba's code) discretises the "
                     "input with the simpler Δ_t B_t x_t; keep exp(Δ A) for the decay only",
                     input_zoh=True),
    )


@cache
def _selective_scan_step_exercise():
    return Exercise(
        name="selective_scan_step", reference=ssm.selective_scan_step, cases=_ssm_cases(),
        suspects=_ssm_suspects(), outputs=pair_output("selective_scan_step", "h_new", "y_t"),
        shapes={"h_new": ("B", "D", "N"), "y_t": ("B", "D")},
        arg_names=("h", "x_t", "delta_t", "A", "B_t", "C_t"),
        matmul_hint="h is (B, D, N), A (D, N), B_t and C_t (B, N): broadcast with [:, None, :] "
                    "and [..., None]",
        shape_hints={"y_t": "y_t sums over the state axis N: Σ_n h_t[b, d, n] C_t[b, n]"},
    )


def check_selective_scan_step(selective_scan_step) -> None:
    """Check ``selective_scan_step(h, x_t, delta_t, A, B_t, C_t) -> (h_new, y_t)``: one step of
    the selective scan, Ā = exp(Δ A), h_new = Ā ⊙ h + Δ B x, y_t = h_new C_t."""
    run_check(_selective_scan_step_exercise(), selective_scan_step)


# ---------------------------------------------------------------------------------------------
# Prefix-linear attention
# ---------------------------------------------------------------------------------------------

def _prefix_reference(q, k, v, k_enc, v_enc):
    return lc.prefix_linear_attention(q, k, v, k_enc, v_enc, feature_map=phi)[0]


def _prefix_cases():
    rng = np.random.default_rng(2407)
    cases = []
    for T, M, d_k, d_v in PREFIX_SIZES:
        args = (rng.normal(size=(T, d_k)), rng.normal(size=(T, d_k)), rng.normal(size=(T, d_v)),
                rng.normal(size=(M, d_k)), rng.normal(size=(M, d_v)))
        cases.append(Case(args, {"T": T, "M": M, "d_k": d_k, "d_v": d_v}))
    return tuple(cases)


def _prefix_variant(q, k, v, k_enc, v_enc, *, encoder="all", den_encoder=True, decoder="causal",
                    phi_enc=True, phi_enc_in="both", enc_from="enc"):
    """Prefix-linear attention as a masked sum with one mistake switched on: ``encoder`` "all"
    (every query sees the whole prompt), "none", "causal" (query i sees encoder j ≤ i);
    ``den_encoder=False`` (the encoder sum left out of the normaliser); ``decoder`` "causal",
    "all" (non-causal over every token), "strict" (tokens j < i: o_i read before token i is
    added), "after_prompt" (only tokens j ≥ M, j ≤ i);
    ``phi_enc=False`` (raw encoder keys), ``phi_enc_in`` "num" or "den" (φ on the encoder keys
    in that sum only); ``enc_from="tokens"`` (the encoder's values are the tokens' v[:M]),
    ``"token_keys"`` (its keys are k[:M])."""
    T, M = q.shape[0], k_enc.shape[0]
    fq, fk = phi(q), phi(k)
    if enc_from == "tokens":
        v_enc = v[:M]
    elif enc_from == "token_keys":
        k_enc = k[:M]
    fe = phi(k_enc) if phi_enc else k_enc
    fe_num = fe if phi_enc_in in ("both", "num") else k_enc
    fe_den = fe if phi_enc_in in ("both", "den") else k_enc
    i, j = np.arange(T)[:, None], np.arange(M)[None, :]
    enc_mask = {"all": np.ones((T, M)), "none": np.zeros((T, M)), "causal": (j <= i) * 1.0}[encoder]
    jt = np.arange(T)[None, :]
    dec_mask = {"causal": (jt <= i) * 1.0, "all": np.ones((T, T)), "strict": (jt < i) * 1.0,
                "after_prompt": ((jt <= i) & (jt >= M)) * 1.0}[decoder]
    A_dec = (fq @ fk.T) * dec_mask
    num = ((fq @ fe_num.T) * enc_mask) @ v_enc + A_dec @ v
    den = A_dec.sum(axis=1) + (((fq @ fe_den.T) * enc_mask).sum(axis=1) if den_encoder else 0.0)
    return num / den[:, None]


def _prefix_suspect(message, **mistake):
    return Suspect(message, lambda *args: _prefix_variant(*args, **mistake))


def _prefix_suspects():
    return (
        _prefix_suspect("the prompt's encoder sums are missing: this is plain causal linear "
                        "attention. Start the state from S_enc = Σ_j φ(k^e_j) v^e_jᵀ and "
                        "z_enc = Σ_j φ(k^e_j) over the whole prompt", encoder="none"),
        _prefix_suspect("the prompt is read causally: token i sees encoder keys j ≤ i only. The "
                        "encoder sums run over the whole prompt (j < M) for every token — "
                        "that is what lets the first token know the last", encoder="causal"),
        _prefix_suspect("the encoder sum is missing from the normaliser: the denominator is "
                        "φ(q_i)·(z_enc + Σ_{j≤i} φ(k_j))", den_encoder=False),
        _prefix_suspect("the tokens' own keys are read non-causally: the prompt is seen whole "
                        "through the encoder, but the Σ_{j≤i} φ(k_j) v_jᵀ part stays causal",
                        decoder="all"),
        _prefix_suspect("the prompt's tokens are left out of the causal sum: JRT counts them "
                        "twice, once through the encoder (k^e, v^e) and once as ordinary tokens "
                        "(k, v) in Σ_{j≤i}", decoder="after_prompt"),
        _prefix_suspect("φ not applied to the encoder keys: S_enc = Σ_j φ(k^e_j) v^e_jᵀ and "
                        "z_enc = Σ_j φ(k^e_j)", phi_enc=False),
        _prefix_suspect("φ not applied to the encoder keys in the normaliser: z_enc = Σ_j "
                        "φ(k^e_j), the same φ(k^e_j) as in S_enc = Σ_j φ(k^e_j) v^e_jᵀ; you "
                        "summed the raw k^e_j", phi_enc_in="num"),
        _prefix_suspect("φ not applied to the encoder keys in the state: S_enc = Σ_j φ(k^e_j) "
                        "v^e_jᵀ, the same φ(k^e_j) as in z_enc = Σ_j φ(k^e_j); you used the raw "
                        "k^e_j there", phi_enc_in="den"),
        _prefix_suspect("the encoder state was built from the tokens' values v[:M]: the "
                        "prompt's encoder has its own values, S_enc = Σ_j φ(k^e_j) (v^e_j)ᵀ with "
                        "v_enc", enc_from="tokens"),
        _prefix_suspect("the encoder sums were built from the tokens' keys k[:M]: the prompt's "
                        "encoder has its own keys, S_enc = Σ_j φ(k^e_j) (v^e_j)ᵀ and z_enc = "
                        "Σ_j φ(k^e_j) with k_enc", enc_from="token_keys"),
        _prefix_suspect("o_t is read before token t is added (off by one in time): the causal "
                        "sum runs over j ≤ t, so add φ(k_t) v_tᵀ and φ(k_t) to the state first, "
                        "then read o_t", decoder="strict"),
    )


@cache
def _prefix_linear_attention_exercise():
    return Exercise(
        name="prefix_linear_attention", reference=_prefix_reference, cases=_prefix_cases(),
        suspects=_prefix_suspects(), outputs=one_output("o"), shapes={"o": ("T", "d_v")},
        arg_names=("q", "k", "v", "k_enc", "v_enc"),
        matmul_hint="S is (d_k, d_v): S_enc = φ(k_enc)ᵀ v_enc",
    )


def check_prefix_linear_attention(prefix_linear_attention) -> None:
    """Check ``prefix_linear_attention(q, k, v, k_enc, v_enc) -> o``: JRT's prefix-linear
    attention with φ = elu + 1, q, k ``(T, d_k)``, v, o ``(T, d_v)``, k_enc ``(M, d_k)``,
    v_enc ``(M, d_v)``."""
    run_check(_prefix_linear_attention_exercise(), prefix_linear_attention)


# ---------------------------------------------------------------------------------------------
# The recall accuracy metric
# ---------------------------------------------------------------------------------------------

def _recall_cases():
    """About half of the asked positions answered right, except: in the first case all of them
    (accuracy 1: an integer division still gives 1 there, a comparison that is never true 0),
    and in the others the whole of sequence 0 (so that scoring whole sequences is not 0)."""
    rng = np.random.default_rng(2410)
    cases = []
    for n, (T, B, V) in enumerate(RECALL_SIZES):
        targets = np.full((T, B), IGNORE, np.int64)
        asked = rng.random((T, B)) < 0.5
        asked[-1] = True                                            # every sequence asks once
        targets[asked] = rng.integers(0, V, size=int(asked.sum()))
        logits = rng.normal(size=(T, B, V))
        right = asked & (rng.random((T, B)) < 0.5)                  # about half answered right
        right[:, 0] = asked[:, 0]                                   # sequence 0: all right
        if n == 0:
            right = asked
        t_idx, b_idx = np.nonzero(right)
        logits[t_idx, b_idx, targets[right]] = logits[t_idx, b_idx].max(axis=-1) + 1.0
        cases.append(Case((logits, targets), {"T": T, "B": B, "V": V}))
    return tuple(cases)


def _recall_variant(logits, targets, *, mask="asked", axis=-1, per="position", shift=False,
                    result="fraction", predict="argmax"):
    """The metric with one mistake switched on: ``mask`` "asked", "none_wrong" (ignored
    positions counted as misses), "none_right" (counted as hits), "positive" (asked where the
    target is > 0: token 0 left out); ``axis`` of the argmax; ``per="sequence"`` (a sequence
    scores only when every asked position is right), "sequence_mean" (each sequence's accuracy,
    then their mean);
    ``shift`` (logits at t scored against the target at t + 1); ``result`` "percent" (× 100)
    or "floor" (hits // asked); ``predict="max"`` (the largest logit's value, not its index)."""
    if shift:
        logits, targets = logits[:-1], targets[1:]
    asked = targets > 0 if mask == "positive" else targets != IGNORE
    predicted = np.argmax(logits, axis=axis) if predict == "argmax" else logits.max(axis=axis)
    hit = predicted == targets
    if result == "floor":
        return float(int(hit[asked].sum()) // int(asked.sum()))
    if result == "percent":
        return 100.0 * float(np.mean(hit[asked]))
    if per == "sequence":
        return float(np.mean([(hit[asked[:, b], b]).all() for b in range(targets.shape[1])]))
    if per == "sequence_mean":
        rates = [hit[asked[:, b], b].mean() for b in range(targets.shape[1]) if asked[:, b].any()]
        return float(np.mean(rates))
    if mask == "none_wrong":
        return float(np.mean(hit & asked))
    if mask == "none_right":
        return float(np.mean(hit | ~asked))
    return float(np.mean(hit[asked]))


def _recall_suspect(message, **mistake):
    return Suspect(message, lambda logits, targets: _recall_variant(logits, targets, **mistake))


def _recall_suspects():
    return (
        _recall_suspect("a percentage instead of a fraction: the accuracy is a fraction in "
                        "[0, 1]; you multiplied it by 100", result="percent"),
        _recall_suspect("an integer division: hits // asked rounds down, to 0 unless every "
                        "asked position is right; divide with /, hits / asked (or take the mean "
                        "of the boolean hits)", result="floor"),
        _recall_suspect("the largest logit's VALUE was compared with the target: the "
                        "prediction is its index, logits.argmax(axis=-1), not logits.max(...)",
                        predict="max"),
        _recall_suspect("the positions where nothing is asked are counted (as misses): average "
                        "only over targets != IGNORE", mask="none_wrong"),
        _recall_suspect("the positions where nothing is asked are counted (as hits): average "
                        "only over targets != IGNORE", mask="none_right"),
        _recall_suspect("argmax over the wrong axis: the vocabulary is the last axis of "
                        "logits (T, B, V); argmax(axis=-1) gives the prediction (T, B)", axis=1),
        _recall_suspect("you scored whole sequences (all queries right), not positions: the "
                        "recall accuracy is the fraction of asked positions answered right",
                        per="sequence"),
        _recall_suspect("the asked positions were taken as targets > 0, which leaves out those "
                        "whose target is token 0: 0 is a real token, and nothing-asked is "
                        "marked IGNORE (−100); select targets != IGNORE", mask="positive"),
        _recall_suspect("you averaged each sequence's own accuracy (a mean of means), which "
                        "weighs a sequence that asks once as much as one that asks often; pool "
                        "the asked positions: hits over all of them / their number",
                        per="sequence_mean"),
        _recall_suspect("logits and targets are shifted by one step: the target at step t is "
                        "already the next token (the generator aligned them); compare "
                        "logits[t] with targets[t]", shift=True),
    )


def _scalar_output(result, case):
    value = np.asarray(result) if isinstance(result, (float, int, np.number)) else result
    if not (isinstance(value, np.ndarray) and value.shape == ()):
        shape = getattr(result, "shape", None)
        raise CheckFailed("the result must be one number, the accuracy over every asked "
                          f"position; got a {type(result).__name__}"
                          + (f" of shape {tuple(shape)}: average over all of it" if shape
                             else ""))
    return {"accuracy": value}


@cache
def _recall_accuracy_exercise():
    return Exercise(
        name="recall_accuracy", reference=recall_accuracy, cases=_recall_cases(),
        suspects=_recall_suspects(), outputs=_scalar_output, shapes={"accuracy": ()},
        arg_names=("logits", "targets"),
        tolerances={"accuracy": (1e-6, 0.0)},    # a float32 mean of 0/1 hits is right
    )


def check_recall_accuracy(recall_accuracy) -> None:
    """Check ``recall_accuracy(logits, targets) -> float``: the fraction of asked positions
    (targets != IGNORE) whose argmax over the vocabulary is the target; logits ``(T, B, V)``,
    targets ``(T, B)``."""
    run_check(_recall_accuracy_exercise(), recall_accuracy)
