"""minirec: recurrence in neural networks, each mechanism built three times.

A NumPy reference that reads like the equations (``<mechanism>/reference.py``), a Numba version
that is fast on a CPU (``numba_cpu.py``) and a PyTorch version that trains and runs on CUDA
(``torch_ops.py``). Mechanisms so far: :mod:`minirec.cells` (tanh RNN, GRU, LSTM, BPTT).
Exercise checks live in :mod:`minirec.check`, the finite-difference checker in
:mod:`minirec.gradcheck`.
"""

__version__ = "0.1.0"
