"""Synthetic tasks: token sequences, time first (``(T, B)``), drawn from an explicit ``rng``.

Recall tasks (:mod:`minirec.tasks.recall`): multi-query associative recall, set disjointness
(JRT), passkey retrieval, JRT-Prompt's read-twice input, and the recall accuracy on the asked
positions. Lesson 13.
"""

from minirec.tasks.recall import (
    IGNORE,
    Passkey,
    Recall,
    SetDisjointness,
    mqar,
    passkey,
    read_twice_tokens,
    recall_accuracy,
    set_disjointness,
)

__all__ = ["IGNORE", "Recall", "SetDisjointness", "Passkey", "mqar", "set_disjointness",
           "passkey", "read_twice_tokens", "recall_accuracy"]
