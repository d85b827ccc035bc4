"""Verdict records: each check's result, told to a grader through a channel a notebook cannot
forge by printing, by swallowing an exception or by replaying an output.

Unarmed (in Jupyter, under nbval, in ``minirec build``) this module does nothing. ``minirec
grade`` and ``minirec check`` arm it before the first cell runs: the kernel starts with an
IPython startup script (in its private ``IPYTHONDIR``) that calls :func:`arm` with the path of a
key file holding a per-run id and a secret. :func:`arm` reads the file and deletes it, so the
secret is neither in a file nor in the environment (``/proc/self/environ``) when the notebook's
cells run. From then on every :func:`~minirec.check.run_check` publishes, besides what it prints
or raises, one ``display_data`` output of MIME type :data:`MIME`::

    {"run": <run id>, "exercise": "gru_step", "verdict": "passed" | "not attempted" | "failed"
     | "error" | "tampered", "cell": <the running cell: 1 for the first cell run>, "seq": 1, ...,
     "alerts": [...], "mac": HMAC-SHA256(secret, the other fields as canonical JSON)}

The grader (:mod:`minirec.grading._verdicts`) accepts a record only where its MAC, run id, cell
and sequence number are right; a check cell without one is "not run", never "passed".

While armed, the module also watches for a notebook reaching into the check (the threat model
is in :mod:`minirec.grading`):

- *integrity*: the globals of minirec's modules (and the code, defaults and class attributes of
  their functions and classes), NumPy's namespace and the builtin functions are recorded when
  armed; a record published after one of them was rebound says ``tampered`` and names it
  (``minirec.check._core.compare``);
- *runtime alerts*, from a Python audit hook (which cannot be removed once added): while a check
  calls the learner's function, frames taken by notebook code (``sys._getframe``, a traceback's
  or generator's frame), ``sys._current_frames``, ``gc.get_objects/referrers/referents`` or a
  trace or profile function make that verdict ``tampered``; opening a notebook file (or a file
  under a watched folder: the solutions, the lessons, the submissions) at any time makes every
  later verdict ``tampered``; the ``gc`` and ``sys._current_frames`` calls, a code object
  replaced or an audit hook added by notebook code at other times are listed in ``alerts``
  (for review) without changing the verdict.

What it cannot do: code that reads the signer out of this module's memory can sign anything.
Getting there needs the machinery the grader flags (this module, frames, ``gc``, ...).
"""

from __future__ import annotations

import builtins
import hmac
import json
import os
import sys
import sysconfig
import threading
import types
from contextlib import contextmanager
from pathlib import Path

__all__ = ["MIME", "VERDICTS", "TAMPERED", "arm", "armed", "watching", "report", "canonical",
           "sign"]

MIME = "application/vnd.minirec.verdict+json"
TAMPERED = "tampered"
VERDICTS = ("passed", "not attempted", "failed", "error", TAMPERED)
_SIGNED_FIELDS = ("run", "exercise", "verdict", "cell", "seq", "alerts")
_MAX_ALERTS = 10

# Audit events (https://docs.python.org/3/library/audit_events.html) that take a frame, look
# into every object, or trace: suspicious while a check calls the learner's function.
_FRAME_EVENTS = frozenset({"sys._getframe", "sys._current_frames"})
_FRAME_ATTRIBUTES = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"})
_GC_EVENTS = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents"})
_TRACE_EVENTS = frozenset({"sys.settrace", "sys.setprofile"})
_WATCHED = _FRAME_EVENTS | _GC_EVENTS | _TRACE_EVENTS | {
    "object.__getattr__", "object.__setattr__", "open", "sys.addaudithook"}
_BUILTINS_IPYTHON_REBINDS = frozenset({"input", "raw_input", "breakpoint"})


def canonical(fields: dict) -> bytes:
    """The bytes a record's MAC is computed over: its signed fields as sorted, compact JSON."""
    return json.dumps({k: fields.get(k) for k in _SIGNED_FIELDS}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True).encode()


def sign(key: bytes, fields: dict) -> str:
    """HMAC-SHA256 of :func:`canonical` ``(fields)`` under ``key``, in hex."""
    return hmac.new(key, canonical(fields), "sha256").hexdigest()


class _State:
    """What an armed kernel keeps: the signer (an HMAC object: its key cannot be read back from
    Python), how to publish and where the running cell is, the integrity record, the alerts."""

    def __init__(self, run: str, key: bytes, publish, cell_number, watch: list[str]):
        self.run = run
        self.signer = hmac.new(key, digestmod="sha256")
        self.publish = publish
        self.cell_number = cell_number
        self.seq = 0
        self.watch = tuple(os.path.abspath(p) for p in watch)
        self.library = _library_roots()
        self.snapshot = _snapshot()
        self.alerts: list[str] = []  # for review; the verdicts stand
        self.sticky: list[str] = []  # every later verdict is tampered
        self.window: list[str] | None = None  # set while a check calls the learner's function
        self.window_thread: int | None = None
        self.in_hook = False


_state: _State | None = None


class _CellCounter:
    """The number of cells the kernel ran since it was armed (IPython's ``pre_run_cell``)."""

    def __init__(self):
        self.cells = 0

    def count(self, _info) -> None:
        self.cells += 1

    def __call__(self) -> int:
        return self.cells


def armed() -> bool:
    return _state is not None


def arm(key_file, *, publish=None, cell_number=None) -> None:
    """Read the run's id, secret and watched folders from ``key_file`` (JSON: ``run``, ``key``
    in hex, ``watch``), delete the file, and start publishing signed verdicts. ``publish(data)``
    and ``cell_number()`` default to the running IPython kernel's display publisher and the
    number of cells run since (the first cell is 1: IPython's execution count during a cell
    differs between versions). Arming twice is refused (a notebook cannot re-arm with its own
    key)."""
    global _state
    if _state is not None:
        raise RuntimeError("minirec's verdicts are already armed")
    path = Path(key_file)
    try:
        secret = json.loads(path.read_text(encoding="utf-8"))
    finally:
        path.unlink(missing_ok=True)
    if publish is None or cell_number is None:
        from IPython import get_ipython

        shell = get_ipython()
        display_pub = shell.display_pub
        publish = publish or (lambda data: display_pub.publish(data=data, metadata={}))
        if cell_number is None:
            cell_number = _CellCounter()
            shell.events.register("pre_run_cell", cell_number.count)
    _state = _State(str(secret["run"]), bytes.fromhex(secret["key"]), publish, cell_number,
                    list(secret.get("watch", [])))
    sys.addaudithook(_audit)


@contextmanager
def watching():
    """While active, the checked function runs: runtime alerts make the verdict tampered."""
    state = _state
    if state is None or state.window_thread is not None:  # unarmed, or a check in a check
        yield
        return
    state.window, state.window_thread = [], threading.get_ident()
    try:
        yield
    finally:
        state.window_thread = None  # the alerts stay in state.window until report()


def report(exercise: str, verdict: str) -> None:
    """Publish the signed record of ``exercise``'s verdict (nothing when unarmed)."""
    state = _state
    if state is None:
        return
    try:
        _publish(state, exercise, verdict)
    except Exception:  # noqa: BLE001, S110 - no record is "not run" to the grader
        pass


def _publish(state: _State, exercise: str, verdict: str) -> None:
    reasons = list(state.sticky) + list(state.window or []) + _changes(state.snapshot)
    state.window = None
    state.seq += 1
    fields = {"run": state.run, "exercise": str(exercise),
              "verdict": TAMPERED if reasons else verdict,
              "cell": state.cell_number(), "seq": state.seq,
              "alerts": list(dict.fromkeys(reasons + state.alerts))[:_MAX_ALERTS]}
    signer = state.signer.copy()
    signer.update(canonical(fields))
    state.publish({MIME: {**fields, "mac": signer.hexdigest()}})


# --------------------------------------------------------------------------------------------
# Integrity: what a notebook might rebind to make a check pass
# --------------------------------------------------------------------------------------------

def _function_parts(value) -> tuple:
    if isinstance(value, types.FunctionType):
        return (id(value), id(value.__code__), id(value.__defaults__), id(value.__kwdefaults__))
    return (id(value),)


def _snapshot() -> dict[str, tuple]:
    """``module.name`` → the identity of what it is bound to (and of a function's code and
    defaults; a class's attributes one level down) for minirec's modules and NumPy's namespace,
    and the builtin functions and types."""
    seen: dict[str, tuple] = {}
    modules = [(name, module) for name, module in list(sys.modules.items())
               if isinstance(module, types.ModuleType)
               and (name == "minirec" or name.startswith("minirec.") or name == "numpy")
               and name != __name__]
    for name, module in modules:
        for attr, value in list(vars(module).items()):
            seen[f"{name}.{attr}"] = _function_parts(value)
            if isinstance(value, type) and getattr(value, "__module__", None) == name:
                for key, member in list(vars(value).items()):
                    seen[f"{name}.{attr}.{key}"] = _function_parts(member)
    for attr, value in vars(builtins).items():
        if attr not in _BUILTINS_IPYTHON_REBINDS and isinstance(
                value, (types.BuiltinFunctionType, type)):
            seen[f"builtins.{attr}"] = (id(value),)
    return seen


def _changes(snapshot: dict[str, tuple]) -> list[str]:
    """The names of ``snapshot`` rebound or deleted since: ``minirec.check._core.compare was
    replaced``."""
    now = {}
    changed = []
    for dotted, parts in snapshot.items():
        owner, _, attr = dotted.rpartition(".")
        if owner not in now:
            now[owner] = _namespace(owner)
        namespace = now[owner]
        if namespace is None or attr not in namespace:
            changed.append(f"{dotted} was deleted")
        elif _function_parts(namespace[attr]) != parts:
            changed.append(f"{dotted} was replaced")
        if len(changed) >= 3:
            break
    return changed


def _namespace(dotted: str) -> dict | None:
    """The live namespace of a module (``minirec.check._core``), a class in it, or builtins."""
    if dotted == "builtins":
        return vars(builtins)
    if dotted in sys.modules:
        return vars(sys.modules[dotted])
    module, _, cls = dotted.rpartition(".")
    owner = sys.modules.get(module)
    value = vars(owner).get(cls) if owner is not None else None
    return dict(vars(value)) if isinstance(value, type) else None


# --------------------------------------------------------------------------------------------
# Runtime alerts: an audit hook
# --------------------------------------------------------------------------------------------

def _library_roots() -> tuple[str, ...]:
    """Folders whose code is a library's, not the notebook's: the standard library, the
    site-packages, the interpreter's prefixes and minirec's own folder."""
    paths = sysconfig.get_paths()
    roots = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix,
              str(Path(__file__).resolve().parents[1])}
    return tuple(os.path.join(os.path.realpath(r), "") for r in roots if r)


def _is_notebook_code(filename: str, state: _State) -> bool:
    """Code a notebook ran: a cell (a file outside the libraries) or a string it exec'd."""
    if filename.startswith("<"):
        return not filename.startswith("<frozen")
    return not os.path.realpath(filename).startswith(state.library)


_INDIRECT = ("inspect.py", "traceback.py")


def _called_from_notebook(state: _State, depth: int) -> bool:
    """The code that raised the event, ``depth`` frames up, is the notebook's - directly or
    through ``inspect`` / ``traceback``."""
    frame = sys._getframe(depth)
    while frame is not None and frame.f_code.co_filename.endswith(_INDIRECT):
        frame = frame.f_back
    return frame is not None and _is_notebook_code(frame.f_code.co_filename, state)


def _audit(event: str, args: tuple) -> None:
    if event not in _WATCHED:
        return
    state = _state
    if state is None or state.in_hook:
        return
    if event == "object.__getattr__" and (len(args) < 2 or args[1] not in _FRAME_ATTRIBUTES):
        return
    if event == "object.__setattr__" and (len(args) < 2 or args[1] != "__code__"):
        return
    state.in_hook = True
    try:
        _on_event(state, event, args)
    except Exception:  # noqa: BLE001, S110 - an audit hook must never break the kernel
        pass
    finally:
        state.in_hook = False


def _what(event: str, args: tuple) -> str:
    if event == "object.__getattr__":
        return f"took the frame of a {type(args[0]).__name__}"
    if event == "object.__setattr__":
        return "replaced a function's code"
    return f"called {event}"


def _on_event(state: _State, event: str, args: tuple) -> None:
    """Record what the event says (the rules: the module's docstring)."""
    if event == "open":
        _on_open(state, args)
        return
    in_window = state.window is not None and state.window_thread is not None
    # depth 3 in _called_from_notebook: it <- _on_event <- _audit <- the code that raised it
    if in_window and event in _GC_EVENTS | _TRACE_EVENTS | {"sys._current_frames"}:
        state.window.append(f"the checked function {_what(event, args)}")
    elif in_window and threading.get_ident() == state.window_thread \
            and _called_from_notebook(state, 3):
        state.window.append(f"the checked function {_what(event, args)} while being checked")
    elif event in _GC_EVENTS | {"sys._current_frames", "sys.addaudithook",
                                "object.__setattr__"} and _called_from_notebook(state, 3):
        note = f"notebook code {_what(event, args)}"
        if note not in state.alerts:
            state.alerts.append(note)


def _on_open(state: _State, args: tuple) -> None:
    path = args[0] if args else None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        return
    full = os.path.abspath(path)
    if full.endswith(".ipynb") or any(full == w or full.startswith(os.path.join(w, ""))
                                      for w in state.watch):
        note = f"the notebook opened {path}"
        if note not in state.sticky:
            state.sticky.append(note)
