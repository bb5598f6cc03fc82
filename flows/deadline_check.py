"""Durable deadline timers. Each reminder, overdue alert and escalation is a `deadline-check` run
scheduled in Prefect at its time (visible on the dashboard as an upcoming run), keyed by the
timer so it exists once. When it fires it asks the store: a step already done means it exits
quietly; otherwise it queues the email and, for an escalation, schedules the next working day's."""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.case_store import fire_timer
from tasks.prefect_ops import deliver_mail, sync_timers


@flow(name="deadline-check", flow_run_name="deadline-check {timer_key}", persist_result=False)
def deadline_check(timer_key: str) -> str:
    """Send a step's reminder, overdue alert or escalation if the step is still open."""
    logger = get_run_logger()
    outcome = fire_timer(timer_key)
    # Timer keys are the case reference, the step id, the kind and dates: nothing personal.
    logger.info("%s: %s", timer_key, outcome.reason)
    if outcome.next_timer_key is not None:
        sync_timers(outcome.case_ref)
    if outcome.fired:
        deliver_mail()
    return outcome.reason
