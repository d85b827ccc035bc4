"""No public function changes its inputs, and the same call twice gives the same result.

Every callable in the ``__all__`` of every mechanism package (:data:`PACKAGES`) has an entry in
:data:`TABLE` or a reason in :data:`EXEMPT`; ``test_every_public_function_is_in_the_table``
fails on a new function that has neither. An entry draws float64 inputs at ordinary sizes
(``Entry.sizes``) and again with each of those axes set to 1 in turn: a size-1 axis is where
``np.ascontiguousarray(a.T)`` returns a view of the caller's array instead of a copy (issue 11,
item 6: the Numba BPTT kernels wrote their running gradient into the caller's ``grad_final``
when B or H was 1). Each case is called twice, each time on a fresh deep copy of the inputs;
both copies must still equal the inputs afterwards, the two results must be equal exactly, and
the first result must be unchanged by the second call (no buffer shared between calls).

Backends (:data:`BACKENDS`): ``numpy``, ``numba`` and ``torch`` (on tensors) through the public
``backend=`` argument, ``torch(numpy in)`` (NumPy arrays on the torch backend, which wraps their
memory with ``torch.as_tensor``), ``plain`` (a function without ``backend=``, on NumPy input),
``plain(tensors)`` and ``module`` (an ``nn.Module`` built in the entry, on tensors; its
parameters count as inputs). A NumPy ``Generator`` among the inputs is copied with them (both
calls draw the same numbers) and is the one input allowed to change.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from minirec import attention, memory, routing, scan, ssm, workspace
from minirec.cells import init_params as cell_params
from minirec.memory import init_mlp_memory
from minirec.routing import reference as routing_ref
from minirec.ssm import init_params as ssm_params
from minirec.tasks import IGNORE
from minirec.workspace import init_controller_params

PACKAGES = ("cells", "scan", "attention", "routing", "workspace", "memory", "hmm", "ssm",
            "longcontext", "tasks")

NUMPY, NUMBA, TORCH, TORCH_NUMPY_IN = "numpy", "numba", "torch", "torch(numpy in)"
PLAIN, PLAIN_TENSORS, MODULE = "plain", "plain(tensors)", "module"
BACKENDS = (NUMPY, NUMBA, TORCH, TORCH_NUMPY_IN, PLAIN, PLAIN_TENSORS, MODULE)
PUBLIC_BACKENDS = (NUMPY, NUMBA, TORCH, TORCH_NUMPY_IN)


@dataclass(frozen=True)
class Entry:
    """How to call one public function.

    ``make(s, rng) -> (args, kwargs)`` draws NumPy inputs for the sizes ``s`` (a dict: ``s["B"]``)
    with every optional array argument given; ``sizes`` are the ordinary sizes, each of which is
    also tried at 1; ``fixed`` sizes are never 1 (the function refuses it); ``variants`` are
    keyword arguments laid over ``kwargs`` (``None`` drops an optional array: the default);
    ``allows(backend, variant)`` says which pairs exist.
    """

    make: Callable
    sizes: dict
    backends: tuple = PUBLIC_BACKENDS
    variants: tuple = ({},)
    allows: Callable = field(default=lambda backend, variant: True)
    label: str = ""
    fixed: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

def normal(rng, *shape):
    return rng.standard_normal(shape)


def positive(rng, *shape, low=0.2, high=1.5):
    return rng.uniform(low, high, size=shape)


def distributions(rng, *shape):
    """Rows (last axis) that sum to 1, every entry > 0."""
    p = rng.uniform(0.1, 1.0, size=shape)
    return p / p.sum(axis=-1, keepdims=True)


def symbols(rng, high, *shape):
    return rng.integers(0, high, size=shape)


def cell_state(cell, rng, B, H):
    h = normal(rng, B, H)
    return (h, normal(rng, B, H)) if cell == "lstm" else h


def swiglu_experts(rng, E, d, F):
    """E NumPy experts ``(n, d) → (n, d)`` as ``functools.partial`` s of :func:`swiglu_expert`,
    so that their weights are deep-copied and compared with the other inputs."""
    return [functools.partial(routing_ref.swiglu_expert, w1=normal(rng, F, d), w3=normal(rng, F, d),
                              w2=normal(rng, d, F)) for _ in range(E)]


def routed(rng, s, capacity=2):
    """Top-k choices of N tokens over E experts (k ≤ E) and their slots under ``capacity``."""
    N, E = s["N"], s["E"]
    k = min(s["k"], E)
    weights, indices = routing_ref.top_k_route(normal(rng, N, E), k)
    slots = routing_ref.expert_slots(indices, E, capacity)
    return weights, indices, slots, k


def seeded(build):
    """An ``nn.Module`` built from ``torch.manual_seed(0)``, in float64."""
    torch.manual_seed(0)
    return build().double()


# --------------------------------------------------------------------------------------------
# The table: "package.name" -> [Entry, ...]
# --------------------------------------------------------------------------------------------

CELL_SIZES = {"T": 3, "B": 2, "D": 3, "H": 4}


def cell_forward(cell):
    def make(s, rng):
        x = normal(rng, s["T"], s["B"], s["D"])
        return (x, cell_state(cell, rng, s["B"], s["H"]),
                cell_params(cell, s["D"], s["H"], rng=rng)), {}
    return [Entry(make, CELL_SIZES)]


def cell_bptt(cell):
    def make(s, rng):
        (x, h0, params), _ = cell_forward(cell)[0].make(s, rng)
        grad_outputs = normal(rng, s["T"], s["B"], s["H"])
        return (x, h0, params, grad_outputs), {"grad_final": cell_state(cell, rng, s["B"], s["H"])}
    variants = ({}, {"grad_final": None}, {"truncate": 2, "return_hidden_grads": True})
    return [Entry(make, CELL_SIZES, variants=variants)]


def torch_cell(s, rng):
    torch.manual_seed(0)
    return (torch.nn.GRU(s["D"], s["H"]).double(),), {}


SEQ = {"T": 3, "B": 2, "D": 3}


def linear_recurrence_make(s, rng):
    T, B, D = s["T"], s["B"], s["D"]
    return (positive(rng, T, B, D, high=1.0), normal(rng, T, B, D)), {"h0": normal(rng, B, D)}


def linear_recurrence_broadcast(s, rng):
    T, B, D = s["T"], s["B"], s["D"]
    return (positive(rng, T, 1, D, high=1.0), normal(rng, T, B, D)), {"h0": normal(rng, D)}


def pair(x, y):
    return lambda s, rng: ((x(s, rng), y(s, rng)), {})


def affine_element(s, rng):
    return positive(rng, s["T"], s["B"]), normal(rng, s["T"], s["B"])


def matrix_affine_element(s, rng):
    return normal(rng, s["T"], s["K"], s["K"]) / 2, normal(rng, s["T"], s["K"])


def log_matrices(s, rng):
    L = normal(rng, s["T"], s["K"], s["K"])
    L[..., 0, -1] = -np.inf                                       # an impossible transition
    return L


def attention_element(s, rng):
    T, B, d_v = s["T"], s["B"], s["d_v"]
    return normal(rng, T, B), positive(rng, T, B), normal(rng, T, B, d_v)


def associative_scan_make(s, rng):
    return (scan.affine_combine, affine_element(s, rng)), {}


def associative_scan_attention(s, rng):
    return (scan.softmax_attention_combine, attention_element(s, rng)), {}


SCAN_METHODS = tuple({"method": m} for m in ("sequential", "hillis_steele", "blelloch", "chunked"))
TB = {"T": 3, "B": 2}
TK = {"T": 3, "K": 3}
TBV = {"T": 3, "B": 2, "d_v": 2}

ATT = {"T": 3, "B": 2, "d_k": 3, "d_v": 2}


def qkv(s, rng):
    T, B, d_k, d_v = s["T"], s["B"], s["d_k"], s["d_v"]
    return normal(rng, T, B, d_k), normal(rng, T, B, d_k), normal(rng, T, B, d_v)


def softmax_attention_make(s, rng):
    return qkv(s, rng), {}


def aaren_make(s, rng):
    _, k, v = qkv(s, rng)
    B, d_v = s["B"], s["d_v"]
    state = (normal(rng, B), positive(rng, B), normal(rng, B, d_v))
    return (normal(rng, B, s["d_k"]), k, v), {"state": state, "return_state": True}


AAREN_VARIANTS = tuple({"method": m} for m in ("scan", "stream", "sequential", "hillis_steele",
                                               "blelloch")) + ({"method": "direct", "state": None},)


def aaren_allows(backend, variant):
    return not (backend in (TORCH, TORCH_NUMPY_IN) and variant["method"] in ("sequential", "blelloch"))


def linear_attention_make(s, rng):
    B, d_k, d_v = s["B"], s["d_k"], s["d_v"]                      # elu+1: d_f = d_k
    state = (normal(rng, B, d_k, d_v), positive(rng, B, d_k))
    return qkv(s, rng), {"state": state, "return_state": True, "chunk_size": 2}


LINEAR_ATTENTION_VARIANTS = tuple({"method": f} for f in ("parallel", "recurrent", "chunked")) + (
    {"method": "recurrent", "state": None, "normalize": False},
    {"method": "chunked", "state": None, "feature_map": "taylor"},
)


def lightnet_make(s, rng):
    B, d_k, d_v = s["B"], s["d_k"], s["d_v"]
    state = (normal(rng, B, d_k, d_v), normal(rng, B, d_k))
    return qkv(s, rng), {"state": state, "return_state": True}


def lightnet_decay_make(s, rng):
    T, B, d_k, d_v = s["T"], s["B"], s["d_k"], s["d_v"]
    decay = positive(rng, T, B, d_k, low=0.1, high=0.99)
    return qkv(s, rng), {"decay": decay, "state": normal(rng, B, d_k, d_v), "return_state": True}


GRID = {"Hg": 2, "Wg": 3, "B": 2, "d_k": 3, "d_v": 2}


def grid_make(s, rng, decay=False):
    Hg, Wg, B, d_k, d_v = s["Hg"], s["Wg"], s["B"], s["d_k"], s["d_v"]
    kw = {"rng": np.random.default_rng(1)}
    if decay:
        kw["decay"] = positive(rng, Hg, Wg, B, d_k, low=0.1, high=0.99)
    return (normal(rng, Hg, Wg, B, d_k), normal(rng, Hg, Wg, B, d_v)), kw


def aaren_layer(method):
    def make(s, rng):
        layer = seeded(lambda: attention.AarenLayer(s["d"], s["d_head"], heads=s["heads"],
                                                    method=method))
        B, heads = s["B"], s["heads"]
        state = (normal(rng, B, heads), positive(rng, B, heads), normal(rng, B, heads, s["d_head"]))
        return (layer, normal(rng, s["T"], B, s["d"])), {
            "state": None if method == "direct" else state, "return_state": True}
    return make


ROUTE = {"N": 5, "E": 3, "k": 2, "d": 3}


def top_k_route_make(s, rng):
    return (normal(rng, s["N"], s["E"]), min(s["k"], s["E"])), {}


def expert_slots_make(s, rng):
    _, indices, _, _ = routed(rng, s)
    return (indices, s["E"]), {}


def dispatch_make(s, rng):
    _, indices, _, _ = routed(rng, s)
    return (normal(rng, s["N"], s["d"]), indices, s["E"]), {}


CAPACITIES = ({}, {"capacity": 1}, {"capacity": 2})


def combine_make(s, rng):
    weights, indices, slots, _ = routed(rng, s, capacity=2)
    return (normal(rng, s["E"], 2, s["d"]), weights, indices, slots), {}


def load_balance_make(s, rng):
    _, indices, _, _ = routed(rng, s)
    return (distributions(rng, s["N"], s["E"]), indices), {}


def dense_mixture_make(s, rng):
    experts = swiglu_experts(rng, s["E"], s["d"], s["F"])
    return (normal(rng, s["N"], s["d"]), distributions(rng, s["N"], s["E"]), experts), {}


def dense_mixture_module(s, rng):
    torch.manual_seed(0)
    experts = routing.SwiGLUExperts(s["E"], s["d"], s["F"]).double()
    return (normal(rng, s["N"], s["d"]), distributions(rng, s["N"], s["E"]), experts), {}


ROUTE_F = {**ROUTE, "F": 4}


def moe_layer_make(s, rng):
    experts = swiglu_experts(rng, s["E"], s["d"], s["F"])
    return (normal(rng, s["N"], s["d"]), normal(rng, s["N"], s["E"]), experts,
            min(s["k"], s["E"])), {"capacity": 2}


def gru_router(rng, s):
    return routing_ref.init_gru_router(s["d"], s["E"], s["Hr"], rng=rng)


def moe_stack_make(s, rng):
    L = s["L"]
    experts = [swiglu_experts(rng, s["E"], s["d"], s["F"]) for _ in range(L)]
    return (normal(rng, s["N"], s["d"]), experts, min(s["k"], s["E"])), {
        "router_weights": [normal(rng, s["E"], s["d"]) for _ in range(L)],
        "gru_router": gru_router(rng, s), "capacity": 2}


MOE_STACK_VARIANTS = ({"gru_router": None}, {"gru_router": None, "norm": True},
                      {"router_weights": None}, {"router_weights": None, "capacity": None})
STACK = {**ROUTE_F, "L": 2, "Hr": 3}


def moe_module(build, inputs):
    def make(s, rng):
        module = seeded(lambda: build(s))
        return (module, *inputs(s, rng)), {}
    return make


def tokens(s, rng):
    return (normal(rng, s["N"], s["d"]),)


def tokens_and_logits(s, rng):
    return normal(rng, s["N"], s["d"]), normal(rng, s["N"], s["E"])


WS = {"B": 3}
STEPS = {"K": 4}                                                  # n_steps ≥ 2
N_DIGITS = 5


def program(rng, K, B):
    gates = rng.integers(0, 3, size=(K, B))
    return np.eye(3)[gates]


def workspace_write_make(s, rng):
    B, N = s["B"], s["N"]
    a = np.eye(N)[symbols(rng, N, B)]
    return (distributions(rng, B, N), distributions(rng, B, 3), a), {}


def run_program_make(s, rng):
    return (symbols(rng, N_DIGITS, s["B"]), program(rng, s["K"], s["B"])), {"n_digits": N_DIGITS}


def controller_make(reads_workspace):
    def make(s, rng):
        K = s["K"]
        params = init_controller_params(N_DIGITS, s["H"], rng=rng, reads_workspace=reads_workspace)
        return (symbols(rng, N_DIGITS, s["B"]), symbols(rng, K - 1, s["B"]), params), {
            "n_digits": N_DIGITS, "n_steps": K, "reads_workspace": reads_workspace}
    return make


def workspace_module(build):
    def make(s, rng):
        module = seeded(lambda: build(s))
        return (module, symbols(rng, N_DIGITS, s["B"]), symbols(rng, s["K"] - 1, s["B"])), {}
    return make


MEM = {"T": 4, "d_k": 3, "d_v": 2}


def kvq(s, rng):
    T, d_k, d_v = s["T"], s["d_k"], s["d_v"]
    return normal(rng, T, d_k), normal(rng, T, d_v), normal(rng, T, d_k)


def hebbian_make(s, rng):
    return kvq(s, rng), {"state": normal(rng, s["d_v"], s["d_k"]), "return_state": True}


def delta_make(s, rng):
    args, kw = hebbian_make(s, rng)
    return args, {**kw, "theta": positive(rng, s["T"], high=1.0)}


def gates(s, rng):
    T = s["T"]
    return {"eta": positive(rng, T, low=0.1, high=0.9), "theta": positive(rng, T, high=0.5),
            "alpha": positive(rng, T, low=0.0, high=0.2)}


def titans_linear_make(s, rng):
    args = kvq(s, rng)
    state = (normal(rng, s["d_v"], s["d_k"]), normal(rng, s["d_v"], s["d_k"]))
    return args, {**gates(s, rng), "state": state, "return_state": True}


def titans_mlp_make(s, rng):
    args = kvq(s, rng)
    d_k, d_v, H = s["d_k"], s["d_v"], s["H"]
    state = (init_mlp_memory(d_k, d_v, H, rng=rng), init_mlp_memory(d_k, d_v, H, rng=rng))
    return args, {**gates(s, rng), "memory": "mlp", "state": state, "return_state": True,
                  "hidden": H}


CHUNKS = ({}, {"chunk_size": 2}, {"state": None}, {"state": None, "chunk_size": 3})


def titans_layer_make(s, rng):
    layer = seeded(lambda: memory.TitansMemory(s["d"], s["d_k"], s["d_v"], chunk_size=s["C"]))
    state = (normal(rng, s["d_v"], s["d_k"]), normal(rng, s["d_v"], s["d_k"]))
    return (layer, normal(rng, s["T"], s["d"])), {"state": state, "return_state": True}


HMM = {"K": 3, "M": 4, "N": 2, "T": 5}
HMM_ONE = {"K": 3, "M": 4, "T": 5}                                # obs (T,): no N


def hmm_model(s, rng):
    K, M = s["K"], s["M"]
    return distributions(rng, K), distributions(rng, K, K), distributions(rng, K, M)


def hmm_make(single=False):
    def make(s, rng):
        pi, A, B = hmm_model(s, rng)
        obs = symbols(rng, s["M"], s["T"]) if single else symbols(rng, s["M"], s["N"], s["T"])
        return (pi, A, B, obs), {}
    return make


def log_likelihood_allows(backend, variant):
    method = variant.get("method")
    return (method is None or backend == NUMPY or (backend == NUMBA and method != "scan"))


LL_METHODS = ({}, {"method": "log"}, {"method": "scaled"}, {"method": "scan"})


def sample_make(s, rng):
    return (*hmm_model(s, rng), s["T"]), {"rng": np.random.default_rng(2), "n": s["N"]}


def fit_make(s, rng):
    model = hmm_model(s, rng)
    obs = symbols(rng, s["M"], s["N"], s["T"])
    return (obs, s["K"]), {"rng": np.random.default_rng(3), "n_symbols": s["M"], "n_iter": 3,
                           "init": model}


SSM = {"T": 3, "B": 2, "D": 3, "N": 2}


def selective_scan_make(s, rng):
    T, B, D, N = s["T"], s["B"], s["D"], s["N"]
    return (normal(rng, T, B, D), positive(rng, T, B, D, low=0.01), -positive(rng, D, N),
            normal(rng, T, B, N), normal(rng, T, B, N)), {
        "D": normal(rng, D), "h0": normal(rng, B, D, N), "return_state": True}


def selective_ssm_make(s, rng):
    T, B, D, N = s["T"], s["B"], s["D"], s["N"]
    return (normal(rng, T, B, D), ssm_params(D, N, rng=rng)), {"h0": normal(rng, B, D, N),
                                                               "return_state": True}


def selective_ssm_module(s, rng):
    layer = seeded(lambda: ssm.SelectiveSSM(s["D"], s["N"], generator=torch.Generator().manual_seed(0)))
    T, B, D, N = s["T"], s["B"], s["D"], s["N"]
    return (layer, normal(rng, T, B, D)), {"h0": normal(rng, B, D, N)}


PREFIX = {"T": 3, "M": 2, "B": 2, "d_k": 3, "d_v": 2}


def prefix_make(s, rng):
    M, B, d_k, d_v = s["M"], s["B"], s["d_k"], s["d_v"]
    return (*qkv(s, rng), normal(rng, M, B, d_k), normal(rng, M, B, d_v)), {"return_state": True}


def read_twice_make(s, rng):
    return (symbols(rng, 9, s["T"], s["B"]), symbols(rng, 9, s["Tq"], s["B"])), {}


def recall_accuracy_make(s, rng):
    T, B, V = s["T"], s["B"], s["V"]
    targets = symbols(rng, V, T, B)
    targets[0] = IGNORE                                           # the first step is never asked
    targets[-1, 0] = 0                                            # at least one asked position
    return (normal(rng, T, B, V), targets), {}


def retrieval_hits_make(s, rng):
    n, m, d_v = s["n"], s["m"], s["d_v"]
    return (normal(rng, n, d_v), normal(rng, m, d_v)), {"targets": symbols(rng, m, n)}


def plain(make, sizes, **kw):
    return [Entry(make, sizes, backends=(PLAIN,), **kw)]


def module(make, sizes, **kw):
    return [Entry(make, sizes, backends=(MODULE,), **kw)]


TABLE = {
    **{f"cells.{cell}_forward": cell_forward(cell) for cell in ("rnn", "gru", "lstm")},
    **{f"cells.{cell}_bptt": cell_bptt(cell) for cell in ("rnn", "gru", "lstm")},
    "cells.params_from_torch": plain(torch_cell, {"D": 3, "H": 4}),
    "scan.linear_recurrence": [Entry(linear_recurrence_make, SEQ, variants=({}, {"h0": None})),
                               Entry(linear_recurrence_broadcast, SEQ, label="broadcast")],
    "scan.associative_scan": [
        Entry(associative_scan_make, TB, backends=(PLAIN,), variants=SCAN_METHODS),
        Entry(associative_scan_attention, TBV, backends=(PLAIN,), variants=SCAN_METHODS,
              label="softmax_attention")],
    "scan.add_combine": plain(pair(lambda s, r: normal(r, s["T"], s["B"]),
                           lambda s, r: normal(r, s["T"], s["B"])), TB),
    "scan.affine_combine": plain(pair(affine_element, affine_element), TB),
    "scan.matrix_affine_combine": plain(pair(matrix_affine_element, matrix_affine_element), TK),
    "scan.logaddexp_combine": plain(pair(lambda s, r: normal(r, s["T"], s["B"]),
                                 lambda s, r: normal(r, s["T"], s["B"])), TB),
    "scan.log_matmul_combine": plain(pair(log_matrices, log_matrices), TK),
    "scan.max_plus_combine": plain(pair(log_matrices, log_matrices), TK),
    "scan.softmax_attention_combine": plain(pair(attention_element, attention_element), TBV),
    "scan.softmax_attention_elements": plain(
        pair(lambda s, r: normal(r, s["T"], s["B"]), lambda s, r: normal(r, s["T"], s["B"], s["d_v"])),
        TBV),
    "scan.softmax_attention_output": plain(lambda s, r: ((attention_element(s, r),), {}), TBV),
    "attention.softmax_attention": [Entry(softmax_attention_make, ATT,
                                          variants=({}, {"causal": False}))],
    "attention.aaren": [Entry(aaren_make, ATT, variants=AAREN_VARIANTS, allows=aaren_allows)],
    "attention.linear_attention": [Entry(linear_attention_make, ATT,
                                         variants=LINEAR_ATTENTION_VARIANTS)],
    "attention.lightnet": [Entry(lightnet_make, ATT, variants=({}, {"state": None})),
                           Entry(lightnet_decay_make, ATT, variants=({}, {"state": None}),
                                 label="decay")],
    "attention.grid_final_states": plain(grid_make, GRID) + plain(
        functools.partial(grid_make, decay=True), GRID, label="decay"),
    "attention.normalized_global_sum": plain(lambda s, r: (grid_make(s, r)[0], {}), GRID),
    "attention.AarenLayer": [Entry(aaren_layer(m), {"T": 3, "B": 2, "d": 3, "d_head": 2, "heads": 2},
                                   backends=(MODULE,), label=m) for m in ("scan", "stream", "direct")],
    "routing.top_k_route": [Entry(top_k_route_make, ROUTE, variants=({}, {"normalize": False}))],
    "routing.expert_slots": [Entry(expert_slots_make, ROUTE, variants=CAPACITIES)],
    "routing.dispatch": [Entry(dispatch_make, ROUTE, variants=CAPACITIES)],
    "routing.combine": [Entry(combine_make, ROUTE)],
    "routing.load_balance_loss": [Entry(load_balance_make, ROUTE)],
    "routing.dense_mixture": plain(dense_mixture_make, ROUTE_F) + [
        Entry(dense_mixture_module, ROUTE_F, backends=(PLAIN_TENSORS,), label="SwiGLUExperts")],
    "routing.MoELayer": module(moe_module(
        lambda s: routing.MoELayer(s["d"], s["E"], min(s["k"], s["E"]), s["F"], capacity_factor=1.0),
        tokens_and_logits), ROUTE_F),
    "routing.MoEStack": module(moe_module(
        lambda s: routing.MoEStack(s["d"], s["E"], min(s["k"], s["E"]), s["L"], s["F"],
                                   router="gru", norm=True), tokens), STACK),
    "routing.LinearRouterMoE": module(moe_module(
        lambda s: routing.LinearRouterMoE(s["d"], s["E"], min(s["k"], s["E"]), s["L"], s["F"],
                                          capacity_factor=1.0), tokens), STACK),
    "routing.GRURouterMoE": module(moe_module(
        lambda s: routing.GRURouterMoE(s["d"], s["E"], min(s["k"], s["E"]), s["L"], s["F"],
                                       router_hidden=s["Hr"]), tokens), STACK),
    "routing.GRURouter": module(moe_module(
        lambda s: routing.GRURouter(s["d"], s["E"], s["Hr"]),
        lambda s, r: (normal(r, s["N"], s["d"]), normal(r, s["N"], s["Hr"]))), STACK),
    "routing.LinearRouter": module(moe_module(lambda s: routing.LinearRouter(s["d"], s["E"]),
                                              tokens), ROUTE),
    "routing.SwiGLUExperts": module(moe_module(
        lambda s: routing.SwiGLUExperts(s["E"], s["d"], s["F"]),
        lambda s, r: (normal(r, s["E"], s["N"], s["d"]),)), ROUTE_F),
    "workspace.workspace_write": [Entry(workspace_write_make, {"B": 3, "N": 4},
                                        backends=(NUMPY, TORCH))],
    "workspace.run_program": [Entry(run_program_make, {**WS, "K": 4}, backends=(NUMPY, TORCH))],
    "workspace.hand_set_program": plain(
        lambda s, r: ((symbols(r, s["K"] - 1, s["B"]), s["K"]), {}), WS, fixed=STEPS),
    "workspace.add": plain(
        lambda s, r: ((symbols(r, N_DIGITS, s["B"]), symbols(r, s["K"] - 1, s["B"])),
                      {"n_digits": N_DIGITS, "n_steps": s["K"]}), WS, fixed=STEPS),
    "workspace.controller_run": [
        Entry(controller_make(False), {**WS, "H": 3}, backends=(NUMPY, TORCH),
              variants=({}, {"hard": False}), fixed=STEPS),
        Entry(controller_make(True), {**WS, "H": 3}, backends=(NUMPY, TORCH),
              label="reads_workspace", fixed=STEPS)],
    "workspace.one_hot": plain(lambda s, r: ((symbols(r, N_DIGITS, s["B"]), N_DIGITS), {}), WS),
    "workspace.read_out": plain(lambda s, r: ((normal(r, s["B"], s["N"]),), {}), {"B": 3, "N": 4}),
    "workspace.GlobalWorkspace": [
        Entry(workspace_module(lambda s, rw=rw: workspace.GlobalWorkspace(N_DIGITS, s["K"], 3,
                                                                          reads_workspace=rw)),
              WS, backends=(MODULE,), label=f"reads_workspace={rw}", fixed=STEPS)
        for rw in (False, True)],
    "workspace.DirectLSTM": module(workspace_module(lambda s: workspace.DirectLSTM(N_DIGITS, 3)),
                                   WS, fixed={"K": N_DIGITS}),
    "memory.hebbian_memory": [Entry(hebbian_make, MEM, variants=({}, {"state": None}))],
    "memory.delta_rule_memory": [Entry(delta_make, MEM, variants=({}, {"state": None},
                                                                  {"theta": 0.5}))],
    "memory.titans_memory": [Entry(titans_linear_make, MEM, variants=CHUNKS),
                             Entry(titans_mlp_make, {**MEM, "H": 3}, variants=CHUNKS, label="mlp")],
    "memory.TitansMemory": [Entry(titans_layer_make, {"T": 4, "d": 3, "d_k": 3, "d_v": 2, "C": 2},
                                  backends=(MODULE,), variants=({}, {"state": None}))],
    "hmm.log_likelihood": [Entry(hmm_make(), HMM, variants=LL_METHODS, allows=log_likelihood_allows),
                           Entry(hmm_make(single=True), HMM_ONE, label="one sequence")],
    "hmm.viterbi": [Entry(hmm_make(), HMM), Entry(hmm_make(single=True), HMM_ONE, label="one sequence")],
    "hmm.posteriors": [Entry(hmm_make(), HMM),
                       Entry(hmm_make(single=True), HMM_ONE, label="one sequence")],
    "hmm.sample": plain(sample_make, HMM, variants=({}, {"n": None})),
    "hmm.fit": plain(fit_make, HMM, variants=({}, {"init": None})),
    "hmm.validate_model": plain(lambda s, r: (hmm_model(s, r), {}), HMM),
    "hmm.validate_obs": plain(lambda s, r: ((symbols(r, s["M"], s["N"], s["T"]), s["M"]), {}), HMM),
    "ssm.selective_scan": [Entry(selective_scan_make, SSM,
                                 variants=({}, {"D": None, "h0": None, "return_state": False}))],
    "ssm.selective_ssm": [Entry(selective_ssm_make, SSM, variants=({}, {"h0": None}))],
    "ssm.SelectiveSSM": module(selective_ssm_module, SSM, variants=({}, {"h0": None})),
    "longcontext.prefix_linear_attention": [Entry(prefix_make, PREFIX,
                                                  variants=({}, {"normalize": False}))],
    "longcontext.read_twice_tokens": plain(read_twice_make, {"T": 3, "Tq": 2, "B": 2}),
    "tasks.read_twice_tokens": plain(read_twice_make, {"T": 3, "Tq": 2, "B": 2}),
    "tasks.recall_accuracy": plain(recall_accuracy_make, {"T": 4, "B": 2, "V": 5}),
    "tasks.retrieval_hits": plain(retrieval_hits_make, {"n": 3, "m": 4, "d_v": 2}) + plain(
        lambda s, r: ((normal(r, s["n"], s["d_v"]), normal(r, s["n"], s["d_v"])), {}),
        {"n": 3, "d_v": 2}, label="targets = arange(n), m = n"),
}

_DRAWS = "takes sizes and an rng and only draws: no array goes in"
EXEMPT = {
    "cells.init_params": _DRAWS,
    "scan.count_combines": "counts combines from a method name and T: no array goes in",
    "attention.scan_order": "an order of grid indices from a name and two sizes (rng for 'random')",
    "routing.capacity_from_factor": "arithmetic on four numbers",
    "routing.init_gru_router": _DRAWS,
    "workspace.blank_workspace": "builds a (B, N) array from two sizes",
    "workspace.init_controller_params": _DRAWS,
    "workspace.controller_input_size": "arithmetic on n_digits and a flag",
    "memory.init_mlp_memory": _DRAWS,
    "hmm.FitResult": "a dataclass of fitted arrays: computes nothing",
    "hmm.linear_chain": "builds a model from sizes and probabilities: no array goes in",
    "hmm.cyclic": "builds a model from sizes and probabilities: no array goes in",
    "hmm.random_dense": _DRAWS,
    "ssm.init_params": _DRAWS,
    "tasks.Recall": "a dataclass of a drawn batch: computes nothing",
    "tasks.SetDisjointness": "a dataclass of a drawn batch: computes nothing",
    "tasks.Passkey": "a dataclass of a drawn batch: computes nothing",
    "tasks.SurpriseBurst": "a dataclass of a drawn stream: computes nothing",
    "tasks.mqar": _DRAWS,
    "tasks.set_disjointness": _DRAWS,
    "tasks.passkey": _DRAWS,
    "tasks.random_writes": _DRAWS,
    "tasks.unit_vectors": _DRAWS,
    "tasks.surprise_burst": _DRAWS,
}


# --------------------------------------------------------------------------------------------
# Running and comparing
# --------------------------------------------------------------------------------------------

def public_callables():
    """``{"package.name": object}`` for every callable in each package's ``__all__``."""
    out = {}
    for package in PACKAGES:
        module = importlib.import_module(f"minirec.{package}")
        for name in module.__all__:
            obj = getattr(module, name)
            if callable(obj):
                out[f"{package}.{name}"] = obj
    return out


def size_cases(sizes, fixed=None):
    """The ordinary sizes, then each axis of ``sizes`` at 1 in turn (``fixed`` ones never):
    ``[(label, sizes), ...]``."""
    ordinary = {**sizes, **(fixed or {})}
    return [("ordinary", ordinary)] + [(f"{axis}=1", {**ordinary, axis: 1}) for axis in sizes]


def to_torch(tree):
    """Every NumPy array in ``tree`` (tuples, lists, dicts) as a tensor of its own memory."""
    if isinstance(tree, np.ndarray):
        return torch.from_numpy(tree.copy())
    if isinstance(tree, dict):
        return {k: to_torch(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(to_torch(v) for v in tree)
    return tree


def call(fn, backend, args, kwargs):
    """One call of ``fn`` as ``backend`` runs it (the arguments already of the right kind)."""
    if backend == MODULE:
        return args[0](*args[1:], **kwargs)
    if backend in (PLAIN, PLAIN_TENSORS):
        return fn(*args, **kwargs)
    return fn(*args, **kwargs, backend="torch" if backend == TORCH_NUMPY_IN else backend)


def assert_same(got, want, where="result"):
    """``got`` equals ``want`` exactly: arrays and tensors (shape, dtype, values, NaN where NaN),
    containers, dataclasses, modules (their state dicts), partials; a Generator is not compared."""
    if isinstance(want, np.random.Generator):
        return
    assert type(got) is type(want), f"{where}: {type(got).__name__} instead of {type(want).__name__}"
    if isinstance(want, torch.nn.Module):
        assert_same(got.state_dict(), want.state_dict(), f"{where}.state_dict()")
    elif isinstance(want, torch.Tensor):
        assert got.dtype == want.dtype and got.shape == want.shape, f"{where}: dtype or shape"
        assert_same(got.detach().cpu().numpy(), want.detach().cpu().numpy(), where)
    elif isinstance(want, np.ndarray):
        assert got.dtype == want.dtype and got.shape == want.shape, \
            f"{where}: {got.dtype}{got.shape} instead of {want.dtype}{want.shape}"
        nan = np.issubdtype(want.dtype, np.inexact)
        assert np.array_equal(got, want, equal_nan=nan), f"{where}: values differ"
    elif isinstance(want, dict):
        assert got.keys() == want.keys(), f"{where}: keys {sorted(got)} instead of {sorted(want)}"
        for key in want:
            assert_same(got[key], want[key], f"{where}[{key!r}]")
    elif isinstance(want, (tuple, list)):
        assert len(got) == len(want), f"{where}: length {len(got)} instead of {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{i}]")
    elif dataclasses.is_dataclass(want):
        for f in dataclasses.fields(want):
            assert_same(getattr(got, f.name), getattr(want, f.name), f"{where}.{f.name}")
    elif isinstance(want, functools.partial):
        assert got.func is want.func, f"{where}: another function"
        assert_same((got.args, got.keywords), (want.args, want.keywords), where)
    elif isinstance(want, float) and np.isnan(want):
        assert np.isnan(got), f"{where}: {got} instead of NaN"
    else:
        assert got == want, f"{where}: {got!r} instead of {want!r}"


def inputs(entry, backend, sizes, variant):
    """The inputs of one case, as the backend takes them: ``(args, kwargs)``."""
    args, kwargs = entry.make(sizes, np.random.default_rng(0))
    kwargs = {**kwargs, **variant}
    if backend in (TORCH, PLAIN_TENSORS, MODULE):
        args, kwargs = to_torch(args), to_torch(kwargs)
    return args, kwargs


def check_case(fn, backend, entry, sizes, variant):
    """Two calls, each on a fresh deep copy of the inputs: the copies unchanged, the results equal,
    and the first result not changed by the second call (a buffer shared between calls)."""
    pristine = inputs(entry, backend, sizes, variant)
    results, snapshots = [], []
    for i in range(2):
        args, kwargs = copy.deepcopy(pristine)
        with torch.no_grad() if backend in (MODULE, PLAIN_TENSORS) else contextlib.nullcontext():
            results.append(call(fn, backend, args, kwargs))
        snapshots.append(copy.deepcopy(results[-1]))
        assert_same(args, pristine[0], f"inputs after call {i + 1}: args")
        assert_same(kwargs, pristine[1], f"inputs after call {i + 1}: kwargs")
    assert_same(results[0], snapshots[0], "first call's result, after the second call")
    assert_same(results[1], snapshots[0], "second call's result against the first's")


def cases():
    """``(name, entry index, backend)`` for every backend of every entry of the table."""
    return [(name, i, backend) for name, entries in TABLE.items()
            for i, entry in enumerate(entries) for backend in entry.backends]


def case_id(case):
    name, i, backend = case
    label = TABLE[name][i].label
    return f"{name}[{label}]-{backend}" if label else f"{name}-{backend}"


@pytest.mark.parametrize("case", cases(), ids=case_id)
def test_inputs_unchanged_and_results_repeat(case):
    name, i, backend = case
    entry = TABLE[name][i]
    fn = public_callables()[name]
    ran = 0
    for size_label, sizes in size_cases(entry.sizes, entry.fixed):
        for variant in entry.variants:
            if not entry.allows(backend, variant):
                continue
            try:
                check_case(fn, backend, entry, sizes, variant)
            except AssertionError as error:
                raise AssertionError(f"{name} on {backend}, {size_label} {sizes}, "
                                     f"variant {variant}: {error}") from None
            ran += 1
    assert ran, f"{name} on {backend}: every variant is disallowed"


def test_every_public_function_is_in_the_table():
    public = public_callables()
    missing = sorted(set(public) - set(TABLE) - set(EXEMPT))
    assert not missing, ("public functions with no entry in tests/test_no_mutation.py's TABLE "
                         f"(or a reason in EXEMPT): {missing}")
    stale = sorted((set(TABLE) | set(EXEMPT)) - set(public))
    assert not stale, f"entries for names that are not public callables: {stale}"
    assert not set(TABLE) & set(EXEMPT), "a name is both tested and exempt"


def test_the_check_catches_a_mutation_a_shared_buffer_and_a_hidden_state():
    """The check itself: a function that writes into its input, one whose result is a buffer the
    next call overwrites, and one that remembers earlier calls are each caught."""
    def scales_in_place(x, backend=None):
        x *= 2
        return x.sum()

    buffer = np.zeros(3)

    def accumulates_into_a_buffer(x, backend=None):
        buffer[:] += x
        return buffer

    calls = []

    def counts_its_calls(x, backend=None):
        calls.append(1)
        return x + len(calls)

    entry = Entry(lambda s, rng: ((normal(rng, s["B"]),), {}), {"B": 3}, backends=(NUMPY,))
    for fn, message in ((scales_in_place, "inputs after call 1"),
                        (accumulates_into_a_buffer, "first call's result, after the second"),
                        (counts_its_calls, "second call's result")):
        with pytest.raises(AssertionError, match=message):
            check_case(fn, NUMPY, entry, entry.sizes, {})
