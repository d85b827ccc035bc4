"""Synthetic tasks: token sequences, time first (``(T, B)``), drawn from an explicit ``rng``.

Recall tasks (:mod:`minirec.tasks.recall`): multi-query associative recall, set disjointness
(JRT), passkey retrieval, JRT-Prompt's read-twice input, and the recall accuracy on the asked
positions. Lesson 13.

Streams of key–value writes (:mod:`minirec.tasks.streams`): random unit key–value pairs, the
"surprise burst" stream, and per-item retrieval hits of a memory's read-out. Lesson 09.
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
from minirec.tasks.streams import (
    SurpriseBurst,
    random_writes,
    retrieval_hits,
    surprise_burst,
    unit_vectors,
)

__all__ = ["IGNORE", "Recall", "SetDisjointness", "Passkey", "mqar", "set_disjointness",
           "passkey", "read_twice_tokens", "recall_accuracy",
           "random_writes", "unit_vectors", "surprise_burst", "SurpriseBurst", "retrieval_hits"]
