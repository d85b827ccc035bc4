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


# --- a state not carried (issue 11), more wrong answers and right answers written differently

@mutant(MUTANTS, "the state does not accumulate", wrong={"o", "S", "z"})
def state_overwritten(q, k, v, state):
    o = np.zeros((len(q), v.shape[1]))
    for t in range(len(q)):
        S = np.outer(phi(k[t]), v[t])                  # only token t
        z = phi(k[t])
        o[t] = phi(q[t]) @ S / (phi(q[t]) @ z)
    return o, (S, z)


@mutant(MUTANTS, "the state is not carried between steps", wrong={"o", "S", "z"})
def added_to_the_initial_state(q, k, v, state):
    S0, z0 = state
    o = np.zeros((len(q), v.shape[1]))
    for t in range(len(q)):
        S = S0 + np.outer(phi(k[t]), v[t])             # S0, not the previous step's S
        z = z0 + phi(k[t])
        o[t] = phi(q[t]) @ S / (phi(q[t]) @ z)
    return o, (S, z)


@mutant(MUTANTS, "the state does not accumulate", wrong={"o", "S", "z"})
def prefix_state_ignored_then_overwritten(q, k, v, state):
    S = np.einsum("i,j->ij", phi(k[-1]), v[-1])
    z = phi(k[-1])
    o = np.stack([phi(q[t]) @ np.outer(phi(k[t]), v[t]) / (phi(q[t]) @ phi(k[t]))
                  for t in range(len(q))])
    return o, (S, z)


@mutant(MUTANTS, "no known mistake matches your result", wrong={"o", "S", "z"})
def relu_feature_map(q, k, v, state):
    # φ = relu + 1 instead of elu + 1: equal for positive inputs only
    f = lambda x: np.maximum(x, 0.0) + 1.0
    S, z = state
    o = np.zeros((len(q), v.shape[1]))
    for t in range(len(q)):
        S = S + np.outer(f(k[t]), v[t])
        z = z + f(k[t])
        o[t] = f(q[t]) @ S / (f(q[t]) @ z)
    return o, (S, z)


def linear_attention_by_cumsum(q, k, v, state):
    """Right, the running sums as cumulative sums over time (the parallel form)."""
    S0, z0 = state
    fq, fk = phi(q), phi(k)
    S = S0 + np.cumsum(fk[:, :, None] * v[:, None, :], axis=0)      # (T, d_k, d_v)
    z = z0 + np.cumsum(fk, axis=0)
    o = np.einsum("tk,tkv->tv", fq, S) / np.einsum("tk,tk->t", fq, z)[:, None]
    return o, (S[-1], z[-1])


def linear_attention_with_torch(q, k, v, state):
    """Right, with torch's elu, converted back to NumPy."""
    import torch
    f = lambda x: torch.nn.functional.elu(torch.from_numpy(x)) + 1.0
    fq, fk, vt = f(q), f(k), torch.from_numpy(v)
    S, z = (torch.from_numpy(x) for x in state)
    outputs = []
    for t in range(len(q)):
        S = S + torch.outer(fk[t], vt[t])
        z = z + fk[t]
        outputs.append(S.T @ fq[t] / (z @ fq[t]))
    return torch.stack(outputs).numpy(), (S.numpy(), z.numpy())


ALTERNATIVES = [linear_attention_by_cumsum, linear_attention_with_torch]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "the state passed in was ignored", wrong={"o", "S", "z"})
def fresh_state(q, k, v, state):
    d_k, d_v = q.shape[1], v.shape[1]
    return correct(q, k, v, (np.zeros((d_k, d_v)), np.zeros(d_k)))


# --- probe 2 (issue 11): the causes behind a second learner's mistakes, written anew ------

@mutant(MUTANTS, "a small systematic term, not float32 rounding", wrong={"o"})
def safe_division(q, k, v, state):
    # a tiny ε keeps the normaliser away from zero, and shifts every output a little
    S, z = state
    out = []
    for t in range(len(q)):
        S = S + np.outer(phi(k[t]), v[t])
        z = z + phi(k[t])
        out.append(phi(q[t]) @ S / (phi(q[t]) @ z + 1e-7))
    return np.array(out), (S, z)


@mutant(MUTANTS, "φ not applied to the keys in the normaliser", wrong={"o", "z"})
def raw_keys_in_the_normaliser(q, k, v, state):
    S, z = state
    out = []
    for t in range(len(q)):
        S = S + np.outer(phi(k[t]), v[t])
        z = z + k[t]
        out.append(phi(q[t]) @ S / (phi(q[t]) @ z))
    return np.array(out), (S, z)


@mutant(MUTANTS, "φ not applied to the keys in the state", wrong={"o", "S"})
def raw_keys_in_the_state(q, k, v, state):
    S, z = state
    out = []
    for t in range(len(q)):
        S = S + k[t][:, None] * v[t][None, :]
        z = z + phi(k[t])
        out.append(phi(q[t]) @ S / (phi(q[t]) @ z))
    return np.array(out), (S, z)
