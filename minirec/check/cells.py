r"""Checks for the exercises on recurrent cells (lesson: cells, BPTT, recoding).

Each ``check_*`` function takes the learner's function, runs it and the reference
(:mod:`minirec.cells.reference`) on a few float64 cases, prints ``✓ <name>: passed on N cases``
when they agree, and otherwise raises :class:`~minirec.check.CheckFailed` with a per-tensor
table and a diagnosis.

The sizes of the cases are chosen to separate mistakes: ``(B, D, H) = (1, 1, 1)`` (where a
transposed weight block is invisible), ``(3, 5, 7)`` (everything distinct: a transposed input
weight fails on shapes), ``(2, 4, 4)`` (D == H: a transposed weight runs and must be caught by
value) and ``(4, 3, 2)`` (H < D). Sequences use T = 1 (where most BPTT mistakes vanish) and
T = 3, 5 (where they show). The recoding check has one more case, with logits near 800: a
softmax without its max shift overflows there, and the check (run with NumPy's overflow raised,
:mod:`minirec.check._guards`) names it.

The *suspects* below are written from the equations, one mistake each, and named in the
learner's terms. A learner's result that equals a suspect's on every case gets its message.
"""

from __future__ import annotations

from functools import cache
from itertools import permutations

import numpy as np

from minirec.cells import reference as ref
from minirec.cells.reference import PARAM_NAMES, sigmoid
from minirec.check._core import (
    Case,
    Exercise,
    Suspect,
    dict_output,
    one_output,
    pair_output,
    run_check,
)
from minirec.check._guards import (
    SOFTMAX_GUARD,
    raising,
    run_guarded_check,
    softmax_overflow,
    with_unguarded_twins,
)

__all__ = [
    "check_gru_step", "check_gru_step_backward", "check_rnn_bptt", "check_lstm_step",
    "check_recoding_step", "CELL_SIZES", "SEQUENCE_SIZES", "RECODING_SIZES",
]

#: (B, D, H) of the single-step cases.
CELL_SIZES = ((1, 1, 1), (3, 5, 7), (2, 4, 4), (4, 3, 2))
#: (T, B, D, H) of the sequence cases.
SEQUENCE_SIZES = ((1, 1, 1, 1), (5, 1, 1, 1), (1, 3, 5, 7), (5, 3, 5, 7), (5, 2, 4, 4),
                  (3, 4, 3, 2))
#: (B, H, V) and α of the recoding cases; V == H in one so that a transposed W_out runs.
RECODING_SIZES = (((1, 1, 2), 0.5), ((3, 5, 7), 0.3), ((2, 4, 4), 1.0), ((4, 3, 2), 0.1))

_SCALE = 0.6  # parameters ~ N(0, 0.6²): gates away from saturation, biases clearly non-zero


def _params(rng, G, D, H):
    shapes = {"weight_ih": (G * H, D), "weight_hh": (G * H, H), "bias_ih": (G * H,),
              "bias_hh": (G * H,)}
    return {k: rng.normal(0.0, _SCALE, size=s) for k, s in shapes.items()}


def _step_cases(G, seed, *, pair=False, backward=False):
    rng = np.random.default_rng(seed)
    cases = []
    for B, D, H in CELL_SIZES:
        x = rng.normal(size=(B, D))
        h = rng.normal(size=(B, H))
        state = (h, rng.normal(size=(B, H))) if pair else h
        args = (x, state, _params(rng, G, D, H))
        if backward:
            args += (rng.normal(size=(B, H)),)
        cases.append(Case(args, {"B": B, "D": D, "H": H}))
    return tuple(cases)


def _by_gate(order, stacked, keep=True):
    """The gate blocks of a stacked weight or bias, keyed as ``order`` reads them (0 if dropped)."""
    if not keep:
        return dict.fromkeys(order, 0.0)
    return dict(zip(order, np.split(stacked, len(order)), strict=True))


def _weights_hint(G):
    def hint(case):
        s = case.sizes
        return (f"weight_ih is (G*H, D) = ({G * s['H']}, {s['D']}) and weight_hh is (G*H, H) = "
                f"({G * s['H']}, {s['H']}), gates stacked along axis 0: use x @ W.T and h @ W.T")
    return hint


_TRANSPOSED_HH = ("weight_hh looks transposed: weight_hh is ({G}H, H), each gate's block "
                  "W_h· is (H, H) and acts as h @ W_h·.T; you used h @ W_h· (a square block, "
                  "so no shape error, but the wrong numbers)")
_TRANSPOSED_IH = ("weight_ih looks transposed: weight_ih is ({G}H, D), each gate's block W_i· "
                  "is (H, D) and acts as x @ W_i·.T; you used x @ W_i· (which runs only when "
                  "D == H)")
_TRANSPOSED_BOTH = ("weight_ih and weight_hh both look transposed: each gate's blocks are "
                    "W_i· (H, D) and W_h· (H, H), used as x @ W_i·.T and h @ W_h·.T")


# ---------------------------------------------------------------------------------------------
# GRU step
# ---------------------------------------------------------------------------------------------

def _gru_variant(x, h, params, *, order="rzn", t_ih=False, t_hh=False, b_ih=True, b_hh=True,
                 reset="after", interp="torch", acts="normal", reset_gate="r", update_gate="z"):
    """A GRU step written gate by gate, with one (or more) mistakes switched on.

    ``order`` is how the stacked blocks are read (the truth is r, z, n); ``t_ih``/``t_hh``
    multiply by a block instead of its transpose; ``reset`` is where r acts ("after": r ⊙
    (W_hn h + b_hn); "before": W_hn (r ⊙ h) + b_hn; "bias_outside": r ⊙ (W_hn h) + b_hn;
    "none"); ``interp="reversed"`` gives z ⊙ n + (1 − z) ⊙ h; ``acts="swapped"`` uses tanh
    for the gates and σ for the candidate, ``acts="sigmoid"`` σ for all three;
    ``reset_gate="z"`` / ``update_gate="r"`` use the other gate in that place (both gates
    computed right).
    """
    Wi, Wh = _by_gate(order, params["weight_ih"]), _by_gate(order, params["weight_hh"])
    bi, bh = _by_gate(order, params["bias_ih"], b_ih), _by_gate(order, params["bias_hh"], b_hh)

    def xi(g):
        return (x @ Wi[g] if t_ih else x @ Wi[g].T) + bi[g]

    def hh(g, v):
        return v @ Wh[g] if t_hh else v @ Wh[g].T

    gate, cand = {"normal": (sigmoid, np.tanh), "swapped": (np.tanh, sigmoid),
                  "sigmoid": (sigmoid, sigmoid)}[acts]
    gates = {"r": gate(xi("r") + hh("r", h) + bh["r"]), "z": gate(xi("z") + hh("z", h) + bh["z"])}
    r, z = gates[reset_gate], gates[update_gate]
    if reset == "after":
        n = cand(xi("n") + r * (hh("n", h) + bh["n"]))
    elif reset == "before":
        n = cand(xi("n") + hh("n", r * h) + bh["n"])
    elif reset == "bias_outside":
        n = cand(xi("n") + r * hh("n", h) + bh["n"])
    else:
        n = cand(xi("n") + hh("n", h) + bh["n"])
    return (1.0 - z) * n + z * h if interp == "torch" else z * n + (1.0 - z) * h


def _gru_suspect(message, **mistake):
    return Suspect(message, lambda x, h, params: _gru_variant(x, h, params, **mistake))


def _gru_suspects():
    out = [
        _gru_suspect(_TRANSPOSED_HH.format(G=3), t_hh=True),
        _gru_suspect(_TRANSPOSED_IH.format(G=3), t_ih=True),
        _gru_suspect(_TRANSPOSED_BOTH, t_ih=True, t_hh=True),
        _gru_suspect("bias missing: bias_ih is missing: every gate adds both biases, e.g. "
                     "r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr)", b_ih=False),
        _gru_suspect("bias missing: bias_hh is missing: every gate adds both biases, e.g. "
                     "r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr), and b_hn sits inside the reset "
                     "product r ⊙ (h W_hnᵀ + b_hn)", b_hh=False),
        _gru_suspect("bias missing: bias_ih and bias_hh are both missing: every gate adds both biases, e.g. "
                     "r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr)", b_ih=False, b_hh=False),
        _gru_suspect("reset gate applied before the matmul: you computed "
                     "n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn), the form of Cho et al. 2014; "
                     "torch.nn.GRU (and this exercise) applies it after the matmul: "
                     "n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))", reset="before"),
        _gru_suspect("reset gate applied to W_hn h but not to b_hn: torch.nn.GRU puts b_hn "
                     "inside the product, n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))",
                     reset="bias_outside"),
        _gru_suspect("the reset gate is not used: the candidate is "
                     "n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))", reset="none"),
        _gru_suspect("update gate interpolation reversed: you computed z ⊙ n + (1 − z) ⊙ h; "
                     "torch.nn.GRU keeps the old state where z is 1: h' = (1 − z) ⊙ n + z ⊙ h",
                     interp="reversed"),
        _gru_suspect("gate order swapped: you read the first block of weight_ih, weight_hh and "
                     "the biases as z and the second as r; torch.nn.GRU stacks them as r, z, n "
                     "(reset, update, candidate)", order="zrn"),
    ]
    for order in permutations("rzn"):
        order = "".join(order)
        if order not in ("rzn", "zrn"):
            out.append(_gru_suspect(
                f"gate order: you read the three blocks of weight_ih, weight_hh and the biases "
                f"as {', '.join(order)}; torch.nn.GRU stacks them as r, z, n (reset, update, "
                f"candidate)", order=order))
    out.append(_gru_suspect("tanh and sigmoid swapped: the gates r and z use σ (values in "
                            "(0, 1)) and the candidate n uses tanh", acts="swapped"))
    out.append(_gru_suspect("sigmoid where tanh belongs: the candidate n = tanh(W_in x + b_in + "
                            "r ⊙ (W_hn h + b_hn)) uses tanh (values in (−1, 1)); σ is for the "
                            "gates r and z only", acts="sigmoid"))
    out.append(_gru_suspect("the wrong gate: r where z belongs — the update gate z interpolates, "
                            "h' = (1 − z) ⊙ n + z ⊙ h; you used the reset gate r there",
                            update_gate="r"))
    out.append(_gru_suspect("the wrong gate: z where r belongs — the reset gate r scales the "
                            "recurrent term of the candidate, n = tanh(W_in x + b_in + "
                            "r ⊙ (W_hn h + b_hn)); you used the update gate z there",
                            reset_gate="z"))
    return tuple(out)


@cache
def _gru_step_exercise():
    return Exercise(
        name="gru_step", reference=ref.gru_step, cases=_step_cases(3, seed=2014),
        suspects=_gru_suspects(), outputs=one_output("h_new"), shapes={"h_new": ("B", "H")},
        arg_names=("x", "h", "params"), matmul_hint=_weights_hint(3), weights=True,
    )


def check_gru_step(gru_step) -> None:
    """Check ``gru_step(x (B, D), h (B, H), params) -> h_new (B, H)`` (torch.nn.GRU's maths)."""
    run_check(_gru_step_exercise(), gru_step)


# ---------------------------------------------------------------------------------------------
# GRU step backward
# ---------------------------------------------------------------------------------------------

GRU_BACKWARD_KEYS = ("x", "h", "weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _gru_backward_variant(x, h, params, dh_new, *, direct=True, dz_sign=1.0, n_times_r=True,
                          reset_grad=True, tanh_deriv=True, z_deriv=True, input_n_times_r=False,
                          dr_bias=True, bias_hh_side="hidden"):
    """The GRU step's backward pass with one mistake switched on (see the suspects);
    ``bias_hh_side="input"`` sums the input side's gradient (n block without r) for bias_hh."""
    gi = x @ params["weight_ih"].T + params["bias_ih"]
    wh = h @ params["weight_hh"].T
    gh = wh + params["bias_hh"]
    gi_r, gi_z, gi_n = np.split(gi, 3, axis=1)
    gh_r, gh_z, gh_n = np.split(gh, 3, axis=1)
    r = sigmoid(gi_r + gh_r)
    z = sigmoid(gi_z + gh_z)
    n = np.tanh(gi_n + r * gh_n)
    dn = dh_new * (1.0 - z)
    dz = dz_sign * dh_new * (h - n)
    da_n = dn * (1.0 - n**2) if tanh_deriv else dn
    da_z = dz * z * (1.0 - z) if z_deriv else dz
    dr = da_n * (gh_n if dr_bias else np.split(wh, 3, axis=1)[2])
    da_r = dr * r * (1.0 - r) if reset_grad else np.zeros_like(dr)
    dgi = np.concatenate([da_r, da_z, da_n * r if input_n_times_r else da_n], axis=1)
    dgh = np.concatenate([da_r, da_z, da_n * r if n_times_r else da_n], axis=1)
    return {
        "x": dgi @ params["weight_ih"],
        "h": dgh @ params["weight_hh"] + (dh_new * z if direct else 0.0),
        "weight_ih": dgi.T @ x,
        "weight_hh": dgh.T @ h,
        "bias_ih": dgi.sum(axis=0),
        "bias_hh": (dgh if bias_hh_side == "hidden" else dgi).sum(axis=0),
    }


def _gru_back_suspect(message, **mistake):
    return Suspect(message, lambda x, h, params, dh_new:
                   _gru_backward_variant(x, h, params, dh_new, **mistake))


def _gru_backward_suspects():
    return (
        _gru_back_suspect("the direct path is missing from dh: h' = (1 − z) ⊙ n + z ⊙ h depends "
                          "on h directly, so dh gets + dh_new ⊙ z besides the paths through "
                          "r, z and n", direct=False),
        _gru_back_suspect("dz has the wrong sign: h' = (1 − z) ⊙ n + z ⊙ h gives "
                          "∂h'/∂z = h − n, so dz = dh_new ⊙ (h − n); you used n − h",
                          dz_sign=-1.0),
        _gru_back_suspect("the recurrent gradient of the n-gate is not multiplied by r: "
                          "n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), so the n-block of the "
                          "recurrent side (which feeds weight_hh, bias_hh and h) is da_n ⊙ r",
                          n_times_r=False),
        _gru_back_suspect("the reset-gate gradient is missing: r acts through n, so "
                          "dr = da_n ⊙ (W_hn h + b_hn) and da_r = dr ⊙ r ⊙ (1 − r); the r-blocks "
                          "of your gradients are zero", reset_grad=False),
        _gru_back_suspect("the derivative of tanh is missing: da_n = dn ⊙ (1 − n²)",
                          tanh_deriv=False),
        _gru_back_suspect("the derivative of σ is missing from the update gate: "
                          "da_z = dz ⊙ z ⊙ (1 − z)", z_deriv=False),
        _gru_back_suspect("the input side's n-block was multiplied by r: r multiplies only the "
                          "recurrent term (W_hn h + b_hn), so the input side gets da_n and the "
                          "recurrent side da_n ⊙ r", input_n_times_r=True),
        _gru_back_suspect("b_hn is missing from dr: r multiplies (W_hn h + b_hn), so "
                          "dr = da_n ⊙ (h W_hnᵀ + b_hn)", dr_bias=False),
        _gru_back_suspect("bias_hh was taken from the input side: b_hn sits inside "
                          "r ⊙ (W_hn h + b_hn), so the n block of bias_hh's gradient is "
                          "da_n ⊙ r (summed over the batch), while bias_ih's is da_n",
                          bias_hh_side="input"),
    )


@cache
def _gru_step_backward_exercise():
    return Exercise(
        name="gru_step_backward", reference=ref.gru_step_backward,
        cases=_step_cases(3, seed=1406, backward=True), suspects=_gru_backward_suspects(),
        outputs=dict_output(GRU_BACKWARD_KEYS),
        shapes={"x": ("B", "D"), "h": ("B", "H"), "weight_ih": ("3H", "D"),
                "weight_hh": ("3H", "H"), "bias_ih": ("3H",), "bias_hh": ("3H",)},
        arg_names=("x", "h", "params", "dh_new"), matmul_hint=_weights_hint(3), weights=True,
    )


def check_gru_step_backward(gru_step_backward) -> None:
    """Check ``gru_step_backward(x, h, params, dh_new) -> dict`` with the gradients ``x``,
    ``h``, ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` of one GRU step."""
    run_check(_gru_step_backward_exercise(), gru_step_backward)


# ---------------------------------------------------------------------------------------------
# BPTT for the tanh RNN
# ---------------------------------------------------------------------------------------------

RNN_BPTT_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "x", "h0")


def _rnn_bptt_variant(x, h0, params, grad_outputs, *, accumulate=True, state_shift=0,
                      out_grad="before", h0_from="carried", carry=True, outputs="all",
                      direction="backward", mean_over_time=False):
    """BPTT written with the reference's step and step-backward, with one mistake switched on.

    ``accumulate=False`` overwrites the weight gradients at each step (step 0's survive);
    ``state_shift=1`` differentiates step t at h_t instead of h_{t−1}; ``out_grad="after"``
    adds grad_outputs[t] to what step t sends back (so it reaches step t − 1), with the h0
    gradient taken from that sum (``h0_from="carried"``) or from step 0's own ``"h"``
    (``h0_from="step"``); ``carry=False`` starts every step from grad_outputs[t] alone;
    ``outputs="last"`` adds only grad_outputs[T−1]; ``direction="forward"`` loops t = 0 … T−1;
    ``mean_over_time`` divides the weight and bias gradients by T.
    """
    T = x.shape[0]
    hs = [h0]
    for t in range(T):
        hs.append(ref.rnn_step(x[t], hs[-1], params))
    grads = {k: np.zeros_like(params[k]) for k in PARAM_NAMES}
    dx = np.zeros_like(x)
    dh = grad_outputs[T - 1].copy() if outputs == "last" else np.zeros_like(h0)
    g = None
    for t in (reversed(range(T)) if direction == "backward" else range(T)):
        if out_grad == "before" and outputs == "all":
            dh = (dh if carry else 0.0) + grad_outputs[t]
        g = ref.rnn_step_backward(x[t], hs[t + state_shift], params, dh)
        for k in PARAM_NAMES:
            grads[k] = grads[k] + g[k] if accumulate else g[k]
        dx[t] = g["x"]
        dh = g["h"]
        if out_grad == "after":
            dh = dh + grad_outputs[t]
    if mean_over_time:
        grads = {k: v / T for k, v in grads.items()}
    grads["x"] = dx
    grads["h0"] = dh if h0_from == "carried" else g["h"]
    return grads


def _bptt_suspect(message, **mistake):
    return Suspect(message, lambda x, h0, params, grad_outputs:
                   _rnn_bptt_variant(x, h0, params, grad_outputs, **mistake))


_OFF_BY_ONE_OUT = ("off by one step in time: grad_outputs[t] is ∂L/∂h_t, the gradient of "
                   "step t's own output, so add it to dh before differentiating step t; you "
                   "added it after, so it reached step t − 1")


def _bptt_suspects():
    return (
        _bptt_suspect("gradient not accumulated across steps: every step uses the same "
                      "weights, so each step's weight and bias gradients must be added (+=) "
                      "to running totals; yours hold step 0's alone", accumulate=False),
        _bptt_suspect("off by one step in time: step t must be differentiated at the state it "
                      "received, h_{t−1} (hs[t] when hs[0] = h0), not at the state it produced, "
                      "h_t", state_shift=1),
        _bptt_suspect(_OFF_BY_ONE_OUT, out_grad="after"),
        _bptt_suspect(_OFF_BY_ONE_OUT, out_grad="after", h0_from="step"),
        _bptt_suspect("the gradient is not carried to the previous step: the 'h' gradient "
                      "that step t returns is part of ∂L/∂h_{t−1}, so step t − 1 must start "
                      "from grad_outputs[t − 1] + that; every step started from "
                      "grad_outputs[t] alone", carry=False),
        _bptt_suspect("output gradient not added: ∂L/∂h_t = grad_outputs[t] + the gradient "
                      "carried back from step t + 1, at every t; only grad_outputs[T − 1] "
                      "entered", outputs="last"),
        _bptt_suspect("the time loop runs forwards: BPTT walks t = T − 1 down to 0, so that "
                      "∂L/∂h_t is complete (its own output's gradient plus what step t + 1 "
                      "sends back) before step t is differentiated", direction="forward"),
        _bptt_suspect("the weight gradients were averaged over time (divided by T): the loss "
                      "sums over the steps and every step uses the same weights, so their "
                      "gradients are the sum of the steps' gradients", mean_over_time=True),
    )


def _sequence_cases(G, seed):
    rng = np.random.default_rng(seed)
    cases = []
    for T, B, D, H in SEQUENCE_SIZES:
        x = rng.normal(size=(T, B, D))
        h0 = rng.normal(size=(B, H))
        params = _params(rng, G, D, H)
        grad_outputs = rng.normal(size=(T, B, H))
        cases.append(Case((x, h0, params, grad_outputs), {"T": T, "B": B, "D": D, "H": H}))
    return tuple(cases)


def _bptt_reference(x, h0, params, grad_outputs):
    return ref.rnn_bptt(x, h0, params, grad_outputs)


@cache
def _rnn_bptt_exercise():
    return Exercise(
        name="rnn_bptt", reference=_bptt_reference, cases=_sequence_cases(1, seed=1990),
        suspects=_bptt_suspects(), outputs=dict_output(RNN_BPTT_KEYS),
        shapes={"weight_ih": ("H", "D"), "weight_hh": ("H", "H"), "bias_ih": ("H",),
                "bias_hh": ("H",), "x": ("T", "B", "D"), "h0": ("B", "H")},
        arg_names=("x", "h0", "params", "grad_outputs"), matmul_hint=_weights_hint(1), weights=True,
    )


def check_rnn_bptt(rnn_bptt) -> None:
    """Check ``rnn_bptt(x (T, B, D), h0 (B, H), params, grad_outputs (T, B, H)) -> dict`` with
    the gradients ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``, ``x``, ``h0``."""
    run_check(_rnn_bptt_exercise(), rnn_bptt)


# ---------------------------------------------------------------------------------------------
# LSTM step
# ---------------------------------------------------------------------------------------------

def _lstm_variant(x, state, params, *, order="ifgo", t_ih=False, t_hh=False, b_ih=True,
                  b_hh=True, swap_if=False, h_from="tanh_new", g_act="tanh", swap_return=False,
                  out_gate="o", write_gate="i", forget_bias=0.0):
    """An LSTM step written gate by gate with one mistake switched on (see the suspects);
    ``out_gate`` is the gate that scales tanh(c'), ``write_gate`` the one that scales g
    ("one": no gate); ``forget_bias`` a constant added to the forget gate's pre-activation."""
    h, c = state
    Wi, Wh = _by_gate(order, params["weight_ih"]), _by_gate(order, params["weight_hh"])
    bi, bh = _by_gate(order, params["bias_ih"], b_ih), _by_gate(order, params["bias_hh"], b_hh)

    def pre(k):
        return ((x @ Wi[k] if t_ih else x @ Wi[k].T) + bi[k]
                + (h @ Wh[k] if t_hh else h @ Wh[k].T) + bh[k])

    gates = {"i": sigmoid(pre("i")), "f": sigmoid(pre("f") + forget_bias),
             "o": sigmoid(pre("o")), "one": 1.0}
    i, f, o = gates[write_gate], gates["f"], gates[out_gate]
    g = np.tanh(pre("g")) if g_act == "tanh" else sigmoid(pre("g"))
    c_new = i * c + f * g if swap_if else f * c + i * g
    h_new = {"tanh_new": o * np.tanh(c_new), "new": o * c_new, "tanh_old": o * np.tanh(c),
             "sigmoid_new": o * sigmoid(c_new)}[h_from]
    return (c_new, h_new) if swap_return else (h_new, c_new)


def _lstm_suspect(message, **mistake):
    return Suspect(message, lambda x, state, params: _lstm_variant(x, state, params, **mistake))


def _lstm_suspects():
    out = [
        _lstm_suspect(_TRANSPOSED_HH.format(G=4), t_hh=True),
        _lstm_suspect(_TRANSPOSED_IH.format(G=4), t_ih=True),
        _lstm_suspect(_TRANSPOSED_BOTH, t_ih=True, t_hh=True),
        _lstm_suspect("bias missing: bias_ih is missing: every gate adds both biases, "
                      "a = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh", b_ih=False),
        _lstm_suspect("bias missing: bias_hh is missing: every gate adds both biases, "
                      "a = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh", b_hh=False),
        _lstm_suspect("bias missing: bias_ih and bias_hh are both missing: every gate adds both biases, "
                      "a = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh", b_ih=False, b_hh=False),
        _lstm_suspect("forget gate applied to the candidate instead of c: c' = f ⊙ c + i ⊙ g, "
                      "with i the first block and f the second (torch.nn.LSTM's order i, f, g, "
                      "o); you computed i ⊙ c + f ⊙ g (or read the first two blocks as f, i)",
                      swap_if=True),
        _lstm_suspect("the tanh is missing from the output: h' = o ⊙ tanh(c'), you computed "
                      "h' = o ⊙ c'", h_from="new"),
        _lstm_suspect("h' uses the old cell state: h' = o ⊙ tanh(c') with the new c', you used "
                      "o ⊙ tanh(c)", h_from="tanh_old"),
        _lstm_suspect("sigmoid where tanh belongs: h' = o ⊙ tanh(c') squashes the cell state "
                      "into (−1, 1); you used σ(c')", h_from="sigmoid_new"),
        _lstm_suspect("the candidate g is squashed with σ: g uses tanh (values in (−1, 1)); "
                      "only the gates i, f, o use σ", g_act="sigmoid"),
        _lstm_suspect("the pair is returned in the wrong order: lstm_step returns "
                      "(h_new, c_new), you returned (c_new, h_new)", swap_return=True),
        _lstm_suspect("the wrong gate: i where o belongs — the output gate o scales the "
                      "cell's tanh, h' = o ⊙ tanh(c'); you used the input gate i there",
                      out_gate="i"),
        _lstm_suspect("the wrong gate: o where i belongs — the input gate i scales the "
                      "candidate, c' = f ⊙ c + i ⊙ g; you used the output gate o there",
                      write_gate="o"),
        _lstm_suspect("the input gate is missing: c' = f ⊙ c + i ⊙ g; you added the candidate "
                      "g ungated", write_gate="one"),
        *(_lstm_suspect(f"a constant forget bias inside the step: you computed "
                        f"f = σ(a_f + {b:g}); the step is torch.nn.LSTM's, f = σ(a_f) with a_f "
                        f"from the weights and biases alone — a keep bias belongs in the f "
                        f"blocks of bias_ih / bias_hh (set when the parameters are made), not in "
                        f"the step", forget_bias=b) for b in (1.0, 2.0, -1.0)),
    ]
    for order in permutations("ifgo"):
        order = "".join(order)
        if order not in ("ifgo", "figo"):
            out.append(_lstm_suspect(
                f"gate order: you read the four blocks of weight_ih, weight_hh and the biases "
                f"as {', '.join(order)}; torch.nn.LSTM stacks them as i, f, g, o (input, "
                f"forget, candidate, output)", order=order))
    return tuple(out)


@cache
def _lstm_step_exercise():
    return Exercise(
        name="lstm_step", reference=ref.lstm_step, cases=_step_cases(4, seed=1997, pair=True),
        suspects=_lstm_suspects(), outputs=pair_output("lstm_step", "h_new", "c_new"),
        shapes={"h_new": ("B", "H"), "c_new": ("B", "H")},
        arg_names=("x", "state", "params"), matmul_hint=_weights_hint(4), weights=True,
    )


def check_lstm_step(lstm_step) -> None:
    """Check ``lstm_step(x (B, D), (h, c), params) -> (h_new, c_new)`` (torch.nn.LSTM's maths,
    gate order i, f, g, o)."""
    run_check(_lstm_step_exercise(), lstm_step)


# ---------------------------------------------------------------------------------------------
# Recoding step
# ---------------------------------------------------------------------------------------------

def _recoding_variant(h, W_out, b_out, target, alpha, *, sign=1.0, onehot=True, p_term=True,
                      average=False, softmax_axis=-1, t_logits=False, t_grad=False, bias=True,
                      guard=True, columns=False):
    """h − α (p − onehot(target)) W_out with one mistake switched on (see the suspects);
    ``guard=False`` takes the softmax without its max shift, e^{logits} / Σ e^{logits};
    ``columns=True`` subtracts 1 at every row's target in every row (``p[:, target] -= 1``)."""
    logits = (h @ W_out if t_logits else h @ W_out.T) + (b_out if bias else 0.0)
    shift = logits.max(axis=softmax_axis, keepdims=True) if guard else 0.0
    e = np.exp(logits - shift)
    p = e / e.sum(axis=softmax_axis, keepdims=True)
    d = p if p_term else np.zeros_like(p)
    if onehot:
        d[slice(None) if columns else np.arange(h.shape[0]), target] -= 1.0
    grad = d @ W_out.T if t_grad else d @ W_out
    if average:
        grad = grad / h.shape[0]
    return h - sign * alpha * grad


def _recoding_suspect(message, **mistake):
    return Suspect(message, lambda h, W_out, b_out, target, alpha:
                   _recoding_variant(h, W_out, b_out, target, alpha, **mistake))


#: The diagnosis for a softmax that overflowed.
SOFTMAX_OVERFLOW = softmax_overflow(800)


_W_OUT_T = ("W_out looks transposed: W_out is (V, H), so the logits are h @ W_out.T + b_out "
            "and ∂δ/∂h = (p − onehot(target)) @ W_out")


def _recoding_mistakes(guard):
    def suspect(message, **mistake):
        return _recoding_suspect(message, guard=guard, **mistake)
    return (
        suspect("gradient ascent: the sign is flipped. Recoding moves h down the "
                "surprisal's gradient, h − α ∂δ/∂h; adding it makes the target less "
                "likely", sign=-1.0),
        suspect("onehot(target) not subtracted: the gradient of δ = −log p[target] "
                "with respect to the logits is p − onehot(target), not the softmax "
                "p alone", onehot=False),
        suspect("p is missing from the gradient: ∂δ/∂logits = p − onehot(target), "
                "you used −onehot(target) alone", p_term=False),
        suspect("gradient averaged over the batch (divided by B): each row is "
                "recoded by its own surprisal's gradient, h_b − α ∂δ_b/∂h_b, with no "
                "1/B", average=True),
        suspect("softmax over the wrong axis: normalise each row over the V classes "
                "(axis=-1), not over the batch (axis 0)", softmax_axis=0),
        suspect(_W_OUT_T + " (your logits used h @ W_out)", t_logits=True),
        suspect(_W_OUT_T + " (your gradient used (p − onehot) @ W_out.T)",
                t_grad=True),
        suspect(_W_OUT_T + " (you transposed it in both places)",
                t_logits=True, t_grad=True),
        suspect("b_out is missing from the logits: logits = h @ W_out.T + b_out",
                bias=False),
        suspect("p[:, target] -= 1 subtracts 1 in every row at the targets of all rows: "
                "index one entry per row, p[np.arange(B), target] -= 1", columns=True),
    )


def _recoding_suspects(cases):
    return (*with_unguarded_twins(_recoding_mistakes, SOFTMAX_GUARD, cases),
            Suspect(SOFTMAX_OVERFLOW, raising(lambda h, W_out, b_out, target, alpha:
                                              _recoding_variant(h, W_out, b_out, target, alpha,
                                                                guard=False), quiet=True)))


def _recoding_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for (B, H, V), alpha in RECODING_SIZES:
        h = rng.normal(size=(B, H))
        W_out = rng.normal(size=(V, H))
        b_out = rng.normal(size=(V,))
        target = rng.integers(0, V, size=B)
        cases.append(Case((h, W_out, b_out, target, alpha), {"B": B, "H": H, "V": V}))
    cases.append(_large_logits_case(rng))
    return tuple(cases)


def _large_logits_case(rng, B=3, H=4, V=6):
    """Logits near 800, from h @ W_out.T (every row of W_out close to one direction u, h far
    along u) and gaps of about ten between the classes: e^{logit} overflows, p does not."""
    u = rng.normal(size=H)
    W_out = u + 0.01 * rng.normal(size=(V, H))
    h = 800.0 * u / (u @ u) + rng.normal(size=(B, H))
    return Case((h, W_out, rng.normal(size=V), rng.integers(0, V, size=B), 0.2),
                {"B": B, "H": H, "V": V})


def _recoding_hint(case):
    s = case.sizes
    return (f"W_out is (V, H) = ({s['V']}, {s['H']}): the logits are h @ W_out.T (B, V) and the "
            f"gradient (p − onehot) @ W_out is (B, H)")


@cache
def _recoding_step_exercise():
    cases = _recoding_cases(seed=2018)
    return Exercise(
        name="recoding_step", reference=ref.recoding_step, cases=cases,
        suspects=_recoding_suspects(cases), outputs=one_output("h_new"), shapes={"h_new": ("B", "H")},
        arg_names=("h", "W_out", "b_out", "target", "alpha"), matmul_hint=_recoding_hint, weights=True,
    )


def check_recoding_step(recoding_step) -> None:
    """Check ``recoding_step(h (B, H), W_out (V, H), b_out (V,), target (B,), alpha) -> h_new``,
    one gradient step on h against the surprisal −log p(target | h)."""
    run_guarded_check(_recoding_step_exercise(), recoding_step,
                      (("overflow", SOFTMAX_OVERFLOW), ("invalid value", SOFTMAX_OVERFLOW)))
