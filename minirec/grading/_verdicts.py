"""The grader's end of the verdict channel (the kernel's end: :mod:`minirec.check._verdict`).

Before a run, :func:`install` writes, into the kernel's private ``IPYTHONDIR``, a key file (a
fresh run id and 32-byte secret, readable by the grader's user only) and an IPython startup
script that arms :mod:`minirec.check._verdict` with it before the first cell: the kernel reads
and deletes the file. After the run, :func:`read_records` takes the records out of the
executed notebook and keeps the ones that are genuine: a record counts only with the right MAC
and run id, in the outputs of the check cell it names (the n-th cell run), for a check that
cell calls, and with a sequence number not seen before. Everything else is a review flag.
"""

from __future__ import annotations

import ast
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from minirec.check._verdict import MIME, TAMPERED, VERDICTS, sign

from ._notebook import call_name

STARTUP_NAME = "00-minirec-verdicts.py"
_STARTUP = """\
# Written by minirec's grader: arm the signed verdict records before the first cell runs.
from minirec.check import _verdict
_verdict.arm({key_file!r})
del _verdict
"""


@dataclass(frozen=True)
class RunKey:
    """A run's id and secret."""

    run: str
    key: bytes = field(repr=False)

    @classmethod
    def new(cls) -> RunKey:
        return cls(secrets.token_hex(8), secrets.token_bytes(32))


def install(ipython_dir: Path, key: RunKey, watch=()) -> Path:
    """Write the key file and the startup script that arms the kernel with it; return the
    key file's path (gone after the kernel started: :func:`armed`). ``watch``: folders whose
    files a notebook must not open (the solutions, the submissions)."""
    startup = ipython_dir / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    key_file = ipython_dir / f"minirec-{secrets.token_hex(8)}.key"
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as f:
        json.dump({"run": key.run, "key": key.key.hex(), "watch": [str(p) for p in watch]}, f)
    (startup / STARTUP_NAME).write_text(_STARTUP.format(key_file=str(key_file)),
                                        encoding="utf-8")
    return key_file


def armed(key_file: Path) -> bool:
    """The kernel read (and deleted) its key file."""
    return not key_file.exists()


@dataclass
class Records:
    """The genuine records of a run by check cell index, and what was wrong with the others."""

    by_cell: dict[int, list[dict]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)  # the kernel's, from genuine records


def checks_called(source: str) -> set[str]:
    """The exercises a check cell checks: ``x`` of each ``check_x(...)`` it calls."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {call_name(n).removeprefix("check_") for n in ast.walk(tree)
            if isinstance(n, ast.Call) and call_name(n).startswith("check_")}


def _records_in(cell) -> list:
    return [out.get("data", {}).get(MIME) for out in cell.get("outputs", [])
            if out.get("output_type") in ("display_data", "execute_result")
            and MIME in out.get("data", {})]


def read_records(nb, check_cells, key: RunKey) -> Records:
    """The records of an executed notebook (``check_cells``: the indices of its check cells)."""
    found = Records()
    seen: set[int] = set()
    checks = set(check_cells)
    ordinal = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell.get("execution_count") is None:
            continue
        ordinal += 1  # the kernel counts the cells it ran the same way
        for record in _records_in(cell):
            problem = verify(record, key)
            if problem is None and index in checks:
                problem = _misplaced(record, cell, ordinal, seen)
            elif problem is None:
                continue  # a check the learner called in another cell: counts for nothing
            if problem is not None:
                found.problems.append(f"{problem} in cell {index + 1}")
                continue
            seen.add(record["seq"])
            found.by_cell.setdefault(index, []).append(record)
            found.alerts += [a for a in record.get("alerts", []) if a not in found.alerts]
    found.problems = list(dict.fromkeys(found.problems))
    return found


def verify(record, key: RunKey) -> str | None:
    """Why a record is not genuine (its MAC, its run), or None."""
    if not isinstance(record, dict) or not isinstance(record.get("mac"), str):
        return "a forged verdict record (no MAC)"
    if not hmac.compare_digest(sign(key.key, record), record["mac"]):
        return "a forged verdict record (bad MAC)"
    if record.get("run") != key.run:
        return "a verdict record of another run"
    if record.get("verdict") not in VERDICTS or not isinstance(record.get("seq"), int):
        return "a malformed verdict record"
    return None


def _misplaced(record: dict, cell, ordinal: int, seen: set[int]) -> str | None:
    if record.get("cell") != ordinal:
        return "a verdict record made in another cell"
    if record.get("exercise") not in checks_called(cell.source):
        return f"a verdict record of {record.get('exercise')!r}, which this cell does not check"
    if record["seq"] in seen:
        return "a verdict record shown twice"
    return None


def withheld(record: dict) -> bool:
    """The kernel saw the check tampered with and withheld its verdict."""
    return record.get("verdict") == TAMPERED
