"""Is an exercise's answer readable above it? The line matching behind the pipeline's leak test.

A learner runs the exercise notebook top to bottom. Everything above an exercise cell — the
cells' sources (earlier exercises as blanked stubs) and, in the solution notebook, their text
outputs, such as the source printed by ``show(fn)`` — is what they may read before writing the
answer. The answer leaks when one of its lines can be read there.

Lines are compared after :func:`normalise`: comments, whitespace, punctuation, subscripts and
reshapes (``x[t]``, ``x[:, t]`` and ``x.reshape(-1, 1)`` are all ``x``), assignment targets
(``h = expr``, ``return expr`` and ``out[t] = expr`` all read ``expr``) and keyword-argument names
are ignored. Two normalised lines match when they are equal or near-identical: a difflib ratio of
at least :data:`NEAR` between their tokens joined by spaces (``linear_recurrence 1.0 - alpha
S_all M`` against ``... S_seq M`` scores 0.92).

Thresholds:

- a line counts when its normalised form has at least :data:`MIN_TOKENS` tokens and it is not a
  block header (``for t in range(T):``, ``with ...:``, ``def f(...):``): ``return out``,
  ``h = h0``, ``dx = np.zeros_like(x)`` do not count, ``m = np.maximum(mA, mB)`` does. A solution
  line that matches a line of the exercise's own stub or docstring never counts;
- an exercise leaks when at least one counted line of its solution matches a counted line above.

On the notebooks of issue 11 these flag the six ``show(...)`` cells it lists that share a line with
the exercise below them (tests/fixtures/leaks/) and no other exercise: there the closest line
above an answer scores 0.81. They cannot see a reference that shares the idea but no line (the
generic ``combine(carry, local)`` of ``scan.reference.chunked`` above lesson 03's affine fix-up).
"""

from __future__ import annotations

import difflib
import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass

MIN_TOKENS = 4  # normalised tokens a line needs to count
NEAR = 0.9  # difflib ratio at which two normalised lines are near-identical

_TOKEN = re.compile(
    r"""(?P<string>[rbuf]{0,2}("[^"\n]*"|'[^'\n]*'))
      | (?P<name>[^\W\d]\w*)
      | (?P<number>\d[\w.]*)
      | (?P<op>\*\*=?|//=?|->|<<=?|>>=?|[-+*/%@&|^<>=!:]=|[-+*/%@&|^~<>=!:;,.()\[\]{}])
    """,
    re.VERBOSE,
)
_OPEN, _CLOSE = "([{", ")]}"
_PUNCTUATION = set("()[]{},.:;")
_AUGMENTED = {"+=", "-=", "*=", "/=", "//=", "%=", "@=", "**=", "&=", "|=", "^=", ">>=", "<<="}
_BLOCK_HEADER = {"for", "while", "if", "elif", "else", "with", "try", "except", "finally", "def",
                 "class", "async"}


def _tokens(line: str) -> list[str]:
    """The line's tokens, up to a comment (a ``#`` outside a string)."""
    out, position = [], 0
    while position < len(line):
        if line[position].isspace():
            position += 1
            continue
        if line[position] == "#":
            break
        match = _TOKEN.match(line, position)
        if match is None:  # a character no Python token starts with (maths in prose, …)
            out.append(line[position])
            position += 1
            continue
        out.append(match.group())
        position = match.end()
    return out


def _drop_axis_plumbing(tokens: list[str]) -> list[str]:
    """Remove each ``[...]`` that indexes (follows a name, a closing bracket or a string) and each
    ``.reshape(...)``: both only pick or move axes (``x[:, None]`` is ``x.reshape(-1, 1)``)."""
    out: list[str] = []
    k = 0
    while k < len(tokens):
        token = tokens[k]
        if token == "[" and out and (out[-1] in _CLOSE or _is_operand(out[-1])):
            k = _after_group(tokens, k)
        elif token == "." and tokens[k + 1:k + 3] == ["reshape", "("]:
            k = _after_group(tokens, k + 2)
        else:
            out.append(token)
            k += 1
    return out


def _after_group(tokens: list[str], start: int) -> int:
    """The index just after the bracket group that opens at ``tokens[start]`` (or the end)."""
    depth = 0
    for k in range(start, len(tokens)):
        depth += (tokens[k] in _OPEN) - (tokens[k] in _CLOSE)
        if depth == 0:
            return k + 1
    return len(tokens)


def _is_operand(token: str) -> bool:
    return bool(re.match(r"[\w'\"]", token)) and not keyword.iskeyword(token)


def _drop_targets(tokens: list[str]) -> list[str]:
    """Drop what a line assigns to (up to its last top-level ``=``; an augmented assignment keeps
    its operator), a leading ``return``/``yield``, and the names of keyword arguments."""
    depth, last_assign = 0, -1
    for k, token in enumerate(tokens):
        depth += (token in _OPEN) - (token in _CLOSE)
        if depth == 0 and (token == "=" or token in _AUGMENTED):
            last_assign = k
    if last_assign >= 0:
        keep_operator = tokens[last_assign] in _AUGMENTED
        tokens = tokens[last_assign + (0 if keep_operator else 1):]
    if tokens and tokens[0] in ("return", "yield"):
        tokens = tokens[1:]
    out: list[str] = []
    for k, token in enumerate(tokens):
        keyword_name = k + 1 < len(tokens) and tokens[k + 1] == "=" and _is_operand(token)
        if keyword_name or token == "=":
            continue
        out.append(token)
    return out


def normalise(line: str) -> tuple[str, ...]:
    """What a line computes, as tokens: no comment, subscript, reshape, assignment target,
    keyword-argument name or punctuation (brackets, commas, dots, colons).

    >>> normalise("out[t] = a * h + (1 - a) * x[:, t]  # the update")
    ('a', '*', 'h', '+', '1', '-', 'a', '*', 'x')
    """
    tokens = _drop_targets(_drop_axis_plumbing(_tokens(line)))
    return tuple(token for token in tokens if token not in _PUNCTUATION)


def counts(line: str) -> bool:
    """Whether a solution line is substantive enough for its appearance above to be a leak:
    at least :data:`MIN_TOKENS` normalised tokens, and not a block header."""
    return not _is_block_header(line) and len(normalise(line)) >= MIN_TOKENS


def _is_block_header(line: str) -> bool:
    """``for ...:``, ``with ...:``, ``def f(...):``: structure, not what a line computes."""
    tokens = _tokens(line)
    return bool(tokens) and tokens[0] in _BLOCK_HEADER and tokens[-1] == ":"


def near(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Equal, or near-identical: a difflib ratio of at least :data:`NEAR` between the two lines'
    normalised tokens joined by spaces."""
    if a == b:
        return True
    matcher = difflib.SequenceMatcher(None, " ".join(a), " ".join(b), autojunk=False)
    return matcher.real_quick_ratio() >= NEAR and matcher.quick_ratio() >= NEAR and (
        matcher.ratio() >= NEAR
    )


@dataclass(frozen=True)
class Leak:
    solution_line: str  # the answer's line, as written in the lesson
    seen: str  # the line above the exercise that matches it
    where: str  # which cell above, and whether in its source or its output


def find_leaks(solution: Iterable[str], stub: Iterable[str],
               above: Iterable[tuple[str, str]]) -> list[Leak]:
    """The counted lines of ``solution`` that match a line of ``above``.

    ``solution``: the lines of the exercise's solution regions; ``stub``: the exercise cell's other
    lines (signature, docstring), which the learner reads anyway and which therefore never count;
    ``above``: ``(where, text)`` pairs, every text the learner can read above the exercise.
    """
    stub_forms = [normalise(line) for line in stub]
    candidates = [line for line in solution if counts(line)
                  and not any(near(normalise(line), form) for form in stub_forms)]
    seen = [(where, line, normalise(line)) for where, text in above
            for line in text.split("\n") if counts(line)]
    leaks = []
    for line in candidates:
        form = normalise(line)
        match = next(((where, text) for where, text, other in seen if near(form, other)), None)
        if match is not None:
            leaks.append(Leak(line.strip(), match[1].strip(), match[0]))
    return leaks


def visible_above(solution_cells, exercise_cells_by_id, index: int) -> list[tuple[str, str]]:
    """``(where, text)`` for each cell above ``solution_cells[index]``: its source as the exercise
    notebook shows it (an earlier exercise is its stub) and its text outputs in the solution
    notebook (what ``show(...)`` printed)."""
    texts = []
    for k, cell in enumerate(solution_cells[:index]):
        shown = exercise_cells_by_id.get(cell.get("id"), cell)
        texts.append((f"cell {k} source", shown.source))
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            texts.append((f"cell {k} output", "".join(text) if isinstance(text, list) else text))
    return texts
