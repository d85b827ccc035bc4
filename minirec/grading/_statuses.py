"""The words of the grades: an exercise's status (a column per exercise) and a submission's
status (the ``status`` column). They are what the CSV and the reports print."""

from __future__ import annotations

#: Exercise statuses (the module docstring of :mod:`minirec.grading` says when each applies).
PASSED = "passed"
NOT_ATTEMPTED = "not attempted"
FAILED = "failed"
ERROR = "error"
NOT_RUN = "not run"
MISSING = "missing"

#: Submission statuses (the ``status`` column of the grades).
RAN = "ran"
TIMED_OUT = "timed out"
OUT_OF_MEMORY = "out of memory"  # over the memory limit (--memory)
KERNEL_DIED = "kernel died"
NOT_A_NOTEBOOK = "not a notebook"
NO_EXERCISES = "no exercises"
TOO_LARGE = "too large"
TAMPERED = "tampered"
WRONG_LESSON = "wrong lesson"  # the submission is a notebook of another lesson
NAME_COLLISION = "name collision"  # alice/ and alice.ipynb: one row, not run
GRADER_ERROR = "grader error"
