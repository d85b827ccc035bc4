"""The two helpers every lesson imports."""

import pytest

from minirec.lesson_tools import best_time, show
from minirec.scan import reference


def test_show_prints_the_source_that_runs(capsys):
    show(reference.affine)
    printed = capsys.readouterr().out
    assert "def affine(left, right):" in printed
    assert "return" in printed


def test_best_time_warms_up_then_keeps_the_fastest_call():
    calls = []
    seconds = best_time(lambda: calls.append(1), repeat=4)
    assert len(calls) == 5                      # one warm-up, four timed
    assert 0 <= seconds < 1


def test_best_time_needs_at_least_one_timed_call():
    with pytest.raises(ValueError, match="repeat must be at least 1; got 0"):
        best_time(lambda: None, repeat=0)
