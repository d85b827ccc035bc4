"""Checks that exercises call (placeholder; see minirec/check/_core.py once written)."""


class CheckFailed(AssertionError):
    """The learner's function ran but its result differs from the reference."""


class NotAttempted(CheckFailed):
    """The learner's function still raises NotImplementedError (the blank exercise)."""
