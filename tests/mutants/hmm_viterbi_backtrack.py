"""Wrong answers to ``viterbi_backtrack(backpointers, last_state) -> path``:
path[T−1] = last_state, path[t−1] = backpointers[t, path[t]]."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(backpointers, last_state):
    raise NotImplementedError


def correct(backpointers, last_state):
    N, T, _ = backpointers.shape
    paths = []
    for n in range(N):
        state = int(last_state[n])
        states = [state]
        for t in range(T - 1, 0, -1):
            state = int(backpointers[n, t, state])
            states.append(state)
        paths.append(states[::-1])
    return np.array(paths)


@mutant(MUTANTS, "off by one in time", wrong={"path"})
def previous_row(backpointers, last_state):
    N, T, _ = backpointers.shape
    path = np.zeros((N, T), dtype=int)
    path[:, -1] = last_state
    for t in range(T - 1, 0, -1):
        path[:, t - 1] = backpointers[np.arange(N), t - 1, path[:, t]]
    return path


@mutant(MUTANTS, "the pointer was always read at the LAST state", wrong={"path"})
def never_follows(backpointers, last_state):
    N, T, _ = backpointers.shape
    path = np.zeros((N, T), dtype=int)
    path[:, -1] = last_state
    for t in range(1, T):
        path[:, t - 1] = backpointers[np.arange(N), t, last_state]
    return path


@mutant(MUTANTS, "the path comes out reversed", wrong={"path"})
def not_reversed(backpointers, last_state):
    N, T, _ = backpointers.shape
    out = []
    for n in range(N):
        state = int(last_state[n])
        states = [state]
        for t in range(T - 1, 0, -1):
            state = int(backpointers[n, t, state])
            states.append(state)
        out.append(states)
    return np.array(out)


@mutant(MUTANTS, "the path does not start from last_state", wrong={"path"})
def starts_at_zero(backpointers, last_state):
    N, T, _ = backpointers.shape
    path = np.zeros((N, T), dtype=int)
    for t in range(T - 1, 0, -1):
        path[:, t - 1] = backpointers[np.arange(N), t, path[:, t]]
    return path


# --- more wrong answers (issue 11) and right answers written differently -----------------

@mutant(MUTANTS, "the path comes out reversed", wrong={"path"})
def appended_not_reversed(backpointers, last_state):
    N, T, _ = backpointers.shape
    path = [np.asarray(last_state)]
    for t in range(T - 1, 0, -1):
        path.append(backpointers[np.arange(N), t, path[-1]])
    return np.stack(path, axis=1)


def backtrack_vectorised(backpointers, last_state):
    """Right, all sequences at once, filled from the end."""
    N, T, _ = backpointers.shape
    path = np.empty((N, T), dtype=np.int64)
    path[:, -1] = last_state
    for t in range(T - 1, 0, -1):
        path[:, t - 1] = np.take_along_axis(backpointers[:, t], path[:, t:t + 1], axis=1)[:, 0]
    return path


ALTERNATIVES = [backtrack_vectorised]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "every sequence followed sequence 0's pointers", wrong={"path"})
def one_table_for_all(backpointers, last_state):
    N, T, _ = backpointers.shape
    path = np.zeros((N, T), dtype=np.int64)
    path[:, -1] = last_state
    for t in range(T - 1, 0, -1):
        table = backpointers[:, t][:, path[:, t]]         # (N, N): row n, every sequence's state
        path[:, t - 1] = table[0]
    return path


@mutant(MUTANTS, "right at every step but the first", wrong={"path"})
def loop_ends_before_the_first_step(backpointers, last_state):
    N, T, _ = backpointers.shape
    path = np.full((N, T), -1, dtype=np.int64)             # the first column is never filled
    path[:, T - 1] = last_state
    t = T - 1
    while t > 1:
        path[:, t - 1] = backpointers[np.arange(N), t, path[:, t]]
        t -= 1
    return path
