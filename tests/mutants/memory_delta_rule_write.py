"""Wrong answers to ``delta_rule_write(M, k, v, theta) -> M_new`` = M + θ (v − M k) kᵀ."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(M, k, v, theta):
    raise NotImplementedError


def correct(M, k, v, theta):
    prediction = np.einsum("ij,j->i", M, k)
    return M + theta * (v - prediction)[:, None] * k[None, :]


@mutant(MUTANTS, "Hebbian write, not the delta rule", wrong={"M_new"})
def hebbian(M, k, v, theta):
    return M + theta * np.outer(v, k)


@mutant(MUTANTS, "the error has the wrong sign", wrong={"M_new"})
def error_backwards(M, k, v, theta):
    err = M @ k - v
    return M + theta * np.outer(err, k)


@mutant(MUTANTS, "θ is missing", wrong={"M_new"})
def forgot_theta(M, k, v, theta):
    return M + np.outer(v - M.dot(k), k)


@mutant(MUTANTS, "the old memory is dropped", wrong={"M_new"})
def only_the_increment(M, k, v, theta):
    return theta * np.outer(v - M @ k, k)


@mutant(MUTANTS, "normalised delta rule", wrong={"M_new"})
def normalised(M, k, v, theta):
    return M + theta * np.outer(v - M @ k, k / np.dot(k, k))


@mutant(MUTANTS, "it looks transposed", wrong={"M_new"})
def outer_the_wrong_way(M, k, v, theta):
    return M.T + theta * np.outer(k, v - M @ k)


# --- engine diagnoses (issue 11): wrong answers the check engine names by itself ----------------

@mutant(MUTANTS, "a dot product where an outer product belongs")
def dot_for_outer(M, k, v, theta):
    return M + theta * (v - M @ k) @ k


@mutant(MUTANTS, "a dot product where an outer product belongs")
def np_dot_for_outer(M, k, v, theta):
    err = v - M.dot(k)
    return M + theta * np.dot(err, k)


@mutant(MUTANTS, "an element-wise product where an outer product belongs")
def elementwise_for_outer(M, k, v, theta):
    return M + theta * (v - M @ k) * k


@mutant(MUTANTS, "`k @ M` multiplies (5,) and (3, 5)")
def key_on_the_left(M, k, v, theta):
    return M + theta * np.outer(v - k @ M, k)


@mutant(MUTANTS, "float32 rounding in your computation", wrong={"M_new"})
def torch_in_float32(M, k, v, theta):
    # torch.tensor(...).float(): every step in float32, the result converted back to float64
    import torch
    Mt, kt, vt = (torch.tensor(a).float() for a in (M, k, v))
    return (Mt + theta * torch.outer(vt - Mt @ kt, kt)).double().numpy()


def delta_in_a_loop(M, k, v, theta):
    """Right, entry by entry."""
    M_new = M.copy()
    for i in range(M.shape[0]):
        error = v[i] - sum(M[i, j] * k[j] for j in range(M.shape[1]))
        for j in range(M.shape[1]):
            M_new[i, j] = M[i, j] + theta * error * k[j]
    return M_new


def delta_with_torch(M, k, v, theta):
    """Right, with torch ops in float64."""
    import torch
    Mt, kt, vt = (torch.from_numpy(a) for a in (M, k, v))
    return (Mt + theta * torch.outer(vt - Mt @ kt, kt)).numpy()


ALTERNATIVES = [delta_in_a_loop, delta_with_torch]


# --- more wrong answers (issue 11, A2) -----------------------------------------------------

@mutant(MUTANTS, "right on case 3 but wrong on cases 1, 2, 4", wrong={"M_new"})
def theta_on_the_target_only(M, k, v, theta):
    # θ scales v but not the memory's prediction: (θ v − M k) kᵀ, no suspect
    return M + np.outer(theta * v - M @ k, k)


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "without the .T, M (3, 5) fits")
def memory_read_through_its_transpose(M, k, v, theta):
    recalled = M.T @ k                                     # runs only when d_v == d_k
    return M + theta * np.outer(v - recalled, k)


# --- probe 2 (issue 11): the causes behind a second learner's mistakes, written anew ------

@mutant(MUTANTS, "you normalised the key to unit length first", wrong={"M_new"})
def written_with_a_unit_key(M, k, v, theta):
    direction = k / np.sqrt(np.sum(k * k))
    return M + theta * np.outer(v - M @ direction, direction)
