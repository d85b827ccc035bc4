"""Wrong answers to ``gru_router_step(h, r_prev, router) -> (logits, r)``: x = W1 h,
r = GRU(x, r_prev) (minirec's GRU step), logits = W2 r."""

import numpy as np

from minirec.cells.reference import gru_step

from . import mutant

MUTANTS: list = []


def blank(h, r_prev, router):
    raise NotImplementedError


def _sig(a):
    return 1 / (1 + np.exp(-a))


def correct(h, r_prev, router):
    # the GRU written out gate by gate (torch.nn's r, z, n), not through minirec's gru_step
    g = router["gru"]
    x = np.einsum("hd,nd->nh", router["W1"], h)
    H = r_prev.shape[1]
    gi = x @ g["weight_ih"].T + g["bias_ih"]
    gh = r_prev @ g["weight_hh"].T + g["bias_hh"]
    reset = _sig(gi[:, :H] + gh[:, :H])
    update = _sig(gi[:, H:2 * H] + gh[:, H:2 * H])
    cand = np.tanh(gi[:, 2 * H:] + reset * gh[:, 2 * H:])
    r = update * r_prev + (1 - update) * cand
    return np.einsum("eh,nh->ne", router["W2"], r), r


@mutant(MUTANTS, "the router's state is not carried", wrong={"logits", "r"})
def fresh_state_every_layer(h, r_prev, router):
    x = h @ router["W1"].T
    r = gru_step(x, np.zeros_like(r_prev), router["gru"])
    return r @ router["W2"].T, r


@mutant(MUTANTS, "the GRU was skipped", wrong={"logits", "r"})
def no_gru(h, r_prev, router):
    x = h @ router["W1"].T
    return x @ router["W2"].T, x


@mutant(MUTANTS, "GRU input and state swapped", wrong={"logits", "r"})
def swapped_gru_arguments(h, r_prev, router):
    x = h @ router["W1"].T
    r = gru_step(r_prev, x, router["gru"])
    return r @ router["W2"].T, r


@mutant(MUTANTS, "the logits come from the OLD state", wrong={"logits"})
def logits_before_update(h, r_prev, router):
    logits = r_prev @ router["W2"].T
    r = gru_step(h @ router["W1"].T, r_prev, router["gru"])
    return logits, r


@mutant(MUTANTS, "the state returned is the old one", wrong={"r"})
def returns_old_state(h, r_prev, router):
    r = gru_step(h @ router["W1"].T, r_prev, router["gru"])
    return r @ router["W2"].T, r_prev


@mutant(MUTANTS, "a weight looks transposed")
def w1_not_transposed(h, r_prev, router):
    x = h @ router["W1"]
    r = gru_step(x, r_prev, router["gru"])
    return r @ router["W2"].T, r


@mutant(MUTANTS, "should have shape (N, E)", wrong={"logits", "r"})
def pair_in_wrong_order(h, r_prev, router):
    r = gru_step(h @ router["W1"].T, r_prev, router["gru"])
    return r, r @ router["W2"].T


# --- right answers written differently (issue 11) ----------------------------------------

def router_with_torch_cell(h, r_prev, router):
    """Right: torch.nn.GRUCell (float64) with the router's GRU weights."""
    import torch
    g = router["gru"]
    cell = torch.nn.GRUCell(g["weight_ih"].shape[1], r_prev.shape[1]).double()
    with torch.no_grad():
        for name, value in g.items():
            getattr(cell, name).copy_(torch.from_numpy(value))
        x = torch.from_numpy(h) @ torch.from_numpy(router["W1"]).T
        r = cell(x, torch.from_numpy(r_prev))
        return (r @ torch.from_numpy(router["W2"]).T).numpy(), r.numpy()


ALTERNATIVES = [router_with_torch_cell]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "is the softmax of the expected value", wrong={"logits"})
def routing_probabilities_returned(h, r_prev, router):
    logits, r = correct(h, r_prev, router)
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True), r


# --- probe 2 (issue 11): the causes behind a second learner's mistakes, written anew ------

@mutant(MUTANTS, "a relu on the projection", wrong={"logits", "r"})
def rectified_projection(h, r_prev, router):
    x = np.maximum(h @ router["W1"].T, 0.0)
    r = gru_step(x, r_prev, router["gru"])
    return r @ router["W2"].T, r
