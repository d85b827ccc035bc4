"""Wrong answers to the recall accuracy metric: ``recall_accuracy(logits, targets) -> float``,
logits (T, B, V), targets (T, B) with -100 where nothing is asked."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(logits, targets):
    raise NotImplementedError


def correct(logits, targets):
    hits = asked = 0
    for t in range(targets.shape[0]):
        for b in range(targets.shape[1]):
            if targets[t, b] != -100:
                asked += 1
                hits += int(np.argmax(logits[t, b]) == targets[t, b])
    return hits / asked


@mutant(MUTANTS, "the positions where nothing is asked are counted (as misses)",
        wrong={"accuracy"})
def mean_over_everything(logits, targets):
    return float((logits.argmax(-1) == targets).mean())


@mutant(MUTANTS, "the positions where nothing is asked are counted (as hits)",
        wrong={"accuracy"})
def ignored_count_as_right(logits, targets):
    ok = (logits.argmax(-1) == targets) | (targets == -100)
    return ok.mean()


@mutant(MUTANTS, "argmax over the wrong axis")
def argmax_over_batch(logits, targets):
    pred = logits.argmax(axis=1)
    mask = targets != -100
    return float((pred == targets)[mask].mean())


@mutant(MUTANTS, "you scored whole sequences", wrong={"accuracy"})
def exact_match_per_sequence(logits, targets):
    pred = logits.argmax(-1)
    scores = []
    for b in range(targets.shape[1]):
        m = targets[:, b] != -100
        scores.append(float(np.all(pred[m, b] == targets[m, b])))
    return sum(scores) / len(scores)


@mutant(MUTANTS, "shifted by one step", wrong={"accuracy"})
def shifted_targets(logits, targets):
    pred = logits.argmax(-1)[:-1]
    nxt = targets[1:]
    m = nxt != -100
    return float((pred[m] == nxt[m]).mean())


@mutant(MUTANTS, "the result must be one number")
def per_sequence_accuracies(logits, targets):
    pred = logits.argmax(-1)
    m = targets != -100
    return ((pred == targets) & m).sum(axis=0) / m.sum(axis=0)


# --- engine diagnoses (issue 11): wrong answers the check engine names by itself ----------------

@mutant(MUTANTS, "a percentage instead of a fraction", wrong={"accuracy"})
def percentage(logits, targets):
    asked = targets != -100
    return 100.0 * float((logits.argmax(-1)[asked] == targets[asked]).mean())


@mutant(MUTANTS, "an integer division", wrong={"accuracy"})
def integer_division(logits, targets):
    asked = targets != -100
    hits = int((logits.argmax(-1) == targets)[asked].sum())
    return hits // int(asked.sum())


def accuracy_with_torch(logits, targets):
    """Right, the torch idiom: a float32 mean of the hits (within float32 rounding)."""
    import torch
    pred, tgt = torch.from_numpy(logits).argmax(-1), torch.from_numpy(targets)
    asked = tgt != -100
    return (pred[asked] == tgt[asked]).float().mean().item()


def accuracy_with_a_masked_array(logits, targets):
    """Right, with NumPy's masked arrays."""
    hits = np.ma.masked_array(logits.argmax(-1) == targets, mask=targets == -100)
    return float(hits.mean())


ALTERNATIVES = [accuracy_with_torch, accuracy_with_a_masked_array]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "with a boolean mask of shape")
def prediction_over_the_batch_axis(logits, targets):
    guess = np.argmax(logits, axis=1)                      # (T, V): the batch axis reduced
    mask = targets >= 0
    return float(np.mean(guess[mask] == targets[mask]))


# --- probe 2 (issue 11): the causes behind a second learner's mistakes, written anew ------

@mutant(MUTANTS, "targets > 0", wrong={"accuracy"})
def asked_where_the_target_is_positive(logits, targets):
    asked = targets > 0
    return float(np.mean(logits.argmax(axis=-1)[asked] == targets[asked]))


@mutant(MUTANTS, "a mean of means", wrong={"accuracy"})
def mean_of_sequence_accuracies(logits, targets):
    rates = []
    for b in range(targets.shape[1]):
        asked = targets[:, b] != -100
        if asked.any():
            rates.append(np.mean(logits[:, b].argmax(axis=-1)[asked] == targets[asked, b]))
    return float(np.mean(rates))
