"""The numba.cuda kernels (Blelloch block scan, multi-block scan) against the NumPy reference,
run in numba's CUDA simulator.

``NUMBA_ENABLE_CUDASIM=1`` must be set before numba is first imported, so the checks run in a
fresh Python process (numba is already imported here). The simulator runs every CUDA thread as
a Python thread: sizes stay small, and blocks of 4 or 8 threads (8 or 16 steps per block) make
T = 64 and T = 300 span many blocks and two or three levels of block-total scans.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minirec.scan import numba_cuda

SCRIPT = r"""
import json, sys
import numpy as np
from minirec import scan
from minirec.scan import numba_cuda, reference as R

assert numba_cuda.is_available()
rng = np.random.default_rng(0)
results = []
# (T, threads, trailing shape, dtype): one block exactly full (16) and one step over (17); T = 64
# and 300 span many blocks and two or three levels of block totals
cases = [(1, 8, (3,), "f64"), (5, 8, (3,), "f32"), (64, 4, (3,), "f64"), (64, 8, (1,), "f32"),
         (300, 8, (1,), "f64"), (16, 8, (2,), "f64"), (17, 8, (2,), "f32")]
for T, threads, trailing, dt in cases:
    dtype = {"f64": np.float64, "f32": np.float32}[dt]
    a = rng.uniform(-1, 1, size=(T, *trailing)).astype(dtype)
    b = rng.normal(size=(T, *trailing)).astype(dtype)
    h0 = rng.normal(size=trailing).astype(dtype)
    want = R.linear_recurrence(a.astype(np.float64), b.astype(np.float64), h0.astype(np.float64))
    got = numba_cuda.linear_recurrence_cuda(a, b, h0, threads=threads)
    err = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
    results.append({"case": [T, threads, list(trailing), dt], "err": err,
                    "dtype": str(got.dtype), "shape": list(got.shape)})
# through the public dispatch, h0 = None, broadcast decay, default block size
a = rng.uniform(0.5, 1, size=(40,)); b = rng.normal(size=(40, 2))
got = scan.linear_recurrence(a, b, backend="cuda")
want = R.linear_recurrence(a, b)
results.append({"case": "dispatch", "err": float(np.max(np.abs(got - want)) / np.max(np.abs(want))),
                "dtype": str(got.dtype), "shape": list(got.shape)})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def simulated():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_cuda_kernels_match_reference_in_the_simulator(simulated):
    tol = {"f64": 1e-12, "f32": 1e-5}
    for r in simulated:
        if r["case"] == "dispatch":
            assert r["err"] < 1e-12 and r["dtype"] == "float64" and r["shape"] == [40, 2], r
            continue
        T, threads, trailing, dt = r["case"]
        assert r["err"] < tol[dt], r
        assert r["dtype"] == {"f64": "float64", "f32": "float32"}[dt], r
        assert r["shape"] == [T, *trailing], r


def test_cuda_module_imports_without_a_gpu_and_says_so():
    if numba_cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        numba_cuda.linear_recurrence_cuda(np.ones((3, 2)), np.ones((3, 2)))


def test_block_size_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        numba_cuda.linear_recurrence_device(None, None, None, threads=12)
