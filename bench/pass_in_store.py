"""How long a timer pass takes in the case store alone: `CaseService.fire_due_timers` over N due
items, on SQLite, without Prefect (no flow run, no mail delivery, no dashboard).

`python -m bench.pass_in_store [--cases N]` refers N cases through the case service (each opens
its DSP decision), moves the clock to the decision's overdue alert, and times one pass: every
case's overdue alert, one transaction a case, each email rendered and queued to the outbox. Prints
the seconds and the counts as one JSON line.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from models.clock import FixedClock
from models.enums import Interface
from models.forms import parse_referral
from models.settings import Settings
from tasks.service import Actor, CaseService
from tasks.store.db import Store

NOW = datetime(2026, 12, 23, 12, 0, tzinfo=UTC)
REFERRAL: dict[str, Any] = {
    "referring_agency": "police", "category": "serious-harm", "abuse_or_neglect": "suspected",
    "incident_date": "2026-12-20", "la_aware_date": "2026-12-22", "referred_at": "2026-12-23T10:15:00+00:00",
    "children": [{"la_record_id": "LA-000123", "age_years": 7, "looked_after": False, "care_leaver": False}],
    "agencies_involved": ["police", "health", "children-social-care", "education"],
}


def measure(cases: int, root: Path) -> dict[str, object]:
    settings = Settings(data_dir=root, database_url=f"sqlite:///{root / 'sbu.db'}")
    store = Store(settings.sqlalchemy_url).migrate()
    clock = FixedClock(NOW)
    service = CaseService(store=store, settings=settings, clock=clock)
    officer = Actor("sbu-officer", Interface.CLI)
    try:
        seeded = time.perf_counter()
        for n in range(cases):
            data = copy.deepcopy(REFERRAL) | {"external_ref": f"POL-PASS-{n:05d}"}
            service.refer(parse_referral(data, now=NOW), actor=officer)
        seeding = time.perf_counter() - seeded
        overdue = min(t.fire_at for t in service.timers() if t.kind.value == "overdue")
        clock.advance(overdue - clock.now() + timedelta(minutes=1))
        started = time.perf_counter()
        outcome = service.fire_due_timers()
        seconds = time.perf_counter() - started
    finally:
        store.dispose()
    return {"cases": cases, "pass_s": round(seconds, 2), "sent": outcome.sent,
            "superseded": outcome.superseded, "cases_fired": len(outcome.cases),
            "seeding_s": round(seeding, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pass-in-store-") as root:
        print(json.dumps(measure(args.cases, Path(root))), flush=True)


if __name__ == "__main__":
    main()
