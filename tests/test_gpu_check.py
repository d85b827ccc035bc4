"""benchmarks/gpu_check.py, the one script a session with a CUDA GPU runs: which tests it finds,
and its dry run (what it would run, and its CPU-safe parts at tiny size) on this machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402


def test_it_finds_the_tests_that_ask_for_cuda(tmp_path):
    (tmp_path / "test_a.py").write_text(
        "import pytest, torch\n"
        "cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='no GPU')\n"
        "@cuda\ndef test_marked(): pass\n"
        "@pytest.mark.skipif(not torch.cuda.is_available(), reason='no GPU')\n"
        "@pytest.mark.parametrize('n', [1, 2])\ndef test_skipif(n): pass\n"
        "def test_branch():\n    if torch.cuda.is_available():\n        pass\n"
        "def test_cpu(): pass\n"
        "class TestGroup:\n    @cuda\n    def test_method(self): pass\n"
        "def helper():\n    return torch.cuda.is_available()\n"
    )
    assert gpu_check.cuda_tests(tmp_path) == [
        f"{tmp_path.name}/test_a.py::{name}"
        for name in ("test_marked", "test_skipif", "test_branch", "TestGroup::test_method")]
    found = gpu_check.cuda_tests()
    # one per mechanism with a Torch twin on the device, and the GPU benchmarks' smoke tests
    for expected in ("tests/test_scan_backends.py::test_torch_on_cuda_matches_cpu",
                     "tests/test_ssm_backends.py::test_torch_on_cuda_matches_the_reference_with_gradients",
                     "tests/test_bench_smoke.py::test_bench_scan_gpu_quick"):
        assert expected in found
    assert len(found) >= 10


def test_the_dry_run_says_what_it_would_run_and_runs_the_cpu_safe_parts(tmp_path):
    out = tmp_path / "gpu_check.md"
    done = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DRY RUN" in done.stdout and "would run, then runs" in done.stdout
    for test in gpu_check.cuda_tests():
        assert test in done.stdout
    text = out.read_text(encoding="utf-8")
    table = [line for line in text.splitlines() if line.startswith("| ") and "seconds" not in line]
    assert len(table) == len(gpu_check.plan(dry=True)) and all("| passed |" in r for r in table)
    assert "bench_scan_gpu.py --device cpu --quick" in text and "NUMBA_ENABLE_CUDASIM=1" in text
    assert "cases within the test's tolerances" in text
