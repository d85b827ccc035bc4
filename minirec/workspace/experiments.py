r"""The toy experiment of lesson 08: addition mod N by a global workspace, against a direct LSTM.

Data: every pair (a, b) with a < N and b ≤ b_max; target (a + b) mod N. Two held-out sets:

- *extrapolation*: every pair with b = b_max (an addend never seen in training);
- *interpolation*: a seeded fraction of the remaining pairs (each b is seen, not with that a).

The rest is the training set. Both models are trained full-batch with Adam on the cross-entropy
of the answer: the workspace model on log w_K with soft gates, the baseline on its logits. The
workspace model is tested with hard gates (one module per step). Sized to train in seconds on one
CPU thread; the lesson and the tests call these functions at their own sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from minirec.workspace.torch_ops import DirectLSTM, GlobalWorkspace

__all__ = ["AdditionSplit", "addition_split", "train_workspace", "train_direct", "predict",
           "accuracy", "TrainResult"]


@dataclass(frozen=True)
class AdditionSplit:
    """Integer arrays of addends, each a pair ``(a (P,), b (P,))`` with its own P."""

    n_digits: int
    b_max: int
    train: tuple[np.ndarray, np.ndarray]
    interpolation: tuple[np.ndarray, np.ndarray]
    extrapolation: tuple[np.ndarray, np.ndarray]


def addition_split(n_digits: int, b_max: int, *, held_out: float = 0.2, rng) -> AdditionSplit:
    """All pairs a < N, b ≤ b_max; b = b_max held out entirely, ``held_out`` of the rest at
    random (``rng``) for interpolation."""
    a, b = (g.ravel() for g in np.meshgrid(np.arange(n_digits), np.arange(b_max + 1),
                                            indexing="ij"))
    extra = b == b_max
    rest = np.flatnonzero(~extra)
    n_inter = int(round(held_out * rest.size))
    inter = np.zeros(a.size, bool)
    inter[rng.choice(rest, size=n_inter, replace=False)] = True
    train = ~extra & ~inter
    return AdditionSplit(n_digits, b_max, (a[train], b[train]), (a[inter], b[inter]),
                         (a[extra], b[extra]))


def _tensors(pair, device=None):
    return tuple(torch.as_tensor(x, dtype=torch.long, device=device) for x in pair)


@dataclass
class TrainResult:
    """The trained model and its loss after every step."""

    model: torch.nn.Module
    losses: list[float]


def _train(model, loss_fn, steps, lr):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    return TrainResult(model, losses)


def train_workspace(split: AdditionSplit, *, hidden_size: int = 16, steps: int = 200,
                    lr: float = 0.05, seed: int = 0, reads_workspace: bool = False,
                    device=None) -> TrainResult:
    """Train a :class:`GlobalWorkspace` with K = b_max + 2 steps on ``split.train``, soft gates;
    returns it in eval mode (hard gates)."""
    torch.manual_seed(seed)
    model = GlobalWorkspace(split.n_digits, split.b_max + 2, hidden_size,
                            reads_workspace=reads_workspace, device=device)
    a, b = _tensors(split.train, device)
    target = (a + b) % split.n_digits

    def loss():
        return F.nll_loss(model.log_answer(model(a, b, hard=False)), target)

    return _train(model, loss, steps, lr)


def train_direct(split: AdditionSplit, *, hidden_size: int = 32, steps: int = 300,
                 lr: float = 0.02, seed: int = 0, device=None) -> TrainResult:
    """Train the :class:`DirectLSTM` baseline on ``split.train``."""
    torch.manual_seed(seed)
    model = DirectLSTM(split.n_digits, hidden_size, device=device)
    a, b = _tensors(split.train, device)
    target = (a + b) % split.n_digits
    return _train(model, lambda: F.cross_entropy(model(a, b), target), steps, lr)


@torch.no_grad()
def predict(model, pair, device=None) -> np.ndarray:
    """The model's answers ``(P,)`` for the pairs; the workspace model with hard gates."""
    a, b = _tensors(pair, device)
    if isinstance(model, GlobalWorkspace):
        out = model(a, b, hard=True).workspace[-1]
    else:
        out = model(a, b)
    return out.argmax(dim=-1).cpu().numpy()


def accuracy(model, pair, n_digits: int, device=None) -> float:
    """Fraction of pairs whose answer is (a + b) mod N."""
    a, b = pair
    if len(a) == 0:
        return float("nan")
    return float(np.mean(predict(model, pair, device) == (a + b) % n_digits))
