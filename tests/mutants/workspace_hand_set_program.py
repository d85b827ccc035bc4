"""Wrong answers to ``hand_set_program(b (B,), n_steps) -> (K, B, M)``: input at step 0,
increment at steps 1 … b, output after."""

import numpy as np

from . import mutant

MUTANTS: list = []

INPUT, INCREMENT, OUTPUT = 0, 1, 2


def blank(b, n_steps):
    raise NotImplementedError


def correct(b, n_steps):
    program = np.zeros((n_steps, len(b), 3))
    for i, count in enumerate(b):
        program[0, i, INPUT] = 1.0
        program[1:count + 1, i, INCREMENT] = 1.0
        program[count + 1:, i, OUTPUT] = 1.0
    return program


def _from_choices(choices):
    return np.eye(3)[np.array(choices)]


@mutant(MUTANTS, "one increment too few", wrong={"program"})
def range_stops_early(b, n_steps):
    choices = [[INPUT if k == 0 else INCREMENT if k < count else OUTPUT for count in b]
               for k in range(n_steps)]
    return _from_choices(choices)


@mutant(MUTANTS, "one increment too many", wrong={"program"})
def counts_the_input_step_as_zero(b, n_steps):
    choices = [[INPUT if k == 0 else INCREMENT if k <= count + 1 else OUTPUT for count in b]
               for k in range(n_steps)]
    return _from_choices(choices)


@mutant(MUTANTS, "the increments start at step 0", wrong={"program"})
def no_input_step(b, n_steps):
    choices = [[INCREMENT if k < count else OUTPUT for count in b] for k in range(n_steps)]
    return _from_choices(choices)


@mutant(MUTANTS, "the last steps run the input module", wrong={"program"})
def input_after_the_increments(b, n_steps):
    k = np.arange(n_steps)[:, None]
    return _from_choices(np.where((k >= 1) & (k <= b), INCREMENT, INPUT))


@mutant(MUTANTS, "the increments come after the output steps", wrong={"program"})
def outputs_before_increments(b, n_steps):
    program = np.zeros((n_steps, len(b), 3))
    program[0, :, INPUT] = 1.0
    for i, count in enumerate(b):
        program[1:n_steps - count, i, OUTPUT] = 1.0
        program[n_steps - count:, i, INCREMENT] = 1.0
    return program


@mutant(MUTANTS, "Time first", wrong={"program"})
def batch_first(b, n_steps):
    return correct(b, n_steps).transpose(1, 0, 2)


# --- more wrong answers (issue 11) and right answers written differently -----------------

@mutant(MUTANTS, "one increment too few", wrong={"program"})
def increments_below_b(b, n_steps):
    k = np.arange(n_steps)[:, None]
    choice = np.where(k == 0, INPUT, np.where(k < np.asarray(b)[None], INCREMENT, OUTPUT))
    return np.eye(3)[choice]


def program_from_a_choice_table(b, n_steps):
    """Right: the module chosen at each step, then one-hot by np.eye."""
    k = np.arange(n_steps)[:, None]
    choice = np.select([k == 0, k <= np.asarray(b)[None]], [INPUT, INCREMENT], OUTPUT)
    return np.eye(3)[choice]


ALTERNATIVES = [program_from_a_choice_table]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "is example 0's", wrong={"program"})
def first_count_for_everyone(b, n_steps):
    return correct(np.full_like(b, b[0]), n_steps)


# --- probe 2 (issue 11): the causes behind a second learner's mistakes, written anew ------

@mutant(MUTANTS, "the example with the largest b", wrong={"program"})
def longest_program_for_all(b, n_steps):
    # the number of increments of the longest addition, used for every example
    return correct(np.full_like(b, np.max(b)), n_steps)
