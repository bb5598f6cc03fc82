"""The Prefect server `sbu serve` starts: Prefect's own server and CLI, with one change on SQLite,
and tied to the `sbu serve` that started it.

    python -m deployments.prefect_server --parent-pid PID --host 127.0.0.1 --port 4200

The change: every transaction Prefect's server opens on SQLite takes the write lock when it begins
(BEGIN IMMEDIATE) instead of at its first write. Prefect opens most of them DEFERRED, and only asks
for IMMEDIATE where it passes `with_for_update=True` (setting a run's state, marking deployments
ready). A DEFERRED transaction that reads and then writes cannot take the write lock if another
connection committed after its read; SQLite then refuses at once with "database is locked"
(SQLITE_BUSY, without waiting the busy timeout, since waiting could not help). The resume endpoint
is such a transaction: it reads the paused run and its input schema, then writes the new state and
the input, so a form submitted on the dashboard failed whenever any other write landed in between.
The Prefect UI does not retry it: it showed "Oops. Something went wrong" and the decision was lost.
Creating a flow run fails the same way. With the lock taken up front, a transaction that finds
another one writing waits for it (the busy timeout, 60 s) instead of failing, and SQLite's writes
are one at a time anyway, so nothing is lost but the overlap of a read with another's write.

Why here, rather than one of the other two ways we weighed: PostgreSQL has no such failure, but the
embedded default must run with nothing installed; a hook on the resume endpoint alone would leave
every other read-then-write transaction (creating runs, inputs, deployments) failing the same way.
Prefect chooses the BEGIN statement in one place, `AioSqliteConfiguration.begin_transaction`, so
the hook is one wrapper there that always passes `with_for_update=True`: Prefect's own path to
BEGIN IMMEDIATE, used for more transactions. It depends on Prefect's internals, which is why the
hook lives with the others in `tasks/prefect/hooks.py` (`install_sqlite_write_lock`), which refuses
to start the server if those internals have moved; `tests/tasks/prefect/test_hooks.py` checks that
the lock is really taken up front. Statements Prefect runs outside a transaction (most reads, the
task run recorder's inserts) are untouched. Prefect keeps the BEGIN mode in a context variable, so
a session opened inside a transaction would begin IMMEDIATE too and wait on its own transaction;
no server path of 3.9.1 that our runs exercise does that (we instrumented one to look).

It also ended a rarer, worse failure: the whole server stalling for the 60 s busy timeout. Each
"database is locked" left the failed statement's cursor to the garbage collector, which finalized
it on the server's event-loop thread; when that cursor's connection was at that moment waiting, in
its own thread, for the write lock, finalizing needed the connection's mutex, so the event loop
stopped, and with it the transaction holding the lock, until the wait timed out (seen in gdb:
the main thread in `sqlite3_reset` under "Garbage-collecting", two connections in SQLite's busy
handler). Without the failures there are no such cursors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from deployments import lifeline
from tasks.prefect.hooks import install_sqlite_write_lock


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.prefect_server",
                                     description="Prefect's server, as `sbu serve` runs it.")
    parser.add_argument("--parent-pid", type=int, required=True,
                        help="the process whose end ends this server (`sbu serve`)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    lifeline.end_with_parent_pid(args.parent_pid)
    install_sqlite_write_lock()
    from prefect.cli import app

    # Prefect's own command, as its console script runs it, in this process: with one worker it
    # runs uvicorn and the server's services here, not in a child, so the hook covers all of it.
    sys.argv = ["prefect", "server", "start", "--host", args.host, "--port", str(args.port)]
    app()
    return 0


if __name__ == "__main__":
    sys.exit(main())
