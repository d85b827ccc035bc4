"""Every benchmark runs end to end at a tiny size (not a timing test: performance is measured
by running the benchmark itself, never asserted in unit tests)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = [
    "numpy reference", "minirec numba", "minirec torch module", "torch.nn.GRU",
    "numpy reference bptt", "minirec numba bptt", "minirec torch module + autograd",
    "torch.nn.GRU + autograd",
]


def test_bench_gru_cpu_quick(tmp_path):
    out = tmp_path / "rows.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_gru_cpu.py"), "--quick", "--json",
         str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert any(line.startswith("machine:") for line in lines), proc.stdout
    for method in METHODS:
        rows = [line for line in lines if line.split() and method in line
                and line.split()[0] in ("forward", "bptt")]
        assert rows, f"no table row for {method!r} in\n{proc.stdout}"
    data = json.loads(out.read_text())
    assert [r["method"] for r in data["rows"]] == METHODS
    assert all(r["best_ms"] > 0 and r["ratio_to_torch_nn"] > 0 for r in data["rows"])
    assert {"cpu", "logical_cpus", "torch_threads"} <= set(data["machine"])


# --------------------------------------------------------------------------------------------
# Scan and attention benchmarks: each runs with --quick, exits 0 and prints one table row per
# method (no timing assertions).
# --------------------------------------------------------------------------------------------

def run_quick(script, tmp_path):
    """Run ``benchmarks/<script> --quick --json`` in a subprocess; return (stdout lines, JSON)."""
    out = tmp_path / f"{script}.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout.splitlines(), json.loads(out.read_text())


def rows_of(lines, first, method):
    """Table lines whose first field is ``first`` and which name ``method``."""
    return [line for line in lines if line.split() and line.split()[0] == first
            and f" {method} " in f"{line} "]


LINEAR_RECURRENCE_FIXED = [
    "numpy copyto (1 thread)", "numpy reference", "numba sequential",
    "numba parallel over channels", "numba chunked over time",
    "torch doubling (parallel form)", "torch python loop", "scipy lfilter axis=0, (T, D)",
    "scipy lfilter axis=-1, (D, T) copy",
]


def test_bench_linear_recurrence_cpu_quick(tmp_path):
    lines, data = run_quick("bench_linear_recurrence_cpu.py", tmp_path)
    assert any(line.startswith("machine:") for line in lines), "\n".join(lines)
    methods = list(dict.fromkeys(r["method"] for r in data["rows"]))
    assert set(LINEAR_RECURRENCE_FIXED) <= set(methods), methods
    assert any(m.startswith("numba prange triad") for m in methods)
    assert any(m.startswith("torch autograd Function") for m in methods)
    for size in data["sizes"]:
        first = f"{size['T']}×{size['D']}"
        for method in methods:
            assert len(rows_of(lines, first, method)) == 1, f"{first} {method!r}:\n" + "\n".join(lines)
    assert all(r["best_ms"] > 0 and r["gb_per_s"] > 0 for r in data["rows"])
    assert [g["met"] for g in data["goals"]] == [None] * len(data["goals"])   # quick: not judged
    assert any("Goals" in line for line in lines)


def test_bench_scan_gpu_quick(tmp_path):
    import torch

    lines, data = run_quick("bench_scan_gpu.py", tmp_path)
    if not torch.cuda.is_available():
        assert "no GPU: nothing to measure" in "\n".join(lines)
        assert data["rows"] == []
        return
    methods = {r["method"] for r in data["rows"]}
    assert {"torch doubling", "torch python loop"} <= methods
    assert any(m.startswith("torch autograd Function") for m in methods)
    assert ("numba cuda scan" in methods) == data["numba_cuda"]
    for T in data["sizes"]["T"]:
        for D in data["sizes"]["D"]:
            for method in {r["method"] for r in data["rows"] if (r["T"], r["D"]) == (T, D)}:
                hits = [line for line in rows_of(lines, str(T), method) if line.split()[1] == str(D)]
                assert len(hits) == 1, f"T={T} D={D} {method!r}:\n" + "\n".join(lines)


AAREN_METHODS = [
    "numpy scan (Hillis-Steele)", "numpy stream (Python loop)", "numba stream (compiled loop)",
    "torch scan (doubling)", "torch stream (Python loop)", "numpy direct (T×T)",
    "torch direct (T×T)", "torch SDPA is_causal",
]


def test_bench_aaren_cpu_quick(tmp_path):
    lines, data = run_quick("bench_aaren_cpu.py", tmp_path)
    assert any(line.startswith("machine:") for line in lines), "\n".join(lines)
    for T in data["size"]["T"]:
        assert [r["method"] for r in data["rows"] if r["T"] == T] == AAREN_METHODS
        for method in AAREN_METHODS:
            assert len(rows_of(lines, str(T), method)) == 1, f"T={T} {method!r}:\n" + "\n".join(lines)
    assert all(r["best_ms"] > 0 and r["ratio_to_sdpa"] > 0 for r in data["rows"])
    assert len(data["summary"]) == len(data["size"]["T"])


# --------------------------------------------------------------------------------------------
# Routing, neural memory and HMM benchmarks (lessons 07, 09, 10)
# --------------------------------------------------------------------------------------------

ROUTING_METHODS = [
    "dense mixture", "dense mixture (torch)", "routed, numpy", "routed, numba", "routed, torch",
    "routing only, numpy", "routing only, numba", "routing only, torch", "copy N·k rows (limit)",
]


def test_bench_routing_cpu_quick(tmp_path):
    lines, data = run_quick("bench_routing_cpu.py", tmp_path)
    assert any(line.startswith("machine:") for line in lines)
    assert any(line.startswith("goal:") for line in lines)
    assert [r["method"] for r in data["rows"]] == ROUTING_METHODS
    assert all(r["best_ms"] > 0 and r["fraction_of_dense"] > 0 for r in data["rows"])


MEMORY_METHODS = ["numpy reference (per token)", "numba kernel (per token)", "torch per-token loop",
                  "torch chunked", "numpy reference chunked"]


def test_bench_memory_cpu_quick(tmp_path):
    import torch

    lines, data = run_quick("bench_memory_cpu.py", tmp_path)
    assert any(line.startswith("machine:") for line in lines), "\n".join(lines)
    assert [r["method"] for r in data["rows"]] == MEMORY_METHODS
    for method in MEMORY_METHODS:
        hits = [line for line in lines if line.startswith(method + " ") and " cpu " in line]
        assert len(hits) == 1, f"{method!r}:\n" + "\n".join(lines)
    assert all(r["best_ms"] > 0 and r["tokens_per_s"] > 0 and r["rel_err"] < 1e-3 for r in data["rows"])
    assert [g["met"] for g in data["goals"]] == [None, None]          # not judged at --quick sizes
    assert any(line.startswith("Goals") for line in lines)
    if torch.cuda.is_available():
        assert {r["method"] for r in data["gpu_rows"]} == {"torch per-token loop", "torch chunked"}
    else:
        assert "no GPU" in "\n".join(lines) and data["gpu_rows"] == []


HMM_METHODS = [
    "hmmlearn score (scaling)", "hmmlearn score (log, default)", "minirec numba (scaled, default)",
    "minirec numba (log)", "minirec torch (log)", "minirec numpy reference (log)", "hmmlearn decode",
    "minirec numba (default)", "minirec torch", "minirec numpy reference",
]


def test_bench_hmm_cpu_quick(tmp_path):
    lines, data = run_quick("bench_hmm_cpu.py", tmp_path)
    assert [r["method"] for r in data["rows"]] == HMM_METHODS
    assert all(r["check"] == "ok" and r["best_ms"] > 0 for r in data["rows"])
    assert any(line.startswith("machine:") for line in lines)
    assert len(data["goals"]) == 3 and all(g["met"] is None for g in data["goals"])  # not judged


SSM_METHODS = ["numpy", "numba fused", "torch Function", "torch loop", "torch Function fwd+bwd",
               "torch loop fwd+bwd", "exp limit"]


def test_bench_ssm_cpu_quick(tmp_path):
    lines, data = run_quick("bench_ssm_cpu.py", tmp_path)
    assert any(line.startswith("machine:") for line in lines), "\n".join(lines)
    for T in data["size"]["T"]:
        assert [r["method"] for r in data["rows"] if r["T"] == T] == SSM_METHODS
    assert all(r["best_ms"] > 0 for r in data["rows"])
    assert data["goals"] == [] and data["no_goal"]


# --------------------------------------------------------------------------------------------
# benchmarks/lesson_times.py: every lesson's time, quiet and beside busy processes
# --------------------------------------------------------------------------------------------

def _lesson_times_module():
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    import lesson_times

    return lesson_times


def test_lesson_times_runs_a_tiny_lesson_quiet_and_loaded(tmp_path):
    import shutil

    root = tmp_path / "repo"
    (root / "lessons").mkdir(parents=True)
    (root / "exercises").mkdir()
    (root / "pyproject.toml").write_text("")
    shutil.copy(ROOT / "tests" / "fixtures" / "lessons" / "00_demo.py", root / "lessons")
    out = tmp_path / "times.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "lesson_times.py"), "--root", str(root),
         "--busy", "0", "1", "--exercises", "--cells", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert [(r["notebook"], r["busy"]) for r in data["rows"]] == [
        ("solution", 0), ("exercise", 0), ("solution", 1), ("exercise", 1)]
    assert all(r["ok"] and r["seconds"] > 0 and r["cells"] for r in data["rows"])
    assert all(c["line"] >= 1 and c["seconds"] >= 0 for r in data["rows"] for c in r["cells"])
    lines = proc.stdout.splitlines()
    assert "| lesson | notebook | quiet (s) | 1 busy (s) | 1 busy / quiet | slowest cell (line: s) |" in lines
    assert sum(line.startswith("| 00_demo |") for line in lines) == 2
    assert any(line.startswith("00_demo solution, 1 busy:") for line in lines)   # --cells


def test_lesson_times_stops_its_busy_processes_even_on_an_error():
    import pytest

    lesson_times = _lesson_times_module()
    with pytest.raises(RuntimeError, match="the run broke"):
        with lesson_times.busy_processes(2) as procs:
            assert len(procs) == 2 and all(p.poll() is None for p in procs)   # spinning
            raise RuntimeError("the run broke")
    assert all(p.returncode is not None for p in procs)                        # killed, reaped


def test_lesson_times_writes_its_table_between_the_markers(tmp_path):
    import pytest

    lesson_times = _lesson_times_module()
    readme = tmp_path / "README.md"
    readme.write_text(f"# B\n\nbefore\n{lesson_times.DOCS_START}\nold table\n"
                      f"{lesson_times.DOCS_END}\nafter\n")
    lesson_times.write_docs(["| a | b |", "|---|---|"], "Measured today.", readme)
    assert readme.read_text() == (f"# B\n\nbefore\n{lesson_times.DOCS_START}\nMeasured today.\n\n"
                                  f"| a | b |\n|---|---|\n{lesson_times.DOCS_END}\nafter\n")
    plain = tmp_path / "plain.md"
    plain.write_text("no markers")
    with pytest.raises(SystemExit, match="no <!-- lesson-times:start -->"):
        lesson_times.write_docs([], "x", plain)


# --------------------------------------------------------------------------------------------
# benchmarks/bench_grade.py: `minirec grade --jobs 1` against `--jobs 2`, and the grader's cost
# --------------------------------------------------------------------------------------------

GRADE_METHODS = ["grade --jobs 1", "grade --jobs 2", "alone (nbclient), summed"]


def test_bench_grade_quick(tmp_path):
    lines, data = run_quick("bench_grade.py", tmp_path)
    assert any(line.startswith("machine:") for line in lines), "\n".join(lines)
    assert any(line.startswith("class: 2 submissions of lesson 03 (") for line in lines)
    assert [r["method"] for r in data["rows"]] == GRADE_METHODS
    assert all(r["best_ms"] > 0 and r["submissions"] == 2 for r in data["rows"])
    assert any(line.startswith("ratio --jobs 1 / --jobs 2: ") for line in lines)
    assert any(line.startswith("grader's overhead per submission: ") for line in lines)
    assert [g["met"] for g in data["goals"]] == [None]          # not judged at --quick size
