r"""The global workspace in PyTorch: the same maths as :mod:`minirec.workspace.reference`,
differentiable, on whatever device its tensors live (CUDA when there).

Notation as in the reference::

    N digits   B batch   K steps   M = 3 modules (input, increment, output)   H controller size
    w (B, N)   a_onehot (B, N)   gates (B, M)   program (K, B, M)   cue (B, 1) = b

Functions (tensors in, tensors out): ``workspace_write``, ``soft_gates``, ``hard_gates``,
``run_program``, ``controller_run``. Modules: :class:`GlobalWorkspace` (the LSTM controller —
:class:`minirec.cells.torch_ops.LSTM`, lesson 01's cell, not a second one — and its read-out;
soft gates while training, hard gates in eval mode) and :class:`DirectLSTM` (the baseline that
maps (a, b) to a + b with no modules).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from minirec.cells import torch_ops as cells
from minirec.workspace.reference import CONTROLLER_KEYS, MODULES, controller_input_size

__all__ = [
    "workspace_write", "soft_gates", "hard_gates", "run_program", "controller_run",
    "GlobalWorkspace", "DirectLSTM", "WorkspaceRun",
]

M = len(MODULES)


def blank_workspace(batch: int, n_digits: int, like: torch.Tensor) -> torch.Tensor:
    """Uniform over the N digits, ``(B, N)``, with ``like``'s dtype and device."""
    return like.new_full((batch, n_digits), 1.0 / n_digits)


def module_proposals(w, a_onehot):
    """``(B, M, N)``: onehot(a), P w (digit j → j + 1 mod N), w — in the order of MODULES."""
    return torch.stack([a_onehot, torch.roll(w, 1, dims=-1), w], dim=1)


def workspace_write(w, gates, a_onehot):
    """``w_new = Σ_m gates[:, m] · M_m(w)``; ``w, a_onehot (B, N)``, ``gates (B, M)`` → ``(B, N)``.

    Written as three products rather than an einsum over :func:`module_proposals`: the same sum,
    and a third of the time on these tiny tensors.
    """
    g_input, g_increment, g_output = gates.unsqueeze(-1).unbind(1)           # (B, 1) each
    return g_input * a_onehot + g_increment * torch.roll(w, 1, dims=-1) + g_output * w


def soft_gates(logits):
    """softmax over the modules (last axis)."""
    return torch.softmax(logits, dim=-1)


def hard_gates(logits):
    """onehot(argmax over the modules); ties go to the first module. Not differentiable."""
    return F.one_hot(torch.argmax(logits, dim=-1), logits.shape[-1]).to(logits.dtype)


def run_program(a_onehot, program):
    """K gated writes from the blank workspace: ``(K + 1, B, N)`` workspaces."""
    B, N = a_onehot.shape
    w = blank_workspace(B, N, a_onehot)
    trajectory = [w]
    for gates in program.unbind(0):
        w = workspace_write(w, gates, a_onehot)
        trajectory.append(w)
    return torch.stack(trajectory)


class WorkspaceRun(NamedTuple):
    """What the global-workspace model returns: ``workspace (K + 1, B, N)``, ``gates (K, B, M)``
    and the controller's ``logits (K, B, M)``."""

    workspace: torch.Tensor
    gates: torch.Tensor
    logits: torch.Tensor


def controller_run(a_onehot, cue, params, n_steps: int, *, hard: bool = True,
                   reads_workspace: bool = False) -> WorkspaceRun:
    """K steps of LSTM controller → gates → gated write, as the reference's ``controller_run``.

    ``params``: the LSTM's ``weight_ih (4H, C)`` (C = N + 1 when ``reads_workspace``, else 1),
    ``weight_hh (4H, H)``, ``bias_ih``, ``bias_hh (4H,)`` and the read-out ``weight_out (M, H)``,
    ``bias_out (M,)``.
    """
    if not reads_workspace:
        return _open_loop_run(a_onehot, cue, params, n_steps, hard)
    B, N = a_onehot.shape
    H = params["weight_hh"].shape[1]
    w = blank_workspace(B, N, a_onehot)
    state = (a_onehot.new_zeros((B, H)), a_onehot.new_zeros((B, H)))
    trajectory, all_gates, all_logits = [w], [], []
    for _ in range(n_steps):
        x = torch.cat([w, cue], dim=-1)                              # x_k = [w_k, cue]
        _, state = cells.lstm_forward(x[None], state, params)        # one step of lesson 01's LSTM
        logits = F.linear(state[0], params["weight_out"], params["bias_out"])
        gates = hard_gates(logits) if hard else soft_gates(logits)
        w = workspace_write(w, gates, a_onehot)                     # w_{k+1} = Σ_m g_m M_m(w_k)
        trajectory.append(w)
        all_gates.append(gates)
        all_logits.append(logits)
    return WorkspaceRun(torch.stack(trajectory), torch.stack(all_gates), torch.stack(all_logits))


def _open_loop_run(a_onehot, cue, params, n_steps, hard):
    """A controller that reads only the cue is open-loop: its input is the same at every step,
    so its K states — and the whole gate program — come from one LSTM pass over K copies of the
    cue, before any module runs. Same maths as the step-by-step loop, a fraction of the calls."""
    B, _ = a_onehot.shape
    H = params["weight_hh"].shape[1]
    state = (a_onehot.new_zeros((B, H)), a_onehot.new_zeros((B, H)))
    hs, _ = cells.lstm_forward(cue.expand(n_steps, *cue.shape), state, params)    # (K, B, H)
    logits = F.linear(hs, params["weight_out"], params["bias_out"])                # (K, B, M)
    program = hard_gates(logits) if hard else soft_gates(logits)
    return WorkspaceRun(run_program(a_onehot, program), program, logits)


def _check_digits(name, digits, high, device):
    if not isinstance(digits, torch.Tensor) or digits.dtype.is_floating_point or digits.dim() != 1:
        got = (f"{digits.dtype} tensor of shape {tuple(digits.shape)}"
               if isinstance(digits, torch.Tensor) else type(digits).__name__)
        raise TypeError(f"{name} must be an integer tensor of digits, shape (B,); got {got}")
    if digits.numel() and (int(digits.min()) < 0 or int(digits.max()) >= high):
        raise ValueError(f"{name} must hold digits in [0, {high}); got values from "
                         f"{int(digits.min())} to {int(digits.max())}")
    return digits.to(device)


class GlobalWorkspace(nn.Module):
    """The global-workspace model of paper #34 on one-hot digits mod N.

    An LSTM controller (``self.controller``: minirec's :class:`~minirec.cells.torch_ops.LSTM`,
    torch.nn's parameter names) reads the cue b (and the workspace w_k too when
    ``reads_workspace``) at each of K steps; ``self.readout``
    scores the three modules; the gates choose which module writes to the workspace. In training
    mode the gates are a softmax (differentiable); in eval mode they are onehot(argmax), so each
    step runs exactly one module. ``forward(a, b)`` takes integer digit tensors ``(B,)`` and
    returns a :class:`WorkspaceRun`.
    """

    def __init__(self, n_digits: int, n_steps: int, hidden_size: int = 16, *,
                 reads_workspace: bool = False, device=None, dtype=None):
        super().__init__()
        for name, v in (("n_digits", n_digits), ("n_steps", n_steps), ("hidden_size", hidden_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {v!r}")
        if n_digits < 2 or n_steps < 2:
            raise ValueError(f"n_digits and n_steps must be at least 2; got {n_digits}, {n_steps}")
        self.n_digits, self.n_steps, self.hidden_size = n_digits, n_steps, hidden_size
        self.reads_workspace = bool(reads_workspace)
        kw = {"device": device, "dtype": dtype}
        C = controller_input_size(n_digits, self.reads_workspace)
        self.controller = cells.LSTM(C, hidden_size, **kw)
        self.readout = nn.Linear(hidden_size, M, **kw)

    def params(self) -> dict:
        """The functional params dict (the reference's ``CONTROLLER_KEYS``), as live tensors."""
        p = self.controller.layer_params(0)
        p["weight_out"], p["bias_out"] = self.readout.weight, self.readout.bias
        return p

    @torch.no_grad()
    def load_params(self, params: dict) -> None:
        """Copy a params dict (NumPy arrays or tensors, keys ``CONTROLLER_KEYS``) into the model."""
        mine = self.params()
        for k in CONTROLLER_KEYS:
            src = torch.as_tensor(params[k])
            if tuple(src.shape) != tuple(mine[k].shape):
                raise ValueError(f"params[{k!r}] must have shape {tuple(mine[k].shape)}; "
                                 f"got {tuple(src.shape)}")
            mine[k].copy_(src)

    def forward(self, a, b, *, hard: bool | None = None) -> WorkspaceRun:
        """``a, b (B,)`` integer digits (``b ≤ K − 2``) → :class:`WorkspaceRun`. ``hard=None``
        means soft gates in training mode, hard gates in eval mode."""
        device = self.readout.weight.device
        dtype = self.readout.weight.dtype
        a = _check_digits("a", a, self.n_digits, device)
        b = _check_digits("b", b, self.n_steps - 1, device)
        if a.shape != b.shape:
            raise ValueError(f"a and b must have the same shape (B,); got {tuple(a.shape)} and "
                             f"{tuple(b.shape)}")
        hard = (not self.training) if hard is None else hard
        a_onehot = F.one_hot(a, self.n_digits).to(dtype)
        cue = b.to(dtype)[:, None]                                    # the cue b, (B, 1)
        return controller_run(a_onehot, cue, self.params(), self.n_steps, hard=hard,
                              reads_workspace=self.reads_workspace)

    def log_answer(self, run: WorkspaceRun) -> torch.Tensor:
        """log w_K, ``(B, N)``: a log-probability over the answer (floored at 1e-30 where a hard
        run leaves exact zeros)."""
        return torch.log(run.workspace[-1].clamp_min(1e-30))


class DirectLSTM(nn.Module):
    """The baseline: an LSTM that reads the two addends as a 2-step sequence and maps its final
    state to the N digits of a + b. Each token is ``[onehot(x), x]``: the one-hot digit the
    workspace holds and the number the controller reads. Returns logits ``(B, N)``.
    """

    def __init__(self, n_digits: int, hidden_size: int = 32, *, device=None, dtype=None):
        super().__init__()
        self.n_digits = n_digits
        kw = {"device": device, "dtype": dtype}
        self.lstm = cells.LSTM(n_digits + 1, hidden_size, **kw)
        self.head = nn.Linear(hidden_size, n_digits, **kw)

    def tokens(self, a, b):
        """``(2, B, N + 1)``: [onehot(a), a] then [onehot(b), b]."""
        dtype = self.head.weight.dtype
        digits = torch.stack([a, b]).to(self.head.weight.device)   # (2, B)
        return torch.cat([F.one_hot(digits, self.n_digits).to(dtype),
                          digits.to(dtype)[..., None]], dim=-1)

    def forward(self, a, b):
        for name, d in (("a", a), ("b", b)):
            _check_digits(name, d, self.n_digits, self.head.weight.device)
        _, (h, _) = self.lstm(self.tokens(a, b))
        return self.head(h[-1])

