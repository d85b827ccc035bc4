"""The helpers every lesson imports."""

import os

import pytest

from minirec.lesson_tools import best_time, show
from minirec.scan import reference


def test_show_prints_the_source_that_runs(capsys):
    show(reference.affine_combine)
    printed = capsys.readouterr().out
    assert "def affine_combine(left, right):" in printed
    assert "return" in printed


def test_best_time_warms_up_then_keeps_the_fastest_call():
    calls = []
    seconds = best_time(lambda: calls.append(1), repeat=4)
    assert len(calls) == 5                      # one warm-up, four timed
    assert 0 <= seconds < 1


def test_best_time_needs_at_least_one_timed_call():
    with pytest.raises(ValueError, match="repeat must be at least 1; got 0"):
        best_time(lambda: None, repeat=0)


_THREADS_AFTER_NUMBA = """
import numpy as np, torch
from minirec import ssm
{setup}
params = ssm.init_params(16, 8, rng=np.random.default_rng(1))
x = np.random.default_rng(2).normal(size=(256, 4, 16))
ssm.selective_ssm(x, params, backend="torch")      # the Torch path runs a parallel Numba kernel
print(torch.get_num_threads())
"""


def _torch_threads_after_a_numba_kernel(setup: str) -> int:
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", _THREADS_AFTER_NUMBA.format(setup=setup)],
                         capture_output=True, text=True, env=env, check=True, timeout=300)
    return int(out.stdout.split()[-1])


def test_torch_stays_on_one_thread_after_numba_starts_its_threads():
    """Numba's OpenMP pool resets torch's thread count when it starts; torch_on_one_thread starts
    it first. (The plain torch.set_num_threads(1) is shown to be undone, so the test can fail.)"""
    import numba
    if numba.config.THREADING_LAYER not in ("default", "omp") or os.cpu_count() < 2:
        pytest.skip("the reset happens with Numba's OpenMP layer on a multi-core machine")
    plain = _torch_threads_after_a_numba_kernel("torch.set_num_threads(1)")
    fixed = _torch_threads_after_a_numba_kernel(
        "from minirec.lesson_tools import torch_on_one_thread\ntorch_on_one_thread()")
    if plain == 1:
        pytest.skip("this machine's Numba does not reset torch's threads")
    assert fixed == 1


def test_every_lesson_that_imports_torch_puts_it_on_one_thread():
    from pathlib import Path
    for lesson in sorted((Path(__file__).parents[1] / "lessons").glob("[0-9][0-9]_*.py")):
        text = lesson.read_text(encoding="utf-8")
        if "import torch" in text:
            assert "torch_on_one_thread()" in text, f"{lesson.name} does not call torch_on_one_thread()"
            assert "torch.set_num_threads(" not in text, (
                f"{lesson.name} sets torch's threads itself: Numba's start-up may undo it")
