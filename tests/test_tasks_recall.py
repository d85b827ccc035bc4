"""Recall tasks: shapes, determinism under a seed, answers right by construction (recomputed
from the inputs alone), bad arguments rejected with a message naming them."""

from __future__ import annotations

import numpy as np
import pytest

from minirec.tasks import IGNORE, mqar, passkey, read_twice_tokens, set_disjointness


def rng(seed=0):
    return np.random.default_rng(seed)


# --- MQAR ------------------------------------------------------------------------------------

def test_mqar_shapes_and_vocabulary():
    r = mqar(5, 6, 4, n_keys=10, n_values=7, rng=rng())
    assert r.inputs.shape == r.targets.shape == (2 * 6 + 2 * 4, 5)
    assert r.inputs.dtype == r.targets.dtype == np.int64
    assert r.vocab_size == 17 and r.n_keys == 10
    assert r.inputs.min() >= 0 and r.inputs.max() < 17
    assert (r.inputs[0:12:2] < 10).all() and (r.inputs[1:12:2] >= 10).all()
    assert r.mask.sum() == 4 * 5


def test_mqar_answers_are_right_by_construction():
    """Recompute every target from the input tokens alone: the value that followed the key."""
    r = mqar(8, 7, 5, n_keys=12, n_values=9, rng=rng(1))
    for b in range(8):
        seq = r.inputs[:, b]
        table = {int(seq[2 * i]): int(seq[2 * i + 1]) for i in range(7)}
        assert len(table) == 7                                     # keys are distinct
        for t in range(14, len(seq)):
            if r.targets[t, b] != IGNORE:
                assert seq[t] in table and r.targets[t, b] == table[int(seq[t])]
                assert seq[t + 1] == r.targets[t, b]               # teacher forcing
        asked = seq[14::2]
        assert len(set(asked.tolist())) == 5                       # distinct queries


def test_mqar_is_deterministic_under_a_seed_and_varies_without():
    a, b, c = (mqar(3, 4, 2, n_keys=8, n_values=8, rng=rng(s)) for s in (7, 7, 8))
    assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.targets, b.targets)
    assert not np.array_equal(a.inputs, c.inputs)


@pytest.mark.parametrize("kwargs,match", [
    ({"n_queries": 5}, "n_queries must be at most n_pairs = 4"),
    ({"n_keys": 3}, "n_keys must be at least n_pairs = 4"),
    ({"batch": 0}, "batch must be a positive integer"),
    ({"n_pairs": 2.5}, "n_pairs must be a positive integer"),
])
def test_mqar_bad_arguments(kwargs, match):
    args = {"batch": 2, "n_pairs": 4, "n_queries": 2, "n_keys": 8, "n_values": 4, "rng": rng()}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        mqar(**args)


def test_tasks_need_a_generator():
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        mqar(2, 2, 1, n_keys=4, n_values=4, rng=0)


# --- set disjointness --------------------------------------------------------------------------

def test_set_disjointness_layout_and_answer():
    s = set_disjointness(6, 3, 8, n_items=20, rng=rng(2))
    assert s.inputs.shape == (3 + 8 + 2, 6)
    assert (s.inputs[3] == s.sep).all() and (s.inputs[-1] == s.ask).all()
    assert s.vocab_size == 22
    for b in range(6):
        A, B = set(s.inputs[:3, b].tolist()), set(s.inputs[4:12, b].tolist())
        assert len(A) == 3 and len(B) == 8                         # sets: no repeats
        assert A & B == {int(s.answer[b])}                         # exactly one shared item
    assert (s.targets[-1] == s.answer).all() and (s.targets[:-1] == IGNORE).all()


def test_set_disjointness_places_the_shared_item_anywhere():
    s = set_disjointness(400, 4, 4, n_items=16, rng=rng(3))
    pos_a = np.argmax(s.a == s.answer, axis=0)
    pos_b = np.argmax(s.b == s.answer, axis=0)
    assert set(pos_a.tolist()) == set(pos_b.tolist()) == {0, 1, 2, 3}


def test_set_disjointness_bad_arguments():
    with pytest.raises(ValueError, match=r"n_items must be at least size_a \+ size_b - 1 = 9"):
        set_disjointness(2, 4, 6, n_items=8, rng=rng())
    with pytest.raises(ValueError, match="size_b must be a positive integer"):
        set_disjointness(2, 4, 0, n_items=8, rng=rng())


# --- passkey -----------------------------------------------------------------------------------

def test_passkey_layout_and_targets():
    p = passkey(5, 30, key_len=3, n_digits=10, n_filler=2, rng=rng(4))
    assert p.inputs.shape == p.targets.shape == (30, 5)
    for b in range(5):
        seq, d = p.inputs[:, b], p.depth[b]
        assert seq[d] == p.mark and (seq[d + 1:d + 4] == p.key[:, b]).all()
        assert seq[26] == p.ask and (seq[27:] == p.key[:, b]).all()
        assert ((seq == p.mark).sum(), (seq == p.ask).sum()) == (1, 1)
        others = np.delete(seq, [d, d + 1, d + 2, d + 3, 26, 27, 28, 29])
        assert ((others >= 10) & (others < 12)).all()              # filler only
        asked = np.nonzero(p.targets[:, b] != IGNORE)[0]
        assert asked.tolist() == [26, 27, 28]
        assert (p.targets[asked, b] == seq[asked + 1]).all()       # next token = the digits


def test_passkey_depth_given_and_checked():
    p = passkey(3, 12, key_len=2, depth=np.array([0, 3, 6]), rng=rng())
    assert (p.inputs[[0, 3, 6], [0, 1, 2]] == p.mark).all()
    assert (passkey(2, 12, depth=5, rng=rng()).depth == 5).all()
    with pytest.raises(ValueError, match=r"depth must lie in \[0, seq_len - 2 \* key_len - 2\] "
                                         r"= \[0, 6\]"):
        passkey(2, 12, key_len=2, depth=7, rng=rng())
    with pytest.raises(ValueError, match=r"depth must be an int or an int array of shape "
                                         r"\(B,\) = \(3,\)"):
        passkey(3, 12, depth=np.array([1, 2]), rng=rng())
    with pytest.raises(ValueError, match=r"seq_len must be at least 2 \* key_len \+ 2 = 8"):
        passkey(2, 7, key_len=3, rng=rng())


def test_passkey_deterministic():
    a, b = passkey(4, 40, rng=rng(9)), passkey(4, 40, rng=rng(9))
    assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.depth, b.depth)


# --- read twice ----------------------------------------------------------------------------------

def test_read_twice_tokens():
    ctx, question = np.arange(6).reshape(3, 2), np.array([[9, 9]])
    out = read_twice_tokens(ctx, question)
    assert out.tolist() == [[0, 1], [2, 3], [4, 5], [0, 1], [2, 3], [4, 5], [9, 9]]
    with pytest.raises(ValueError, match=r"question must have shape \(T_q, \.\.\.\) = \(T_q, 2\)"):
        read_twice_tokens(ctx, np.zeros((1, 3)))
