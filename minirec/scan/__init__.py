"""Associative scans and linear recurrences.

The NumPy specification is :mod:`minirec.scan.reference` (scans with any associative combine,
the combines by name, the linear recurrence, its backward, its log-space form). The public,
dispatching ``linear_recurrence`` over the Numba, Torch and CUDA kernels follows.
"""

from minirec.scan.reference import (
    COMBINES,
    add,
    affine,
    associative_scan,
    count_combines,
    log_matmul,
    logaddexp,
    matrix_affine,
    max_plus,
    softmax_attention,
    softmax_attention_elements,
    softmax_attention_output,
)

__all__ = [
    "associative_scan", "count_combines", "COMBINES",
    "add", "affine", "matrix_affine", "logaddexp", "log_matmul", "max_plus", "softmax_attention",
    "softmax_attention_elements", "softmax_attention_output",
]
