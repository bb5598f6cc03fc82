"""Prefect tasks for email: one side effect each, no business rules."""

from __future__ import annotations

from datetime import timedelta

from prefect import task
from prefect.cache_policies import NO_CACHE

from models.settings import Settings
from tasks.mail.delivery import DEFAULT_BATCH_SIZE, DeliveryReport


# Never cached: every run must look at the outbox afresh. No task retries either: the outbox keeps
# its own per-message attempts and backoff, and a failed run leaves every row safely queued.
@task(name="deliver-outbox-batch", cache_policy=NO_CACHE, persist_result=False)
def deliver_outbox_batch(*, batch_size: int = DEFAULT_BATCH_SIZE,
                         settings: Settings | None = None) -> DeliveryReport:
    """Send what is due in the outbox (at most `batch_size` messages) and return the counts.

    Settings are read from the environment here, at the edge, unless a test passes its own.
    """
    from models.settings import load_settings
    from tasks.mail.delivery import deliver_pending
    from tasks.mail.directory import load_directory
    from tasks.mail.sender import SmtpConfig, SmtpSender
    from tasks.store.db import Store

    settings = settings or load_settings()
    directory = load_directory(settings.directory_file)
    sender = SmtpSender(SmtpConfig.from_settings(settings))
    # The case clock: outbox rows are stamped in case time by the case service.
    clock = settings.clock()
    store = Store(settings.sqlalchemy_url).migrate()
    try:
        return deliver_pending(store, sender, now=clock, fallback_address=directory.fallback,
                               batch_size=batch_size, dashboard_url=settings.dashboard_url,
                               base_delay=timedelta(seconds=settings.outbox_retry_seconds),
                               max_delay=timedelta(seconds=settings.outbox_max_retry_seconds),
                               lease=timedelta(seconds=settings.outbox_lease_seconds))
    finally:
        store.dispose()
