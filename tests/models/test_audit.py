"""The audit chain's canonical form and the check of a chain, without a database: the form is fixed
(a change to it changes every stored hash), and each kind of damage is named at the right row."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from models.audit import (
    GENESIS,
    AuditRow,
    ChainHead,
    Problem,
    canonical_form,
    row_hash,
    stored_detail,
    verify_chain,
)

AT = datetime(2026, 12, 23, 12, 0, tzinfo=UTC)


def test_the_canonical_form_is_fixed() -> None:
    an_hour_east = timezone(timedelta(hours=1))
    row = AuditRow.linked(id=1, case_id=7, at=datetime(2026, 12, 23, 12, 0, tzinfo=an_hour_east),
                          actor="Siân", via="cli", action="step-retimed",
                          detail={"step": "rr-meeting", "reason": "Chair away", "due": "2027-01-08",
                                  "nested": {"b": 1, "a": [1, 2]}},
                          prev_hash=GENESIS)
    assert canonical_form(row) == (
        '{"action":"step-retimed","actor":"Siân","at":"2026-12-23T11:00:00.000000+00:00","case_id":7,'
        '"detail":{"due":"2027-01-08","nested":{"a":[1,2],"b":1},"reason":"Chair away","step":"rr-meeting"},'
        '"id":1,"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","via":"cli"}'
    ).encode()
    # Written down here so that a change to the form cannot pass unnoticed: every stored hash
    # depends on it.
    assert row.hash == "1480cf193b94db39d2c014d254c802377a31056960d76c861a69f71e908fb37e"


def test_every_field_and_the_link_are_hashed() -> None:
    row = AuditRow.linked(id=1, case_id=None, at=AT, actor="a", via="cli", action="x", detail={"k": "v"},
                          prev_hash=GENESIS)
    changes: list[dict[str, Any]] = [
        {"id": 2}, {"case_id": 1}, {"at": AT + timedelta(microseconds=1)}, {"actor": "b"}, {"via": "system"},
        {"action": "y"}, {"detail": {"k": "w"}}, {"prev_hash": "1" * 64}]
    assert {row_hash(replace(row, **change)) for change in changes} & {row.hash} == set()
    assert len({row_hash(replace(row, **change)) for change in changes}) == len(changes)


def test_detail_is_hashed_as_it_reads_back() -> None:
    assert stored_detail({"dsps": ("a", "b"), "n": 1}) == {"dsps": ["a", "b"], "n": 1}
    with pytest.raises(ValueError, match="naive"):
        AuditRow.linked(id=1, case_id=None, at=datetime(2026, 12, 23), actor="a", via="cli",
                        action="x", detail={}, prev_hash=GENESIS)


def make_chain(length: int) -> list[AuditRow]:
    rows: list[AuditRow] = []
    for number in range(1, length + 1):
        rows.append(AuditRow.linked(id=number, case_id=1, at=AT + timedelta(seconds=number), actor="officer",
                                    via="cli", action="step-opened", detail={"n": number},
                                    prev_hash=rows[-1].hash if rows else GENESIS))
    return rows


def check(rows: list[AuditRow], head: ChainHead | None = None) -> tuple[int | None, Problem] | None:
    head = head or ChainHead(last_id=6, last_hash=make_chain(6)[-1].hash)
    by_hash = {row.hash: row.id for row in rows}
    report = verify_chain(head=head, rows=sorted(rows, key=lambda row: row.id), locate=by_hash.get)
    return None if report.first_break is None else (report.first_break.id, report.first_break.problem)


def test_an_intact_chain() -> None:
    assert check(make_chain(6)) is None
    assert verify_chain(head=ChainHead(0, GENESIS), rows=[], locate=lambda _hash: None).intact


def test_each_kind_of_damage_is_named_at_its_row() -> None:
    rows = make_chain(6)
    assert check([*rows[:2], replace(rows[2], actor="x"), *rows[3:]]) == (3, Problem.CONTENT_CHANGED)
    assert check([*rows[:3], *rows[4:]]) == (4, Problem.ROW_MISSING)
    assert check(rows[:5]) == (6, Problem.ROW_MISSING)
    assert check([*rows[:2], replace(rows[3], id=3), replace(rows[2], id=4), *rows[4:]]) == \
        (3, Problem.OUT_OF_ORDER)
    forged = AuditRow.linked(id=4, case_id=1, at=AT, actor="x", via="cli", action="x", detail={},
                             prev_hash=rows[1].hash)
    assert check([*rows[:3], forged, *rows[4:]]) == (4, Problem.BAD_LINK)
    assert check(rows, ChainHead(last_id=5, last_hash=rows[4].hash)) == (6, Problem.BAD_LINK)
    assert verify_chain(head=None, rows=rows, locate=lambda _hash: None).first_break is not None
