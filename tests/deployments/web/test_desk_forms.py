"""Every form of the desk, refused once and then recorded, on a real store (SQLite and PostgreSQL):
a notified case from its referral to its last action closed.

After each refusal: the problem is said in words at its field (or above the form, for a rule about
the whole), everything typed is back in the form, and nothing was written (every row of every
table, the audit trail's included, as it was). After each success: the page goes to the case, with
a URL holding the case reference only, and says what was recorded. Nothing typed reaches a log.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, func, select

from models import schema
from models.enums import CaseStatus, Interface
from tasks.store.db import Store
from tests.deployments.web.conftest import DeskFactory
from tests.deployments.web.desk_client import DeskClient, form_state, problem_at, summary_of, token_of, typed
from tests.deployments.web.walk import (
    CASE_REF,
    REFERRAL,
    REFERRAL_WRONG,
    WALK,
    CaseDay,
    Values,
)

_TABLES: dict[Engine, MetaData] = {}


def snapshot(engine: Engine) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table, as text: equal snapshots mean nothing was written."""
    metadata = _TABLES.get(engine)
    if metadata is None:
        metadata = _TABLES[engine] = MetaData()
        metadata.reflect(engine)
    with engine.connect() as connection:
        return {name: sorted(tuple(map(repr, row)) for row in connection.execute(select(table)))
                for name, table in metadata.tables.items()}


def audit_events(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(schema.audit_events)).scalar_one())


def dom_id(name: str) -> str:
    return "f-" + re.sub(r"[^A-Za-z0-9]+", "-", name)


def refused_then_recorded(desk: DeskClient, engine: Engine, path: str, right: Values, wrong: Values, *,
                          wrong_at: str | None, says: str = "") -> str:
    """Submit the form at `path` with `wrong` over `right` (refused, nothing written, everything
    typed kept), then with `right` (recorded); returns the page the person is sent to."""
    page = desk.get(path)
    assert page.status_code == 200, (path, page.text[:500])
    token = token_of(page.text)
    before, events = snapshot(engine), audit_events(engine)
    refused_values = {**right, **wrong}
    refused = desk.post(path, {**refused_values, "csrf_token": token})
    assert refused.status_code == 422, (path, refused.status_code)
    if wrong_at is not None:
        said = problem_at(refused.text, dom_id(wrong_at))
        assert said is not None, (path, wrong_at, summary_of(refused.text))
    else:
        said = summary_of(refused.text)
    assert says in said, (path, said)
    assert "Nothing was recorded" in summary_of(refused.text)
    held = form_state(refused.text)
    for name, values in typed(refused_values).items():
        # A group of ticked boxes in the page's order, any other in the order typed.
        kept = sorted(v for v in held.get(name, []) if v != "")
        assert kept == sorted(values), (path, name, held.get(name))
    assert audit_events(engine) == events
    assert snapshot(engine) == before, f"{path}: a refusal wrote something"
    recorded = desk.post(path, {**right, "csrf_token": token})
    assert recorded.status_code == 303, (path, recorded.status_code, summary_of(recorded.text))
    location = recorded.headers["location"]
    assert re.fullmatch(r"/desk/cases/SR-2027-[0-9]{4}", location), location
    assert audit_events(engine) > events
    return location


def free_text(values: Values) -> list[str]:
    """The words a person typed into a form (names, reasons, narrative), to look for in the logs."""
    found = []
    for value in values.values():
        for each in value if isinstance(value, list) else [value]:
            if " " in each.strip() and len(each.strip()) > 6:
                found.append(each.strip())
    return found


def test_every_form_is_refused_once_then_recorded(open_desk: DeskFactory, store: Store, walk_clock: Any,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    desk = open_desk("Sam Officer")
    engine = store.engine
    location = refused_then_recorded(desk, engine, "/desk/refer", REFERRAL, REFERRAL_WRONG,
                                     wrong_at="la_aware_date", says="before")
    assert location == f"/desk/cases/{CASE_REF}"
    case_page = desk.get(location)
    assert "Recorded: Referral" in case_page.text
    day = CaseDay(walk_clock)
    typed_words: list[str] = []
    for step in WALK:
        day.to(step.on)
        path = f"/desk/cases/{CASE_REF}/record/{step.key}"
        refused_then_recorded(desk, engine, path, step.right, step.wrong, wrong_at=step.wrong_at,
                              says=step.says)
        shown = desk.get(f"/desk/cases/{CASE_REF}")
        assert "role=\"status\"" in shown.text, step.key
        typed_words += free_text(step.right) + free_text(step.wrong)
        if not step.partial and step.key not in ("rr-meeting-moved", "action-added", "action-progress",
                                                   "cspr-publication-moved", "new-due-date",
                                                   "new-anchor-date", "rr-agency-responses", "cspr-imr",
                                                   "action"):
            # A step done is no longer offered.
            assert desk.get(path).status_code == 409, step.key
    service_state = desk.get(f"/desk/cases/{CASE_REF}")
    assert "The case is closed" in service_state.text
    with engine.connect() as connection:
        status = connection.execute(select(schema.cases.c.status)).scalar_one()
        vias = set(connection.execute(select(schema.audit_events.c.via, schema.audit_events.c.actor)).all())
    assert status is CaseStatus.CLOSED
    assert {actor for via, actor in vias if via is Interface.WEB} == {"Sam Officer"}
    assert {via for via, _actor in vias} <= {Interface.WEB, Interface.SYSTEM}
    logged = caplog.text
    leaked = [words for words in typed_words if words in logged]
    assert leaked == [], "typed words reached a log"
