"""Running a notebook in a fresh kernel: every cell, even after an error, within one time limit
for the whole notebook, with a cap on the outputs kept; how the run ended (:class:`RunOutcome`).

The kernel is this interpreter's ``python3`` (:func:`minirec.notebooks.current_env_kernel_manager`,
the one ``minirec build`` starts), behind a command prefix where the grader sandboxes it.
"""

from __future__ import annotations

import copy
import math
import os
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from minirec.notebooks import current_env_kernel_manager

from ._statuses import GRADER_ERROR, KERNEL_DIED, TIMED_OUT

MAX_OUTPUT_CHARS = 5_000_000  # outputs kept per run; an endless print cannot fill our memory
# A cell's error is always kept (it may be a check's verdict), cut to a message and a traceback
# of bounded size; a second error in one cell is dropped.
MAX_ERROR_VALUE_CHARS = 20_000
MAX_TRACEBACK_LINES = 30
MAX_TRACEBACK_LINE_CHARS = 2_000
# The checks' verdict records (:mod:`minirec.check._verdict`) have a budget of their own, so that
# a notebook's earlier prints cannot push them out.
MAX_RECORD_CHARS = 1_000_000


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


class _Cancelled(Exception):
    pass


def _client_class():
    from nbclient import NotebookClient

    class GradingClient(NotebookClient):
        """nbclient with a cap on kept outputs, the index of the running cell and, where
        given, the kernel's connection file in a chosen place and its sockets as files
        (``ipc_path``: the transport other processes on the machine cannot reach)."""

        current_cell: int | None = None
        output_chars = 0
        record_chars = 0
        truncated = False
        connection_path: str | None = None
        ipc_path: str | None = None

        def create_kernel_manager(self):
            km = super().create_kernel_manager()
            if self.connection_path:
                km.connection_file = self.connection_path
            if self.ipc_path:  # sockets ipc_path-1, -2, ... instead of ports on localhost
                km.transport, km.ip = "ipc", self.ipc_path
            return km

        def _update_display_id(self, display_id, msg):  # counted like a new output
            if not self._count(msg.get("content", {})):
                return None
            return super()._update_display_id(display_id, msg)

        def handle_comm_msg(self, outs, msg, cell_index):
            return None  # widgets' state is not kept (its size is the kernel's choice)

        def _count(self, content: dict) -> bool:
            """Count an output against the cap; False when it is over the cap (dropped)."""
            size = sum(len(str(content.get(k, ""))) for k in ("text", "data", "metadata"))
            if _is_record(content) and self.record_chars + size <= MAX_RECORD_CHARS:
                self.record_chars += size
                return True
            self.output_chars += size
            if self.output_chars > MAX_OUTPUT_CHARS:
                self.truncated = True
                return False
            return True

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            if msg["msg_type"] == "error":  # one per cell (a kernel may send more)
                if any(o.get("output_type") == "error" for o in outs):
                    self.truncated = True
                    return None
                _cap_error(content)
                return super().output(outs, msg, display_id, cell_index)
            if not self._count(content):
                return None
            return super().output(outs, msg, display_id, cell_index)

    return GradingClient


def _cap_error(content: dict) -> None:
    """An error output cut to bounded size (its name, message and the traceback's last lines,
    each line cut): the frames that say where it happened are kept."""
    content["ename"] = str(content.get("ename", ""))[:200]
    content["evalue"] = str(content.get("evalue", ""))[:MAX_ERROR_VALUE_CHARS]
    lines = [str(line) for line in content.get("traceback", [])[-MAX_TRACEBACK_LINES:]]
    content["traceback"] = [line[:MAX_TRACEBACK_LINE_CHARS] for line in lines]


def _is_record(content: dict) -> bool:
    from minirec.check._verdict import MIME

    data = content.get("data")
    return isinstance(data, dict) and MIME in data


def run_notebook(nb, *, cwd, time_limit: float, kernel_prefix: Iterable[str] = (),
                 env: dict | None = None, stderr_path=None,
                 connection_file=None, ipc_path=None,
                 cancelled: Callable[[], bool] | None = None) -> RunOutcome:
    """Run a copy of ``nb`` in a fresh kernel, every cell even after errors, within
    ``time_limit`` seconds for the whole notebook; never raises for what the notebook does.
    ``connection_file``: where the kernel's connection file is written (default: Jupyter's
    runtime folder). ``ipc_path``: the kernel talks over Unix sockets ``<ipc_path>-N`` instead
    of TCP ports on localhost, which any process of the machine may connect to (and read the
    kernel's outputs from). ``cancelled``: asked before each cell; when it says True the run
    stops (``GRADER_ERROR``, "grading was stopped")."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = copy.deepcopy(nb)
    env = dict(os.environ) if env is None else env
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
        if cancelled is not None and cancelled():
            raise _Cancelled

    client.on_cell_start = on_cell_start
    client.connection_path = str(connection_file) if connection_file else None
    client.ipc_path = str(ipc_path) if ipc_path else None
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
    except _Cancelled:
        stopped = (GRADER_ERROR, client.current_cell, "grading was stopped")
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
