"""The store's locks (`tasks.store.locks`), on SQLite and PostgreSQL: one holder at a time, across
threads and processes, and let go when the holder dies without letting go."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tasks.store.db import Store
from tasks.store.locks import store_lock

# A process that takes the lock, says so, and then sleeps until it is killed.
HOLDER = """
import sys, time
from tasks.store.db import Store
from tasks.store.locks import store_lock
with store_lock(Store(sys.argv[1]), sys.argv[2]) as held:
    print("held" if held else "refused", flush=True)
    time.sleep(600)
"""


def test_one_holder_at_a_time_within_a_process(store: Store) -> None:
    with store_lock(store, "sweep") as first:
        assert first
        outcome: list[bool] = []

        def other() -> None:
            with store_lock(store, "sweep") as held:
                outcome.append(held)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert outcome == [False]
        with store_lock(store, "another-name") as unrelated:
            assert unrelated
    with store_lock(store, "sweep") as again:
        assert again


def test_a_waiter_takes_the_lock_once_it_is_let_go(store: Store) -> None:
    released = threading.Event()

    def hold_briefly() -> None:
        with store_lock(store, "sweep") as held:
            assert held
            released.wait(5)
            time.sleep(0.3)

    thread = threading.Thread(target=hold_briefly)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    released.set()
    with store_lock(store, "sweep", wait_seconds=10) as held:
        waited = time.monotonic() - started
    thread.join()
    assert held
    assert 0.2 < waited < 5


def test_a_holder_that_dies_lets_go(store: Store, tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, store.url, "sweep"], stdout=subprocess.PIPE,
                              text=True, cwd=Path(__file__).resolve().parents[3])
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with store_lock(store, "sweep") as held:
            assert not held, "another process holds it"
    finally:
        holder.kill()
        holder.wait()
    with store_lock(store, "sweep", wait_seconds=10) as held:
        assert held, "a killed holder's lock is let go"


@pytest.mark.parametrize("url", ["sqlite://"])
def test_a_store_in_memory_is_locked_within_its_process(url: str) -> None:
    store = Store(url)
    with store_lock(store, "sweep") as first, store_lock(store, "sweep") as second:
        assert (first, second) == (True, False)
