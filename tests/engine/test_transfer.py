from __future__ import annotations

import threading
import time

from jupyter_llm.sources.transfer import Meter, Transfer, exclusive, human_bytes, shared_reporter


def test_human_bytes():
    assert [human_bytes(n) for n in (0, 999, 1000, 451_937, 2.5e9, 7e12)] == [
        "0 B",
        "999 B",
        "1.0 kB",
        "451.9 kB",
        "2.5 GB",
        "7000.0 GB",
    ]


def test_meter_reports_at_most_four_times_a_second_with_a_rate():
    heard: list[Transfer] = []
    meter = Meter(total=1000, done=100, report=heard.append)
    for _ in range(30):
        meter.add(10)
        time.sleep(0.02)
    meter.report()
    assert 2 <= len(heard) <= 5  # 0.6 s: the first add, every 0.25 s after, and the last
    assert heard[-1] == Transfer(400, 1000, heard[-1].rate, "")
    assert 300 < heard[-1].rate < 600  # 10 bytes per 20 ms, give or take a loaded machine


def test_a_waiter_hears_the_holders_progress_and_gets_the_lock_after(tmp_path):
    lock = tmp_path / "locks" / "m.lock"
    heard: list[Transfer] = []
    order: list[str] = []
    holding = threading.Event()

    def holder() -> None:
        with exclusive(lock):
            holding.set()
            shared_reporter(lock, None)(Transfer(5, 10, 2.0, "w.safetensors"))
            time.sleep(0.6)
            order.append("holder done")

    thread = threading.Thread(target=holder)
    thread.start()
    holding.wait(5)
    with exclusive(lock, heard.append):
        order.append("waiter in")
    thread.join()
    assert order == ["holder done", "waiter in"]
    assert heard and heard[0] == Transfer(5, 10, 2.0, "w.safetensors")
    assert not lock.with_suffix(".progress.json").exists()
