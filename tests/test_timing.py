"""minirec._timing, the one timing policy of the benchmarks and the lessons: warm-up, rounds with
every method in turn, calls until a per-round budget is spent, best and median. A scripted timer
stands in for the clock, so nothing here depends on how fast the machine is."""

import pytest

from minirec._timing import Timing, time_call, time_methods


def scripted(durations):
    """A timer that calls ``fn`` and says it took the next of ``durations[name]`` seconds."""
    order = []

    def timer(fn):
        name = fn()
        order.append(name)
        return durations[name].pop(0)

    return timer, order


def test_warm_up_then_rounds_with_every_method_in_turn():
    calls = {"a": 0, "b": 0}

    def method(name):
        def run():
            calls[name] += 1
            return name
        return run

    timer, order = scripted({"a": [1.0] * 3, "b": [1.0] * 3})
    out = time_methods({"a": method("a"), "b": method("b")}, rounds=3, budget_s=0.5, timer=timer)
    assert order == ["a", "b"] * 3                       # one call each per round: 1 s > 0.5 s
    assert calls == {"a": 4, "b": 4}                     # + one untimed warm-up call each
    assert out["a"].runs == 3 and out["a"].seconds == (1.0, 1.0, 1.0)


def test_a_fast_method_is_called_until_the_round_budget_is_spent_or_max_calls():
    timer, _ = scripted({"fast": [0.1] * 10, "tiny": [1e-6] * 5})
    out = time_methods({"fast": lambda: "fast", "tiny": lambda: "tiny"}, rounds=1, budget_s=0.35,
                       max_calls=5, warmup=0, timer=timer)
    assert out["fast"].runs == 4                         # 0.1 + 0.1 + 0.1 < 0.35 ≤ 0.4
    assert out["tiny"].runs == 5                         # stopped by max_calls


def test_best_is_the_fastest_call_and_median_the_middle_one():
    t = Timing((0.3, 0.1, 0.2, 0.5))
    assert (t.best, t.median, t.runs) == (0.1, 0.25, 4)
    assert t.as_row() == {"best_ms": 100.0, "median_ms": 250.0, "runs": 4}


def test_time_call_runs_with_the_wall_clock():
    calls = []
    t = time_call(lambda: calls.append(1), rounds=2, budget_s=0.0, max_calls=1, warmup=1)
    assert len(calls) == 3 and t.runs == 2 and 0 <= t.best <= t.median < 1


@pytest.mark.parametrize("policy", [{"rounds": 0}, {"max_calls": 0}, {"warmup": -1},
                                    {"budget_s": -1.0}, {"pause_s": -0.1}])
def test_a_policy_that_times_nothing_is_refused(policy):
    with pytest.raises(ValueError, match="need rounds ≥ 1"):
        time_methods({"f": lambda: None}, **policy)
