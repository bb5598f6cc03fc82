"""The audit trail's hash chain: the canonical form of an audit row, its hash, and the check of a
whole chain. Pure: the store writes rows (`tasks.store.repositories.add_audit_event`) and reads
them (`tasks.store.audit`); this module only says what a row's hash is and whether a chain holds.

Each row stores the hash of the row before it (`prev_hash`; the first row's is `GENESIS`) and its
own hash over its content and that link, so a row changed, removed or moved after it was written
no longer matches. The chain shows tampering by anyone who does not recompute every hash from the
changed row on, and the chain's head with them; anchoring the head elsewhere (`sbu audit verify`
prints it) shows that too.

The canonical form of a row, which `row_hash` hashes with SHA-256 (64 lowercase hex digits), is
one JSON object with exactly these eight keys:

    "id"         the row's id, an integer
    "case_id"    the case's id, an integer, or null for an event about no single case
    "at"         when, in UTC, ISO 8601 with microseconds: "2026-12-23T12:00:00.000000+00:00"
    "actor"      who, as stored
    "via"        the interface's value: "cli", "prefect-ui" or "system"
    "action"     what, e.g. "step-retimed"
    "detail"     the detail object, as it reads back from the store
    "prev_hash"  the previous row's hash (`GENESIS`, 64 zeros, for the first row)

written with Python's `json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False,
allow_nan=False)`: keys sorted at every level, no whitespace, characters other than ASCII as
themselves, then encoded as UTF-8. For example:

    {"action":"case-referred","actor":"officer","at":"2026-12-23T12:00:00.000000+00:00",
     "case_id":1,"detail":{"category":"serious-harm","children":1},"id":1,
     "prev_hash":"0000...0000","via":"cli"}

(on one line). Changing any of this changes every hash: it is a format, like a migration.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def stored_detail(detail: Mapping[str, Any]) -> dict[str, Any]:
    """`detail` as it will read back from the store's JSON column (tuples become lists, say), so
    the hash taken when the row is written is the hash of what is read when it is checked."""
    normal: dict[str, Any] = json.loads(canonical_json(dict(detail)))
    return normal


def utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("naive timestamps are not hashed")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One row of `audit_events` as the chain sees it."""

    id: int
    case_id: int | None
    at: datetime
    actor: str
    via: str
    action: str
    detail: Mapping[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def linked(cls, *, id: int, case_id: int | None, at: datetime, actor: str, via: str, action: str,
               detail: Mapping[str, Any], prev_hash: str) -> AuditRow:
        """A new row after the row whose hash is `prev_hash`, with its hash computed."""
        unsigned = cls(id=id, case_id=case_id, at=at, actor=actor, via=via, action=action,
                       detail=stored_detail(detail), prev_hash=prev_hash, hash="")
        return replace(unsigned, hash=row_hash(unsigned))


def canonical_form(row: AuditRow) -> bytes:
    """The bytes `row_hash` hashes (see the module's docstring); the row's own `hash` is not part."""
    return canonical_json({
        "id": row.id, "case_id": row.case_id, "at": utc_iso(row.at), "actor": row.actor,
        "via": row.via, "action": row.action, "detail": row.detail, "prev_hash": row.prev_hash,
    }).encode("utf-8")


def row_hash(row: AuditRow) -> str:
    return hashlib.sha256(canonical_form(row)).hexdigest()


# -- checking a chain --------------------------------------------------------------------------------

class Problem(StrEnum):
    CONTENT_CHANGED = "content-changed"
    ROW_MISSING = "row-missing"
    OUT_OF_ORDER = "out-of-order"
    BAD_LINK = "bad-link"


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The store's record of the newest row: its id and hash, advanced with every row written."""

    last_id: int
    last_hash: str


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first thing wrong: the row (by id) where it shows, and what is wrong, in words that name
    ids and never a row's content."""

    id: int | None
    problem: Problem
    message: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    rows: int
    head: ChainHead | None
    first_break: ChainBreak | None

    @property
    def intact(self) -> bool:
        return self.first_break is None

    def as_json(self) -> dict[str, Any]:
        broken = self.first_break
        return {
            "intact": self.intact, "rows_checked": self.rows,
            "head": {"id": self.head.last_id, "hash": self.head.last_hash} if self.head else None,
            "first_bad": ({"id": broken.id, "problem": broken.problem.value, "message": broken.message}
                          if broken else None),
        }


def verify_chain(*, head: ChainHead | None, rows: Iterable[AuditRow],
                 locate: Callable[[str], int | None]) -> ChainReport:
    """Check `rows` (every audit row, in id order, read in the same snapshot as `head`) and name
    the first bad one. `locate(hash)` gives the id of the row whose hash that is, or None; it is
    asked only once a link is broken, to tell a missing row from a moved one.

    A row's link is checked before its content: a row moved to another id no longer matches its
    hash either (the id is hashed), and "out of order" says more than "changed".
    """
    if head is None:
        return ChainReport(0, None, ChainBreak(None, Problem.BAD_LINK, "the chain's head row is missing"))
    checked = 0
    previous: AuditRow | None = None
    for row in rows:
        broken = _check(row, previous, head, locate)
        if broken is not None:
            return ChainReport(checked, head, broken)
        previous = row
        checked += 1
    return ChainReport(checked, head, _check_tail(previous, head))


def _check(row: AuditRow, previous: AuditRow | None, head: ChainHead,
           locate: Callable[[str], int | None]) -> ChainBreak | None:
    if row.id > head.last_id:
        # Every row the store writes advances the head in the same transaction, and the rows are
        # read in one snapshot with it: a row past the head was put there some other way.
        return ChainBreak(row.id, Problem.BAD_LINK,
                          f"row {row.id} is past the chain's head (row {head.last_id}): it was not "
                          "written through the store")
    content_ok = row_hash(row) == row.hash
    expected = previous.hash if previous is not None else GENESIS
    if row.prev_hash != expected:
        followed = locate(row.prev_hash)
        if followed is not None and followed > row.id:
            return ChainBreak(row.id, Problem.OUT_OF_ORDER,
                              f"row {row.id} follows row {followed}, which comes after it")
        if not content_ok:
            return ChainBreak(row.id, Problem.CONTENT_CHANGED,
                              f"row {row.id} has been changed since it was written: it no longer "
                              "matches its hash, nor links to the row before it")
        before = previous.id if previous is not None else 0
        if followed is None and row.id - before > 1:
            gap = (f"row {before + 1} is missing" if row.id - before == 2
                   else f"rows {before + 1} to {row.id - 1} are missing (one or more)")
            return ChainBreak(before + 1, Problem.ROW_MISSING,
                              f"{gap}: row {row.id} follows a row that is not there")
        if followed is None:
            return ChainBreak(row.id, Problem.BAD_LINK, f"row {row.id} links to no row of the chain")
        return ChainBreak(row.id, Problem.BAD_LINK,
                          f"row {row.id} links to row {followed}, not to the row before it"
                          + (f" (row {previous.id})" if previous is not None else ""))
    if not content_ok:
        return ChainBreak(row.id, Problem.CONTENT_CHANGED,
                          f"row {row.id} has been changed since it was written: it no longer matches "
                          "its hash")
    return None


def _check_tail(last: AuditRow | None, head: ChainHead) -> ChainBreak | None:
    last_id, last_hash = (last.id, last.hash) if last is not None else (0, GENESIS)
    if head.last_id > last_id:
        gap = (f"row {head.last_id} is missing" if head.last_id - last_id == 1
               else f"rows {last_id + 1} to {head.last_id} are missing (one or more)")
        return ChainBreak(last_id + 1, Problem.ROW_MISSING,
                          f"{gap}: the chain's head is row {head.last_id}, the last row is "
                          + (f"row {last_id}" if last is not None else "none"))
    if head.last_hash != last_hash:
        if last is None:
            return ChainBreak(None, Problem.BAD_LINK, "the chain has no rows but its head has a hash")
        return ChainBreak(last.id, Problem.CONTENT_CHANGED,
                          f"row {last.id} is not the row the chain's head recorded: it was rewritten")
    return None
