"""Wrong answers to Aaren's streaming step:
``aaren_stream_step((m, u, w), s_t, v_t) -> ((m, u, w), o_t)``, m, u, s_t (B,), w, v_t (B, d_v)."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(state, s_t, v_t):
    raise NotImplementedError


def correct(state, s_t, v_t):
    m, u, w = state
    m_new = np.fmax(m, s_t)
    old, new = np.exp(m - m_new), np.exp(s_t - m_new)
    u_new = old * u + new
    w_new = old[:, None] * w + new[:, None] * v_t
    return (m_new, u_new, w_new), w_new / u_new[:, None]


@mutant(MUTANTS, "state not rescaled when the max grows", wrong={"u", "w", "o"})
def sums_not_rescaled(state, s_t, v_t):
    m, u, w = state
    m_new = np.maximum(m, s_t)
    p = np.exp(s_t - m_new)
    u = u + p
    w = w + p[:, None] * v_t
    return (m_new, u, w), w / u[:, None]


@mutant(MUTANTS, "output not normalised by u (w returned)", wrong={"o"})
def returns_w(state, s_t, v_t):
    m, u, w = state
    m_new = np.maximum(m, s_t)
    c = np.exp(m - m_new)
    p = np.exp(s_t - m_new)
    w_new = w * c[:, None] + p[:, None] * v_t
    return (m_new, u * c + p, w_new), w_new


@mutant(MUTANTS, "the new token's weight not e^{s_t − m}", wrong={"u", "w", "o"})
def new_token_weight_one(state, s_t, v_t):
    m, u, w = state
    m_new = np.maximum(m, s_t)
    c = np.exp(m - m_new)
    u_new = u * c + 1.0
    w_new = w * c[:, None] + v_t
    return (m_new, u_new, w_new), w_new / u_new[:, None]


@mutant(MUTANTS, "the new token's weight not e^{s_t − m}", wrong={"u", "w"})
def new_token_unshifted(state, s_t, v_t):
    m, u, w = state
    m_new = np.maximum(m, s_t)
    c = np.exp(m - m_new)
    p = np.exp(s_t)
    u_new = u * c + p
    w_new = w * c[:, None] + p[:, None] * v_t
    return (m_new, u_new, w_new), w_new / u_new[:, None]


@mutant(MUTANTS, "read from the old state (off by one in time)")
def output_before_update(state, s_t, v_t):
    m, u, w = state
    o = w / u[:, None]
    m_new = np.maximum(m, s_t)
    c = np.exp(m - m_new)
    p = np.exp(s_t - m_new)
    return (m_new, u * c + p, w * c[:, None] + p[:, None] * v_t), o


# --- a state not carried (issue 11), more wrong answers and right answers written differently

@mutant(MUTANTS, "the state is not carried: you returned the state you were given",
        wrong={"m", "u", "w"})
def returns_the_old_state(state, s_t, v_t):
    m, u, w = state
    m_new = np.maximum(m, s_t)
    keep, new = np.exp(m - m_new), np.exp(s_t - m_new)
    u_new = u * keep + new
    w_new = w * keep[:, None] + new[:, None] * v_t
    return state, w_new / u_new[:, None]


@mutant(MUTANTS, "the max is not updated")
def max_kept_from_before(state, s_t, v_t):
    m, u, w = state
    new = np.exp(s_t - m)                                   # the first token: e^{s − (−inf)} = inf
    return (m, u + new, w + new[:, None] * v_t), (w + new[:, None] * v_t) / (u + new)[:, None]


@mutant(MUTANTS, "shifted by the old max")
def new_token_against_the_old_max(state, s_t, v_t):
    m, u, w = state
    m_new = np.maximum(m, s_t)
    keep = np.exp(m - m_new)
    new = np.exp(s_t - m)                                   # relative to m_{t−1}, not m_t
    u_new, w_new = u * keep + new, w * keep[:, None] + new[:, None] * v_t
    return (m_new, u_new, w_new), w_new / u_new[:, None]


def stream_step_as_a_combine(state, s_t, v_t):
    """Right: the step is state ⊕ (s_t, 1, v_t), with the combine written out."""
    m, u, w = state
    m_new = np.maximum(m, s_t)
    fA, fB = np.exp(m - m_new), np.exp(s_t - m_new)
    u_new = u * fA + 1.0 * fB
    w_new = w * fA[..., None] + v_t * fB[..., None]
    return (m_new, u_new, w_new), w_new / u_new[..., None]


def stream_step_with_torch(state, s_t, v_t):
    """Right, with torch tensors, converted back to NumPy."""
    import torch
    m, u, w = (torch.from_numpy(x) for x in state)
    s, v = torch.from_numpy(s_t), torch.from_numpy(v_t)
    m_new = torch.maximum(m, s)
    keep, new = torch.exp(m - m_new), torch.exp(s - m_new)
    u_new = u * keep + new
    w_new = w * keep[:, None] + new[:, None] * v
    return (m_new.numpy(), u_new.numpy(), w_new.numpy()), (w_new / u_new[:, None]).numpy()


ALTERNATIVES = [stream_step_as_a_combine, stream_step_with_torch]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "w not rescaled when the max grows", wrong={"w", "o"})
def only_the_normaliser_rescaled(state, s_t, v_t):
    m, u, w = state
    m_new = np.fmax(m, s_t)
    e_new = np.exp(s_t - m_new)
    u_new = np.exp(m - m_new) * u + e_new
    w_new = w + e_new[:, None] * v_t
    return (m_new, u_new, w_new), w_new / u_new[:, None]


@mutant(MUTANTS, "the running max was replaced by the current score", wrong={"m", "u", "w"})
def max_is_the_latest_score(state, s_t, v_t):
    m, u, w = state
    decay = np.exp(m - s_t)                                # relative to s_t, not to the max
    u_new = decay * u + 1.0
    w_new = decay[:, None] * w + v_t
    return (s_t.copy(), u_new, w_new), w_new / u_new[:, None]


@mutant(MUTANTS, "no max shift at all", wrong={"u", "w"})
def running_sums_of_exponentials(state, s_t, v_t):
    m, u, w = state
    weight = np.exp(s_t)
    return ((np.fmax(m, s_t), u + weight, w + weight[:, None] * v_t),
            (w + weight[:, None] * v_t) / (u + weight)[:, None])


@mutant(MUTANTS, "o_t divides by the old u", wrong={"o"})
def output_over_previous_normaliser(state, s_t, v_t):
    (m_new, u_new, w_new), _ = correct(state, s_t, v_t)
    with np.errstate(divide="ignore"):
        return (m_new, u_new, w_new), w_new / state[1][:, None]
