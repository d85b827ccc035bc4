"""Wrong answers to causal linear attention as an RNN:
``linear_attention_recurrent(q, k, v, (S0, z0)) -> (o, (S, z))``, φ = elu + 1,
q, k (T, d_k), v, o (T, d_v), S (d_k, d_v), z (d_k,)."""

import numpy as np

from . import mutant

MUTANTS: list = []


def phi(x):
    return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))


def blank(q, k, v, state):
    raise NotImplementedError


def correct(q, k, v, state):
    S, z = state
    outputs = []
    for q_t, k_t, v_t in zip(q, k, v, strict=True):
        S = S + phi(k_t)[:, None] * v_t[None, :]
        z = z + phi(k_t)
        outputs.append(S.T @ phi(q_t) / np.dot(z, phi(q_t)))
    return np.array(outputs), (S, z)


@mutant(MUTANTS, "no normaliser", wrong={"o"})
def no_denominator(q, k, v, state):
    S, z = state
    o = np.zeros((len(q), v.shape[1]))
    for t in range(len(q)):
        S = S + np.outer(phi(k[t]), v[t])
        z = z + phi(k[t])
        o[t] = phi(q[t]) @ S
    return o, (S, z)


@mutant(MUTANTS, "state updated after the output is read (off by one in time)", wrong={"o"})
def read_then_update(q, k, v, state):
    S, z = state
    o = np.zeros((len(q), v.shape[1]))
    for t in range(len(q)):
        o[t] = phi(q[t]) @ S / (phi(q[t]) @ z)
        S = S + np.outer(phi(k[t]), v[t])
        z = z + phi(k[t])
    return o, (S, z)


@mutant(MUTANTS, "φ not applied to the keys", wrong={"o", "S", "z"})
def raw_keys(q, k, v, state):
    S, z = state
    o = np.zeros((len(q), v.shape[1]))
    for t in range(len(q)):
        S = S + np.outer(k[t], v[t])
        z = z + k[t]
        o[t] = phi(q[t]) @ S / (phi(q[t]) @ z)
    return o, (S, z)


@mutant(MUTANTS, "φ not applied to the queries", wrong={"o"})
def raw_queries(q, k, v, state):
    S, z = state
    o = np.zeros((len(q), v.shape[1]))
    for t in range(len(q)):
        S = S + np.outer(phi(k[t]), v[t])
        z = z + phi(k[t])
        o[t] = q[t] @ S / (q[t] @ z)
    return o, (S, z)


@mutant(MUTANTS, "outer product transposed (v kᵀ instead of k vᵀ)")
def outer_transposed(q, k, v, state):
    S, z = state
    o = np.zeros((len(q), v.shape[1]))
    for t in range(len(q)):
        S = S + np.outer(v[t], phi(k[t]))
        z = z + phi(k[t])
        o[t] = phi(q[t]) @ S / (phi(q[t]) @ z)
    return o, (S, z)
