"""The seam between the case store and Prefect, in one place.

    connection  Prefect's settings for our processes, finding the server, a client for it
    runs        creating, replacing and abandoning the flow runs of a case's processes
    timers      planning the timer pass at the time the store's next timer comes due
    resume      waking a run suspended on a wait the store shows answered
    reconcile   repairing whatever the store and Prefect disagree on
    ops         the Prefect tasks the flows call to do the above from inside a run
    hooks       every change we make to Prefect's own internals, each with a check that the
                internal it changes is still where and what we expect

The store commits first; these modules then tell Prefect to match it. Every call is idempotent
(idempotency keys, and resuming only a run that waits for a step the store shows done), so the CLI,
the flows and the reconciliation sweep can all call them any number of times, and the sweep repairs
whatever a crash left undone. Prefect sees the case reference, step ids and dates, never personal
data.
"""
