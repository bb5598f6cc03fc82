"""Durable deadline timers. Each reminder, overdue alert and escalation is a `deadline-check` run
scheduled in Prefect at its time (visible on the dashboard as an upcoming run), keyed by the
timer so it exists once. When it fires it asks the store: a step already done means it exits
quietly; otherwise it queues the email and, for an escalation, schedules the next working day's,
and brings the case's timeline on the dashboard up to date."""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.case_store import fire_timer
from tasks.prefect.ops import deliver_mail, show_case, sync_timers


# No `flow_run_name`: the run keeps the name it was scheduled under ("SR-2026-0001 sin-submission
# reminder", `tasks.prefect.timers.sync_timers`), which Prefect would otherwise replace when it
# starts, so the dashboard's upcoming and past runs read alike.
@flow(name="deadline-check", persist_result=False)
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
    if outcome.fired and outcome.case_ref is not None:
        # The item is overdue, or nearly: its lateness on the case's timeline counts from today.
        show_case(outcome.case_ref)
    return outcome.reason
