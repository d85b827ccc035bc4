"""Running a notebook in a fresh kernel: every cell, even after an error, within one time limit
for the whole notebook, with a cap on the outputs kept; how the run ended (:class:`RunOutcome`).

The kernel is this interpreter's ``python3`` (:func:`minirec.notebooks.current_env_kernel_manager`,
the one ``minirec build`` starts), behind a command prefix where the grader sandboxes it.
"""

from __future__ import annotations

import copy
import math
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from minirec.notebooks import current_env_kernel_manager

from ._statuses import GRADER_ERROR, KERNEL_DIED, TIMED_OUT

MAX_OUTPUT_CHARS = 5_000_000  # outputs kept per run; an endless print cannot fill our memory


@dataclass
class RunOutcome:
    """An executed copy of the notebook and how the run ended: ``stopped`` is None when every
    cell ran, else (``TIMED_OUT`` / ``KERNEL_DIED`` / ``GRADER_ERROR``, cell index or None,
    detail)."""

    nb: object
    stopped: tuple[str, int | None, str] | None
    seconds: float
    output_truncated: bool = False


class _OutOfTime(Exception):
    pass


def _client_class():
    from nbclient import NotebookClient

    class GradingClient(NotebookClient):
        """nbclient with a cap on kept outputs and the index of the running cell."""

        current_cell: int | None = None
        output_chars = 0
        truncated = False

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            if msg["msg_type"] == "error":
                content["traceback"] = content.get("traceback", [])[-30:]
                content["evalue"] = str(content.get("evalue", ""))[:20_000]
            else:
                size = len(str(content.get("text", ""))) + len(str(content.get("data", "")))
                self.output_chars += size
                if self.output_chars > MAX_OUTPUT_CHARS:
                    self.truncated = True
                    return None
            return super().output(outs, msg, display_id, cell_index)

    return GradingClient


def run_notebook(nb, *, cwd, time_limit: float, kernel_prefix: Iterable[str] = (),
                 env: dict | None = None, stderr_path=None) -> RunOutcome:
    """Run a copy of ``nb`` in a fresh kernel, every cell even after errors, within
    ``time_limit`` seconds for the whole notebook; never raises for what the notebook does."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = copy.deepcopy(nb)
    for cell in nb.cells:  # what was saved in the file counts for nothing
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    deadline = time.monotonic() + time_limit

    def remaining(cell=None):
        return max(1, math.ceil(deadline - time.monotonic()))

    client = _client_class()(
        nb,
        timeout_func=remaining,
        startup_timeout=max(10, min(120, int(time_limit))),
        kernel_name="python3",
        kernel_manager_class=current_env_kernel_manager(kernel_prefix),
        allow_errors=True,
        record_timing=False,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(cwd)}},
    )

    def on_cell_start(cell, cell_index):
        client.current_cell = cell_index
        if cell.cell_type == "code" and time.monotonic() >= deadline:
            raise _OutOfTime

    client.on_cell_start = on_cell_start
    stopped = None
    start = time.perf_counter()
    log = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        client.execute(env=env, stdout=subprocess.DEVNULL, stderr=log)
    except (CellTimeoutError, _OutOfTime):
        stopped = (TIMED_OUT, client.current_cell,
                   f"ran past the time limit of {time_limit:g} s")
    except DeadKernelError:
        stopped = (KERNEL_DIED, client.current_cell, "the kernel died (crashed or exited)")
    except Exception as exc:  # noqa: BLE001 - e.g. the kernel never started
        what = f"{type(exc).__name__}: {exc}".strip()
        if stderr_path:
            log.close()
            tail = Path(stderr_path).read_bytes()[-1500:].decode(errors="replace").strip()
            what += f"\n{tail}" if tail else ""
        kind = KERNEL_DIED if "died" in str(exc).lower() else GRADER_ERROR
        stopped = (kind, client.current_cell if client.current_cell is not None else None, what)
    finally:
        if stderr_path and not log.closed:
            log.close()
    return RunOutcome(nb, stopped, time.perf_counter() - start, client.truncated)
