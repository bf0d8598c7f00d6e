"""The scheduler's policy, without a model: what each step prefills or decodes."""

from __future__ import annotations

import pytest

from jupyter_llm.engine.scheduler import Burst, Scheduler
from jupyter_llm.engine.sequence import Sequence


class Tokens:
    """A detokenizer whose tokens are their own text."""

    def push(self, token_id: int) -> tuple[str, bool]:
        return f"<{token_id}>", False

    def flush(self) -> str:
        return ""


def seq(job: str, prompt: int = 4, max_tokens: int = 3) -> Sequence:
    return Sequence(job, list(range(prompt)), max_tokens, Tokens(), stop_ids={99})


def run_step(scheduler: Scheduler, token: int = 1) -> tuple[bool, list[str]]:
    plan = scheduler.schedule()
    assert plan is not None
    for s in plan.seqs:
        s.append(token)
    scheduler.postprocess(plan)
    return plan.prefill, [s.job_id for s in plan.seqs]


def test_prefill_and_decode_alternate_while_both_have_work():
    scheduler = Scheduler(max_num_seqs=8)
    scheduler.add(seq("a", max_tokens=10))
    assert run_step(scheduler) == (True, ["a"])
    scheduler.add(seq("b", max_tokens=10))
    scheduler.add(seq("c", max_tokens=10))
    assert run_step(scheduler) == (False, ["a"])  # a prefill came last: a decode goes first
    assert run_step(scheduler) == (True, ["b", "c"])
    scheduler.add(seq("d", max_tokens=10))
    assert run_step(scheduler) == (False, ["a", "b", "c"])
    assert run_step(scheduler) == (True, ["d"])
    assert run_step(scheduler) == (False, ["a", "b", "c", "d"])
    assert run_step(scheduler) == (False, ["a", "b", "c", "d"])


def test_max_num_seqs_bounds_the_running_set():
    scheduler = Scheduler(max_num_seqs=2)
    for job in "abcde":
        scheduler.add(seq(job, max_tokens=3))
    seen = []
    while scheduler.has_work():
        run_step(scheduler)
        seen.append(len(scheduler.running))
    assert max(seen) == 2 and not scheduler.running and not scheduler.waiting


def test_one_prefill_takes_at_most_prefill_tokens_padded_and_always_one():
    scheduler = Scheduler(max_num_seqs=8, prefill_tokens=20)
    for job, length in (("a", 4), ("b", 6), ("c", 5), ("d", 30)):
        scheduler.add(seq(job, prompt=length))
    assert run_step(scheduler) == (True, ["a", "b", "c"])  # 3 x 6 = 18 <= 20; 4 x 30 > 20
    scheduler.abort("a")
    scheduler.abort("b")
    scheduler.abort("c")
    assert run_step(scheduler) == (True, ["d"])  # alone, though over the budget


def test_finished_sequences_leave_and_postprocess_returns_the_rows_that_go_on():
    scheduler = Scheduler(max_num_seqs=8)
    for job, limit in (("a", 2), ("b", 1), ("c", 3)):
        scheduler.add(seq(job, max_tokens=limit))
    plan = scheduler.schedule()
    assert plan is not None and plan.prefill
    outputs = [s.append(7) for s in plan.seqs]
    assert [o.finish_reason for o in outputs] == [None, "length", None]
    assert scheduler.postprocess(plan) == [0, 2]
    assert [s.job_id for s in scheduler.running] == ["a", "c"]
    plan = scheduler.schedule()
    assert plan is not None and not plan.prefill
    plan.seqs[0].append(99)  # a stop token
    plan.seqs[1].append(5)
    assert scheduler.postprocess(plan) == [1]
    assert [s.job_id for s in scheduler.running] == ["c"]


def test_abort_returns_the_running_row_and_drops_waiting_jobs():
    scheduler = Scheduler(max_num_seqs=8)
    for job in "abc":
        scheduler.add(seq(job, max_tokens=10))
    run_step(scheduler)
    scheduler.add(seq("d"))
    assert scheduler.abort("b") == 1
    assert scheduler.abort("d") is None and not scheduler.waiting
    assert scheduler.abort("nobody") is None
    assert [s.job_id for s in scheduler.running] == ["a", "c"]
    assert scheduler.schedule() is not None


def test_idle_scheduler_plans_nothing():
    scheduler = Scheduler(max_num_seqs=1)
    assert scheduler.schedule() is None and not scheduler.has_work()
    with pytest.raises(ValueError, match="max_num_seqs must be at least 1"):
        Scheduler(max_num_seqs=0)


def test_sequence_append_judges_stop_tokens_stop_strings_and_length():
    class StopsAtThree(Tokens):
        def push(self, token_id: int) -> tuple[str, bool]:
            return ("done", True) if token_id == 3 else super().push(token_id)

    s = Sequence("j", [1, 2], 5, StopsAtThree(), stop_ids={99})
    assert s.append(1).text == "<1>" and s.position == 2
    out = s.append(3)
    assert out.finish_reason == "stop" and out.text == "done" and s.finished
    s = Sequence("j", [1], 2, Tokens(), stop_ids={99})
    assert s.append(1).finish_reason is None
    assert s.append(2).finish_reason == "length"
    s = Sequence("j", [1], 5, Tokens(), stop_ids={99})
    out = s.append(99)
    assert out.finish_reason == "stop" and out.token_ids == (99,) and out.text == ""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0


def test_burst_gathers_commands_that_come_within_the_gap_up_to_the_limit():
    clock = Clock()
    arrivals = [0.001, 0.002, 0.003, 0.0065, 0.0095, 0.012]  # the last comes after the limit
    taken: list[float] = []

    def poll(timeout: float) -> bool:
        upcoming = [t for t in arrivals if t not in taken]
        if upcoming and upcoming[0] - clock.now <= timeout:
            clock.now = max(clock.now, upcoming[0])
            return True
        clock.now += timeout
        return False

    def take() -> bool:
        taken.append(next(t for t in arrivals if t not in taken))
        return True

    assert Burst(gap_secs=0.002, max_secs=0.010).gather(poll, take, lambda: clock.now)
    assert taken == [0.001, 0.002, 0.003]  # 0.0065 came 3.5 ms after 0.003: the burst ended
    taken.clear()
    clock.now, arrivals = 0.0, [0.001 * i for i in range(1, 30)]
    Burst(gap_secs=0.002, max_secs=0.010).gather(poll, take, lambda: clock.now)
    assert 9 <= len(taken) <= 10  # a steady stream is cut off at the limit


def test_burst_stops_when_told_to():
    assert not Burst().gather(lambda timeout: True, lambda: False)
