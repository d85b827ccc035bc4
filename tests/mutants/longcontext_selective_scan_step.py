"""Wrong answers to one step of the selective scan:
``selective_scan_step(h, x_t, delta_t, A, B_t, C_t) -> (h_new, y_t)``,
h (B, D, N), x_t, delta_t (B, D), A (D, N), B_t, C_t (B, N)."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(h, x_t, delta_t, A, B_t, C_t):
    raise NotImplementedError


def correct(h, x_t, delta_t, A, B_t, C_t):
    batch, width, n_state = h.shape
    h_new = np.empty_like(h)
    y = np.zeros((batch, width))
    for b in range(batch):
        for d in range(width):
            for n in range(n_state):
                decay = np.exp(delta_t[b, d] * A[d, n])
                h_new[b, d, n] = decay * h[b, d, n] + delta_t[b, d] * B_t[b, n] * x_t[b, d]
                y[b, d] += h_new[b, d, n] * C_t[b, n]
    return h_new, y


@mutant(MUTANTS, "the decay has no Δ", wrong={"h_new", "y_t"})
def decay_without_delta(h, x_t, delta_t, A, B_t, C_t):
    h_new = np.exp(A)[None] * h + (delta_t * x_t)[:, :, None] * B_t[:, None, :]
    return h_new, (h_new * C_t[:, None, :]).sum(-1)


@mutant(MUTANTS, "the decay's sign is flipped", wrong={"h_new", "y_t"})
def growing_decay(h, x_t, delta_t, A, B_t, C_t):
    h_new = np.exp(-delta_t[:, :, None] * A) * h + (delta_t * x_t)[:, :, None] * B_t[:, None, :]
    return h_new, np.einsum("bdn,bn->bd", h_new, C_t)


@mutant(MUTANTS, "Euler discretisation of A", wrong={"h_new", "y_t"})
def euler_decay(h, x_t, delta_t, A, B_t, C_t):
    h_new = (1 + delta_t[:, :, None] * A) * h + (delta_t * x_t)[:, :, None] * B_t[:, None, :]
    return h_new, np.einsum("bdn,bn->bd", h_new, C_t)


@mutant(MUTANTS, "the input is not scaled by Δ", wrong={"h_new", "y_t"})
def input_without_delta(h, x_t, delta_t, A, B_t, C_t):
    h_new = np.exp(delta_t[:, :, None] * A) * h + x_t[:, :, None] * B_t[:, None, :]
    return h_new, np.einsum("bdn,bn->bd", h_new, C_t)


@mutant(MUTANTS, "off by one in time", wrong={"y_t"})
def read_old_state(h, x_t, delta_t, A, B_t, C_t):
    y = np.einsum("bdn,bn->bd", h, C_t)
    h_new = np.exp(delta_t[:, :, None] * A) * h + (delta_t * x_t)[:, :, None] * B_t[:, None, :]
    return h_new, y


@mutant(MUTANTS, "B_t and C_t are swapped", wrong={"h_new", "y_t"})
def b_and_c_swapped(h, x_t, delta_t, A, B_t, C_t):
    h_new = np.exp(delta_t[:, :, None] * A) * h + (delta_t * x_t)[:, :, None] * C_t[:, None, :]
    return h_new, np.einsum("bdn,bn->bd", h_new, B_t)


@mutant(MUTANTS, "y_t should have shape (B, D)", wrong={"y_t"})
def y_sums_over_channels(h, x_t, delta_t, A, B_t, C_t):
    h_new = np.exp(delta_t[:, :, None] * A) * h + (delta_t * x_t)[:, :, None] * B_t[:, None, :]
    return h_new, (h_new * C_t[:, None, :]).sum(axis=1)


# --- more wrong answers (issue 11) and right answers written differently -----------------

@mutant(MUTANTS, "x_t is missing from the input term", wrong={"h_new", "y_t"})
def input_without_x(h, x_t, delta_t, A, B_t, C_t):
    h_new = np.exp(delta_t[:, :, None] * A) * h + delta_t[:, :, None] * B_t[:, None, :]
    return h_new, np.einsum("bdn,bn->bd", h_new, C_t)


@mutant(MUTANTS, "no known mistake matches your result", wrong={"h_new", "y_t"})
def input_scaled_by_the_decay(h, x_t, delta_t, A, B_t, C_t):
    # the input written through Ā as well: Ā (h + Δ B x), no suspect
    a = np.exp(delta_t[:, :, None] * A)
    h_new = a * (h + (delta_t * x_t)[:, :, None] * B_t[:, None, :])
    return h_new, np.einsum("bdn,bn->bd", h_new, C_t)


def selective_step_with_torch(h, x_t, delta_t, A, B_t, C_t):
    """Right, with torch tensors, converted back to NumPy."""
    import torch
    h, x_t, delta_t, A, B_t, C_t = (torch.from_numpy(a) for a in (h, x_t, delta_t, A, B_t, C_t))
    h_new = torch.exp(delta_t[..., None] * A) * h + (delta_t * x_t)[..., None] * B_t[:, None, :]
    return h_new.numpy(), (h_new @ C_t[..., None])[..., 0].numpy()


def selective_step_by_einsum(h, x_t, delta_t, A, B_t, C_t):
    """Right, the outer products by einsum."""
    decay = np.exp(np.einsum("bd,dn->bdn", delta_t, A))
    h_new = decay * h + np.einsum("bd,bd,bn->bdn", delta_t, x_t, B_t)
    return h_new, np.einsum("bdn,bn->bd", h_new, C_t)


ALTERNATIVES = [selective_step_with_torch, selective_step_by_einsum]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "the input term is the exact zero-order hold", wrong={"h_new", "y_t"})
def textbook_zero_order_hold(h, x_t, delta_t, A, B_t, C_t):
    a = np.exp(delta_t[:, :, None] * A[None])
    b_bar = (a - 1.0) / A[None] * B_t[:, None, :]         # A⁻¹ (e^{ΔA} − 1) B
    h_new = a * h + b_bar * x_t[:, :, None]
    return h_new, (h_new * C_t[:, None, :]).sum(axis=-1)
