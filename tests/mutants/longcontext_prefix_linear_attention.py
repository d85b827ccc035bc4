"""Wrong answers to JRT's prefix-linear attention:
``prefix_linear_attention(q, k, v, k_enc, v_enc) -> o``, φ = elu + 1,
q, k (T, d_k), v, o (T, d_v), k_enc (M, d_k), v_enc (M, d_v)."""

import numpy as np

from . import mutant

MUTANTS: list = []


def phi(x):
    return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))


def blank(q, k, v, k_enc, v_enc):
    raise NotImplementedError


def correct(q, k, v, k_enc, v_enc):
    """By the masked formula, one query at a time."""
    out = []
    for i in range(len(q)):
        keys = np.vstack([phi(k_enc), phi(k[:i + 1])])
        values = np.vstack([v_enc, v[:i + 1]])
        weights = keys @ phi(q[i])
        out.append(weights @ values / weights.sum())
    return np.array(out)


def _causal(q, k, v, S, z):
    o = np.zeros((len(q), v.shape[1]))
    for t in range(len(q)):
        S = S + np.outer(phi(k[t]), v[t])
        z = z + phi(k[t])
        o[t] = phi(q[t]) @ S / (phi(q[t]) @ z)
    return o


@mutant(MUTANTS, "the prompt's encoder sums are missing", wrong={"o"})
def no_encoder(q, k, v, k_enc, v_enc):
    return _causal(q, k, v, np.zeros((q.shape[1], v.shape[1])), np.zeros(q.shape[1]))


@mutant(MUTANTS, "the prompt is read causally", wrong={"o"})
def causal_prompt(q, k, v, k_enc, v_enc):
    o = np.zeros((len(q), v.shape[1]))
    for i in range(len(q)):
        m = min(i + 1, len(k_enc))
        keys = np.vstack([phi(k_enc[:m]), phi(k[:i + 1])])
        w = keys @ phi(q[i])
        o[i] = w @ np.vstack([v_enc[:m], v[:i + 1]]) / w.sum()
    return o


@mutant(MUTANTS, "the encoder sum is missing from the normaliser", wrong={"o"})
def numerator_only(q, k, v, k_enc, v_enc):
    S = phi(k_enc).T @ v_enc
    o = np.zeros((len(q), v.shape[1]))
    S_dec, z_dec = np.zeros_like(S), np.zeros(q.shape[1])
    for t in range(len(q)):
        S_dec = S_dec + np.outer(phi(k[t]), v[t])
        z_dec = z_dec + phi(k[t])
        o[t] = phi(q[t]) @ (S + S_dec) / (phi(q[t]) @ z_dec)
    return o


@mutant(MUTANTS, "the tokens' own keys are read non-causally", wrong={"o"})
def everything_bidirectional(q, k, v, k_enc, v_enc):
    keys = np.vstack([phi(k_enc), phi(k)])
    w = phi(q) @ keys.T
    return w @ np.vstack([v_enc, v]) / w.sum(axis=1, keepdims=True)


@mutant(MUTANTS, "the prompt's tokens are left out of the causal sum", wrong={"o"})
def prompt_counted_once(q, k, v, k_enc, v_enc):
    M = len(k_enc)
    S, z = phi(k_enc).T @ v_enc, phi(k_enc).sum(axis=0)
    o = np.zeros((len(q), v.shape[1]))
    for t in range(len(q)):
        if t >= M:
            S = S + np.outer(phi(k[t]), v[t])
            z = z + phi(k[t])
        o[t] = phi(q[t]) @ S / (phi(q[t]) @ z)
    return o


@mutant(MUTANTS, "φ not applied to the encoder keys", wrong={"o"})
def raw_encoder_keys(q, k, v, k_enc, v_enc):
    return _causal(q, k, v, k_enc.T @ v_enc, k_enc.sum(axis=0))


# --- more wrong answers (issue 11) and right answers written differently -----------------

@mutant(MUTANTS, "the encoder sum is missing from the normaliser", wrong={"o"})
def denominator_without_the_prompt(q, k, v, k_enc, v_enc):
    S = phi(k_enc).T @ v_enc
    o = np.zeros((len(q), v.shape[1]))
    z = np.zeros(k.shape[1])
    for t in range(len(q)):
        S = S + np.outer(phi(k[t]), v[t])
        z = z + phi(k[t])                           # z_enc left out
        o[t] = phi(q[t]) @ S / (phi(q[t]) @ z)
    return o


@mutant(MUTANTS, "no known mistake matches your result", wrong={"o"})
def divided_by_the_number_of_keys(q, k, v, k_enc, v_enc):
    # an average over the M + t + 1 visible keys instead of the φ(q)·z normaliser: no suspect
    S = phi(k_enc).T @ v_enc
    o = np.zeros((len(q), v.shape[1]))
    for t in range(len(q)):
        S = S + np.outer(phi(k[t]), v[t])
        o[t] = phi(q[t]) @ S / (len(k_enc) + t + 1)
    return o


def prefix_attention_by_cumsum(q, k, v, k_enc, v_enc):
    """Right, the causal part as cumulative sums on top of the encoder sums."""
    fq, fk = phi(q), phi(k)
    S = phi(k_enc).T @ v_enc + np.cumsum(fk[:, :, None] * v[:, None, :], axis=0)
    z = phi(k_enc).sum(axis=0) + np.cumsum(fk, axis=0)
    return np.einsum("tk,tkv->tv", fq, S) / np.einsum("tk,tk->t", fq, z)[:, None]


def prefix_attention_with_torch(q, k, v, k_enc, v_enc):
    """Right, the masked (T, M + T) form with torch's elu, converted back to NumPy."""
    import torch
    f = lambda x: torch.nn.functional.elu(torch.from_numpy(x)) + 1.0
    T, M = len(q), len(k_enc)
    keys = torch.cat([f(k_enc), f(k)])
    values = torch.cat([torch.from_numpy(v_enc), torch.from_numpy(v)])
    mask = torch.cat([torch.ones(T, M, dtype=torch.float64),
                      torch.tril(torch.ones(T, T, dtype=torch.float64))], dim=1)
    A = (f(q) @ keys.T) * mask
    return (A @ values / A.sum(dim=1, keepdim=True)).numpy()


ALTERNATIVES = [prefix_attention_by_cumsum, prefix_attention_with_torch]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "o_t is read before token t is added", wrong={"o"})
def query_sees_only_earlier_tokens(q, k, v, k_enc, v_enc):
    out = []
    for i in range(len(q)):
        keys = np.vstack([phi(k_enc), phi(k[:i])])         # k[:i]: token i itself left out
        values = np.vstack([v_enc, v[:i]])
        weights = keys @ phi(q[i])
        out.append(weights @ values / weights.sum())
    return np.array(out)


# --- probe 2 (issue 11): the causes behind a second learner's mistakes, written anew ------

@mutant(MUTANTS, "φ not applied to the encoder keys in the normaliser", wrong={"o"})
def raw_encoder_keys_in_the_normaliser(q, k, v, k_enc, v_enc):
    S, z = phi(k_enc).T @ v_enc, k_enc.sum(axis=0)
    out = []
    for t in range(len(q)):
        S, z = S + np.outer(phi(k[t]), v[t]), z + phi(k[t])
        out.append(phi(q[t]) @ S / (phi(q[t]) @ z))
    return np.array(out)


@mutant(MUTANTS, "the tokens' values v[:M]", wrong={"o"})
def encoder_reads_the_token_values(q, k, v, k_enc, v_enc):
    prompt = len(k_enc)
    S, z = phi(k_enc).T @ v[:prompt], phi(k_enc).sum(axis=0)
    out = []
    for t in range(len(q)):
        S, z = S + np.outer(phi(k[t]), v[t]), z + phi(k[t])
        out.append(phi(q[t]) @ S / (phi(q[t]) @ z))
    return np.array(out)
