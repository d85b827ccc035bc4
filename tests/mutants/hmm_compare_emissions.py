"""Wrong answers to ``compare_emissions(obs_model, obs_target, n_symbols) -> dict`` (symbol
frequencies, their total variation distance, the switch rates)."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(obs_model, obs_target, n_symbols):
    raise NotImplementedError


def _stats(obs, M):
    freq = np.array([(obs == m).mean() for m in range(M)])
    N, T = obs.shape
    switches = sum(int(obs[n, t] != obs[n, t - 1]) for n in range(N) for t in range(1, T))
    return freq, switches / max(N * (T - 1), 1)


def correct(obs_model, obs_target, n_symbols):
    fm, sm = _stats(obs_model, n_symbols)
    ft, st = _stats(obs_target, n_symbols)
    return {"freq_model": fm, "freq_target": ft, "total_variation": np.abs(fm - ft).sum() / 2,
            "switch_model": sm, "switch_target": st}


@mutant(MUTANTS, "frequencies not normalised", wrong={"freq_model", "freq_target", "total_variation"})
def raw_counts(obs_model, obs_target, n_symbols):
    fm = np.bincount(obs_model.ravel(), minlength=n_symbols)
    ft = np.bincount(obs_target.ravel(), minlength=n_symbols)
    out = correct(obs_model, obs_target, n_symbols)
    out.update(freq_model=fm, freq_target=ft, total_variation=np.abs(fm - ft).sum() / 2)
    return out


@mutant(MUTANTS, "switches counted across sequence boundaries", wrong={"switch_model", "switch_target"})
def flattened(obs_model, obs_target, n_symbols):
    out = correct(obs_model, obs_target, n_symbols)
    for key, obs in (("switch_model", obs_model), ("switch_target", obs_target)):
        flat = obs.reshape(-1)
        out[key] = float(np.mean(np.diff(flat) != 0)) if flat.size > 1 else 0.0
    return out


@mutant(MUTANTS, "switch rate over the wrong number of pairs", wrong={"switch_model", "switch_target"})
def divided_by_T(obs_model, obs_target, n_symbols):
    out = correct(obs_model, obs_target, n_symbols)
    for key, obs in (("switch_model", obs_model), ("switch_target", obs_target)):
        out[key] = (obs[:, 1:] != obs[:, :-1]).sum() / obs.size
    return out


@mutant(MUTANTS, "total variation without the ½", wrong={"total_variation"})
def full_l1(obs_model, obs_target, n_symbols):
    out = correct(obs_model, obs_target, n_symbols)
    out["total_variation"] = np.abs(out["freq_model"] - out["freq_target"]).sum()
    return out


@mutant(MUTANTS, "you counted the pairs that STAY", wrong={"switch_model", "switch_target"})
def stays(obs_model, obs_target, n_symbols):
    out = correct(obs_model, obs_target, n_symbols)
    for key, obs in (("switch_model", obs_model), ("switch_target", obs_target)):
        same = obs[:, 1:] == obs[:, :-1]
        out[key] = float(same.mean()) if same.size else 0.0
    return out
