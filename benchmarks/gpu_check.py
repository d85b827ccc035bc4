"""Every CUDA path of minirec in one run, on a machine with a CUDA GPU, in under 8 minutes; the
results go to one file.

    python benchmarks/gpu_check.py                 # on a CUDA machine: the whole check
    python benchmarks/gpu_check.py --dry-run       # anywhere: the plan, and its CPU-safe parts
    python benchmarks/gpu_check.py --out FILE      # the results file (default below)

Run it from the repository root in a venv whose torch sees the GPU (``pip install -e ".[dev]"``
without the CPU-only constraint of ``.ci/constraints.txt``). The steps, in order:

1. ``machine``: ``nvidia-smi -L``, torch's CUDA version and device, ``numba.cuda.is_available()``;
2. ``cuda parity tests``: every test in ``tests/`` whose outcome depends on
   ``torch.cuda.is_available()`` (a ``skipif`` on it, or a branch on it in its body: found by
   reading the test files, see :func:`cuda_tests`), run by pytest by node id; without a GPU
   they skip;
3. ``numba cuda kernels on the device``: the cases that ``tests/test_scan_cuda.py`` runs in
   Numba's CUDA simulator, run on the GPU itself and judged by that test's own assertions;
4. ``bench_scan_gpu.py``: the linear recurrence on the GPU at full size;
5. ``bench_memory_cpu.py``: Titans' memory, full size, whose last section is the GPU's.

Each step has a time limit, cut to what is left of the 8 minutes; a step that runs past it
fails. The results file (Markdown; ``benchmarks/results/gpu_check.md`` by default, which git
ignores) holds the machine, a table of the steps (status, seconds) and every step's command
and output. Copy its summary and tables into ``benchmarks/README.md`` ("GPU check").

Without a CUDA GPU, or with ``--dry-run``, it is a dry run: it prints what it would run, then
runs the CPU-safe parts at tiny size (the parity tests, which skip; the Numba kernels' cases in
the simulator; ``bench_scan_gpu.py --device cpu --quick``; ``bench_memory_cpu.py --quick``) and
writes the same file. The exit status is 0 when every step that ran passed, else 1.
"""

from __future__ import annotations

import argparse
import ast
import datetime as _dt
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUT = HERE / "results" / "gpu_check.md"
BUDGET_S = 8 * 60
OUTPUT_CHARS = 20_000  # of each step's output kept in the results file
CUDA_QUERY = re.compile(r"\bcuda\.is_available\(\)")

#: Step 3: the cases of tests/test_scan_cuda.py, on the device, judged by that test.
NUMBA_CUDA_SCRIPT = """
import json, subprocess, sys
from tests.test_scan_cuda import SCRIPT, test_cuda_kernels_match_reference_in_the_simulator as judge
out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
results = json.loads(out.stdout.strip().splitlines()[-1])
judge(results)
for r in results:
    print(r["case"], f"max relative error {r['err']:.1e}", r["dtype"])
print(f"{len(results)} cases within the test's tolerances")
"""


@dataclass
class Step:
    name: str
    command: list[str]
    limit_s: float
    env: dict[str, str] = field(default_factory=dict)
    status: str = "not run"
    seconds: float = 0.0
    output: str = ""


def cuda_tests(tests: Path = ROOT / "tests") -> list[str]:
    """Node ids (``tests/test_x.py::test_y``, ``...::Class::test_y``) of the test functions
    whose decorators or body ask ``cuda.is_available()`` (a ``skipif`` written on them or
    through a module-level mark such as ``cuda = pytest.mark.skipif(...)``)."""
    ids = []
    for path in sorted(tests.glob("test_*.py")):
        module = ast.parse(path.read_text(encoding="utf-8"))
        marks = {target.id for node in module.body if isinstance(node, ast.Assign)
                 and CUDA_QUERY.search(ast.unparse(node.value))
                 for target in node.targets if isinstance(target, ast.Name)}
        rel = path.relative_to(tests.parent).as_posix()
        for owner, node in _test_functions(module):
            decorators = [ast.unparse(d) for d in node.decorator_list]
            asks = any(CUDA_QUERY.search(d) or d in marks for d in decorators)
            if asks or CUDA_QUERY.search(ast.unparse(node)):
                ids.append("::".join([rel, *owner, node.name]))
    return ids


def _test_functions(module):
    for node in module.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            yield [], node
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name.startswith("test"):
                    yield [node.name], item


def gpu_available() -> tuple[bool, str]:
    """Whether torch sees a CUDA GPU here, and what it is (or why not)."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - minirec needs torch
        return False, f"torch is not importable: {exc}"
    if not torch.cuda.is_available():
        return False, f"torch {torch.__version__} sees no CUDA GPU"
    return True, f"{torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA {torch.version.cuda})"


MACHINE_SCRIPT = """
import shutil, subprocess, torch
if shutil.which("nvidia-smi"):
    print(subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip())
print("torch", torch.__version__, "CUDA", torch.version.cuda, "available:", torch.cuda.is_available())
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"  device {i}: {p.name}, {p.total_memory / 2**30:.1f} GiB, {p.multi_processor_count} SMs")
from numba import cuda
print("numba.cuda.is_available():", cuda.is_available())
"""


def plan(dry: bool) -> list[Step]:
    """The steps: at full size on a GPU, their CPU-safe versions at tiny size in a dry run."""
    py = sys.executable
    pytest = [py, "-m", "pytest", "-p", "no:nbval", "-p", "no:cacheprovider", "-o", "addopts=",
              "-q", "-rs", *cuda_tests()]
    simulator = {"NUMBA_ENABLE_CUDASIM": "1"} if dry else {}
    scan = [py, "benchmarks/bench_scan_gpu.py"] + (["--device", "cpu", "--quick"] if dry else [])
    memory = [py, "benchmarks/bench_memory_cpu.py"] + (["--quick"] if dry else [])
    kernels = "numba cuda kernels " + ("in the simulator (dry run)" if dry else "on the device")
    return [
        Step("machine", [py, "-c", MACHINE_SCRIPT], 60),
        Step("cuda parity tests" + (" (they skip: dry run)" if dry else ""), pytest, 180),
        Step(kernels, [py, "-c", NUMBA_CUDA_SCRIPT], 120, env=simulator),
        Step("bench_scan_gpu.py" + (" --device cpu --quick" if dry else ""), scan, 240),
        Step("bench_memory_cpu.py" + (" --quick" if dry else ""), memory, 180),
    ]


def run(step: Step, left_s: float) -> None:
    """Run ``step`` within its limit and what is left of the budget; record what happened."""
    limit = max(1.0, min(step.limit_s, left_s))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **step.env}
    start = time.perf_counter()
    try:
        done = subprocess.run(step.command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=limit)
        step.output = done.stdout + done.stderr
        step.status = "passed" if done.returncode == 0 else f"failed (exit {done.returncode})"
    except subprocess.TimeoutExpired as exc:
        step.output = _text(exc.stdout) + _text(exc.stderr)
        step.status = f"timed out after {limit:.0f} s"
    step.seconds = time.perf_counter() - start


def _text(data) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def report(steps: list[Step], *, dry: bool, why: str, started: str, total_s: float) -> str:
    """The results file: header, table of steps, then each step's command and output."""
    mode = f"DRY RUN ({why})" if dry else f"GPU: {why}"
    lines = [f"# minirec GPU check — {started}", "", f"- {mode}",
             f"- total {total_s:.0f} s of the {BUDGET_S} s budget", "",
             "| step | status | seconds |", "|---|---|---|"]
    lines += [f"| {s.name} | {s.status} | {s.seconds:.1f} |" for s in steps]
    for s in steps:
        shown = s.output[-OUTPUT_CHARS:]
        env = "".join(f"{k}={v} " for k, v in s.env.items())
        command = env + " ".join(_short(c) for c in s.command)
        lines += ["", f"## {s.name}: {s.status}", "", "```", f"$ {command}", shown.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def _short(arg: str) -> str:
    """A command's argument as shown: inline scripts by their first line."""
    if "\n" in arg:
        first = next(line for line in arg.splitlines() if line.strip())
        return json.dumps(first + " ...")
    return arg


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="say what would run, and run its CPU-safe parts at tiny size")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    args = parser.parse_args(argv)

    has_gpu, why = gpu_available()
    dry = args.dry_run or not has_gpu
    if args.dry_run and has_gpu:
        why = f"--dry-run; {why}"
    started = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    steps = plan(dry)
    print(f"minirec GPU check — {started}\n" + (f"DRY RUN: {why}" if dry else f"GPU: {why}"))
    print(f"{'would run, then runs' if dry else 'runs'} in {BUDGET_S} s at most:")
    for s in steps:
        print(f"  {s.name} (limit {s.limit_s:.0f} s): {' '.join(_short(c) for c in s.command)}")
    begin = time.perf_counter()
    for s in steps:
        run(s, BUDGET_S - (time.perf_counter() - begin))
        print(f"{s.name}: {s.status} in {s.seconds:.1f} s", flush=True)
    total = time.perf_counter() - begin
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(steps, dry=dry, why=why, started=started, total_s=total),
                        encoding="utf-8")
    print(f"results: {args.out}")
    return 0 if all(s.status == "passed" for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
