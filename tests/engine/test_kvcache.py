"""The slot cache's bookkeeping: dense slots, a leaving row's slot reused, lazy zeroing."""

from __future__ import annotations

import pytest
import torch

from jupyter_llm.engine.local.kvcache import SlotCache


def cache(slots: int = 3, capacity: int = 8) -> SlotCache:
    return SlotCache(2, slots, 1, capacity, 2, torch.float32, torch.device("cpu"))


def fill(c: SlotCache, slot: int, value: float, length: int) -> None:
    c.keys[:, slot, :, :length] = value
    c.values[:, slot, :, :length] = -value
    c.lengths[slot] = length


def test_slots_stay_dense_and_a_leaving_row_gives_its_slot_to_the_last():
    c = cache()
    assert [c.claim(job) for job in "abc"] == [0, 1, 2]
    fill(c, 0, 1.0, 3)
    fill(c, 1, 2.0, 5)
    fill(c, 2, 3.0, 4)
    c.release("a")  # c moves down into slot 0, with its 4 columns
    assert len(c) == 2 and (c.slot("b"), c.slot("c")) == (1, 0)
    assert c.lengths[:2] == [4, 5]
    assert torch.all(c.keys[:, 0, :, :4] == 3.0) and torch.all(c.values[:, 0, :, :4] == -3.0)
    assert torch.all(c.keys[:, 1, :, :5] == 2.0)  # b did not move
    assert c.claim("d") == 2  # the freed slot is the last one again
    c.release("d")  # the last one leaves: nothing moves
    c.release("unknown")
    assert len(c) == 2 and (c.slot("b"), c.slot("c")) == (1, 0)


def test_claiming_more_slots_than_there_are_or_twice_is_refused():
    c = cache(slots=1)
    c.claim("a")
    assert not c.can_claim()
    with pytest.raises(RuntimeError, match="all 1 cache slots are in use"):
        c.claim("b")
    with pytest.raises(ValueError, match="already holds slot 0"):
        c.claim("a")
    c.clear()
    assert len(c) == 0 and c.claim("b") == 0


def test_columns_a_step_reads_are_zeroed_once_and_written_ones_are_kept():
    c = cache(capacity=8)
    c.keys.fill_(float("nan"))  # what fresh memory may hold
    c.values.fill_(float("nan"))
    c.claim("a")
    c.put(0, torch.full((2, 1, 3, 2), 7.0), torch.full((2, 1, 3, 2), 8.0))  # a prefix hit
    c.prepare(0, 1, 6)
    assert torch.all(c.keys[:, 0, :, :3] == 7.0) and torch.all(c.values[:, 0, :, :3] == 8.0)
    assert torch.all(c.keys[:, 0, :, 3:6] == 0) and torch.all(c.values[:, 0, :, 3:6] == 0)
    assert torch.isnan(c.keys[:, 0, :, 6:]).all()  # never read: still untouched
    c.keys[:, 0, :, 4] = 5.0  # a decode wrote column 4
    c.prepare(0, 1, 6)  # known finite: not zeroed again
    assert torch.all(c.keys[:, 0, :, 4] == 5.0)
    with pytest.raises(ValueError, match="9 columns asked for, the cache holds 8"):
        c.prepare(0, 1, 9)


def test_take_copies_a_slots_first_columns():
    c = cache()
    c.claim("a")
    fill(c, 0, 4.0, 5)
    keys, values = c.take(0, 3)
    assert keys.shape == (2, 1, 3, 2) and torch.all(keys == 4.0) and torch.all(values == -4.0)
    c.keys.zero_()
    assert torch.all(keys == 4.0)  # a copy, not a view
