from __future__ import annotations

import pytest

from jupyter_llm.pool.admission import UnitLedger


def test_can_reserve_is_pure_and_reserve_commits():
    ledger = UnitLedger()
    ledger.open(0, units=10, seats=4)
    assert ledger.can_reserve(10) == 0
    assert ledger.can_reserve(10) == 0  # asking twice changes nothing
    assert ledger.used_units == 0
    ledger.reserve(0, 6)
    assert ledger.can_reserve(5) is None
    assert ledger.can_reserve(4) == 0
    assert (ledger.used_units, ledger.total_units) == (6, 10)
    ledger.release(0, 6)
    assert ledger.used_units == 0


def test_seats_bound_admission_as_well_as_units():
    ledger = UnitLedger()
    ledger.open(0, units=100, seats=2)
    ledger.reserve(0, 1)
    ledger.reserve(0, 1)
    assert ledger.can_reserve(1) is None


def test_the_emptiest_worker_takes_the_job():
    ledger = UnitLedger()
    ledger.open(0, units=10, seats=8)
    ledger.open(1, units=10, seats=8)
    ledger.reserve(0, 3)
    assert ledger.can_reserve(2) == 1
    ledger.reserve(1, 5)
    assert ledger.can_reserve(2) == 0


def test_a_closed_worker_takes_its_units_away():
    ledger = UnitLedger()
    ledger.open(0, units=10, seats=8)
    ledger.open(1, units=6, seats=8)
    ledger.reserve(1, 4)
    ledger.close(1)
    ledger.release(1, 4)  # a late release for a closed worker is harmless
    assert (ledger.total_units, ledger.used_units, ledger.workers) == (10, 0, 1)
    assert ledger.largest_slot() == 10


def test_reserve_without_room_is_a_bug_not_a_silent_overcommit():
    ledger = UnitLedger()
    ledger.open(0, units=4, seats=1)
    with pytest.raises(RuntimeError, match="cannot hold 5"):
        ledger.reserve(0, 5)
