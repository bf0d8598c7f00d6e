"""Admission by units: who may start, counted in KV-cache blocks and batch seats.

A job's cost in units (KV-cache blocks) is ``pricing.py``'s business. Each worker holds
one model replica with its own cache, so the ledger keeps one slot per worker and a job
must fit inside one slot. Admission is a pure check (``can_reserve``) followed by a commit
(``reserve``), as in nano-vllm's block manager; nothing here does I/O or knows about jobs.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Slot", "UnitLedger"]


@dataclass(slots=True)
class Slot:
    """One worker's share: units and batch seats, total and in use."""

    units: int
    seats: int
    used_units: int = 0
    used_seats: int = 0

    def fits(self, cost: int) -> bool:
        return self.used_seats < self.seats and self.used_units + cost <= self.units

    @property
    def free_units(self) -> int:
        return self.units - self.used_units


class UnitLedger:
    """Units and seats per worker; keys are worker indexes."""

    def __init__(self) -> None:
        self._slots: dict[int, Slot] = {}

    def open(self, worker: int, units: int, seats: int) -> None:
        """A worker is ready: its slot starts empty."""
        self._slots[worker] = Slot(units=units, seats=seats)

    def close(self, worker: int) -> None:
        """A worker is gone: its slot and whatever it held are forgotten."""
        self._slots.pop(worker, None)

    def can_reserve(self, cost: int) -> int | None:
        """The worker that should take a job of ``cost`` units now, or None. Changes nothing.

        The emptiest worker wins, which spreads jobs across replicas.
        """
        best: int | None = None
        for worker, slot in self._slots.items():
            if slot.fits(cost) and (best is None or slot.free_units > self._slots[best].free_units):
                best = worker
        return best

    def reserve(self, worker: int, cost: int) -> None:
        slot = self._slots[worker]
        if not slot.fits(cost):
            raise RuntimeError(f"worker {worker} cannot hold {cost} more units")  # a pool bug
        slot.used_units += cost
        slot.used_seats += 1

    def release(self, worker: int, cost: int) -> None:
        slot = self._slots.get(worker)
        if slot is not None:  # a closed slot has nothing left to give back
            slot.used_units -= cost
            slot.used_seats -= 1

    def largest_slot(self) -> int:
        """The most units one job can ever get: 0 while no worker is ready."""
        return max((slot.units for slot in self._slots.values()), default=0)

    @property
    def used_units(self) -> int:
        return sum(slot.used_units for slot in self._slots.values())

    @property
    def total_units(self) -> int:
        return sum(slot.units for slot in self._slots.values())

    @property
    def workers(self) -> int:
        return len(self._slots)
