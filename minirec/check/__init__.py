"""Checks that exercises call: compare a learner's function with the reference on generated
cases and explain the first difference in the learner's terms.

A check prints ``✓ <name>: passed on N cases`` when the learner's function is right, raises
:class:`NotAttempted` while it still raises ``NotImplementedError``, and otherwise raises
:class:`CheckFailed` whose message holds a per-tensor table (expected shape, your shape, max
abs error, first bad index) and a diagnosis (a transposed weight, a missing bias, an
off-by-one in time, ...). The engine (:mod:`minirec.check._core`) is shared by every
mechanism; the cell exercises live in :mod:`minirec.check.cells`.

Exercise checks::

    check_gru_step(gru_step)                    gru_step(x, h, params) -> h_new
    check_gru_step_backward(gru_step_backward)  gru_step_backward(x, h, params, dh_new) -> dict
    check_rnn_bptt(rnn_bptt)                    rnn_bptt(x, h0, params, grad_outputs) -> dict
    check_lstm_step(lstm_step)                  lstm_step(x, (h, c), params) -> (h_new, c_new)
    check_recoding_step(recoding_step)          recoding_step(h, W_out, b_out, target, alpha)
    check_attention_combine(fn)                 fn((mA, uA, wA), (mB, uB, wB)) -> (m, u, w)
    check_aaren_stream_step(fn)                 fn((m, u, w), s_t, v_t) -> ((m, u, w), o_t)
    check_linear_attention_recurrent(fn)        fn(q, k, v, (S0, z0)) -> (o, (S, z))
    check_blelloch_down_sweep(fn)               fn(combine, levels, identity) -> y (T, ...)
    check_affine_combine(affine_combine)        affine_combine((a1, b1), (a2, b2)) -> (a, b)
    check_linear_recurrence_backward(fn)        fn(a, h, h0, grad_h) -> {"a", "b", "h0"}
    check_chunk_fixup(chunk_fixup)              chunk_fixup(local_a, local_b, C) -> (a, b)
    check_top_k_route(fn)                       fn(logits (N, E), k) -> (weights, indices) (N, k)
    check_load_balance_loss(fn)                 fn(probs (N, E), indices (N, k)) -> loss ()
    check_gru_router_step(fn)                   fn(h (N, d), r_prev (N, H_r), router) -> (logits, r)
    check_increment_module(fn)                  fn(w (B, N)) -> (B, N)
    check_workspace_write(fn)                   fn(w (B, N), gates (B, M), a_onehot (B, N)) -> (B, N)
    check_hand_set_program(fn)                  fn(b (B,), n_steps K) -> gates (K, B, M)
    check_delta_rule_write(fn)                  fn(M, k, v, theta) -> M_new
    check_linear_memory_grad(fn)                fn(M, k, v) -> G = 2 (M k − v) kᵀ
    check_titans_step(fn)                       fn(M, S, k, v, eta, theta, alpha) -> (M_new, S_new)
    check_titans_chunk(fn)                      fn(M, S, k, v, q, eta, theta, alpha) -> (y, M_new, S_new)
    check_forward_step(fn)                      fn(log_alpha (N, K), log_A (K, K), log_b (N, K)) -> (N, K)
    check_viterbi_backtrack(fn)                 fn(backpointers (N, T, K), last_state (N,)) -> (N, T)
    check_log_matmul_combine(fn)                fn(L1 (T, K, K), L2 (T, K, K)) -> (T, K, K)
    check_compare_emissions(fn)                 fn(obs_model, obs_target, n_symbols) -> dict
    check_selective_scan_step(fn)               fn(h, x_t, delta_t, A, B_t, C_t) -> (h_new, y_t)
    check_prefix_linear_attention(fn)           fn(q, k, v, k_enc, v_enc) -> o
    check_recall_accuracy(fn)                   fn(logits, targets) -> float

Tools for your own comparisons: ``compare(expected, actual)`` returns a table of named tensors,
``cmp(expected, actual)`` prints it and returns True when all match.
"""

from minirec._errors import CheckFailed, NotAttempted
from minirec.check._core import (
    ATOL,
    GENERIC,
    RTOL,
    Case,
    Comparison,
    Exercise,
    Row,
    Suspect,
    bad_mask,
    cmp,
    compare,
    diagnose,
    first_bad_index,
    run_check,
)
from minirec.check.attention import (
    check_aaren_stream_step,
    check_attention_combine,
    check_linear_attention_recurrent,
)
from minirec.check.cells import (
    check_gru_step,
    check_gru_step_backward,
    check_lstm_step,
    check_recoding_step,
    check_rnn_bptt,
)
from minirec.check.hmm import (
    check_compare_emissions,
    check_forward_step,
    check_log_matmul_combine,
    check_viterbi_backtrack,
)
from minirec.check.longcontext import (
    check_prefix_linear_attention,
    check_recall_accuracy,
    check_selective_scan_step,
)
from minirec.check.memory import (
    check_delta_rule_write,
    check_linear_memory_grad,
    check_titans_chunk,
    check_titans_step,
)
from minirec.check.routing import check_gru_router_step, check_load_balance_loss, check_top_k_route
from minirec.check.scan import (
    check_affine_combine,
    check_blelloch_down_sweep,
    check_chunk_fixup,
    check_linear_recurrence_backward,
)
from minirec.check.workspace import (
    check_hand_set_program,
    check_increment_module,
    check_workspace_write,
)

__all__ = [
    "CheckFailed", "NotAttempted",
    "check_gru_step", "check_gru_step_backward", "check_rnn_bptt", "check_lstm_step",
    "check_recoding_step",
    "check_attention_combine", "check_aaren_stream_step", "check_linear_attention_recurrent",
    "check_blelloch_down_sweep", "check_affine_combine", "check_linear_recurrence_backward",
    "check_chunk_fixup",
    "check_top_k_route", "check_load_balance_loss", "check_gru_router_step",
    "check_increment_module", "check_workspace_write", "check_hand_set_program",
    "check_delta_rule_write", "check_linear_memory_grad", "check_titans_step", "check_titans_chunk",
    "check_forward_step", "check_viterbi_backtrack", "check_log_matmul_combine",
    "check_compare_emissions",
    "check_selective_scan_step", "check_prefix_linear_attention", "check_recall_accuracy",
    "compare", "cmp", "Comparison", "Row", "bad_mask", "first_bad_index", "RTOL", "ATOL",
    "GENERIC",
    "Case", "Suspect", "Exercise", "run_check", "diagnose",
]
