"""Fixtures shared by every test: settings in a temporary data directory, a case store on SQLite
and on PostgreSQL (each test in its own schema, so runs are parallel-safe), and a fixed clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from models.clock import FixedClock
from models.processes import BUILTIN_STEPS
from models.settings import Settings
from tasks.service import CaseService
from tasks.store.db import Store

POSTGRES_URL = os.environ.get("SBU_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")

EXAMPLE_REFERRAL: dict[str, Any] = {
    "referring_agency": "police", "external_ref": "POL-2026-1234",
    "category": "serious-harm", "abuse_or_neglect": "suspected",
    "incident_date": "2026-12-20", "la_aware_date": "2026-12-22",
    "referred_at": "2026-12-23T10:15:00+00:00",
    "children": [{"la_record_id": "LA-000123", "age_years": 7, "looked_after": False,
                  "care_leaver": False}],
    "agencies_involved": ["police", "health", "children-social-care", "education"],
}
# The three DSP roles' signatures, as a signed form takes them and as `sbu decide` does.
SIGNATURES: dict[str, Any] = {"dsp_la": {"name": "Dana Lee"}, "dsp_health": {"name": "Sam Patel"},
                              "dsp_police": {"name": "Alex Morgan"}}
DSP_OPTIONS = ["--dsp-la", "Dana Lee", "--dsp-health", "Sam Patel", "--dsp-police", "Alex Morgan"]
# A partnership directory (`SBU_PEOPLE_FILE`): an SBU officer, a holder of each DSP role, and a
# local authority officer; their names sign as SIGNATURES does.
PEOPLE_TOML = """
[people.sbu-officer]
name = "Sam Officer"
roles = ["sbu"]

[people.dlee]
name = "Dana Lee"
roles = ["dsp-la"]

[people.spatel]
name = "Sam Patel"
roles = ["dsp-health"]

[people.amorgan]
name = "Alex Morgan"
roles = ["dsp-police"]

[people.kshaw]
name = "Kim Shaw"
roles = ["local-authority"]
"""
# The example is referred on Wednesday 23 December 2026; "now" is that afternoon.
EXAMPLE_NOW = datetime(2026, 12, 23, 12, 0, tzinfo=UTC)

# The form each of the procedure's own steps is recorded with, as its declaration names it.
STEP_FORMS: dict[str, type[BaseModel]] = {spec.step: spec.form for spec in BUILTIN_STEPS}


def postgres_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh schema of their own; skips (or, in CI, fails) when
    PostgreSQL cannot be reached."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as error:
        admin.dispose()
        reason = f"PostgreSQL not reachable at {POSTGRES_URL}: {error.orig.__class__.__name__}"
        if os.environ.get("SBU_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sbu.db'}"
    else:
        yield from postgres_schema_url()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = Store(settings.sqlalchemy_url).migrate()
    yield store
    store.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(EXAMPLE_NOW)


@pytest.fixture
def service(store: Store, settings: Settings, clock: FixedClock) -> CaseService:
    return CaseService(store=store, settings=settings, clock=clock)



# Last: after `-m` has deselected what this run leaves out, so the shares are of what it runs.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, order the tests so that each worker's share starts with its part of the slow
    ones. The work-stealing scheduler hands each worker one contiguous slice of this order and
    steals from the end of a worker's queue: with the slow tests dealt round the slices' heads,
    every worker starts a long test at once and the short ones fill the gaps at the end, rather
    than one worker finding itself with the end-to-end tests late in the run."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers < 2:
        return
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    fast = [item for item in items if item.get_closest_marker("slow") is None]
    ordered: list[pytest.Item] = []
    for worker in range(workers):
        # The scheduler's shares: the pending tests divided by the workers still to be served.
        share = (len(items) - len(ordered)) // (workers - worker)
        # Kept together by package: a package's fixtures (the flow tests' Prefect server) are set
        # up again each time its tests are come back to.
        head = sorted(slow[worker::workers], key=lambda item: str(item.path.parent))
        ordered += head
        ordered += fast[:max(0, share - len(head))]
        del fast[:max(0, share - len(head))]
    ordered += fast
    items[:] = ordered
