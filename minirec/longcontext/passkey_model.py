r"""A one-layer selective-SSM language model trained on passkey retrieval (lesson 13's trained toy).

    tokens (T, B) → embedding (T, B, D) → SelectiveSSM(D, N) → linear (T, B, V) logits

Trained with cross-entropy on the asked positions only (:func:`minirec.tasks.passkey`'s
targets), on sequences of one length, then tested on longer ones. This is Stuffed Mamba's
length-generalisation experiment shrunk to a CPU: the question is whether the state learned at
the training length still holds the passkey when far more filler follows it, and whether the
answer depends on the state size N.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from minirec.ssm.torch_ops import SelectiveSSM
from minirec.tasks.recall import IGNORE, passkey

__all__ = ["PasskeySSM", "PasskeyRun", "train_passkey_ssm", "passkey_accuracy", "N_DIGITS"]

#: Digits of the passkey (the classes to recall); one filler token; MARK and ASK.
N_DIGITS = 8
VOCAB = N_DIGITS + 1 + 2


class PasskeySSM(nn.Module):
    """Embedding → :class:`~minirec.ssm.torch_ops.SelectiveSSM` → linear read-out.
    ``forward(tokens (T, B) int64) -> logits (T, B, V)``."""

    def __init__(self, d_model, d_state, *, generator, vocab=VOCAB):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.ssm = SelectiveSSM(d_model, d_state, generator=generator)
        self.head = nn.Linear(d_model, vocab)
        with torch.no_grad():                                       # seeded like the SSM
            self.embed.weight.normal_(generator=generator)
            bound = 1.0 / d_model**0.5
            self.head.weight.uniform_(-bound, bound, generator=generator)
            self.head.bias.zero_()

    def forward(self, tokens):
        return self.head(self.ssm(self.embed(tokens))[0])


def _batch(size, seq_len, rng):
    task = passkey(size, seq_len, n_digits=N_DIGITS, rng=rng)
    return torch.from_numpy(task.inputs), torch.from_numpy(task.targets)


@dataclass
class PasskeyRun:
    model: PasskeySSM
    losses: list


def train_passkey_ssm(d_state, *, train_len=32, steps=200, batch=16, d_model=8, lr=1e-2,
                      seed=0):
    """Train a :class:`PasskeySSM` with Adam on fresh passkey batches of length ``train_len``.
    Every draw is seeded by ``seed``. Returns a :class:`PasskeyRun` (model, loss per step)."""
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = PasskeySSM(d_model, d_state, generator=generator)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        tokens, targets = _batch(batch, train_len, rng)
        logits = model(tokens)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1),
                               ignore_index=IGNORE)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return PasskeyRun(model, losses)


@torch.no_grad()
def passkey_accuracy(model, seq_len, *, n=256, seed=1):
    """Fraction of ``n`` fresh passkey sequences of length ``seq_len`` whose digit the model
    predicts at ``ASK`` (the passkey at a uniform depth)."""
    tokens, targets = _batch(n, seq_len, np.random.default_rng(seed))
    predicted = model(tokens).argmax(-1)
    asked = targets != IGNORE
    return float((predicted[asked] == targets[asked]).float().mean())
