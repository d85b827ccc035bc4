"""The GRU benchmark runs end to end at a tiny size (not a timing test: performance is measured
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
