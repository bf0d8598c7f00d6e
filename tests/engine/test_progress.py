"""A worker's loading progress: phases go out as they change, numbers a few times a second."""

from __future__ import annotations

import threading

from jupyter_llm.engine.loading import NUMBERS_EVERY, LoadPhase, PhaseReporter


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def test_each_new_phase_goes_out_and_number_updates_are_thinned() -> None:
    sent: list[LoadPhase] = []
    clock = Clock()
    progress = PhaseReporter(sent.append, clock)
    progress("importing torch")
    progress("importing torch")  # nothing new
    progress("downloading", "org/model", done=0, total=100, unit="bytes")
    clock.now += NUMBERS_EVERY / 2
    progress("downloading", "org/model", done=10, total=100, unit="bytes")  # too soon
    clock.now += NUMBERS_EVERY
    progress("downloading", "org/model", done=20, total=100, unit="bytes")
    progress("downloading", "org/model", done=100, total=100, unit="bytes")  # the end: always
    progress("loading weights", "/cache/model")  # a new phase: at once
    assert sent == [
        LoadPhase("importing torch"),
        LoadPhase("downloading", "org/model", 0, 100, "bytes"),
        LoadPhase("downloading", "org/model", 20, 100, "bytes"),
        LoadPhase("downloading", "org/model", 100, 100, "bytes"),
        LoadPhase("loading weights", "/cache/model"),
    ]


def test_threads_may_report_at_once() -> None:
    sent: list[LoadPhase] = []
    progress = PhaseReporter(sent.append)

    def report(index: int) -> None:
        for step in range(200):
            progress(f"phase {index}", done=step, total=200)

    threads = [threading.Thread(target=report, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {phase.name for phase in sent} == {f"phase {i}" for i in range(4)}
    assert all(isinstance(phase, LoadPhase) for phase in sent)
