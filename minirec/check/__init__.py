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

Tools for your own comparisons: ``compare(expected, actual)`` returns a table of named tensors,
``cmp(expected, actual)`` prints it and returns True when all match.
"""

from minirec.check._core import (
    ATOL,
    RTOL,
    Case,
    CheckFailed,
    Comparison,
    Exercise,
    NotAttempted,
    Row,
    Suspect,
    bad_mask,
    cmp,
    compare,
    diagnose,
    first_bad_index,
    run_check,
)
from minirec.check.cells import (
    check_gru_step,
    check_gru_step_backward,
    check_lstm_step,
    check_recoding_step,
    check_rnn_bptt,
)

__all__ = [
    "CheckFailed", "NotAttempted",
    "check_gru_step", "check_gru_step_backward", "check_rnn_bptt", "check_lstm_step",
    "check_recoding_step",
    "compare", "cmp", "Comparison", "Row", "bad_mask", "first_bad_index", "RTOL", "ATOL",
    "Case", "Suspect", "Exercise", "run_check", "diagnose",
]
