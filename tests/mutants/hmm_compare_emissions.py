"""Wrong answers to ``compare_emissions(obs_model, obs_target, n_symbols) -> dict`` (symbol
frequencies, their total variation distance, the switch rates)."""

import warnings

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


# --- the guard for sequences of one symbol (issue 11), more wrong and right answers ---------

@mutant(MUTANTS, "a sequence of one symbol (T = 1) has no consecutive pairs")
def mean_of_no_pairs(obs_model, obs_target, n_symbols):
    out = {}
    for name, obs in (("model", obs_model), ("target", obs_target)):
        out[f"freq_{name}"] = np.bincount(obs.ravel(), minlength=n_symbols) / obs.size
        with warnings.catch_warnings():          # a learner sees "Mean of empty slice" here
            warnings.simplefilter("ignore", RuntimeWarning)
            out[f"switch_{name}"] = float(np.mean(obs[:, 1:] != obs[:, :-1]))   # NaN when T = 1
    out["total_variation"] = 0.5 * np.abs(out["freq_model"] - out["freq_target"]).sum()
    return out


@mutant(MUTANTS, "you counted the pairs that STAY", wrong={"switch_model", "switch_target"})
def stays_with_diff(obs_model, obs_target, n_symbols):
    out = correct(obs_model, obs_target, n_symbols)
    for key, obs in (("switch_model", obs_model), ("switch_target", obs_target)):
        out[key] = float(np.mean(np.diff(obs, axis=1) == 0)) if obs.shape[1] > 1 else 0.0
    return out


@mutant(MUTANTS, "no known mistake matches your result", wrong={"total_variation"})
def largest_gap_not_total(obs_model, obs_target, n_symbols):
    # the largest single difference, max_m |p_m − q_m|, for the total variation
    out = correct(obs_model, obs_target, n_symbols)
    out["total_variation"] = np.abs(out["freq_model"] - out["freq_target"]).max()
    return out


@mutant(MUTANTS, "One frequency per symbol, zeros included", wrong={"freq_model"})
def frequencies_of_the_symbols_seen(obs_model, obs_target, n_symbols):
    out = correct(obs_model, obs_target, n_symbols)
    out["freq_model"] = np.unique(obs_model, return_counts=True)[1] / obs_model.size
    out["freq_target"] = np.unique(obs_target, return_counts=True)[1] / obs_target.size
    return out


def emissions_with_torch(obs_model, obs_target, n_symbols):
    """Right, with torch.bincount and float64 means, converted back to NumPy."""
    import torch
    out = {}
    for name, obs in (("model", obs_model), ("target", obs_target)):
        o = torch.from_numpy(obs)
        out[f"freq_{name}"] = (torch.bincount(o.flatten(), minlength=n_symbols).double()
                               / o.numel()).numpy()
        pairs = (o[:, 1:] != o[:, :-1]).double()
        out[f"switch_{name}"] = pairs.mean().item() if pairs.numel() else 0.0
    out["total_variation"] = 0.5 * np.abs(out["freq_model"] - out["freq_target"]).sum()
    return out


ALTERNATIVES = [emissions_with_torch]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "frequencies divided by the number of sequences N",
        wrong={"freq_model", "freq_target", "total_variation"})
def frequencies_per_sequence(obs_model, obs_target, n_symbols):
    out = correct(obs_model, obs_target, n_symbols)
    for key, obs in (("freq_model", obs_model), ("freq_target", obs_target)):
        out[key] = np.array([(obs == s).sum() for s in range(n_symbols)]) / obs.shape[0]
    out["total_variation"] = 0.5 * np.abs(out["freq_model"] - out["freq_target"]).sum()
    return out


# --- probe 2 (issue 11): the causes behind a second learner's mistakes, written anew ------

@mutant(MUTANTS, "multiplied by N on every case", wrong={"freq_model", "freq_target",
                                                         "total_variation"})
def frequencies_over_one_sequence_length(obs_model, obs_target, n_symbols):
    # each count divided by T, the length of one sequence, not by all N·T symbols
    out = correct(obs_model, obs_target, n_symbols)
    fm = np.bincount(obs_model.ravel(), minlength=n_symbols) / obs_model.shape[1]
    ft = np.bincount(obs_target.ravel(), minlength=n_symbols) / obs_target.shape[1]
    return {**out, "freq_model": fm, "freq_target": ft,
            "total_variation": 0.5 * np.abs(fm - ft).sum()}


@mutant(MUTANTS, "switches counted between sequences", wrong={"switch_model", "switch_target"})
def switches_down_the_batch(obs_model, obs_target, n_symbols):
    # a change from sequence n to sequence n + 1 at the same step counted as a switch
    out = correct(obs_model, obs_target, n_symbols)

    def rate(obs):
        changed = obs[1:] != obs[:-1]
        return float(changed.mean()) if changed.size else 0.0
    return {**out, "switch_model": rate(obs_model), "switch_target": rate(obs_target)}
