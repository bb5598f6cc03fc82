"""The Prefect tasks the flows call to tell Prefect what the store says: create the runs of the
processes a case has started, schedule and cancel timers, deliver mail, delete run inputs once
their contents are in the store. Each is idempotent."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks import dashboard, runtime
from tasks.prefect import connection, hooks, timers
from tasks.prefect.reconcile import reconcile
from tasks.prefect.runs import ensure_runs, trigger_delivery

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient


@task(cache_policy=NO_CACHE, persist_result=False, retries=3, retry_delay_seconds=2)
def sync_case(case_ref: str) -> int:
    """Make Prefect match the store for one case: a run for every process it has started (a
    Rapid Review the change began, say), the next timer pass planned, and the case's tags and
    timeline on the dashboard. Returns how many timer-pass runs changed."""
    runtime.hold_point("sync-case", case_ref)  # a fault test's seam; nothing unless one asks
    with connection.prefect_client(runtime.settings()) as client:
        if client is None:
            raise RuntimeError("the Prefect API is not reachable from this flow run")
        service = runtime.service()
        runs = ensure_runs(client, service, case_ref)
        changed = timers.sync_timers(client, service)
        _show_case(client, case_ref, runs=runs.values())
        return changed


@task(cache_policy=NO_CACHE, persist_result=False)
def show_case(case_ref: str) -> bool:
    """Bring the case's tags and timeline on the dashboard up to date (after a timer fired: an
    item is now overdue, and its lateness counts from today). Returns whether it could."""
    with connection.prefect_client(runtime.settings()) as client:
        return client is not None and _show_case(client, case_ref)


def _show_case(client: SyncPrefectClient, case_ref: str, *, runs: Iterable[UUID] | None = None) -> bool:
    """Show the case on the dashboard, linked to this flow and task run. What the dashboard shows
    is never worth failing the case's run: a failure is logged, and the next change (or timer)
    shows the case again."""
    from prefect import get_run_logger
    from prefect.runtime import flow_run, task_run

    flow_run_id, task_run_id = flow_run.get_id(), task_run.get_id()
    try:
        dashboard.show_case(client, runtime.service(), case_ref, runs=runs,
                            flow_run_id=UUID(flow_run_id) if flow_run_id else None,
                            task_run_id=UUID(task_run_id) if task_run_id else None)
    except Exception as error:  # noqa: BLE001 - see the docstring
        get_run_logger().warning("%s: the dashboard's tags and timeline were not updated (%s)",
                                 case_ref, error.__class__.__name__)
        return False
    return True


@task(cache_policy=NO_CACHE, persist_result=False, retries=3, retry_delay_seconds=2)
def sync_timers() -> int:
    """Plan the next timer pass at the time the store's next timer comes due."""
    with connection.prefect_client(runtime.settings()) as client:
        if client is None:
            raise RuntimeError("the Prefect API is not reachable from this flow run")
        return timers.sync_timers(client, runtime.service())


@task(cache_policy=NO_CACHE, persist_result=False)
def show_deadlines(case_refs: list[str]) -> int:
    """After a timer pass: the `deadlines` table, and the timelines of the cases it fired timers
    of, brought up to date; how many artifacts changed. Like a case's timeline, never worth
    failing the pass: a failure is logged, and the next pass shows them again."""
    from prefect import get_run_logger
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    try:
        with connection.prefect_client(runtime.settings()) as client:
            if client is None:
                return 0
            service = runtime.service()
            changed = dashboard.show_timelines(client, service, case_refs,
                                               flow_run_id=UUID(run_id) if run_id else None)
            return changed + dashboard.publish_deadlines(client, service,
                                                         flow_run_id=UUID(run_id) if run_id else None)
    except Exception as error:  # noqa: BLE001 - see the docstring
        get_run_logger().warning("the deadlines and timelines were not updated (%s)",
                                 error.__class__.__name__)
        return 0


def show_markdown(key: str, markdown: str, *, description: str) -> bool:
    """Show a page on the dashboard as this run's Markdown artifact `key`, only if it changed (a
    run replays from the top on every resume). Not a task: one read, and a write when it changed,
    cost less than a task run would. Whether it published."""
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    with connection.prefect_client(runtime.settings()) as client:
        return client is not None and dashboard.publish_markdown(
            client, key=key, markdown=markdown, description=description,
            flow_run_id=UUID(run_id) if run_id else None)


@task(cache_policy=NO_CACHE, persist_result=False)
def request_delivery() -> bool:
    """Have the delivery deployment deliver what the change just queued: one `deliver-outbox` run
    for any number of changes (`runs.trigger_delivery`). A failure leaves the mail queued for the
    scheduled delivery sweep, so it never fails the case's run."""
    try:
        with connection.prefect_client(runtime.settings()) as client:
            return client is not None and trigger_delivery(client)
    except Exception:  # noqa: BLE001 - the outbox keeps the mail; the sweep delivers it
        return False


@task(cache_policy=NO_CACHE, persist_result=False)
def deliver_mail() -> int:
    """Deliver what is queued, here in this run's own process: for a run that queued many emails
    (a timer pass) or must not wait for another (the reconciliation sweep). A failure leaves the
    mail queued for the scheduled delivery sweep, so it never fails the run."""
    from tasks.mail.delivery import DEFAULT_BATCH_SIZE
    from tasks.outbox import deliver_outbox_batch

    try:
        report = deliver_outbox_batch.fn(batch_size=DEFAULT_BATCH_SIZE, settings=runtime.settings())
    except Exception:  # noqa: BLE001 - the outbox keeps the mail; the sweep retries it
        return 0
    return report.sent


@task(cache_policy=NO_CACHE, persist_result=False, retries=3, retry_delay_seconds=2)
def stored_inputs(flow_run_id: str, wait: str) -> list[tuple[str, dict[str, Any] | None]]:
    """What Prefect still stores for the waits whose keys start with `wait`: each pause key with
    its answer, or None for a form's schema or description. Read just before they are scrubbed,
    so that an answer the flow never read (the step was recorded another way first) is still seen
    and its sender told."""
    from prefect.client.orchestration import get_client

    run_id = UUID(flow_run_id)
    found: list[tuple[str, dict[str, Any] | None]] = []
    with get_client(sync_client=True) as client:
        for item in client.filter_flow_run_input(run_id, key_prefix=hooks.input_key_prefix(wait),
                                                 limit=200, exclude_keys=set()):
            pause_key, answer = hooks.pause_key_of_input(item.key)
            value = item.decoded_value if answer else None
            found.append((pause_key, value if isinstance(value, dict) else None))
    return found


@task(cache_policy=NO_CACHE, persist_result=False, retries=3, retry_delay_seconds=2)
def scrub_run_inputs(flow_run_id: str, wait: str) -> int:
    """Delete the stored inputs of the waits whose keys start with `wait`, once the store holds
    what they said (free text typed into a form is not kept in Prefect once read). Only a wait the
    flow has moved past: the run replays from the top, so an answer to a later wait may already be
    stored, unread, and must stay until read."""
    from prefect.client.orchestration import get_client

    run_id = UUID(flow_run_id)
    deleted = 0
    with get_client(sync_client=True) as client:
        for item in client.filter_flow_run_input(run_id, key_prefix=hooks.input_key_prefix(wait),
                                                 limit=200, exclude_keys=set()):
            client.delete_flow_run_input(run_id, item.key)
            deleted += 1
    return deleted


@task(cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=2)
def reconcile_all(serve_started: datetime | None = None) -> dict[str, int]:
    with connection.prefect_client(runtime.settings()) as client:
        if client is None:
            raise RuntimeError("the Prefect API is not reachable from this flow run")
        return reconcile(client, runtime.service(), serve_started=serve_started)
