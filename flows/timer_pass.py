"""The timer pass: every deadline timer due, fired in one run, from the store.

Planned by `tasks.prefect.timers.sync_timers` as one scheduled run at the time the next timer comes
due (shown on the dashboard as the deployment's upcoming run), so between passes nothing runs. The
pass fires every timer due, case by case (`CaseService.fire_due_timers`), delivers the mail it
queued once at the end, plans the next pass and brings the dashboard's `deadlines` table and the
timelines of the cases it touched up to date.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from pydantic import BaseModel

from tasks.case_store import fire_due_timers
from tasks.prefect.ops import deliver_mail, show_deadlines, sync_timers


class TimerPassResult(BaseModel):
    cases: int
    sent: int
    superseded: int
    dropped: int
    delivered: int


# No `flow_run_name`: a run keeps the name it was planned under ("timer-pass Mon 04 Jan 09:00", in
# case time), so the dashboard's upcoming and past passes read alike.
@flow(name="timer-pass", persist_result=False)
def timer_pass() -> TimerPassResult:
    """Send every reminder, overdue alert and escalation now due, for every case, in one run.

    When an item has several alerts due at once (after `sbu serve` was stopped, say), only the
    latest goes out, saying how late the item is; the others are recorded as superseded in the
    case's audit trail. A case's escalations go to the DSPs in one email. Then the next pass is
    planned and the `deadlines` table refreshed. Safe to run at any time: a pass that finds nothing
    due sends nothing. Logs counts only."""
    outcome = fire_due_timers()
    delivered = deliver_mail() if outcome.sent else 0
    sync_timers()
    show_deadlines(list(outcome.cases))
    get_run_logger().info("timer pass: %d cases, %d alerts sent, %d superseded, %d dropped; "
                          "%d emails delivered", len(outcome.cases), outcome.sent, outcome.superseded,
                          outcome.dropped, delivered)
    return TimerPassResult(cases=len(outcome.cases), sent=outcome.sent, superseded=outcome.superseded,
                           dropped=outcome.dropped, delivered=delivered)
