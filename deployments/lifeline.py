"""Every process `sbu serve` starts ends when `sbu serve` does, however it ends.

Why: `sbu serve` starts a Prefect server (in a session of its own, so that Ctrl-C reaches it only
through serve's orderly stop), a forkserver, and a process per flow run. When serve stopped cleanly
it stopped them; when it was killed (SIGKILL, the OOM killer, a crashed terminal) they carried on
without it: a Prefect server left holding the port, so the next `sbu serve` could not start, and
flow runs that nobody would ever collect.

How: each child watches its own parent and, once the parent has gone, asks itself to stop (SIGTERM,
so a Prefect server shuts down in order and a flow run unwinds its `finally` blocks), then leaves
for certain after `grace` seconds. On Linux the kernel sends that SIGTERM the moment the parent dies
(PR_SET_PDEATHSIG); elsewhere a thread notices within half a second. The forkserver needs nothing
of ours: it already exits when the last process holding its "alive" pipe (serve) has gone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

# A Prefect server stops its services and closes its database in a few seconds; a flow run whose
# server has gone has nothing left to report, so neither is given long.
SERVER_GRACE_SECONDS = 10.0
RUN_GRACE_SECONDS = 3.0
POLL_SECONDS = 0.5
# What a process that outlived its parent exits with, after its grace.
ORPHANED_EXIT_CODE = 70
_PR_SET_PDEATHSIG = 1


def kernel_signals_parent_death() -> bool:
    """Ask the kernel to send this process SIGTERM when its parent dies (Linux); False where it
    cannot (other systems, or no C library found), and the watching thread does it instead."""
    if not sys.platform.startswith("linux"):
        return False
    path = ctypes.util.find_library("c")
    if path is None:
        return False
    libc = ctypes.CDLL(path, use_errno=True)
    return int(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)) == 0


def end_with_parent_pid(parent_pid: int, *, grace: float = SERVER_GRACE_SECONDS) -> None:
    """Make this process, started by `parent_pid`, end when that parent does.

    For a process started with `subprocess`: the parent passes its own pid, so a parent that died
    before this line ran is noticed too (this process is then already someone else's child)."""
    kernel = kernel_signals_parent_death()
    if os.getppid() != parent_pid:  # gone before the kernel was asked: it will never signal
        kernel = False

    def parent_gone() -> None:
        while os.getppid() == parent_pid:
            time.sleep(POLL_SECONDS)

    _watch(parent_gone, grace=grace, signal_self=not kernel)


def end_with_multiprocessing_parent(*, grace: float = RUN_GRACE_SECONDS) -> None:
    """Make this process, started by `multiprocessing`, end when the process that started it
    does. A forkserver's child is the forkserver's by pid, but its `parent_process()` is the
    process that asked for it (serve), through a pipe that closes when serve dies."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    _watch(parent.join, grace=grace, signal_self=True)


def _watch(parent_gone: Callable[[], None], *, grace: float, signal_self: bool) -> None:
    def watch() -> None:
        parent_gone()
        if signal_self:
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace)
        os._exit(ORPHANED_EXIT_CODE)

    threading.Thread(target=watch, name="sbu-lifeline", daemon=True).start()
