from __future__ import annotations

from dataclasses import dataclass

from jupyter_llm.pool.queue import JobQueue
from jupyter_llm.types import Priority


@dataclass
class Item:
    id: str
    priority: Priority = Priority.NORMAL
    size: int = 1


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
