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
