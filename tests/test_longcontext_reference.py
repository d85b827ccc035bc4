"""Prefix-linear attention against a brute-force double loop over (query, visible key) pairs,
its backends and tensors, the decode state; the lesson's toys against facts computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minirec.attention.reference import elu_plus_one, taylor_exp
from minirec.longcontext import experiments as ex
from minirec.longcontext import prefix_linear_attention
from minirec.longcontext import reference as ref
from minirec.tasks import mqar, recall_accuracy, set_disjointness


def brute_force(q, k, v, k_enc, v_enc, phi):
    """o_i = Σ_visible φ(q_i)·φ(key) value / Σ_visible φ(q_i)·φ(key), one pair at a time;
    visible: every encoder key of the prompt, and the tokens' keys j ≤ i. q (T, d_k) only."""
    T, M = len(q), len(k_enc)
    o = np.zeros((T, v.shape[1]))
    for i in range(T):
        num, den = np.zeros(v.shape[1]), 0.0
        for j in range(M):
            w = float(phi(q[i]) @ phi(k_enc[j]))
            num, den = num + w * v_enc[j], den + w
        for j in range(i + 1):
            w = float(phi(q[i]) @ phi(k[j]))
            num, den = num + w * v[j], den + w
        o[i] = num / den
    return o


def _inputs(T, M, d_k, d_v, batch=(), seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(T, *batch, d_k)), rng.normal(size=(T, *batch, d_k)),
            rng.normal(size=(T, *batch, d_v)), rng.normal(size=(M, *batch, d_k)),
            rng.normal(size=(M, *batch, d_v)))


@pytest.mark.parametrize("T,M,d_k,d_v", [(1, 1, 1, 1), (2, 5, 3, 2), (7, 3, 4, 4), (63, 10, 3, 5)])
@pytest.mark.parametrize("feature_map,phi", [("elu+1", elu_plus_one), ("taylor", taylor_exp)])
def test_reference_forms_equal_the_brute_force(T, M, d_k, d_v, feature_map, phi):
    args = _inputs(T, M, d_k, d_v, seed=T)
    expected = brute_force(*args, phi)
    o, _ = ref.prefix_linear_attention(*args, feature_map=feature_map)
    np.testing.assert_allclose(o, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ref.prefix_linear_attention_masked(*args, feature_map=feature_map),
                               expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_public_function_every_backend_with_batch_axes(backend):
    args = _inputs(9, 4, 3, 2, batch=(2, 3), seed=1)
    o = prefix_linear_attention(*args, backend=backend)
    for b in range(2):
        for h in range(3):
            np.testing.assert_allclose(o[:, b, h], brute_force(*(a[:, b, h] for a in args),
                                                               elu_plus_one), rtol=1e-10)


def test_float32():
    args = [a.astype(np.float32) for a in _inputs(20, 5, 4, 3, seed=2)]
    o = prefix_linear_attention(*args)
    assert o.dtype == np.float32
    np.testing.assert_allclose(o, brute_force(*(a.astype(np.float64) for a in args),
                                              elu_plus_one), rtol=1e-5, atol=1e-5)


def test_the_first_token_sees_the_whole_prompt():
    """Changing the last prompt value changes the first output (non-causal prompt), changing a
    later token's value does not (causal tokens)."""
    q, k, v, k_enc, v_enc = _inputs(6, 4, 3, 2, seed=3)
    o = prefix_linear_attention(q, k, v, k_enc, v_enc)
    v_enc2, v2 = v_enc.copy(), v.copy()
    v_enc2[-1] += 1.0
    v2[3] += 1.0
    assert not np.allclose(prefix_linear_attention(q, k, v, k_enc, v_enc2)[0], o[0])
    np.testing.assert_allclose(prefix_linear_attention(q, k, v2, k_enc, v_enc)[:3], o[:3])


def test_decoding_continues_from_the_returned_state():
    q, k, v, k_enc, v_enc = _inputs(10, 4, 3, 2, seed=4)
    o_all = prefix_linear_attention(q, k, v, k_enc, v_enc)
    o_head, (S, z) = prefix_linear_attention(q[:6], k[:6], v[:6], k_enc, v_enc, return_state=True)
    fq, fk = elu_plus_one(q[6:]), elu_plus_one(k[6:])
    for t in range(4):                                             # S += φ(k) vᵀ, z += φ(k)
        S, z = S + np.outer(fk[t], v[6 + t]), z + fk[t]
        np.testing.assert_allclose(fq[t] @ S / (fq[t] @ z), o_all[6 + t], rtol=1e-12)
    np.testing.assert_allclose(o_head, o_all[:6])


def test_torch_gradients_equal_autograd_of_the_brute_force():
    tensors = [torch.tensor(a, requires_grad=True) for a in _inputs(6, 3, 3, 2, seed=5)]
    q, k, v, k_enc, v_enc = tensors

    def masked(q, k, v, k_enc, v_enc):
        phi = torch.nn.functional.elu
        keys = torch.cat([phi(k_enc) + 1, phi(k) + 1])
        mask = torch.cat([torch.ones(6, 3), torch.tril(torch.ones(6, 6))], 1).double()
        w = ((phi(q) + 1) @ keys.T) * mask
        return w @ torch.cat([v_enc, v]) / w.sum(1, keepdim=True)

    g = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    got = torch.autograd.grad((prefix_linear_attention(*tensors) * g).sum(), tensors)
    want = torch.autograd.grad((masked(*tensors) * g).sum(), tensors)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


def test_validation():
    q, k, v, k_enc, v_enc = _inputs(5, 3, 4, 2)
    with pytest.raises(ValueError, match=r"k_enc must have shape \(M, d_k\) = \(3, 4\) \(d_k=4 from q\)"):
        prefix_linear_attention(q, k, v, k_enc[:, :3], v_enc)
    with pytest.raises(ValueError, match=r"v_enc must have shape \(M, d_v\) = \(3, 2\) "
                                         r"\(M=3 from k_enc\); got \(2, 2\)"):
        prefix_linear_attention(q, k, v, k_enc, v_enc[:2])
    with pytest.raises(ValueError, match=r"v must have shape \(T, d_v\)"):
        prefix_linear_attention(q, k, v[:4], k_enc, v_enc)
    with pytest.raises(ValueError, match="k_enc must have at least one prompt step"):
        prefix_linear_attention(q, k, v, k_enc[:0], v_enc[:0])
    with pytest.raises(ValueError, match="feature_map must be one of"):
        prefix_linear_attention(q, k, v, k_enc, v_enc, feature_map="relu")
    with pytest.raises(TypeError, match="k_enc must be a floating-point array"):
        prefix_linear_attention(q, k, v, k_enc.astype(int), v_enc)


# --- the toys ------------------------------------------------------------------------------------

def test_slot_reader_needs_the_first_set_read_once_and_the_smaller_read_twice():
    rng = np.random.default_rng(0)
    long_first = set_disjointness(300, 12, 3, n_items=40, rng=rng)
    assert ex.slot_reader_accuracy(long_first, 12) == 1.0
    assert ex.slot_reader_accuracy(long_first, 3, read_twice=True) == 1.0
    # read once with m < |A| slots: right iff the shared item is among A's first m, P = m/|A|
    acc = ex.slot_reader_accuracy(long_first, 3)
    expected = np.mean(np.argmax(long_first.a == long_first.answer, axis=0) < 3)
    assert acc == pytest.approx(expected) and 0.1 < acc < 0.45
    assert ex.slot_reader_accuracy(long_first, 2, read_twice=True) < 1.0
    assert ex.memory_needed(12, 3) == 12 and ex.memory_needed(12, 3, read_twice=True) == 3
    short_first = set_disjointness(50, 3, 12, n_items=40, rng=rng)
    assert ex.slot_reader_accuracy(short_first, 3) == 1.0


def test_slot_reader_answers_minus_one_when_not_kept():
    a, b = np.array([[1], [2], [3]]), np.array([[7], [3]])
    assert ex.slot_reader(a, b, 2).tolist() == [-1]
    assert ex.slot_reader(a, b, 3).tolist() == [3]
    assert ex.slot_reader(a, b, 2, read_twice=True).tolist() == [3]   # keeps B (2 items)


def test_mqar_linear_attention_equals_a_loop_over_the_pairs():
    """Logits recomputed by hand: S accumulates e(previous) u(value) at value tokens."""
    task = mqar(3, 5, 3, n_keys=9, n_values=6, rng=np.random.default_rng(4))
    logits = ex.mqar_linear_attention_logits(task, 7, rng=np.random.default_rng(5), d_value=4)
    check = np.random.default_rng(5)
    embed = ex.unit_vectors(check, task.vocab_size, 7)
    code = ex.unit_vectors(check, task.vocab_size, 4)
    for b in range(3):
        S = np.zeros((7, 4))
        for t, token in enumerate(task.inputs[:, b]):
            if token >= task.n_keys:
                S += np.outer(embed[task.inputs[t - 1, b]], code[token])
            expected = code @ (S.T @ embed[token])
            np.testing.assert_allclose(logits[t, b, task.n_keys:], expected[task.n_keys:],
                                       rtol=1e-12, atol=1e-12)
            assert np.isneginf(logits[t, b, :task.n_keys]).all()


def test_mqar_recall_exact_with_room_and_falls_with_load():
    rng = np.random.default_rng(1)

    def acc(n, d):
        task = mqar(16, n, min(n, 8), n_keys=64, n_values=32, rng=rng)
        return recall_accuracy(ex.mqar_linear_attention_logits(task, d, rng=rng), task.targets)

    assert acc(2, 512) == 1.0
    loads = [acc(n, 16) for n in (4, 16, 64)]
    assert loads[0] > loads[1] > loads[2]
    assert acc(64, 64) > loads[2]                                  # a bigger state recalls more


def test_decayed_recall_and_choice():
    rng = np.random.default_rng(2)
    acc = ex.decayed_recall(1, 8, [0.5, 1.0], rng=rng, trials=50)
    assert acc.tolist() == [1.0, 1.0]                               # one item, nothing to confuse
    assert ex.choose_decay([0.5, 0.9, 0.89, 0.7], [0.5, 0.8, 0.9, 1.0]) == 0.9
    assert ex.choose_decay([0.5, 0.9, 0.91, 0.7], [0.5, 0.8, 0.9, 1.0]) == 0.9
    assert ex.choose_decay([1.0, 1.0], [0.9, 1.0]) == 1.0


def test_oversized_state_never_learns_to_forget_and_collapses_at_8x():
    """The Stuffed Mamba picture at toy scale: d = 32, T_train = 8 keeps λ* = 1 and drops at
    8 T_train; T_train = 256 forces λ* < 1 and holds."""
    rng = np.random.default_rng(3)
    decays = [0.8, 0.9, 0.95, 0.98, 0.99, 1.0]
    short, long = ex.forget_threshold_sweep([32], [8, 256], decays, rng=rng, trials=100)
    assert short.decay == 1.0 and short.acc_long < short.acc_train - 0.05
    assert long.decay < 1.0 and long.acc_long > 0.9
    capped = ex.forget_threshold_sweep([32], [8], decays, rng=rng, trials=100, decay_max=0.95)[0]
    assert capped.decay <= 0.95 and capped.acc_long > short.acc_long
