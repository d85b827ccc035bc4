r"""Lesson 07's toy: a "program" task whose right expert at layer l depends on the one at l − 1,
and the comparison of independent linear routers with the shared GRU router (RMoE).

The task. Each token carries a hidden program of L operations ``op_1 … op_L`` among ``n_ops``
and its target is the sum of one code vector per layer, ``y = Σ_l c_{l, op_l}`` (``c (L, n_ops,
m)`` fixed). The program is written in the token's features as a chain::

    op_1 = argmax(a)                       a (n_ops,) Gaussian features
    op_l = (op_{l−1} + 1 + b_l) mod n_ops  b_l = [s_l > 0], s_l a Gaussian feature, l = 2 … L

so the operation at layer l is a function of the one at layer l − 1 and of one new feature —
a running sum modulo n_ops, which no linear function of the raw features computes. A token is
``x = [a, s_2 … s_L, 1]`` (the constant 1 lets bias-free experts output a constant code). If
expert e of layer l learns to output c_{l,e} and the router of layer l sends each token to
expert op_l, the model is exact: the intended solution routes by the hidden program.

The models (:class:`RoutedProgramNet`): a linear embedding, L pre-norm residual MoE layers with
E = n_ops SwiGLU experts and k = 1 (the Switch gate p of the chosen expert, so the router learns
through it), a linear read-out of ``m`` numbers; routers independent (``"linear"``) or one shared GRU
(``"gru"``). Loss: mean squared error plus ``balance_coef`` × the balance loss.

The measures: test MSE; the mutual information between the experts chosen at layers l and l+1
(how much one routing decision tells about the next), the entropy of expert usage per layer (its
maximum, log2 E bits, is perfectly even use), and the mutual information between the chosen
expert and the true operation (log2 n_ops bits when the router has recovered the program).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from minirec.routing.torch_ops import MoEStack

__all__ = ["make_program_task", "RoutedProgramNet", "train_program_net", "evaluate_routing",
           "mutual_information", "entropy_bits"]


def make_program_task(n, *, n_ops=4, n_layers=4, m=8, seed):
    """``n`` tokens of the program task. Returns a dict of NumPy arrays: ``x (n, d_in)`` float32,
    ``y (n, m)`` float32, ``ops (n, L)`` int64 (the hidden program) and ``codes (L, n_ops, m)``.

    The codes depend only on (n_ops, n_layers, m) (seed 0 of their own generator), so that
    training and test sets drawn with different seeds share them.
    """
    codes = np.random.default_rng(0).normal(size=(n_layers, n_ops, m)) / np.sqrt(n_layers)
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n_ops))
    s = rng.normal(size=(n, n_layers - 1))
    ops = np.empty((n, n_layers), dtype=np.int64)
    ops[:, 0] = a.argmax(axis=1)                                       # op_1 = argmax a
    for layer in range(1, n_layers):
        ops[:, layer] = (ops[:, layer - 1] + 1 + (s[:, layer - 1] > 0)) % n_ops
    y = sum(codes[layer, ops[:, layer]] for layer in range(n_layers))  # y = Σ_l c_{l, op_l}
    x = np.concatenate([a, s, np.ones((n, 1))], axis=1)
    return {"x": x.astype(np.float32), "y": y.astype(np.float32), "ops": ops, "codes": codes}


class RoutedProgramNet(nn.Module):
    """embedding → L residual MoE layers (E experts, top-1) → read-out. The GRU router's
    projections are tied across layers by default (lesson 07's toy); ``router_projections=
    "per_layer"`` gives each layer its own, as RMoE's code does.

    ``forward(x (N, d_in)) → (y_hat (N, m), info)`` with ``info`` as :class:`MoEStack`'s.
    """

    def __init__(self, d_in, d_out, *, router, d=32, d_ff=16, n_experts=4, n_layers=4,
                 router_hidden=32, router_projections="tied", k=1):
        super().__init__()
        self.embed = nn.Linear(d_in, d)
        self.stack = MoEStack(d, n_experts, k, n_layers, d_ff, router=router,
                              router_hidden=router_hidden, router_projections=router_projections,
                              normalize=k > 1, norm=True)
        self.readout = nn.Linear(d, d_out)

    def forward(self, x, ops=None):
        """``ops (N, L)``, if given, routes token n at layer l to expert ops[n, l] (the oracle:
        the hidden program handed to the router)."""
        forced = None
        if ops is not None:
            E = self.stack.layers[0].n_experts
            forced = 20.0 * F.one_hot(ops.t(), E).to(x.dtype)   # p ≈ 1 on the program's expert
        h, info = self.stack(self.embed(x), forced)
        return self.readout(h), info


def train_program_net(router, train, *, steps=300, batch=256, lr=5e-3, balance_coef=0.01,
                      seed=0, **model_kw):
    """Train a :class:`RoutedProgramNet` with ``router`` ("linear", "gru", or "oracle": the
    hidden program routes, the linear routers are ignored) on the task dict ``train``. Returns
    ``(model, losses (steps,), seconds)``. Initialisation and batches are drawn from ``seed``."""
    x = torch.as_tensor(train["x"])
    y = torch.as_tensor(train["y"])
    ops = torch.as_tensor(train["ops"]) if router == "oracle" else None
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = RoutedProgramNet(x.shape[1], y.shape[1],
                                 router="linear" if router == "oracle" else router, **model_kw)
        model.oracle = router == "oracle"
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = np.empty(steps)
    t0 = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=gen)
        y_hat, info = model(x[idx], None if ops is None else ops[idx])
        mse = ((y_hat - y[idx]) ** 2).mean()
        loss = mse + balance_coef * info["balance_loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses[step] = mse.item()
    return model, losses, time.perf_counter() - t0


# --------------------------------------------------------------------------------------------
# Measures
# --------------------------------------------------------------------------------------------

def entropy_bits(labels, n_values):
    """Entropy in bits of the empirical distribution of ``labels (n,)`` over ``n_values``."""
    p = np.bincount(labels, minlength=n_values) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def mutual_information(a, b, n_a, n_b):
    """I(A; B) in bits from paired samples ``a, b (n,)``: Σ p(a,b) log2 p(a,b) / (p(a) p(b))."""
    joint = np.zeros((n_a, n_b))
    np.add.at(joint, (a, b), 1.0)
    joint /= len(a)
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log2(joint[nz] / (pa @ pb)[nz])).sum())


def evaluate_routing(model, test):
    """Test MSE and the routing measures of a trained model on the task dict ``test``.

    Returns a dict: ``mse``; ``choices (L, N)``; ``mi_consecutive`` (mean over l of
    I(c_l; c_{l+1})); ``usage_entropy`` (mean over l of H(c_l)); ``mi_with_op`` (mean over l of
    I(c_l; op_l)); and the per-layer lists behind each mean.
    """
    ops = torch.as_tensor(test["ops"]) if getattr(model, "oracle", False) else None
    with torch.no_grad():
        y_hat, info = model(torch.as_tensor(test["x"]), ops)
        mse = float(((y_hat - torch.as_tensor(test["y"])) ** 2).mean())
    choices = info["indices"][..., 0].numpy()                          # (L, N), k = 1
    L, E = choices.shape[0], info["logits"].shape[-1]
    n_ops = test["codes"].shape[1]
    mi_next = [mutual_information(choices[i], choices[i + 1], E, E) for i in range(L - 1)]
    usage = [entropy_bits(choices[i], E) for i in range(L)]
    mi_op = [mutual_information(choices[i], test["ops"][:, i], E, n_ops) for i in range(L)]
    return {"mse": mse, "choices": choices,
            "mi_consecutive": float(np.mean(mi_next)), "usage_entropy": float(np.mean(usage)),
            "mi_with_op": float(np.mean(mi_op)),
            "per_layer": {"mi_consecutive": mi_next, "usage_entropy": usage, "mi_with_op": mi_op}}
