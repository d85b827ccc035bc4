"""Run every benchmark script and write its results, tables and plots for the website.

    python benchmarks/run_all.py                 # full sizes -> book/performance/ (commit it)
    python benchmarks/run_all.py --quick         # tiny sizes -> benchmarks/results/quick/ (smoke)
    python benchmarks/run_all.py --only bench_scan_gpu   # some scripts; the others' results stay

Every ``benchmarks/bench_*.py`` is found by name and run in its own process, one after the other
(so they do not share the cores), with ``--json``. For each script ``<name>`` the output folder
receives:

- ``<name>.json``: the script's own JSON (header, rows, and its ``goals`` with ``met`` when it
  has numeric goals);
- ``<name>.txt``: what the script printed (its table of ratios to the peers and limits);
- ``<name>.png``: a plot drawn from the JSON rows (see :func:`plot`), where the rows allow one.

and ``run.json`` records the run: machine, start and end (UTC), load average, command, and for
each script its exit status, seconds and, when it failed, the end of its output. A script that
fails does not stop the others; its old results are removed, so the page says it failed rather
than showing numbers from another run. The exit status is 1 if any script failed.

The website's performance page (``book/performance.md``) is generated from ``book/performance/``
when the site is built (``minirec book``): nothing is run then.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FULL_OUT = ROOT / "book" / "performance"
QUICK_OUT = HERE / "results" / "quick"
TAIL_CHARS = 3000


def scripts(folder: Path = HERE, only: list[str] | None = None) -> list[Path]:
    """The benchmark scripts ``bench_*.py`` of ``folder`` (those named in ``only``, if given)."""
    found = sorted(folder.glob("bench_*.py"))
    if only:
        wanted = {name.removesuffix(".py") for name in only}
        unknown = wanted - {p.stem for p in found}
        if unknown:
            known = ", ".join(p.stem for p in found)
            raise SystemExit(f"run_all: no benchmark named {', '.join(sorted(unknown))} (found: {known})")
        found = [p for p in found if p.stem in wanted]
    return found


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on Linux
        return float("nan")


def machine() -> dict:
    """CPU model, logical CPUs, memory, OS and the GPU (if torch sees one) of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover
        pass
    text = f"{cpu}, {os.cpu_count()} logical CPUs"
    if memory:
        text += f", {memory:g} GiB"
    text += f", {platform.system()} {platform.machine()}, Python {platform.python_version()}"
    if gpu:
        text += f", GPU {gpu}"
    return {"description": text, "cpu": cpu, "logical_cpus": os.cpu_count(), "memory_gib": memory,
            "gpu": gpu, "host": platform.node()}


def run_script(script: Path, out: Path, *, quick: bool, timeout: float) -> dict:
    """Run one script with ``--json``; write its .json, .txt (and .png); return its status."""
    json_path, text_path, plot_path = (out / f"{script.stem}{ext}" for ext in (".json", ".txt", ".png"))
    for old in (json_path, text_path, plot_path):
        old.unlink(missing_ok=True)
    command = [sys.executable, str(script), "--json", str(json_path)] + (["--quick"] if quick else [])
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        returncode = "timeout"
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = f"timed out after {timeout:.0f} s"
    status = {"returncode": returncode, "seconds": round(time.perf_counter() - start, 1),
              "command": shlex.join([Path(command[0]).name] + [os.path.relpath(c, ROOT) if
                                                                  c.startswith(str(ROOT)) else c
                                                                  for c in command[1:]])}
    if returncode == 0 and json_path.is_file():
        text_path.write_text(stdout, encoding="utf-8")
        try:
            result = json.loads(json_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            returncode = status["returncode"] = f"unreadable JSON: {exc}"
        else:
            status["plot"] = plot(result, plot_path)
            return status
    if returncode == 0:
        status["returncode"] = "no JSON written"
    json_path.unlink(missing_ok=True)
    status["tail"] = (stdout + "\n" + stderr).strip()[-TAIL_CHARS:]
    return status


# --------------------------------------------------------------------------------------------
# Plots: drawn from the rows of any benchmark's JSON, so a new script gets one without code here
# --------------------------------------------------------------------------------------------


def _numeric(rows, key) -> bool:
    return all(isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool) for r in rows)


def plot_kind(rows: list[dict]) -> str | None:
    """Which plot the rows allow: ``"bandwidth"`` (GB/s per method, one panel per size),
    ``"scaling"`` (best ms against T on log axes, a line per method), ``"ratio"`` (a bar per
    method of its ratio to the peer), ``"times"`` (a bar per row of its best time) or None."""
    if not rows or not _numeric(rows, "best_ms"):
        return None
    if any(isinstance(r.get("gb_per_s"), (int, float)) for r in rows):
        return "bandwidth"
    if _numeric(rows, "T") and len({r["T"] for r in rows}) >= 3:
        return "scaling"
    if any(k.startswith("ratio_to_") for k in rows[0]):
        return "ratio"
    if len({r.get("method") for r in rows}) >= 2:
        return "times"
    return None


def _groups(rows, keys):
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in keys if k in r), []).append(r)
    return groups


def plot(result: dict, path: Path) -> bool:
    """Draw ``path`` (PNG) from ``result["rows"]``; return False when the rows allow no plot."""
    rows = result.get("rows") or []
    kind = plot_kind(rows)
    if kind is None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if kind == "bandwidth":
        panels = _groups(rows, ["T", "D"])
        fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 0.32 * max(
            len(v) for v in panels.values()) + 1.5), squeeze=False)
        for ax, (size, group) in zip(axes[0], panels.items()):
            group = [r for r in group if isinstance(r.get("gb_per_s"), (int, float))]
            labels = [f"{r['method']}" + (f" [{r['a']}]" if r.get("a") not in (None, "-", "varying") else "")
                      for r in group]
            colors = ["0.6" if r.get("kind") == "limit" else "C0" for r in group]
            ax.barh(range(len(group)), [r["gb_per_s"] for r in group], color=colors)
            ax.set_yticks(range(len(group)), labels, fontsize=7)
            ax.invert_yaxis()
            ax.set_xlabel("GB/s (grey: the machine's limits)")
            ax.set_title("×".join(map(str, size)) if size else "")
    elif kind == "scaling":
        panels = _groups(rows, ["D"]) if len({r.get("D") for r in rows}) > 1 else {(): rows}
        fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
        for ax, (key, group) in zip(axes[0], panels.items()):
            for method, mrows in _groups(group, ["method"]).items():
                mrows = sorted(mrows, key=lambda r: r["T"])
                ax.loglog([r["T"] for r in mrows], [r["best_ms"] for r in mrows], "o-", ms=3,
                          label=method[0])
            ax.set_xlabel("T (sequence length)")
            ax.set_ylabel("best time, ms")
            ax.set_title(f"D={key[0]}" if key else "")
            ax.legend(fontsize=6)
    elif kind == "times":
        fig, ax = plt.subplots(figsize=(6.5, 0.32 * len(rows) + 1.5))
        labels = [" ".join(str(r[k]) for k in ("method", "device") if r.get(k)) for r in rows]
        ax.barh(range(len(rows)), [r["best_ms"] for r in rows])
        ax.set_yticks(range(len(rows)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("best time, ms")
    else:
        ratio = next(k for k in rows[0] if k.startswith("ratio_to_"))
        by = [k for k in ("task", "T") if len({r.get(k) for r in rows}) > 1]
        panels = _groups(rows, by) if by else {(): rows}
        fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 0.35 * max(
            len(v) for v in panels.values()) + 1.5), squeeze=False)
        for ax, (key, group) in zip(axes[0], panels.items()):
            ax.barh(range(len(group)), [r[ratio] for r in group])
            ax.set_yticks(range(len(group)), [r["method"] for r in group], fontsize=7)
            ax.invert_yaxis()
            ax.axvline(1.0, color="k", lw=0.8)
            ax.set_xscale("log")
            ax.set_xlabel(f"time / peer's time ({ratio.removeprefix('ratio_to_')}; < 1 is faster)")
            ax.set_title(", ".join(f"{k}={v}" for k, v in zip(by, key)))
    fig.suptitle(f"{result.get('benchmark', path.stem)} — {result.get('date', '')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test, not a measurement)")
    ap.add_argument("--out", type=Path, default=None,
                    help=f"output folder (default {FULL_OUT.relative_to(ROOT)}, with --quick "
                         f"{QUICK_OUT.relative_to(ROOT)})")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these scripts (bench_gru_cpu ...)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds allowed per script")
    ap.add_argument("--folder", type=Path, default=HERE, help=argparse.SUPPRESS)  # tests
    args = ap.parse_args(argv)

    out = (args.out or (QUICK_OUT if args.quick else FULL_OUT)).resolve()
    out.mkdir(parents=True, exist_ok=True)
    chosen = scripts(args.folder, args.only)
    record_path = out / "run.json"
    try:
        previous = json.loads(record_path.read_text(encoding="utf-8")) if args.only else {}
    except (OSError, ValueError):
        previous = {}
    record = {
        "started": utc_now(),
        "command": shlex.join(["python", "benchmarks/run_all.py"] + list(argv if argv is not None
                                                                            else sys.argv[1:])),
        "quick": args.quick,
        "machine": machine(),
        "load_start": load_average(),
        "scripts": dict(previous.get("scripts", {})),
    }
    present = {p.stem for p in scripts(args.folder)}
    record["scripts"] = {k: v for k, v in record["scripts"].items() if k in present}
    for script in chosen:
        print(f"run_all: {script.name} ...", flush=True)
        status = run_script(script, out, quick=args.quick, timeout=args.timeout)
        status["finished"] = utc_now()
        record["scripts"][script.stem] = status
        word = "ok" if status["returncode"] == 0 else f"FAILED ({status['returncode']})"
        print(f"run_all: {script.name}: {word} in {status['seconds']:.0f} s", flush=True)
    record["finished"] = utc_now()
    record["load_end"] = load_average()
    for stale in out.glob("bench_*.*"):
        if stale.stem not in present:
            stale.unlink()
    record_path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    failed = [k for k, v in record["scripts"].items() if v["returncode"] != 0]
    print(f"run_all: results in {out}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
