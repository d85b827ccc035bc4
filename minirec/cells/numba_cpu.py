r"""Recurrent cells and BPTT with compiled Numba kernels: the fast CPU backend.

Same functions, signatures and results as :mod:`minirec.cells.reference` (the specification);
the tests hold every output and gradient here to it. Notation as there::

    T  time steps    B  batch    D  input size    H  hidden size    G  gates (RNN 1, GRU 3, LSTM 4)

How the work is laid out. Each choice was measured (float32, B=32, T=512, D=H=256, 2 cores;
``benchmarks/bench_gru_cpu.py``):

1. **Few products for the inputs.** ``W_ih x_t`` does not depend on the state, so the input
   terms are computed outside the recurrence as large GEMMs, near the machine's peak — one per
   chunk of 16 steps (:func:`_input_terms`) rather than one for all T steps: the chunk is
   computed just before its steps read it, while it is still in cache. One product for all 512
   steps left each step reading 3H scattered rows of a 48 MB array; chunking made the GRU forward
   about 20 % faster (chunks of 8–16 steps were best, 64 and more lost it; the times are in
   ``benchmarks/README.md``, "Older measurements").
2. **One small product per step.** Only ``W_hh h_{t−1}`` has to wait for the previous step.
3. **Kernel layout: features × batch.** Inside the loop a state is kept transposed, ``hT (H, B)``,
   and the step's product is ``W_hh @ hT (G*H, B)``. OpenBLAS ran that product 1.5× faster than
   ``h @ W_hhᵀ (B, G*H)``, and the gate loops then run along the batch, which is contiguous in
   every array they touch. Outputs are copied back to ``(T, B, H)`` one step at a time, while
   the step is still in cache.
4. **Fused gate loops.** A step's gates are computed in one ``@njit`` loop with no temporaries.
   Its ``tanh`` and ``σ`` are plain arithmetic (:func:`_tanh32`, :func:`_tanh64`) so that LLVM
   vectorises the loop; with libm's scalar ``tanh`` the loop was 6× slower.
5. **BPTT: per step only the recurrent gradient.** The backward loop stores every step's
   pre-activation gradients ``(G*H, T, B)``; the weight gradients and ``dx`` are three large
   GEMMs after the loop (:func:`_param_grads`) instead of 3·T small ones.
6. **The time loop is Python, the BLAS is NumPy's.** Each step is ``np.matmul(W_hh, hT, out=…)``
   and one call of a jitted step kernel, whose call overhead was under 1 % of the forward.
   The alternative, the whole loop inside ``@njit`` with ``np.dot(…, out)``, was measured too
   and lost by 15–20 %: Numba's ``np.dot`` calls SciPy's OpenBLAS, which ran these GEMMs slower
   than NumPy's own OpenBLAS. Mixing the two (NumPy for the big product, SciPy in the loop) made
   the forward 1.8× slower, because each library's idle threads spin and take the two cores
   from the other. All products therefore go through NumPy. Nothing here uses ``prange``: a
   ``prange`` gate loop between the BLAS calls made the forward 35× slower (threads fighting).

Everything stays in the input's dtype: float32 in, float32 arithmetic and float32 out.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

__all__ = ["rnn_forward", "gru_forward", "lstm_forward", "rnn_bptt", "gru_bptt", "lstm_bptt"]

# error_model="numpy": x / 0 gives inf instead of raising; a division that may raise carries a
# branch, and the branch stops LLVM from vectorising the loop around it.
# fastmath={"contract"}: lets LLVM fuse a * b + c into one FMA (more exact, not less); the gate
# loops ran 1.4× faster with it. No other fast-math licence is taken.
_JIT = dict(cache=True, error_model="numpy", fastmath={"contract"})


# --------------------------------------------------------------------------------------------
# tanh and σ as plain arithmetic, so that the loops calling them vectorise (libm's tanh is a
# scalar call: the gate loops ran 6× slower with it).
#
# float32: tanh(a) ≈ a·P(a²)/Q(a²) on |a| ≤ 9 (beyond, tanh rounds to ±1). P and Q have degree
#   4; their coefficients come from :func:`_fit_tanh_rational` (least relative error, by
#   Lawson's iteratively reweighted least squares; fit error 2e−8); in float32 the error is ≤ 6 ulp
#   (3.1e−7 relative). It is half the work, and half the dependency chain, of an exp-based tanh.
# float64: tanh(a) = −m / (2 + m) with m = expm1(−2|a|); expm1(y) from a Taylor polynomial of
#   expm1(y / 64) and 6 doublings expm1(2u) = m(m + 2). Working with expm1 (not exp) keeps small
#   arguments exact to rounding, tanh(1e−20) = 1e−20. Error ≤ 6 ulp (8e−16 relative).
# --------------------------------------------------------------------------------------------

_F32 = np.float32
_P32 = tuple(_F32(c) for c in (1.0, 0.13381028175354004, 0.0034955902956426144,
                               2.0609115381375886e-05, 1.3354702232959426e-08))
_Q32 = tuple(_F32(c) for c in (1.0, 0.4671434164047241, 0.02587699145078659,
                               0.0003285638231318444, 7.776576467222185e-07))
_LIM32, _ONE32 = _F32(9.0), _F32(1.0)
_C64 = tuple(1.0 / math.factorial(k) for k in range(17))


def _fit_tanh_rational(degree=4, limit=9.0, iterations=300):
    """Coefficients (P, Q) of tanh(a) ≈ a·P(a²)/Q(a²), Q(0) = 1, on |a| ≤ ``limit``, fitted for
    the least largest relative error: linearised least squares P − f·Q = 0 with f = tanh(a)/a,
    reweighted by Lawson's rule (weights ∝ weights · |error|). Reproduces ``_P32``, ``_Q32``."""
    ends = np.sin(np.linspace(0, np.pi / 2, 4000)) ** 2         # denser near both ends
    u = np.sort(np.concatenate([np.linspace(0, 1, 4000), ends]))
    a = np.sqrt(u) * limit                                      # u = a² / limit² ∈ [0, 1]
    f = np.tanh(a) / np.where(a > 0, a, 1.0)
    f[a == 0] = 1.0
    w, q_u = np.ones_like(u), np.ones_like(u)
    powers = np.vander(u, degree + 1, increasing=True)
    for _ in range(iterations):
        A = np.concatenate([powers, -f[:, None] * powers[:, 1:]], axis=1)
        scale = np.sqrt(w) / (f * np.abs(q_u))                  # relative error, current Q
        coef = np.linalg.lstsq(A * scale[:, None], f * scale, rcond=None)[0]
        p_u, q_c = coef[: degree + 1], np.concatenate([[1.0], coef[degree + 1:]])
        q_u = powers @ q_c
        err = np.abs((powers @ p_u) / q_u - f) / f
        w = w * err / np.sum(w * err)
    to_a2 = limit ** (-2.0 * np.arange(degree + 1))             # coefficients of u → of a²
    return p_u * to_a2, q_c * to_a2


@njit(**_JIT)
def _tanh32(a):
    x = max(min(a, _LIM32), -_LIM32)
    s = x * x
    p, q = _P32, _Q32
    t = x * (p[0] + s * (p[1] + s * (p[2] + s * (p[3] + s * p[4])))) / (
        q[0] + s * (q[1] + s * (q[2] + s * (q[3] + s * q[4]))))
    return max(min(t, _ONE32), -_ONE32)                         # rounding could pass ±1


@njit(**_JIT)
def _tanh64(a):
    x = min(abs(a), 19.5)                                       # tanh(19.5) == 1 in float64
    r = x * (-2.0 / 64.0)
    c = _C64
    m = r * (c[1] + r * (c[2] + r * (c[3] + r * (c[4] + r * (c[5] + r * (c[6] + r * (c[7]
        + r * (c[8] + r * (c[9] + r * (c[10] + r * (c[11] + r * (c[12] + r * (c[13]
        + r * (c[14] + r * (c[15] + r * c[16])))))))))))))))
    m = m * (m + 2.0)
    m = m * (m + 2.0)
    m = m * (m + 2.0)
    m = m * (m + 2.0)
    m = m * (m + 2.0)
    m = m * (m + 2.0)
    t = -m / (2.0 + m)
    return t if a >= 0 else -t


def _tanh(a):
    """tanh(a) in a's own precision; inside kernels the overload below replaces this body."""
    return math.tanh(a)


def _sigmoid(a):
    """σ(a) = ½ (1 + tanh(a / 2)), built on the vectorisable tanh of point 4: *not* the
    reference's form. :func:`minirec.cells.reference.sigmoid` avoids it because 1 + tanh(a/2)
    cancels for a ≪ 0: here σ has an absolute error of about half an ulp of 1 (1e-16 in float64,
    6e-8 in float32) and no relative precision in the left tail (it is 0 below a ≈ −38 in
    float64, a ≈ −18 in float32). The tests hold the cells' results to the reference relative
    to each array's largest value, which that error meets. Inside kernels the overload below
    replaces this body."""
    return 0.5 * (1.0 + math.tanh(0.5 * a))


@overload(_tanh)
def _tanh_typed(a):
    if a == types.float32:
        return lambda a: _tanh32(a)
    return lambda a: _tanh64(a)


@overload(_sigmoid)
def _sigmoid_typed(a):
    if a == types.float32:
        half = _F32(0.5)
        return lambda a: half + half * _tanh32(half * a)
    return lambda a: 0.5 + 0.5 * _tanh64(0.5 * a)


# --------------------------------------------------------------------------------------------
# Pieces every cell shares
# --------------------------------------------------------------------------------------------

_CHUNK = 16  # steps whose input terms are computed by one GEMM (see point 1 above)


def _input_terms(x, w_ih, t):
    """Input terms ``W_ih x_s`` of the chunk of steps starting at ``t``, as one GEMM:
    ``x (T, B, D)`` → ``(G*H, C, B)`` with C = min(_CHUNK, T − t).

    ``[:, s − t, :]`` is step s in kernel layout. Biases are added later, inside the gate loops.
    """
    chunk = x[t:t + _CHUNK]
    C, B, D = chunk.shape
    return (w_ih @ chunk.reshape(C * B, D).T).reshape(w_ih.shape[0], C, B)


def _param_grads(x, hs, dgi, dgh, w_ih):
    """Weight, bias and input gradients of the whole sequence, as three GEMMs.

    ``x (T, B, D)``, ``hs (T+1, B, H)`` the states h_0 … h_T, ``dgi`` / ``dgh`` ``(G*H, T, B)``
    the gradients of the input-side and the recurrent-side pre-activations of every step.
    """
    T, B, D = x.shape
    dgi, dgh = dgi.reshape(dgi.shape[0], T * B), dgh.reshape(dgh.shape[0], T * B)
    return {
        "weight_ih": dgi @ x.reshape(T * B, D),                 # Σ_{t,b} dgi_{t,b} x_{t,b}ᵀ
        "weight_hh": dgh @ hs[:T].reshape(T * B, hs.shape[2]),  # Σ_{t,b} dgh_{t,b} h_{t−1,b}ᵀ
        "bias_ih": dgi.sum(axis=1),
        "bias_hh": dgh.sum(axis=1),
        "x": (dgi.T @ w_ih).reshape(T, B, D),                   # ∂L/∂x_t = dgi_t W_ih
    }


def _states(x, state0):
    """``(T+1, B, H)`` outputs with ``[0] = state0``, and ``(T+1, H, B)`` kernel-layout states."""
    T, B, _ = x.shape
    H = state0.shape[1]
    hs = np.empty((T + 1, B, H), x.dtype)
    hsT = np.empty((T + 1, H, B), x.dtype)
    hs[0] = state0
    hsT[0] = state0.T
    return hs, hsT


def _fresh_T(a):
    """A new C-contiguous ``(H, B)`` array holding ``aᵀ`` for ``a (B, H)``, which the backward
    loops overwrite. Never ``np.ascontiguousarray(a.T)``: when B or H is 1, ``a.T`` is already
    contiguous and that returns a view, so the loop would write into the caller's ``grad_final``."""
    return a.T.copy(order="C")


def _cut(t, truncate):
    """True where truncated BPTT detached the state entering step t (t = k, 2k, …)."""
    return bool(truncate) and t > 0 and t % truncate == 0


@njit(**_JIT)
def _copy_T(src, dst):
    """dst (B, H) ← srcᵀ, src (H, B)."""
    H, B = src.shape
    for b in range(B):
        for j in range(H):
            dst[b, j] = src[j, b]


@njit(**_JIT)
def _add_output_grad(dh, direct, grad_out, hidden, keep_hidden):
    """dh (H, B) ← dh + direct + grad_outᵀ: ∂L/∂h_t from step t+1 (both paths) and from y_t.

    ``grad_out (B, H)``; with ``keep_hidden`` the total is also copied to ``hidden (B, H)``.
    """
    H, B = dh.shape
    for b in range(B):
        for j in range(H):
            dh[j, b] += direct[j, b] + grad_out[b, j]
    if keep_hidden:
        _copy_T(dh, hidden)


# --------------------------------------------------------------------------------------------
# tanh RNN:  h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)
# --------------------------------------------------------------------------------------------

@njit(**_JIT)
def _rnn_step(gi, t, gh, bias, h_new, out):
    """Step t: ``gi (H, T, B)`` input terms, ``gh (H, B) = W_hh h``, ``bias = b_ih + b_hh``.

    Writes ``h_new (H, B)`` and its transpose ``out (B, H)``.
    """
    H, B = h_new.shape
    for j in range(H):
        bj = bias[j]
        for b in range(B):
            h_new[j, b] = _tanh(gi[j, t, b] + gh[j, b] + bj)      # h' = tanh(a)
    _copy_T(h_new, out)


def _rnn_sequence(x, h0, w_ih, w_hh, bias):
    """``x (T, B, D)``, ``h0 (B, H)`` → ``hs (T+1, B, H)`` = h_0 … h_T and ``hsT (T+1, H, B)``."""
    hs, hsT = _states(x, h0)
    gh = np.empty_like(hsT[0])
    for t in range(x.shape[0]):
        if t % _CHUNK == 0:
            gi = _input_terms(x, w_ih, t)                     # W_ih x_s for the next chunk
        np.matmul(w_hh, hsT[t], out=gh)                       # W_hh h_{t−1}: the per-step product
        _rnn_step(gi, t % _CHUNK, gh, bias, hsT[t + 1], hs[t + 1])
    return hs, hsT


@njit(**_JIT)
def _rnn_step_backward(dh, direct, grad_out, hidden, keep_hidden, h_new, dga, t):
    """Step t backwards. ``dh (H, B)`` arrives as ∂L/∂h' from step t+1 and leaves as the total
    (see :func:`_add_output_grad`); ``h_new (H, B)`` = h_t. Writes ``dga[:, t] = da``."""
    _add_output_grad(dh, direct, grad_out, hidden, keep_hidden)
    H, B = dh.shape
    one = dh.dtype.type(1)
    for j in range(H):
        for b in range(B):
            y = h_new[j, b]
            dga[j, t, b] = dh[j, b] * (one - y * y)             # da = dh' ⊙ (1 − h'²)


def _rnn_backward(hsT, w_hh, grad_out, dh_T, truncate, hidden, keep_hidden):
    """BPTT over the states ``hsT (T+1, H, B)``; ``grad_out (T, B, H)``, ``dh_T (B, H)``.

    ``truncate`` 0 means none; with ``keep_hidden``, ``hidden (T, B, H)`` receives ∂L/∂h_t.
    Returns ``da (H, T, B)`` (pre-activation gradients of every step) and ``dh0 (B, H)``.
    """
    T, B, H = grad_out.shape
    w_hhT = np.ascontiguousarray(w_hh.T)                          # dh = W_hhᵀ da
    dga = np.empty((H, T, B), dh_T.dtype)
    dh = _fresh_T(dh_T)
    direct = np.zeros_like(dh)                                    # the RNN has no direct path
    for t in range(T - 1, -1, -1):
        _rnn_step_backward(dh, direct, grad_out[t], hidden[t * keep_hidden], keep_hidden,
                           hsT[t + 1], dga, t)
        if _cut(t, truncate):
            dh[:] = 0                                             # state detached before step t
        else:
            np.matmul(w_hhT, dga[:, t], out=dh)                   # ∂L/∂h_{t−1} = W_hhᵀ da
    return dga, dh.T.copy()


# --------------------------------------------------------------------------------------------
# GRU (torch.nn.GRU's convention, gates r, z, n)
#   r = σ(W_ir x + b_ir + W_hr h + b_hr)        z = σ(W_iz x + b_iz + W_hz h + b_hz)
#   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))     h' = (1 − z) ⊙ n + z ⊙ h
# --------------------------------------------------------------------------------------------

@njit(**_JIT)
def _gru_step(gi, t, gh, bias, b_hn, h, h_new, keep, out):
    """GRU step t. ``gi (3H, T, B)`` input terms, ``gh (3H, B) = W_hh h``,
    ``bias (3H,) = [b_ir + b_hr, b_iz + b_hz, b_in]``, ``b_hn (H,)``, ``h (H, B)``.

    Writes ``h_new (H, B)``, its transpose ``out (B, H)`` and ``keep (4H, B) = [r, z, n,
    W_hn h + b_hn]``, what the backward step needs.
    """
    H, B = h.shape
    for j in range(H):
        br, bz, bn, bhn = bias[j], bias[H + j], bias[2 * H + j], b_hn[j]
        for b in range(B):
            r = _sigmoid(gi[j, t, b] + gh[j, b] + br)                  # r = σ(a_r)
            z = _sigmoid(gi[H + j, t, b] + gh[H + j, b] + bz)          # z = σ(a_z)
            hn = gh[2 * H + j, b] + bhn                                # W_hn h + b_hn
            n = _tanh(gi[2 * H + j, t, b] + bn + r * hn)               # n = tanh(… + r ⊙ hn)
            h_new[j, b] = n + z * (h[j, b] - n)                        # h' = (1 − z) n + z h
            keep[j, b] = r
            keep[H + j, b] = z
            keep[2 * H + j, b] = n
            keep[3 * H + j, b] = hn
    _copy_T(h_new, out)


def _gru_sequence(x, h0, w_ih, w_hh, bias, b_hn, keep_gates):
    """``x (T, B, D)``, ``h0 (B, H)`` → ``hs (T+1, B, H)``, ``hsT (T+1, H, B)`` (h_0 … h_T) and,
    with ``keep_gates``, ``keep (T, 4H, B)``: r, z, n, W_hn h + b_hn of every step (for BPTT)."""
    T, B, _ = x.shape
    hs, hsT = _states(x, h0)
    keep = np.empty((T if keep_gates else 1, 4 * h0.shape[1], B), x.dtype)
    gh = np.empty((3 * h0.shape[1], B), x.dtype)
    for t in range(T):
        if t % _CHUNK == 0:
            gi = _input_terms(x, w_ih, t)                         # W_ih x_s for the next chunk
        np.matmul(w_hh, hsT[t], out=gh)                           # W_hh h_{t−1}: (3H, B)
        _gru_step(gi, t % _CHUNK, gh, bias, b_hn, hsT[t], hsT[t + 1], keep[t * keep_gates], hs[t + 1])
    return hs, hsT, keep


@njit(**_JIT)
def _gru_step_backward(dh, direct, grad_out, hidden, keep_hidden, keep, h, dgi, dgh, t):
    """GRU step t backwards. ``dh (H, B)``: as in :func:`_rnn_step_backward`; ``keep (4H, B)``
    from the forward; ``h (H, B)`` = h_{t−1}.

    Writes the input-side and recurrent-side pre-activation gradients ``dgi[:, t]``,
    ``dgh[:, t]`` (both ``(3H, T, B)``) and ``direct = dh' ⊙ z`` (the path h' = … + z ⊙ h).
    """
    _add_output_grad(dh, direct, grad_out, hidden, keep_hidden)
    H, B = dh.shape
    one = dh.dtype.type(1)
    for j in range(H):
        for b in range(B):
            r, z, n, hn = keep[j, b], keep[H + j, b], keep[2 * H + j, b], keep[3 * H + j, b]
            d = dh[j, b]
            da_n = (d - d * z) * (one - n * n)               # dn = dh' (1 − z), through tanh
            da_z = d * (h[j, b] - n) * (z - z * z)           # dz = dh' (h − n), through σ
            da_r = da_n * hn * (r - r * r)                   # dr = da_n (W_hn h + b_hn), σ
            dgi[j, t, b] = da_r
            dgi[H + j, t, b] = da_z
            dgi[2 * H + j, t, b] = da_n
            dgh[j, t, b] = da_r
            dgh[H + j, t, b] = da_z
            dgh[2 * H + j, t, b] = da_n * r                  # recurrent side: r ⊙ da_n
            direct[j, b] = d * z


def _gru_backward(hsT, keep, w_hh, grad_out, dh_T, truncate, hidden, keep_hidden):
    """BPTT over the stored states and gates; as :func:`_rnn_backward`, but returns the
    input-side and recurrent-side gradients ``dgi``, ``dgh (3H, T, B)`` and ``dh0``."""
    T, B, H = grad_out.shape
    w_hhT = np.ascontiguousarray(w_hh.T)                          # (H, 3H)
    dgi = np.empty((3 * H, T, B), dh_T.dtype)
    dgh = np.empty((3 * H, T, B), dh_T.dtype)
    dh = _fresh_T(dh_T)
    direct = np.zeros_like(dh)
    for t in range(T - 1, -1, -1):
        _gru_step_backward(dh, direct, grad_out[t], hidden[t * keep_hidden], keep_hidden,
                           keep[t], hsT[t], dgi, dgh, t)
        if _cut(t, truncate):
            dh[:] = 0                                             # state detached before step t
            direct[:] = 0
        else:
            np.matmul(w_hhT, dgh[:, t], out=dh)                   # W_hhᵀ dgh (+ direct, later)
    return dgi, dgh, (dh + direct).T.copy()


# --------------------------------------------------------------------------------------------
# LSTM (torch.nn.LSTM's gate order i, f, g, o)
#   i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o),  a = W_ih x + b_ih + W_hh h + b_hh
#   c' = f ⊙ c + i ⊙ g,     h' = o ⊙ tanh(c')
# --------------------------------------------------------------------------------------------

@njit(**_JIT)
def _lstm_step(gi, t, gh, bias, c, h_new, c_new, keep, out):
    """LSTM step t. ``gi (4H, T, B)``, ``gh (4H, B)``, ``bias = b_ih + b_hh``, ``c (H, B)``.

    Writes ``h_new``, ``c_new (H, B)``, ``out (B, H) = h_newᵀ`` and ``keep (5H, B) = [i, f, g,
    o, tanh c']``.
    """
    H, B = c.shape
    for j in range(H):
        bi, bf, bg, bo = bias[j], bias[H + j], bias[2 * H + j], bias[3 * H + j]
        for b in range(B):
            i = _sigmoid(gi[j, t, b] + gh[j, b] + bi)                      # input gate
            f = _sigmoid(gi[H + j, t, b] + gh[H + j, b] + bf)              # forget gate
            g = _tanh(gi[2 * H + j, t, b] + gh[2 * H + j, b] + bg)         # candidate
            o = _sigmoid(gi[3 * H + j, t, b] + gh[3 * H + j, b] + bo)      # output gate
            cn = f * c[j, b] + i * g                                       # c' = f c + i g
            tc = _tanh(cn)
            c_new[j, b] = cn
            h_new[j, b] = o * tc                                           # h' = o tanh(c')
            keep[j, b] = i
            keep[H + j, b] = f
            keep[2 * H + j, b] = g
            keep[3 * H + j, b] = o
            keep[4 * H + j, b] = tc
    _copy_T(h_new, out)


def _lstm_sequence(x, h0, c0, w_ih, w_hh, bias, keep_gates):
    """``x (T, B, D)``, ``h0``, ``c0 (B, H)`` → ``hs (T+1, B, H)``, ``csT (T+1, H, B)`` and,
    with ``keep_gates``, ``keep (T, 5H, B)``: i, f, g, o, tanh(c_t) of every step."""
    T, B, _ = x.shape
    hs, hsT = _states(x, h0)
    csT = np.empty_like(hsT)
    csT[0] = c0.T
    keep = np.empty((T if keep_gates else 1, 5 * h0.shape[1], B), x.dtype)
    gh = np.empty((4 * h0.shape[1], B), x.dtype)
    for t in range(T):
        if t % _CHUNK == 0:
            gi = _input_terms(x, w_ih, t)                         # W_ih x_s for the next chunk
        np.matmul(w_hh, hsT[t], out=gh)                           # W_hh h_{t−1}: (4H, B)
        _lstm_step(gi, t % _CHUNK, gh, bias, csT[t], hsT[t + 1], csT[t + 1], keep[t * keep_gates],
                   hs[t + 1])
    return hs, csT, keep


@njit(**_JIT)
def _lstm_step_backward(dh, dc, direct, grad_out, hidden, keep_hidden, keep, c, dga, t):
    """LSTM step t backwards. ``dh (H, B)``: as in :func:`_rnn_step_backward`; ``dc (H, B)`` =
    ∂L/∂c', replaced by ∂L/∂c_{t−1}; ``keep (5H, B)``; ``c (H, B)`` = c_{t−1}.
    Writes ``dga[:, t]`` (``(4H, T, B)``)."""
    _add_output_grad(dh, direct, grad_out, hidden, keep_hidden)
    H, B = dh.shape
    one = dh.dtype.type(1)
    for j in range(H):
        for b in range(B):
            i, f, g = keep[j, b], keep[H + j, b], keep[2 * H + j, b]
            o, tc = keep[3 * H + j, b], keep[4 * H + j, b]
            d = dh[j, b]
            dct = dc[j, b] + d * o * (one - tc * tc)         # c' reaches L directly and via h'
            dga[j, t, b] = dct * g * (i - i * i)             # da_i
            dga[H + j, t, b] = dct * c[j, b] * (f - f * f)   # da_f
            dga[2 * H + j, t, b] = dct * i * (one - g * g)   # da_g
            dga[3 * H + j, t, b] = d * tc * (o - o * o)      # da_o
            dc[j, b] = dct * f                               # ∂L/∂c_{t−1}


def _lstm_backward(csT, keep, w_hh, grad_out, dh_T, dc_T, truncate, hidden, keep_hidden):
    """BPTT over the stored cell states and gates; as :func:`_rnn_backward`, returning
    ``da (4H, T, B)``, ``dh0`` and ``dc0 (B, H)``."""
    T, B, H = grad_out.shape
    w_hhT = np.ascontiguousarray(w_hh.T)                          # (H, 4H)
    dga = np.empty((4 * H, T, B), dh_T.dtype)
    dh = _fresh_T(dh_T)
    dc = _fresh_T(dc_T)
    direct = np.zeros_like(dh)                                    # h has no direct path
    for t in range(T - 1, -1, -1):
        _lstm_step_backward(dh, dc, direct, grad_out[t], hidden[t * keep_hidden], keep_hidden,
                            keep[t], csT[t], dga, t)
        if _cut(t, truncate):
            dh[:] = 0                                             # state detached before step t
            dc[:] = 0
        else:
            np.matmul(w_hhT, dga[:, t], out=dh)                   # ∂L/∂h_{t−1} = W_hhᵀ da
    return dga, dh.T.copy(), dc.T.copy()


# --------------------------------------------------------------------------------------------
# The functions of reference.py
# --------------------------------------------------------------------------------------------

def _prepare(x, states, params, *grads):
    """C-contiguous arrays in x's dtype (float32 or float64: ``minirec.cells`` refuses others):
    x, [states], (weights, biases), [grads]."""
    dt = x.dtype
    c = lambda a: np.ascontiguousarray(a, dtype=dt)
    p = tuple(c(params[k]) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    return c(x), [c(s) for s in states], p, [None if g is None else c(g) for g in grads]


def _gru_biases(b_ih, b_hh):
    """[b_ir + b_hr, b_iz + b_hz, b_in] and b_hn: only b_hn sits inside r ⊙ (·)."""
    H = b_ih.shape[0] // 3
    bias = b_ih.copy()
    bias[: 2 * H] += b_hh[: 2 * H]
    return bias, np.ascontiguousarray(b_hh[2 * H:])


def _backward_args(x, state, grad_final, truncate, return_hidden_grads):
    """The arguments every backward loop shares, after ``grad_out``."""
    T, B, _ = x.shape
    dh_T = np.zeros_like(state) if grad_final is None else grad_final
    hidden = np.empty((T if return_hidden_grads else 1, B, state.shape[1]), x.dtype)
    return dh_T, truncate or 0, hidden, bool(return_hidden_grads)


def _finish(grads, dstate0, hidden, return_hidden_grads):
    grads["h0"] = dstate0
    if return_hidden_grads:
        grads["hidden"] = hidden
    return grads


def rnn_forward(x, h0, params):
    """tanh RNN over a sequence. ``x (T, B, D)``, ``h0 (B, H)`` → ``(outputs (T, B, H), h_T)``."""
    x_, (h0_,), (w_ih, w_hh, b_ih, b_hh), _ = _prepare(x, (h0,), params)
    hs, _ = _rnn_sequence(x_, h0_, w_ih, w_hh, b_ih + b_hh)
    return hs[1:], hs[-1].copy()


def gru_forward(x, h0, params):
    """GRU over a sequence. ``x (T, B, D)``, ``h0 (B, H)`` → ``(outputs (T, B, H), h_T)``."""
    x_, (h0_,), (w_ih, w_hh, b_ih, b_hh), _ = _prepare(x, (h0,), params)
    hs, _, _ = _gru_sequence(x_, h0_, w_ih, w_hh, *_gru_biases(b_ih, b_hh), False)
    return hs[1:], hs[-1].copy()


def lstm_forward(x, state0, params):
    """LSTM over a sequence. ``x (T, B, D)``, ``state0 = (h0, c0)`` → ``(outputs, (h_T, c_T))``."""
    x_, (h0_, c0_), (w_ih, w_hh, b_ih, b_hh), _ = _prepare(x, state0, params)
    hs, csT, _ = _lstm_sequence(x_, h0_, c0_, w_ih, w_hh, b_ih + b_hh, False)
    return hs[1:], (hs[-1].copy(), csT[-1].T.copy())


def rnn_bptt(x, h0, params, grad_outputs, *, grad_final=None, truncate=None,
             return_hidden_grads=False):
    """Gradients of L through a tanh RNN; arguments and result as :func:`reference.rnn_bptt`.

    ``grad_outputs (T, B, H)``, ``grad_final (B, H)`` or None, ``truncate`` k or None → dict of
    ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``, ``x (T, B, D)``, ``h0 (B, H)`` and,
    with ``return_hidden_grads``, ``hidden (T, B, H)``.
    """
    x_, (h0_,), (w_ih, w_hh, b_ih, b_hh), (go, gf) = _prepare(
        x, (h0,), params, grad_outputs, grad_final)
    hs, hsT = _rnn_sequence(x_, h0_, w_ih, w_hh, b_ih + b_hh)
    args = _backward_args(x_, h0_, gf, truncate, return_hidden_grads)
    da, dh0 = _rnn_backward(hsT, w_hh, go, *args)
    return _finish(_param_grads(x_, hs, da, da, w_ih), dh0, args[2], return_hidden_grads)


def gru_bptt(x, h0, params, grad_outputs, *, grad_final=None, truncate=None,
             return_hidden_grads=False):
    """Gradients of L through a GRU; arguments and result as :func:`rnn_bptt`."""
    x_, (h0_,), (w_ih, w_hh, b_ih, b_hh), (go, gf) = _prepare(
        x, (h0,), params, grad_outputs, grad_final)
    hs, hsT, keep = _gru_sequence(x_, h0_, w_ih, w_hh, *_gru_biases(b_ih, b_hh), True)
    args = _backward_args(x_, h0_, gf, truncate, return_hidden_grads)
    dgi, dgh, dh0 = _gru_backward(hsT, keep, w_hh, go, *args)
    return _finish(_param_grads(x_, hs, dgi, dgh, w_ih), dh0, args[2], return_hidden_grads)


def lstm_bptt(x, state0, params, grad_outputs, *, grad_final=None, truncate=None,
              return_hidden_grads=False):
    """Gradients of L through an LSTM; as :func:`rnn_bptt` with pairs for the state:
    ``state0 = (h0, c0)``, ``grad_final = (dh_T, dc_T)`` or None, result ``h0 = (dh0, dc0)``."""
    gf = (None, None) if grad_final is None else tuple(grad_final)
    x_, (h0_, c0_), (w_ih, w_hh, b_ih, b_hh), (go, gh, gc) = _prepare(
        x, state0, params, grad_outputs, *gf)
    hs, csT, keep = _lstm_sequence(x_, h0_, c0_, w_ih, w_hh, b_ih + b_hh, True)
    dh_T, truncate, hidden, keep_hidden = _backward_args(x_, h0_, gh, truncate,
                                                         return_hidden_grads)
    dc_T = np.zeros_like(c0_) if gc is None else gc
    da, dh0, dc0 = _lstm_backward(csT, keep, w_hh, go, dh_T, dc_T, truncate, hidden, keep_hidden)
    return _finish(_param_grads(x_, hs, da, da, w_ih), (dh0, dc0), hidden, return_hidden_grads)
