"""The `deliver-outbox` flow: drains the email outbox. Served on a schedule as a safety net and
triggered after each change to a case."""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.mail.delivery import DEFAULT_BATCH_SIZE, DeliveryReport
from tasks.outbox import deliver_outbox_batch


@flow(name="deliver-outbox", flow_run_name="deliver-outbox", log_prints=False)
def deliver_outbox(batch_size: int = DEFAULT_BATCH_SIZE) -> DeliveryReport:
    """Deliver the email waiting in the outbox.

    Each due message is sent once with its fixed Message-ID. A temporary failure (the mail server
    busy or down) leaves it queued for a later run, with a growing wait; a permanent refusal makes
    it a dead letter and emails the fallback address. See dead letters with `sbu outbox --status
    dead` and requeue one with `sbu outbox retry ID`. Safe to run several at once.

    The run handles no personal data and logs counts only.
    """
    report = deliver_outbox_batch(batch_size=batch_size)
    get_run_logger().info(
        "outbox: %d sent, %d retrying later, %d dead letters, %d alerts queued%s",
        report.sent, report.retrying, report.dead, report.alerts_queued,
        " (stopped early: the mail server is unavailable)" if report.stopped_early else "")
    return report
