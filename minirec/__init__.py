"""minirec: recurrence in neural networks, each mechanism built three times.

A NumPy reference that reads like the equations (``<mechanism>/reference.py``), a Numba version
that is fast on a CPU (``numba_cpu.py``) and a PyTorch version that trains and runs on CUDA
(``torch_ops.py``). Mechanisms: :mod:`minirec.cells` (tanh RNN, GRU, LSTM, BPTT),
:mod:`minirec.scan` (associative scans, the linear recurrence), :mod:`minirec.attention`
(softmax, Aaren, linear attention, LightNet), :mod:`minirec.routing` (top-k mixture of experts,
the RMoE router), :mod:`minirec.workspace` (a global-workspace controller),
:mod:`minirec.memory` (Hebbian, delta-rule and Titans memories), :mod:`minirec.hmm` (HMMs and an
RNN that emulates one), :mod:`minirec.ssm` (a selective state-space layer) and
:mod:`minirec.longcontext` (prefix-linear attention); synthetic data in :mod:`minirec.tasks`.
Exercise checks live in :mod:`minirec.check`, the finite-difference checker in
:mod:`minirec.gradcheck`.
"""

__version__ = "0.1.0"
