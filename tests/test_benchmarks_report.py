"""benchmarks/run_all.py: every script found and run, its results and plot written, failures
recorded without stopping the others (no timing is asserted: see benchmarks/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import run_all  # noqa: E402

GOOD = '''"""A made-up benchmark that writes its JSON."""
import json, sys
args = sys.argv[1:]
path = args[args.index("--json") + 1]
rows = [{"task": "t", "method": m, "best_ms": b, "ratio_to_peer": b / 2.0}
        for m, b in (("mine", 1.0), ("peer", 2.0))]
json.dump({"benchmark": "good", "date": "today", "quick": "--quick" in args, "rows": rows,
           "goals": [{"goal": "mine beats peer", "met": True, "detail": "2x"}]}, open(path, "w"))
print("the table")
'''
FAILS = '''import sys
print("partial output")
sys.exit("it broke: ValueError")
'''
NO_JSON = 'print("forgot the json")\n'


def fake_folder(tmp_path: Path, **scripts: str) -> Path:
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    for name, text in scripts.items():
        (folder / f"{name}.py").write_text(text)
    (folder / "helper.py").write_text("raise SystemExit('not a benchmark: never run')\n")
    return folder


def test_runs_every_script_and_records_failures(tmp_path):
    folder = fake_folder(tmp_path, bench_good=GOOD, bench_fails=FAILS, bench_nojson=NO_JSON)
    out = tmp_path / "out"
    out.mkdir()
    (out / "bench_fails.json").write_text("{}")  # an old result of a script that now fails
    (out / "bench_gone.json").write_text("{}")  # a script that no longer exists
    assert run_all.main(["--folder", str(folder), "--out", str(out), "--quick"]) == 1
    record = json.loads((out / "run.json").read_text())
    assert set(record["scripts"]) == {"bench_good", "bench_fails", "bench_nojson"}
    assert record["quick"] is True and record["machine"]["logical_cpus"] >= 1
    assert record["started"] <= record["finished"]
    good = record["scripts"]["bench_good"]
    assert good["returncode"] == 0 and good["plot"] is True and "--quick" in good["command"]
    assert json.loads((out / "bench_good.json").read_text())["quick"] is True
    assert (out / "bench_good.txt").read_text() == "the table\n"
    assert (out / "bench_good.png").read_bytes()[:4] == b"\x89PNG"
    fails = record["scripts"]["bench_fails"]
    assert fails["returncode"] == 1 and "it broke: ValueError" in fails["tail"]
    assert "partial output" in fails["tail"]
    assert not (out / "bench_fails.json").exists(), "a failed script keeps no old result"
    assert record["scripts"]["bench_nojson"]["returncode"] == "no JSON written"
    assert not (out / "bench_gone.json").exists()


def test_only_reruns_some_scripts_and_keeps_the_others(tmp_path):
    folder = fake_folder(tmp_path, bench_good=GOOD, bench_other=GOOD)
    out = tmp_path / "out"
    assert run_all.main(["--folder", str(folder), "--out", str(out)]) == 0
    first = json.loads((out / "run.json").read_text())["scripts"]["bench_other"]
    assert run_all.main(["--folder", str(folder), "--out", str(out), "--only", "bench_good"]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["scripts"]["bench_other"] == first
    assert "--only bench_good" in record["command"]
    with pytest.raises(SystemExit, match="no benchmark named bench_nope"):
        run_all.main(["--folder", str(folder), "--out", str(out), "--only", "bench_nope"])


def test_a_script_over_its_time_limit_is_recorded(tmp_path):
    folder = fake_folder(tmp_path, bench_slow="import time\nprint('started', flush=True)\ntime.sleep(30)\n")
    out = tmp_path / "out"
    assert run_all.main(["--folder", str(folder), "--out", str(out), "--timeout", "3"]) == 1
    status = json.loads((out / "run.json").read_text())["scripts"]["bench_slow"]
    assert status["returncode"] == "timeout" and "timed out after 3 s" in status["tail"]


@pytest.mark.parametrize("rows, kind", [
    ([], None),
    ([{"method": "a", "best_ms": 1.0, "gb_per_s": 3.0, "T": 4, "D": 2}], "bandwidth"),
    ([{"method": "a", "T": t, "best_ms": 1.0} for t in (1, 2, 4)], "scaling"),
    ([{"method": m, "T": 8, "best_ms": 1.0, "ratio_to_sdpa": 1.0} for m in "ab"], "ratio"),
    ([{"method": m, "best_ms": 1.0} for m in "ab"], "times"),
    ([{"method": "a", "best_ms": 1.0}], None),
    ([{"method": "a", "best_ms": None}], None),
])
def test_plot_kind_follows_the_rows(rows, kind):
    assert run_all.plot_kind(rows) == kind


@pytest.mark.parametrize("rows", [
    [{"method": m, "T": t, "D": d, "best_ms": t / 100, "kind": "x"} for m in "ab" for t in (8, 64, 512)
     for d in (1, 8)],
    [{"method": m, "a": "varying", "T": 64, "D": 8, "best_ms": 1.0, "gb_per_s": g,
      "kind": "limit" if m == "copy" else "x"} for m, g in (("copy", 9.0), ("mine", 3.0))],
    [{"task": t, "method": m, "best_ms": 1.0, "ratio_to_peer": r} for t in ("f", "b")
     for m, r in (("mine", 0.5), ("peer", 1.0))],
])
def test_plots_are_drawn(rows, tmp_path):
    path = tmp_path / "p.png"
    assert run_all.plot({"benchmark": "b", "date": "d", "rows": rows}, path)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_the_real_scripts_are_found_and_one_runs_quick(tmp_path):
    names = [p.stem for p in run_all.scripts()]
    assert {"bench_gru_cpu", "bench_linear_recurrence_cpu", "bench_aaren_cpu", "bench_scan_gpu"} <= set(names)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick", "--only", "bench_scan_gpu",
         "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((out / "bench_scan_gpu.json").read_text())
    assert result["goals"] == [] and result["no_goal"]
