r"""An RNN that emulates an HMM (Torre et al. 2025), in PyTorch: model, losses, training, analysis.

Notation (as in :mod:`minirec.hmm.reference`, plus)::

    H        hidden units;  d_in  noise channels;  M  symbols;  T  steps;  N  sequences
    xi_t     (N, d_in)   Gaussian noise, the RNN's only input
    h_t      (N, H)      h_t = ReLU(W_in xi_t + W_hh h_{t−1})           (no bias, as the paper)
    y_t      (N, M)      one-hot symbol: hard Gumbel-softmax of W_out h_t (straight-through)

Time is the first axis: sequences are ``(T, N, ...)``. The network is trained so that batches of
its sequences (flattened one-hots, ``(N, T·M)``) are distributed like the HMM's: the loss is a
distribution distance between two point clouds, not a per-step likelihood — the RNN never sees
the HMM's states. Two distances are implemented here: :func:`mmd` (Gaussian-kernel maximum mean
discrepancy) and :func:`sinkhorn_divergence` (debiased entropic optimal transport, the paper's
loss via geomloss with blur 0.2).

Analysis (the paper's reverse engineering, at toy scale): :func:`zero_input_trajectory` (the
network without noise collapses to a fixed point), :func:`pca` (noise-driven orbits),
:func:`kick_scores` (units whose activity jumps at symbol switches). The emission statistics
are in :mod:`minirec.hmm.reference` (:func:`~minirec.hmm.reference.compare_emissions`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = [
    "HMMEmulator", "gumbel_hard", "generate", "one_hot_sequences", "mmd", "sinkhorn_divergence",
    "train_emulator", "zero_input_trajectory", "pca", "kick_scores",
]


class HMMEmulator(nn.Module):
    """h_t = ReLU(W_in xi_t + W_hh h_{t−1}), logits_t = W_out h_t. Parameters as ``nn.RNN``
    (``rnn.weight_ih_l0 (H, d_in)``, ``rnn.weight_hh_l0 (H, H)``) and ``readout.weight (M, H)``."""

    def __init__(self, n_symbols: int, hidden: int = 50, d_in: int = 10):
        super().__init__()
        self.rnn = nn.RNN(d_in, hidden, nonlinearity="relu", bias=False)
        self.readout = nn.Linear(hidden, n_symbols, bias=False)

    @property
    def d_in(self) -> int:
        return self.rnn.input_size

    @property
    def hidden(self) -> int:
        return self.rnn.hidden_size

    def forward(self, noise, h0):
        """``noise (T, N, d_in)``, ``h0 (N, H)`` → ``(logits (T, N, M), h (T, N, H))``."""
        h, _ = self.rnn(noise, h0[None])
        return self.readout(h), h


def gumbel_hard(logits, *, tau: float = 1.0, generator=None):
    """One-hot samples from softmax(logits) (the Gumbel-max trick), with the gradient of the
    soft sample y_soft = softmax((logits + g) / tau) (straight-through):
    y = onehot(argmax(logits + g)) − y_soft.detach() + y_soft, g = −log(−log U)."""
    u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
    g = -torch.log(-torch.log(u.clamp_min(torch.finfo(logits.dtype).tiny)))
    y_soft = torch.softmax((logits + g) / tau, dim=-1)
    index = y_soft.argmax(dim=-1, keepdim=True)
    y_hard = torch.zeros_like(y_soft).scatter_(-1, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


def generate(model, n, T, *, generator, noise_scale=1.0, h0=None, tau=1.0):
    """Run the emulator on fresh noise. Returns a dict: ``onehot (T, n, M)`` (differentiable),
    ``symbols (T, n)`` int64, ``h (T, n, H)``, ``noise (T, n, d_in)``. ``h0`` defaults to
    N(0, I), as in training; ``noise_scale=0`` runs it without input."""
    dtype = model.readout.weight.dtype
    noise = noise_scale * torch.randn(T, n, model.d_in, generator=generator, dtype=dtype)
    if h0 is None:
        h0 = torch.randn(n, model.hidden, generator=generator, dtype=dtype)
    logits, h = model(noise, h0)
    onehot = gumbel_hard(logits, tau=tau, generator=generator)
    return {"onehot": onehot, "symbols": onehot.argmax(-1), "h": h, "noise": noise}


def one_hot_sequences(obs, n_symbols, dtype=torch.float32):
    """NumPy ``obs (N, T)`` → flattened one-hots ``(N, T·M)``, the loss's point cloud."""
    x = torch.nn.functional.one_hot(torch.as_tensor(obs), n_symbols).to(dtype)
    return x.reshape(x.shape[0], -1)


def _sq_dists(x, y):
    return (x.pow(2).sum(1)[:, None] + y.pow(2).sum(1)[None, :] - 2 * x @ y.T).clamp_min(0)


def mmd(x, y, *, bandwidths=(1.0, 4.0, 16.0)):
    """Squared maximum mean discrepancy (biased, V-statistic) between point clouds ``x (n, D)``
    and ``y (m, D)`` with a sum of Gaussian kernels k(a, b) = Σ_s exp(−‖a − b‖² / (2 s²)):

        MMD² = mean k(x, x') + mean k(y, y') − 2 mean k(x, y)   (>= 0; 0 iff the clouds match)
    """
    def k(a, b):
        d = _sq_dists(a, b)
        return sum(torch.exp(-d / (2 * s * s)) for s in bandwidths)
    return k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()


def _entropic_ot(x, y, eps_schedule, n_final):
    """Entropic OT cost OT_eps(x, y) between uniform clouds, cost C = ‖a − b‖² / 2.

    Log-domain Sinkhorn on the dual potentials f (n,), g (m,), eps annealed down the schedule
    (no gradient), then one last pair of updates with gradient: at the optimum the value
    <a, f> + <b, g> has the gradient of its cost term only (the envelope theorem).
    """
    C = _sq_dists(x, y) / 2
    log_a = -math.log(x.shape[0])
    log_b = -math.log(y.shape[0])

    def update_f(g, eps, C):
        return -eps * torch.logsumexp(log_b + (g[None, :] - C) / eps, dim=1)

    def update_g(f, eps, C):
        return -eps * torch.logsumexp(log_a + (f[:, None] - C) / eps, dim=0)

    with torch.no_grad():
        Cd = C.detach()
        f = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        g = torch.zeros(y.shape[0], dtype=x.dtype, device=x.device)
        for eps in eps_schedule + [eps_schedule[-1]] * n_final:
            f = update_f(g, eps, Cd)                # alternate: f from g, then g from f
            g = update_g(f, eps, Cd)
    eps = eps_schedule[-1]
    f = update_f(g, eps, C)
    g = update_g(f, eps, C)
    return f.mean() + g.mean()


def sinkhorn_divergence(x, y, *, blur=0.2, scaling=0.5, n_final=10):
    """Debiased Sinkhorn divergence between point clouds ``x (n, D)``, ``y (m, D)``:

        S(x, y) = OT_eps(x, y) − (OT_eps(x, x) + OT_eps(y, y)) / 2,   eps = blur²,

    cost ‖a − b‖² / 2 (geomloss's ``SamplesLoss("sinkhorn", p=2, blur=blur)``). eps starts at
    the largest cost and shrinks by ``scaling`` per iteration down to blur²."""
    with torch.no_grad():
        diameter = float(_sq_dists(torch.cat([x, y]), torch.cat([x, y])).max()) / 2
    eps_end = blur ** 2
    schedule = [max(diameter, eps_end)]
    while schedule[-1] * scaling > eps_end:
        schedule.append(schedule[-1] * scaling)
    schedule.append(eps_end)
    return (_entropic_ot(x, y, schedule, n_final)
            - 0.5 * _entropic_ot(x, x, schedule, n_final)
            - 0.5 * _entropic_ot(y, y, schedule, n_final))


def train_emulator(model, target_batch, *, steps, batch, generator, T, lr=1e-2, loss="mmd",
                   clip=0.9, **loss_kw):
    """Adam on the distance between the emulator's sequences and the HMM's.

    ``target_batch(step) -> obs (batch, T)`` draws the HMM's sequences (NumPy ints).
    ``loss``: "mmd" or "sinkhorn". Returns the losses, one float per step.
    """
    distance = {"mmd": mmd, "sinkhorn": sinkhorn_divergence}[loss]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n_symbols = model.readout.out_features
    dtype = model.readout.weight.dtype
    losses = []
    for step in range(steps):
        out = generate(model, batch, T, generator=generator)
        x = out["onehot"].transpose(0, 1).reshape(batch, -1)       # (N, T·M)
        y = one_hot_sequences(target_batch(step), n_symbols, dtype)
        value = distance(x, y, **loss_kw)
        opt.zero_grad()
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(float(value.detach()))
    return losses


# --------------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def zero_input_trajectory(model, T, h0):
    """The network with xi = 0 from ``h0 (N, H)``: returns ``h (T, N, H)`` as NumPy. A single
    fixed point shows as every trajectory converging to the same h*."""
    noise = torch.zeros(T, h0.shape[0], model.d_in, dtype=h0.dtype)
    return model(noise, h0)[1].numpy()


def pca(points, n_components=2):
    """Principal components of ``points (S, H)`` (NumPy). Returns ``(projected (S, k),
    components (k, H), explained_variance_ratio (k,), mean (H,))``."""
    mean = points.mean(axis=0)
    _, s, vt = np.linalg.svd(points - mean, full_matrices=False)
    # fix each component's sign (largest loading positive) so that runs are reproducible
    signs = np.sign(vt[np.arange(vt.shape[0]), np.argmax(np.abs(vt), axis=1)])
    vt = vt * signs[:, None]
    ratio = s ** 2 / np.sum(s ** 2)
    comps = vt[:n_components]
    return (points - mean) @ comps.T, comps, ratio[:n_components], mean


def kick_scores(h, symbols):
    """How much each unit moves at a symbol switch, relative to elsewhere.

    ``h (T, N, H)``, ``symbols (T, N)`` (NumPy). A switch at t is symbols[t] ≠ symbols[t−1].
    Score of unit i: mean abs(h_t[i] − h_{t−1}[i]) over switch steps divided by the same mean over
    all other steps (1 = no special role; the paper's "kick neurons" stand out far above).
    Returns ``(H,)``; NaN where a unit never moves.
    """
    dh = np.abs(np.diff(h, axis=0))                    # (T−1, N, H)
    switch = symbols[1:] != symbols[:-1]               # (T−1, N)
    at = dh[switch].mean(axis=0)
    away = dh[~switch].mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return at / away
