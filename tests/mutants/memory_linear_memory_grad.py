"""Wrong answers to ``linear_memory_grad(M, k, v) -> G`` = ∇_M ‖M k − v‖² = 2 (M k − v) kᵀ."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(M, k, v):
    raise NotImplementedError


def correct(M, k, v):
    residual = np.einsum("ij,j->i", M, k) - v
    return 2 * residual[:, None] * k


@mutant(MUTANTS, "the factor 2 is missing", wrong={"G"})
def no_two(M, k, v):
    return np.outer(M @ k - v, k)


@mutant(MUTANTS, "the sign is flipped", wrong={"G"})
def descent_direction(M, k, v):
    return 2 * np.outer(v - M @ k, k)


@mutant(MUTANTS, "v is missing from the residual", wrong={"G"})
def forgot_v(M, k, v):
    return 2 * np.outer(M @ k, k)


@mutant(MUTANTS, "MEAN squared error", wrong={"G"})
def mean_squared(M, k, v):
    return np.outer(2 * (M @ k - v) / v.size, k)


@mutant(MUTANTS, "it looks transposed", wrong={"G"})
def k_first(M, k, v):
    return 2 * np.outer(k, M @ k - v)


# --- engine diagnoses (issue 11): wrong answers the check engine names by itself ----------------

@mutant(MUTANTS, "float32 rounding in your computation", wrong={"G"})
def residual_in_float32(M, k, v):
    # a float32 step inside a float64 function: the result is float64, its digits are not
    residual = (M @ k - v).astype(np.float32)
    return 2 * np.outer(residual, k)


def grad_with_torch_autograd(M, k, v):
    """Right, the gradient of ‖M k − v‖² by torch's autograd, converted back to NumPy."""
    import torch
    Mt = torch.tensor(M, requires_grad=True)
    loss = ((Mt @ torch.tensor(k) - torch.tensor(v)) ** 2).sum()
    loss.backward()
    return Mt.grad.numpy()


def grad_in_a_loop(M, k, v):
    """Right, entry by entry: ∂/∂M[i, j] Σ_r (Σ_c M[r, c] k[c] − v[r])² = 2 (M k − v)[i] k[j]."""
    G = np.empty_like(M)
    for i in range(M.shape[0]):
        residual = sum(M[i, c] * k[c] for c in range(M.shape[1])) - v[i]
        for j in range(M.shape[1]):
            G[i, j] = 2 * residual * k[j]
    return G


ALTERNATIVES = [grad_with_torch_autograd, grad_in_a_loop]
