"""The exceptions of a failed check: :class:`CheckFailed` and :class:`NotAttempted`.

A leaf module (it imports nothing of minirec), so that :mod:`minirec.gradcheck` can raise
``CheckFailed`` without loading the check engine. They are the classes that
:mod:`minirec.check` exports (``minirec.check.CheckFailed is minirec._errors.CheckFailed``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from minirec.check._compare import Comparison

__all__ = ["CheckFailed", "NotAttempted"]


class CheckFailed(AssertionError):
    """The learner's function ran but its result differs from the reference.

    Besides the message, carries (when raised by a check) ``comparison`` (the :class:`Comparison`
    of the first failing case), ``diagnosis`` (a string or None) and ``case`` (its label).
    """

    def __init__(self, message: str = "", *, comparison: Comparison | None = None,
                 diagnosis: str | None = None, case: str | None = None):
        super().__init__(message)
        self.comparison = comparison
        self.diagnosis = diagnosis
        self.case = case

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for this exception: the message (table and diagnosis), not the
        traceback through minirec's checking code (which says nothing about the learner's)."""
        first, *rest = str(self).splitlines() or [""]
        return [f"{type(self).__name__}: {first}", *rest]


class NotAttempted(CheckFailed):
    """The learner's function still raises NotImplementedError (the blank exercise)."""
