from __future__ import annotations

from dataclasses import dataclass

from jupyter_llm.pool.queue import JobQueue
from jupyter_llm.types import Priority


@dataclass
class Item:
    id: str
    priority: Priority = Priority.NORMAL
    size: int = 1
    user: str | None = None


def fill(queue: JobQueue[Item], *items: Item) -> None:
    for item in items:
        queue.push(item)


def starter(capacity: list[int]):
    """Start what fits in ``capacity[0]`` units, consuming them."""

    def start(item: Item) -> bool:
        if item.size > capacity[0]:
            return False
        capacity[0] -= item.size
        return True

    return start


def test_fifo_within_a_priority_and_high_before_low():
    queue: JobQueue[Item] = JobQueue()
    fill(queue, Item("n1"), Item("l1", Priority.LOW), Item("h1", Priority.HIGH), Item("n2"))
    assert [i.id for i in queue] == ["h1", "n1", "n2", "l1"]
    started = queue.drain(starter([100]))
    assert [i.id for i in started] == ["h1", "n1", "n2", "l1"]
    assert len(queue) == 0


def test_small_jobs_skip_ahead_of_a_head_that_does_not_fit():
    queue: JobQueue[Item] = JobQueue(skip_limit=5)
    fill(queue, Item("big", size=10), Item("a"), Item("b"))
    started = queue.drain(starter([3]))
    assert [i.id for i in started] == ["a", "b"]
    assert [i.id for i in queue] == ["big"]
    assert queue.head_skips == 2


def test_starvation_bound_stops_skipping_until_the_head_starts():
    queue: JobQueue[Item] = JobQueue(skip_limit=2)
    fill(queue, Item("big", size=10), *(Item(f"s{i}") for i in range(5)))
    assert [i.id for i in queue.drain(starter([5]))] == ["s0", "s1"]
    # room for small jobs again, but the head has been passed twice: nothing passes it now
    assert queue.drain(starter([5])) == []
    # the head gets its room and starts; the line moves again behind it
    assert [i.id for i in queue.drain(starter([13]))] == ["big", "s2", "s3", "s4"]
    assert queue.head_skips == 0


def test_remove_takes_a_job_out_of_any_line():
    queue: JobQueue[Item] = JobQueue()
    fill(queue, Item("a"), Item("b", Priority.LOW), Item("c", Priority.HIGH))
    assert queue.remove("b") is not None
    assert queue.remove("b") is None
    assert "b" not in queue and "a" in queue
    assert [i.id for i in queue] == ["c", "a"]


def test_removing_the_head_resets_its_skip_count():
    queue: JobQueue[Item] = JobQueue(skip_limit=1)
    fill(queue, Item("big", size=10), Item("a"), Item("b"))
    queue.drain(starter([1]))
    assert queue.head_skips == 1
    queue.remove("big")
    assert queue.head_skips == 0
    assert [i.id for i in queue.drain(starter([1]))] == ["b"]


def running_counter(running: dict[str | None, int], capacity: list[int]):
    """A ``start`` that also counts each started job as running for its user."""
    fits = starter(capacity)

    def start(item: Item) -> bool:
        if not fits(item):
            return False
        running[item.user] = running.get(item.user, 0) + 1
        return True

    return start


def test_the_user_with_the_fewest_running_goes_next():
    queue: JobQueue[Item] = JobQueue()
    # a came first with four jobs; b and c each have one waiting
    fill(queue, *(Item(f"a{i}", user="a") for i in range(4)), Item("b0", user="b"))
    fill(queue, Item("c0", user="c"))
    running = {"a": 2, "b": 1}
    started = queue.drain(running_counter(running, [3]), lambda u: running.get(u, 0))
    # c runs nothing: first; then b (1 running) before a (2), then a and b tie: the older job
    assert [i.id for i in started] == ["c0", "b0", "a0"]
    assert [i.id for i in queue] == ["a1", "a2", "a3"]


def test_users_take_turns_as_their_jobs_start():
    queue: JobQueue[Item] = JobQueue()
    fill(queue, *(Item(f"a{i}", user="a") for i in range(3)))
    fill(queue, *(Item(f"b{i}", user="b") for i in range(3)))
    running: dict[str | None, int] = {}
    started = queue.drain(running_counter(running, [100]), lambda u: running.get(u, 0))
    assert [i.id for i in started] == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_one_user_is_plain_fifo():
    queue: JobQueue[Item] = JobQueue()
    fill(queue, *(Item(f"j{i}", user="me") for i in range(5)))
    running: dict[str | None, int] = {"me": 3}
    started = queue.drain(running_counter(running, [100]), lambda u: running.get(u, 0))
    assert [i.id for i in started] == [f"j{i}" for i in range(5)]


def test_priorities_come_before_fairness():
    queue: JobQueue[Item] = JobQueue()
    fill(queue, Item("b-normal", user="b"), Item("a-high", Priority.HIGH, user="a"))
    running = {"a": 5}
    started = queue.drain(running_counter(running, [100]), lambda u: running.get(u, 0))
    assert [i.id for i in started] == ["a-high", "b-normal"]


def test_a_user_at_max_running_waits_without_blocking_others():
    queue: JobQueue[Item] = JobQueue(skip_limit=0, max_running_per_user=2)
    fill(queue, *(Item(f"a{i}", user="a") for i in range(3)), Item("b0", user="b"))
    running: dict[str | None, int] = {"a": 1}
    started = queue.drain(running_counter(running, [100]), lambda u: running.get(u, 0))
    # b first (nothing running); a may start one more, then its third job is passed over
    # without becoming a head that others would have to skip
    assert [i.id for i in started] == ["b0", "a0"]
    assert [i.id for i in queue] == ["a1", "a2"]
    assert queue.head_skips == 0
    running["a"] = 0  # a's jobs finished
    started = queue.drain(running_counter(running, [100]), lambda u: running.get(u, 0))
    assert [i.id for i in started] == ["a1", "a2"]


def test_the_skip_bound_holds_across_users():
    queue: JobQueue[Item] = JobQueue(skip_limit=1)
    fill(queue, Item("big", size=10, user="a"), Item("b0", user="b"), Item("c0", user="c"))
    running: dict[str | None, int] = {}
    # big is tried first (oldest, nobody runs anything), does not fit and becomes the head;
    # one job may pass it, then the bound holds
    started = queue.drain(running_counter(running, [3]), lambda u: running.get(u, 0))
    assert [i.id for i in started] == ["b0"]
    assert [i.id for i in queue] == ["big", "c0"]


def test_waiting_counts_a_users_jobs():
    queue: JobQueue[Item] = JobQueue()
    fill(queue, Item("a0", user="a"), Item("b0", user="b"), Item("a1", Priority.LOW, user="a"))
    assert (queue.waiting("a"), queue.waiting("b"), queue.waiting(None)) == (2, 1, 0)


def test_high_priority_jobs_arriving_later_pass_a_waiting_head_only_up_to_the_bound():
    queue: JobQueue[Item] = JobQueue(skip_limit=2)
    fill(queue, Item("chat", size=10))
    assert queue.drain(starter([5])) == []  # the chat waits for room: it is the head
    for i in range(4):  # inline completions keep coming, each fits
        queue.push(Item(f"c{i}", Priority.HIGH))
        started = queue.drain(starter([5]))
        assert [j.id for j in started] == ([f"c{i}"] if i < 2 else [])
    assert queue.head_skips == 2
    # the chat starts first when room comes, then the completions that waited
    assert [j.id for j in queue.drain(starter([12]))] == ["chat", "c2", "c3"]


def test_the_head_keeps_its_count_when_a_higher_job_cannot_start_either():
    queue: JobQueue[Item] = JobQueue(skip_limit=3)
    fill(queue, Item("big", size=10), Item("a"))
    assert [j.id for j in queue.drain(starter([1]))] == ["a"]
    queue.push(Item("urgent", Priority.HIGH, size=10))
    queue.drain(starter([1]))
    assert queue.head_skips == 1  # "big" is still the head, passed once
