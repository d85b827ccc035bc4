"""Wrong answers to ``titans_step(M, S, k, v, eta, theta, alpha) -> (M_new, S_new)``:
S_new = η S − θ · 2 (M k − v) kᵀ, M_new = (1 − α) M + S_new."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(M, S, k, v, eta, theta, alpha):
    raise NotImplementedError


def correct(M, S, k, v, eta, theta, alpha):
    surprise = -theta * 2 * np.outer(M @ k - v, k)
    S_new = eta * S + surprise
    return M - alpha * M + S_new, S_new


def _grad(M, k, v):
    return 2 * np.outer(M @ k - v, k)


@mutant(MUTANTS, "the forgetting also scales the new surprise", wrong={"M_new"})
def forget_everything(M, S, k, v, eta, theta, alpha):
    S = eta * S - theta * _grad(M, k, v)
    return (1 - alpha) * (M + S), S


@mutant(MUTANTS, "updated with the OLD momentum", wrong={"M_new"})
def memory_first(M, S, k, v, eta, theta, alpha):
    M_new = (1 - alpha) * M + S
    S_new = eta * S - theta * _grad(M, k, v)
    return M_new, S_new


@mutant(MUTANTS, "not the retention", wrong={"M_new"})
def alpha_keeps(M, S, k, v, eta, theta, alpha):
    S = eta * S - theta * _grad(M, k, v)
    return alpha * M + S, S


@mutant(MUTANTS, "the gradient is added", wrong={"M_new", "S_new"})
def ascent(M, S, k, v, eta, theta, alpha):
    S = eta * S + theta * _grad(M, k, v)
    return (1 - alpha) * M + S, S


@mutant(MUTANTS, "an exponential moving average", wrong={"M_new", "S_new"})
def ema_momentum(M, S, k, v, eta, theta, alpha):
    S = eta * S - (1 - eta) * theta * _grad(M, k, v)
    return (1 - alpha) * M + S, S


@mutant(MUTANTS, "must return the tuple (M_new, S_new); got a ndarray")
def returns_only_memory(M, S, k, v, eta, theta, alpha):
    S = eta * S - theta * _grad(M, k, v)
    return (1 - alpha) * M + S


# --- engine diagnoses (issue 11): wrong answers the check engine names by itself ----------------

def linear_memory_grad(M, k, v):
    """The learner's earlier exercise, wrong (the factor 2 is missing): titans_step below calls
    it as the notebook's global, and the check must blame it, not titans_step."""
    return np.outer(M @ k - v, k)


@mutant(MUTANTS, "the first wrong value came from your linear_memory_grad (called by titans_step)",
        wrong={"M_new", "S_new"})
def calls_a_wrong_grad(M, S, k, v, eta, theta, alpha):
    S_new = eta * S - theta * linear_memory_grad(M, k, v)
    return (1 - alpha) * M + S_new, S_new


# --- a pair in the wrong order (issue 11), more wrong answers, right answers written differently

@mutant(MUTANTS, "the pair is returned in the wrong order: titans_step returns (M_new, S_new)",
        wrong={"M_new", "S_new"})
def momentum_first(M, S, k, v, eta, theta, alpha):
    S_new = eta * S - theta * _grad(M, k, v)
    M_new = (1 - alpha) * M + S_new
    return S_new, M_new


@mutant(MUTANTS, "θ is missing", wrong={"M_new", "S_new"})
def no_step_size(M, S, k, v, eta, theta, alpha):
    S_new = eta * S - _grad(M, k, v)
    return (1 - alpha) * M + S_new, S_new


@mutant(MUTANTS, "the gradient's factor 2 is missing", wrong={"M_new", "S_new"})
def gradient_without_the_two(M, S, k, v, eta, theta, alpha):
    S_new = eta * S - theta * np.outer(M @ k - v, k)
    return (1 - alpha) * M + S_new, S_new


@mutant(MUTANTS, "the gradient was taken at the decayed memory", wrong={"M_new", "S_new"})
def gradient_at_the_forgotten_memory(M, S, k, v, eta, theta, alpha):
    # the surprise measured against (1 − α) M instead of M
    M_kept = (1 - alpha) * M
    S_new = eta * S - theta * _grad(M_kept, k, v)
    return M_kept + S_new, S_new


def titans_step_with_torch_autograd(M, S, k, v, eta, theta, alpha):
    """Right: the gradient of ‖M k − v‖² by torch's autograd (float64)."""
    import torch
    Mt = torch.tensor(M, requires_grad=True)
    ((Mt @ torch.from_numpy(k) - torch.from_numpy(v)) ** 2).sum().backward()
    S_new = eta * S - theta * Mt.grad.numpy()
    return (1 - alpha) * M + S_new, S_new


ALTERNATIVES = [titans_step_with_torch_autograd]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "η also multiplies the gradient step", wrong={"M_new", "S_new"})
def momentum_decay_on_both_terms(M, S, k, v, eta, theta, alpha):
    S_new = eta * (S - theta * _grad(M, k, v))
    return (1 - alpha) * M + S_new, S_new
