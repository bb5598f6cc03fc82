"""The reconciliation sweep: the store is the truth and Prefect is made to agree with it."""

# No `from __future__ import annotations` here. The runner ships this flow to its child process
# with cloudpickle, which copies the function with only the globals its body uses; Prefect then
# validates the parameters against the signature, and a postponed "datetime" named nothing the
# copy could see, so every reconcile run failed before its first line.
# `tests/flows/test_served_flows.py` checks every served flow's parameters as shipped.
from datetime import datetime

from prefect import flow, get_run_logger

from tasks.prefect.ops import deliver_mail, reconcile_all


@flow(name="reconcile", flow_run_name="reconcile", persist_result=False)
def reconcile(serve_started: datetime | None = None) -> dict[str, int]:
    """Create runs for cases that have none, schedule timers Prefect lacks, cancel timers the
    store cancelled, resume runs still waiting on steps the store shows done, and replace runs
    Prefect gave up on (failed, crashed, cancelled, or, on start, left running by a stopped serve),
    alerting the SBU by email for each run Prefect lost.
    Runs when `sbu serve` starts and every few minutes after, so a crash between the store's
    commit and Prefect being told costs minutes, never a case."""
    counts = reconcile_all(serve_started)
    get_run_logger().info("reconcile: %s", counts)
    # A replaced run queues an alert to the SBU; send it now rather than at the next outbox sweep.
    deliver_mail()
    return counts
