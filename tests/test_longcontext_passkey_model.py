"""The lesson's trained toy at a tiny size: seeded and deterministic, the loss falls, the model's
logits have the task's shape, and the accuracy counts only the asked position."""

from __future__ import annotations

import numpy as np
import torch

from minirec.longcontext.passkey_model import (
    N_DIGITS,
    VOCAB,
    PasskeySSM,
    passkey_accuracy,
    train_passkey_ssm,
)
from minirec.tasks import passkey


def test_training_is_deterministic_under_a_seed_and_learns():
    torch.set_num_threads(1)
    a = train_passkey_ssm(2, train_len=8, steps=120, batch=16, d_model=8, seed=3)
    b = train_passkey_ssm(2, train_len=8, steps=5, batch=16, d_model=8, seed=3)
    assert a.losses[:5] == b.losses
    assert np.mean(a.losses[-5:]) < 0.1 < np.mean(a.losses[:5])
    assert passkey_accuracy(a.model, 8, n=200) > 0.9              # chance: 1 / N_DIGITS


def test_model_shapes_and_accuracy_by_hand():
    model = PasskeySSM(4, 3, generator=torch.Generator().manual_seed(0))
    task = passkey(5, 10, n_digits=N_DIGITS, rng=np.random.default_rng(0))
    logits = model(torch.from_numpy(task.inputs))
    assert logits.shape == (10, 5, VOCAB)

    class Oracle(torch.nn.Module):
        """Predicts, at every step, the passkey of the sequence drawn with the same seed."""

        def forward(self, tokens):
            key = passkey(tokens.shape[1], tokens.shape[0], n_digits=N_DIGITS,
                          rng=np.random.default_rng(1)).key[0]
            out = torch.zeros(tokens.shape + (VOCAB,))
            out[:, torch.arange(tokens.shape[1]), torch.from_numpy(key)] = 1.0
            return out

    assert passkey_accuracy(Oracle(), 20, n=50, seed=1) == 1.0
    assert passkey_accuracy(Oracle(), 20, n=50, seed=2) < 0.5
