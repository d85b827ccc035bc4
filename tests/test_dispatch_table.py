"""How a public function reaches a backend (minirec._dispatch): each mechanism's table, the
conversion NumPy ↔ Torch, and the torch backend on NumPy input for every public function.

- Every mechanism's ``IMPLEMENTATIONS`` resolves: each entry is a function of the module it
  names, the numpy column is the reference, a torch column never is.
- The conversion keeps structure (tuples, lists, dicts, named tuples, dataclasses), dtype and,
  on the CPU, memory; the torch backend converts once each way.
- Every public function with a ``backend`` argument, on NumPy input with ``backend="torch"``,
  returns what ``backend="numpy"`` returns (float64, to rounding), and exactly what the torch
  backend returns on tensors (float32 and int32 inputs: the dtypes kept). Its inputs are drawn by
  tests/test_no_mutation.py's ``TABLE``, the one table of inputs for every public function.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import warnings
from typing import NamedTuple

import numpy as np
import pytest
import torch

from minirec import _dispatch
from minirec._dispatch import Implementations, numpy_dtype, to_numpy, to_torch

try:  # `python -m pytest` (the repository root on sys.path) or a tests/ package
    from tests.test_no_mutation import TABLE, TORCH_NUMPY_IN, public_callables, size_cases
except ImportError:  # plain `pytest`: tests/ itself is on sys.path
    from test_no_mutation import TABLE, TORCH_NUMPY_IN, public_callables, size_cases

MECHANISMS = ("cells", "scan", "attention", "routing", "workspace", "memory", "hmm", "ssm")

#: Public functions that run on another mechanism's backends (no table of their own).
DELEGATES = {"longcontext.prefix_linear_attention": "attention.linear_attention"}


def with_backend():
    """``{"package.name": function}`` for every public function that takes ``backend=``."""
    return {name: fn for name, fn in public_callables().items()
            if not inspect.isclass(fn) and "backend" in inspect.signature(fn).parameters}


# --------------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_every_entry_of_the_table_is_a_function_of_the_module_it_names(mechanism):
    table = importlib.import_module(f"minirec.{mechanism}").IMPLEMENTATIONS
    assert table.rows, f"{mechanism}: an empty table"
    for name, row in table.rows.items():
        assert row["numpy"] == "reference", f"{mechanism}.{name}: the numpy backend is the reference"
        assert not row["torch"].startswith("reference"), \
            f"{mechanism}.{name}: the reference cannot take tensors"
        for backend in table.backends:
            assert callable(table.function(backend, name)), f"{mechanism}.{name} on {backend}"


def test_no_mechanism_converts_between_numpy_and_torch_itself():
    """The conversion is _dispatch's: no mechanism's __init__.py calls torch's converters."""
    for mechanism in (*MECHANISMS, "longcontext"):
        source = inspect.getsource(importlib.import_module(f"minirec.{mechanism}"))
        for converter in ("as_tensor", "from_numpy", "torch.tensor("):
            assert converter not in source, f"minirec/{mechanism}/__init__.py calls {converter}"


def test_a_row_must_name_one_module_per_backend():
    with pytest.raises(ValueError, match="one entry per backend"):
        Implementations("minirec.scan", {"linear_recurrence": ("reference", "numba_cpu")})
    with pytest.raises(ValueError, match="must name one of the modules"):
        Implementations("minirec.scan", {"linear_recurrence": ("reference", "numba", "torch_ops")})
    with pytest.raises(ValueError, match="has no row"):
        Implementations("minirec.scan", {"linear_recurrence": ("reference", "numba_cpu", "torch_ops")},
                        torch_on_numpy={"add": "numba_cpu"})


def test_the_default_backend_follows_the_input_and_the_table():
    three = Implementations("minirec.scan", {"add": ("reference", "reference", "torch_ops")})
    two = Implementations("minirec.workspace", {"run_program": ("reference", "torch_ops")},
                          backends=("numpy", "torch"))
    x, t = np.zeros(2), torch.zeros(2)
    assert (three.pick(None, x), three.pick(None, t), two.pick(None, x)) == ("numba", "torch", "numpy")
    with pytest.raises(ValueError, match=r"backend must be one of \('numpy', 'torch'\) or None"):
        two.pick("numba", x)
    with pytest.raises(TypeError, match="torch tensors need backend='torch'"):
        three.pick("numpy", t)


def test_the_compiled_dtypes_are_the_ones_torch_ops_compiles():
    """NumPy input on the torch backend goes straight to the Numba scan only for the dtypes
    scan/torch_ops.py itself hands to it; other dtypes take the Torch path."""
    from minirec.scan import torch_ops

    assert {numpy_dtype(torch.empty(0, dtype=d)) for d in torch_ops._COMPILED_DTYPES} == \
        set(_dispatch.COMPILED_DTYPES)


# --------------------------------------------------------------------------------------------
# The conversion
# --------------------------------------------------------------------------------------------

class Pair(NamedTuple):
    first: object
    second: object


@dataclasses.dataclass(frozen=True)
class Record:
    values: object
    label: str = "r"


DTYPES = (np.float32, np.float64, np.int32, np.int64, np.bool_)


def nested(rng):
    """Arrays of every dtype in every container the conversion walks."""
    arrays = [rng.standard_normal((2, 3)).astype(d) if np.dtype(d).kind == "f"
              else (rng.integers(0, 2, (2, 3))).astype(d) for d in DTYPES]
    return {"tuple": (arrays[0], [arrays[1], None]), "pair": Pair(arrays[2], 3),
            "record": Record({"deep": arrays[3]}), "scalar": np.asarray(arrays[4][0, 0]),
            "text": "kept"}


def test_conversion_keeps_structure_dtype_and_memory_both_ways():
    tree = nested(np.random.default_rng(0))
    tensors = to_torch(tree)
    back = to_numpy(tensors)
    assert isinstance(tensors["pair"], Pair) and isinstance(tensors["record"], Record)
    assert isinstance(tensors["tuple"][1], list) and tensors["tuple"][1][1] is None
    assert tensors["pair"].second == 3 and tensors["text"] == "kept"
    leaves = [(tree["tuple"][0], tensors["tuple"][0], back["tuple"][0]),
              (tree["tuple"][1][0], tensors["tuple"][1][0], back["tuple"][1][0]),
              (tree["pair"].first, tensors["pair"].first, back["pair"].first),
              (tree["record"].values["deep"], tensors["record"].values["deep"],
               back["record"].values["deep"]),
              (tree["scalar"], tensors["scalar"], back["scalar"])]
    assert [a.dtype for a, _, _ in leaves] == [np.dtype(d) for d in DTYPES]
    for array, tensor, again in leaves:
        assert isinstance(tensor, torch.Tensor) and numpy_dtype(tensor) == array.dtype
        assert tensor.shape == array.shape and np.array_equal(tensor.numpy(), array)
        assert isinstance(again, np.ndarray) and again.dtype == array.dtype
        assert np.shares_memory(again, array), "a CPU conversion copied the array"


def test_arrays_torch_cannot_share_are_copied_and_read_only_ones_shared_quietly():
    x = np.arange(6.0)
    reversed_view = x[::-1]
    read_only = np.broadcast_to(x, (2, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t_reversed, t_read_only = to_torch((reversed_view, read_only))
    assert np.array_equal(t_reversed.numpy(), reversed_view)
    assert not np.shares_memory(t_reversed.numpy(), x)
    assert np.array_equal(t_read_only.numpy(), read_only) and t_read_only.stride() == (0, 1)


def seen_by(chain_result):
    """What the chain saw, as types."""
    return {name: type(value).__name__ for name, value in chain_result.items()}


def record(impl, x, extra=None):
    return {"x": x, "extra": extra}


def test_run_converts_numpy_in_and_out_and_leaves_tensors_as_they_are():
    table = Implementations("minirec.scan", {"add": ("reference", "reference", "torch_ops")})
    x, t = np.ones(3), torch.ones(3, dtype=torch.float64)
    assert seen_by(table.run("numba", record, x, extra=x)) == {"x": "ndarray", "extra": "ndarray"}
    # NumPy in on the torch backend: tensors inside, NumPy out
    inside = {}
    out = table.run("torch", lambda impl, x, extra: inside.update(record(impl, x, extra)) or x, x,
                    extra=x)
    assert seen_by(inside) == {"x": "Tensor", "extra": "Tensor"} and isinstance(out, np.ndarray)
    # tensors in: an array built beside them (a one-hot, a constant gate) follows them
    out = table.run("torch", record, t, extra=np.zeros(3, np.float64))
    assert seen_by(out) == {"x": "Tensor", "extra": "Tensor"}
    assert out["x"] is t and out["extra"].device == t.device


def crossing_counter(monkeypatch):
    """Patch torch's converters to record each crossing (">" NumPy → torch, "<" back); crossings
    inside scan/torch_ops.py's compiled scan (views of CPU tensors' memory handed to Numba and
    back) are not counted: that is how torch_ops runs on a CPU, not a conversion of the call."""
    from minirec.scan import torch_ops

    events, paused = [], []
    from_numpy, as_tensor, numpy = torch.from_numpy, torch.as_tensor, torch.Tensor.numpy

    def note(direction):
        if not paused:
            events.append(direction)

    def counted_from_numpy(array):
        note(">")
        return from_numpy(array)

    def counted_as_tensor(data, *args, **kwargs):
        if isinstance(data, np.ndarray):
            note(">")
        return as_tensor(data, *args, **kwargs)

    def counted_numpy(self, *args, **kwargs):
        note("<")
        return numpy(self, *args, **kwargs)

    compiled = torch_ops.SCANS["compiled"]

    def uncounted_compiled(*args):
        paused.append(1)
        try:
            return compiled(*args)
        finally:
            paused.pop()

    monkeypatch.setattr(torch, "from_numpy", counted_from_numpy)
    monkeypatch.setattr(torch, "as_tensor", counted_as_tensor)
    monkeypatch.setattr(torch.Tensor, "numpy", counted_numpy)
    monkeypatch.setitem(torch_ops.SCANS, "compiled", uncounted_compiled)

    def crossings():
        return [e for i, e in enumerate(events) if i == 0 or events[i - 1] != e]
    return events, crossings


def test_numpy_input_on_the_torch_backend_goes_straight_to_the_numba_scan(monkeypatch):
    """scan.linear_recurrence: on a CPU the Torch recurrence is the compiled Numba scan, so NumPy
    input on the torch backend calls it without crossing to torch (it crossed four times)."""
    from minirec import scan

    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 1.0, (7, 1, 3)), rng.standard_normal((7, 2, 3))
    want = scan.linear_recurrence(a, b, backend="numba")
    events, _ = crossing_counter(monkeypatch)
    for dtype in (np.float32, np.float64):
        got = scan.linear_recurrence(a.astype(dtype), b.astype(dtype), backend="torch")
        assert got.dtype == dtype
    assert events == [], f"crossed NumPy ↔ torch: {events}"
    assert np.array_equal(got, want)


def crossing_cases():
    """``(name, entry, variant)``: every public function with ``backend=``, each entry and
    variant the torch backend takes, at the entry's ordinary sizes."""
    return [(name, entry, variant) for name in sorted(with_backend()) for entry in TABLE[name]
            for variant in entry.variants if entry.allows(TORCH_NUMPY_IN, variant)]


def test_numpy_input_crosses_to_torch_once_and_back_once(monkeypatch):
    """Once each way around the whole call: Aaren's scores and its scan, or the SSM's selection
    and its scan, run on tensors in between (Aaren crossed four times)."""
    fns = with_backend()
    events, crossings = crossing_counter(monkeypatch)
    for name, entry, variant in crossing_cases():
        args, kwargs = entry.make({**entry.sizes, **entry.fixed}, np.random.default_rng(0))
        events.clear()
        fns[name](*args, **{**kwargs, **variant}, backend="torch")
        expected = [] if name == "scan.linear_recurrence" else [">", "<"]
        assert crossings() == expected, f"{name} {variant}: crossed {crossings()}"


# --------------------------------------------------------------------------------------------
# Every public function, NumPy input on the torch backend
# --------------------------------------------------------------------------------------------

def test_every_public_function_with_a_backend_is_covered():
    names = set(with_backend())
    assert {"workspace.workspace_write", "workspace.run_program", "workspace.controller_run",
            "routing.dispatch"} <= names
    missing = sorted(names - set(TABLE))
    assert not missing, f"no inputs in tests/test_no_mutation.py's TABLE for {missing}"
    for name in names - set(DELEGATES):
        package = name.split(".")[0]
        assert hasattr(importlib.import_module(f"minirec.{package}"), "IMPLEMENTATIONS"), \
            f"{name} takes backend= but minirec.{package} has no IMPLEMENTATIONS table"


def assert_matches(got, want, where, *, rtol):
    """``got`` has ``want``'s structure, kinds and dtypes; values equal (``rtol=0``) or within
    ``rtol`` of ``want``'s largest entry (at least 1)."""
    if isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want), f"{where}: {type(got).__name__}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_matches(g, w, f"{where}[{i}]", rtol=rtol)
    elif isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), f"{where}: keys"
        for key in want:
            assert_matches(got[key], want[key], f"{where}[{key!r}]", rtol=rtol)
    elif want is None:
        assert got is None, f"{where}: {type(got).__name__} instead of None"
    else:
        assert type(got) is type(want), f"{where}: {type(got).__name__} instead of {type(want).__name__}"
        assert got.dtype == want.dtype and got.shape == want.shape, \
            f"{where}: {got.dtype}{got.shape} instead of {want.dtype}{want.shape}"
        if rtol == 0:
            assert np.array_equal(got, want, equal_nan=True), f"{where}: values differ"
        else:
            scale = float(np.abs(want).max(initial=1.0))             # sums cancel: the terms' size
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=where)


def cases():
    return [(name, i) for name in sorted(with_backend()) for i in range(len(TABLE[name]))]


def case_id(case):
    name, i = case
    label = TABLE[name][i].label
    return f"{name}[{label}]" if label else name


def each_call(name, i):
    """``(label, args, kwargs)`` for every size case and variant of entry i that the torch backend
    takes."""
    entry = TABLE[name][i]
    for size_label, sizes in size_cases(entry.sizes, entry.fixed):
        for variant in entry.variants:
            if entry.allows(TORCH_NUMPY_IN, variant):
                args, kwargs = entry.make(sizes, np.random.default_rng(0))
                yield f"{size_label} {variant}", args, {**kwargs, **variant}


@pytest.mark.parametrize("case", cases(), ids=case_id)
def test_torch_backend_on_numpy_input_matches_the_reference(case):
    name, i = case
    fn, ran = with_backend()[name], 0
    for label, args, kwargs in each_call(name, i):
        got = fn(*args, **kwargs, backend="torch")
        want = fn(*args, **kwargs, backend="numpy")
        assert_matches(got, want, f"{name} {label}", rtol=1e-10)
        ran += 1
    assert ran, f"{name}: no case the torch backend takes"


def narrowed(tree):
    """float64 → float32 and int64 → int32, through the same containers."""
    def narrow(x):
        if isinstance(x, np.ndarray) and x.dtype == np.float64:
            return x.astype(np.float32)
        if isinstance(x, np.ndarray) and x.dtype == np.int64:
            return x.astype(np.int32)
        return x
    return _dispatch._map_leaves(narrow, tree)


#: Public functions that compute part of their input on the caller's kind before the backend
#: runs, so that float32 NumPy and float32 tensors differ there by rounding.
ON_THE_INPUTS_KIND = {
    "attention.linear_attention": "the feature map (a callable one takes the caller's arrays)",
    "longcontext.prefix_linear_attention": "the feature map and the encoder state",
}


@pytest.mark.parametrize("case", cases(), ids=case_id)
def test_torch_backend_on_numpy_input_is_the_torch_result_in_its_dtype(case):
    """float32 and int32 NumPy inputs on the torch backend give exactly what the same inputs as
    tensors give (:data:`ON_THE_INPUTS_KIND`: to float32 rounding), as NumPy arrays of the same
    dtypes (int32 indices included)."""
    name, i = case
    fn = with_backend()[name]
    for label, args, kwargs in each_call(name, i):
        args, kwargs = narrowed((args, kwargs))
        got = fn(*args, **kwargs, backend="torch")
        on_tensors = fn(*to_torch(args), **to_torch(kwargs), backend="torch")
        assert_matches(as_arrays(got), as_arrays(to_numpy(on_tensors)),
                       f"{name} {label} (float32, int32)", rtol=1e-6 if name in ON_THE_INPUTS_KIND else 0)


def as_arrays(tree):
    """NumPy scalars (``ll[0]`` of one sequence) as 0-d arrays, as a 0-d tensor converts."""
    return _dispatch._map_leaves(lambda x: np.asarray(x) if isinstance(x, np.generic) else x, tree)
