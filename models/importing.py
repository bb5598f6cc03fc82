"""Bringing a partnership's open cases in with their history (`sbu import`): the file read, each
case made into its referral and its dated history, every entry checked by its step's own form, and
what the import does about time.

Two formats carry the same thing:
- JSON: a list of cases (or `{"cases": [...]}`), each `{"referral": {...}, "recorded_by": NAME,
  "history": [ENTRY, ...]}`; an entry names its step (`"step": "sin-submission"`) or act
  (`"act": "action-added"`), who recorded it (`"by"`, optional), and its form's own fields; an act
  whose form has no date of its own (an action added, a meeting or a publication date moved) gives
  the day it happened as `"on"`.
- CSV in the shape a tracker spreadsheet exports: one row per case, one column per step's date and
  a few for what the step's form needs besides (`CSV_COLUMNS`, `template_csv`).

Every entry is validated by its step's form here, and refused naming its row and its column, never
its value. The procedure checks the rest when the case is written (`tasks.importing`): the entries
in date order, each against the case as it stood on its date.

Time: every clock counts from the date the file records, never from the day of import. Nothing
that happened before the import is alerted or sent (`historical`); a step still open gets its
timers from now on only, and one already late its next escalation on the next working day
(`catch_up_alerts`), and goes in the SBU's one summary of the import (`late_steps`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError

from models.alerts import next_escalation
from models.audit import canonical_json
from models.calendar import LONDON, london_date, london_time
from models.effects import (
    Acted,
    Effect,
    Event,
    LateStep,
    Recorded,
    ScheduleAlert,
    SendEmail,
)
from models.enums import Agency, Role
from models.errors import Refused, SbuError
from models.fields import hidden_character_in, is_iso_day, within_years
from models.forms import SIGNATURE_FIELDS, Referral, SignedByTheDsps
from models.procedure import Context, alerts_for
from models.registry import Registry
from models.state import CaseState

# A tracker of a regional service holds a few thousand cases at most: a few MiB as CSV. A file
# far bigger than that is not one, and is refused before it is read whole.
MAX_IMPORT_BYTES = 16 * 1024 * 1024
MAX_IMPORT_CASES = 20_000
# How many actions a tracker row carries (action1_... to action<N>_...).
CSV_ACTIONS = 6
# How many children a referral names at most (one notification per incident, up to four).
CSV_CHILDREN = 4
LIST_SEPARATOR = ";"
# The time of day an entry is taken to have happened when a file gives only its date: the middle
# of a working day, London time (its date is what every clock counts from).
ENTRY_TIME = time(12, 0)


class ImportFileError(SbuError):
    """The file as a whole cannot be imported (too big, not UTF-8, not the format, unknown or
    missing columns): nothing is read from it."""


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a row was refused: its row (a CSV's line as a spreadsheet numbers it, the header being
    row 1; a JSON file's case, from 1), the column (or JSON path) at fault, and the reason in words.
    Never the value."""

    row: int
    column: str
    reason: str

    def line(self) -> str:
        return f"row {self.row}, column {self.column}: {self.reason}"


class HistoryRefused(Refused):
    """The procedure refused one entry of a case's history: which one, and why."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One thing recorded on a case, on its date: a step (or part of one) or an act, with its
    validated form, who recorded it (the entry's `by`, else its row's `recorded_by`; None: whoever
    runs the import), and where it came from in the file (`column`, named when it is refused)."""

    name: str
    is_act: bool
    on: date
    form: BaseModel
    by: str | None
    column: str

    @property
    def event(self) -> Event:
        if self.is_act:
            return Acted(act=self.name, form=self.form)
        return Recorded(step=self.name, form=self.form)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "act": self.is_act, "on": self.on.isoformat(), "by": self.by,
                "form": self.form.model_dump(mode="json")}


@dataclass(frozen=True, slots=True)
class ImportCase:
    """One case of the file: its row, its referral and its history in date order, and a digest
    of both that tells the same row again from a changed one."""

    row: int
    referral: Referral
    history: tuple[HistoryEntry, ...]
    recorded_by: str | None
    digest: str

    def column_of(self, index: int) -> str:
        return self.history[index].column


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """What a file holds: the cases that passed their forms, the rows refused, and the file's
    SHA-256 (the audit trail names the file by it)."""

    cases: tuple[ImportCase, ...]
    refused: tuple[Problem, ...]
    sha256: str
    rows: int


class FileFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


# -- reading the file ------------------------------------------------------------------------------

def decode(raw: bytes) -> str:
    """The file's text: UTF-8, with or without a byte-order mark; refused (whole) if larger than
    `MAX_IMPORT_BYTES` or not UTF-8."""
    if len(raw) > MAX_IMPORT_BYTES:
        raise ImportFileError(f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB; split it")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportFileError(f"the file is not UTF-8 text (the first bad byte is byte {error.start + 1}); "
                              "save it as CSV UTF-8") from None


def guess_format(name: str, text: str) -> FileFormat:
    lowered = name.lower()
    if lowered.endswith(".json"):
        return FileFormat.JSON
    if lowered.endswith(".csv"):
        return FileFormat.CSV
    return FileFormat.JSON if text.lstrip()[:1] in ("[", "{") else FileFormat.CSV


def parse_file(raw: bytes, *, name: str, now: datetime, registry: Registry,
               file_format: FileFormat | None = None) -> ParsedFile:
    """Read an import file: each row's case validated (referral and every entry by its form), the
    rows refused each with its problem. `now` is the case clock's current time: no date may be
    after it. Raises `ImportFileError` for a file that cannot be read at all."""
    sha = hashlib.sha256(raw).hexdigest()
    text = decode(raw)
    chosen = file_format or guess_format(name, text)
    rows = _json_rows(text) if chosen is FileFormat.JSON else _csv_rows(text)
    if len(rows) > MAX_IMPORT_CASES:
        raise ImportFileError(f"the file holds more than {MAX_IMPORT_CASES} cases; split it")
    cases: list[ImportCase] = []
    refused: list[Problem] = []
    seen: dict[tuple[str, str], int] = {}
    for row, reader in rows:
        try:
            case = reader(now, registry)
        except _RowProblem as problem:
            refused.append(problem.problem)
            continue
        key = (case.referral.referring_agency.value, case.referral.external_ref)
        if key in seen:
            refused.append(Problem(row, "external_ref", f"the same referral as row {seen[key]} (the same "
                                                        "referring agency and external reference)"))
            continue
        seen[key] = row
        cases.append(case)
    return ParsedFile(tuple(cases), tuple(refused), sha, len(rows))


class _RowProblem(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.line())
        self.problem = problem


RowReader = Callable[[datetime, Registry], ImportCase]


def _refuse(row: int, column: str, reason: str) -> _RowProblem:
    return _RowProblem(Problem(row, column, reason))


# -- what every format shares ---------------------------------------------------------------------

_REFERRAL_FIELDS = tuple(Referral.model_fields)


def _referral(data: Mapping[str, Any], *, row: int, now: datetime,
              column_for: Callable[[tuple[int | str, ...]], str]) -> Referral:
    try:
        return Referral.model_validate(dict(data), context={"now": now})
    except ValidationError as error:
        raise _form_problem(error, row=row, column_for=column_for) from None


def _form_problem(error: ValidationError, *, row: int,
                  column_for: Callable[[tuple[int | str, ...]], str]) -> _RowProblem:
    """The first problem of `error`, at the column its field came from, never with the value."""
    first = error.errors(include_input=False, include_url=False, include_context=False)[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "not a field of this form"
    loc = tuple(first["loc"])
    if not loc:
        # A check across fields names its field first ("incident_date is in the future").
        named = re.match(r"([a-z_]+)", message)
        loc = (named.group(1),) if named else ()
    return _refuse(row, column_for(loc), message)


def _entry(registry: Registry, *, row: int, name: str, values: Mapping[str, Any], on_text: str | None,
           by: str | None, column: str, today: date,
           column_for: Callable[[tuple[int | str, ...]], str]) -> HistoryEntry:
    """One history entry validated: the step or act exists, its form accepts the values, its date
    is a date and not in the future, and who recorded it is a name on one line."""
    choice = registry.choice(name)
    if choice is None:
        raise _refuse(row, column, "not a step or act of the procedure")
    is_act = registry.act(name) is not None
    try:
        form = choice.form.model_validate(dict(values))
    except ValidationError as error:
        raise _form_problem(error, row=row, column_for=column_for) from None
    date_field = choice.date_field
    if date_field is not None:
        on: date = getattr(form, date_field)
        date_column = column_for((date_field,))
    else:
        date_column = column_for(("on",))
        if on_text is None or not is_iso_day(on_text):
            raise _refuse(row, date_column, "the day it happened is needed, as YYYY-MM-DD")
        on = date.fromisoformat(on_text)
        if not within_years(on):
            raise _refuse(row, date_column, "not a possible year")
    if on > today:
        raise _refuse(row, date_column, "is in the future")
    if by is not None and (not by.strip() or len(by) > 80 or hidden_character_in(by)):
        raise _refuse(row, column_for(("by",)), "a name of 1 to 80 characters on one line")
    return HistoryEntry(name=name, is_act=is_act, on=on, form=form, by=by.strip() if by else None,
                        column=date_column)


def _ordered(entries: Iterable[tuple[int, HistoryEntry]]) -> list[HistoryEntry]:
    """The entries in date order; on one day, in the order given (`int`: the procedure's order of
    a CSV's columns, a JSON file's own order)."""
    return [entry for _, entry in sorted(entries, key=lambda pair: (pair[1].on, pair[0]))]


def _digest(referral: Referral, history: Sequence[HistoryEntry], recorded_by: str | None) -> str:
    payload = {"referral": referral.model_dump(mode="json"), "recorded_by": recorded_by,
               "history": [entry.as_json() for entry in history]}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def _case(row: int, referral: Referral, history: Sequence[HistoryEntry],
          recorded_by: str | None) -> ImportCase:
    """The row's case; an entry that names no one was recorded by the row's `recorded_by`, if any."""
    if recorded_by is not None:
        recorded_by = recorded_by.strip()
        history = [entry if entry.by else HistoryEntry(name=entry.name, is_act=entry.is_act, on=entry.on,
                                                       form=entry.form, by=recorded_by, column=entry.column)
                   for entry in history]
    return ImportCase(row=row, referral=referral, history=tuple(history), recorded_by=recorded_by,
                      digest=_digest(referral, history, recorded_by))


# -- JSON -----------------------------------------------------------------------------------------

_CASE_KEYS = {"referral", "recorded_by", "history"}
_ENTRY_KEYS = {"step", "act", "by", "on"}


def _json_rows(text: str) -> list[tuple[int, RowReader]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ImportFileError(f"the file is not valid JSON (line {error.lineno}, "
                              f"column {error.colno})") from None
    except RecursionError:
        raise ImportFileError("the file is not valid JSON (nested too deeply)") from None
    if isinstance(data, dict) and set(data) == {"cases"}:
        data = data["cases"]
    if not isinstance(data, list):
        raise ImportFileError('the file must hold a list of cases, or {"cases": [...]}')
    return [(index, _json_reader(index, item)) for index, item in enumerate(data, start=1)]


def _json_reader(row: int, item: Any) -> RowReader:
    def read(now: datetime, registry: Registry) -> ImportCase:
        if not isinstance(item, dict):
            raise _refuse(row, "(case)", "a case is an object with its referral and its history")
        unknown = sorted(key for key in item if key not in _CASE_KEYS)
        if unknown:
            raise _refuse(row, "(case)", "has a key other than referral, recorded_by and history")
        if not isinstance(item.get("referral"), dict):
            raise _refuse(row, "referral", "missing, or not an object")
        referral = _referral(item["referral"], row=row, now=now,
                             column_for=lambda loc: _json_path("referral", loc))
        recorded_by = item.get("recorded_by")
        if recorded_by is not None and (not isinstance(recorded_by, str) or not recorded_by.strip()
                                        or len(recorded_by) > 80 or hidden_character_in(recorded_by)):
            raise _refuse(row, "recorded_by", "a name of 1 to 80 characters on one line")
        history = item.get("history", [])
        if not isinstance(history, list):
            raise _refuse(row, "history", "must be a list of entries")
        today = london_date(now)
        entries: list[tuple[int, HistoryEntry]] = []
        for index, raw in enumerate(history):
            where = f"history[{index}]"
            if not isinstance(raw, dict):
                raise _refuse(row, where, "an entry is an object naming its step or act")
            names = [raw.get(key) for key in ("step", "act") if key in raw]
            if len(names) != 1 or not isinstance(names[0], str):
                raise _refuse(row, where, "names one step (\"step\") or one act (\"act\")")
            name = names[0]
            by = raw.get("by")
            on = raw.get("on")
            if (by is not None and not isinstance(by, str)) or (on is not None and not isinstance(on, str)):
                raise _refuse(row, where, "by and on are text")
            values = {key: value for key, value in raw.items() if key not in _ENTRY_KEYS}
            choice = registry.choice(name)
            if on is not None and choice is not None and choice.date_field is not None:
                raise _refuse(row, f"{where}.on", f"this form's own date is {choice.date_field}")
            entries.append((index, _entry(registry, row=row, name=name, values=values, on_text=on, by=by,
                                          column=where, today=today,
                                          column_for=_path_from(where))))
        return _case(row, referral, _ordered(entries), recorded_by)

    return read


def _path_from(prefix: str) -> Callable[[tuple[int | str, ...]], str]:
    return lambda loc: _json_path(prefix, loc)


def _json_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    parts = [prefix]
    for part in loc:
        if isinstance(part, int):
            parts[-1] += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,39}", str(part)):
            parts.append(str(part))
        else:
            parts.append("<field>")
    return ".".join(parts)


# -- CSV ------------------------------------------------------------------------------------------

class Kind(StrEnum):
    """How a cell is read."""

    TEXT = "text"
    # One of a closed set of values (an agency, a category): read in lowercase, as a spreadsheet
    # may capitalise it.
    CHOICE = "choice"
    CHOICES = "choices"
    DATE = "date"
    # Several values in one cell, separated by semicolons.
    LIST = "list"
    # yes or no (also true/false, y/n, 1/0).
    YES_NO = "yes-no"
    NUMBER = "number"
    # A DSP's name, signing the form.
    SIGNATURE = "signature"
    # The DSP roles (la, health, police) signed by a deputy.
    DEPUTIES = "deputies"
    # Who recorded the entry.
    BY = "by"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    # The form field the cell fills ('' for the entry's own date of an act without one).
    field: str
    description: str


@dataclass(frozen=True, slots=True)
class Group:
    """The columns of one history entry in a tracker row: present when its date column is filled."""

    name: str
    date: Column
    columns: tuple[Column, ...] = ()
    # Values the group gives the form by itself (the agency of an agency's columns).
    fixed: Mapping[str, Any] = field(default_factory=dict)
    # For an action's columns: its number in the row, from 1.
    action: int | None = None

    @property
    def all_columns(self) -> tuple[Column, ...]:
        return (self.date, *self.columns)


def _c(name: str, kind: Kind, form_field: str, description: str) -> Column:
    return Column(name, kind, form_field, description)


def _signed(prefix: str, what: str) -> tuple[Column, ...]:
    titles = {Role.DSP_LA: "the local authority's DSP", Role.DSP_HEALTH: "the health DSP",
              Role.DSP_POLICE: "the police DSP"}
    return (*(_c(f"{prefix}_{SIGNATURE_FIELDS[role]}", Kind.SIGNATURE, SIGNATURE_FIELDS[role],
                 f"who signed {what} as {titles[role]}") for role in SIGNATURE_FIELDS),
            _c(f"{prefix}_deputies", Kind.DEPUTIES, "",
               "the roles signed by a deputy: la, health, police, separated by ;"))


def _referral_columns() -> tuple[Column, ...]:
    columns = [
        _c("referring_agency", Kind.CHOICE, "referring_agency", "the agency that referred (e.g. police)"),
        _c("external_ref", Kind.TEXT, "external_ref", "the referring agency's own reference"),
        _c("category", Kind.CHOICE, "category", "death, serious-harm or near-miss"),
        _c("abuse_or_neglect", Kind.CHOICE, "abuse_or_neglect", "known, suspected or not-suspected"),
        _c("incident_date", Kind.DATE, "incident_date", "YYYY-MM-DD"),
        _c("la_aware_date", Kind.DATE, "la_aware_date", "when the local authority became aware"),
        _c("referred_at", Kind.TEXT, "referred_at",
           "when the SBU received it: YYYY-MM-DD HH:MM (London time) or with an offset"),
        _c("agencies_involved", Kind.CHOICES, "agencies_involved", "the agencies involved, separated by ;"),
    ]
    for n in range(1, CSV_CHILDREN + 1):
        columns += [
            _c(f"child{n}_la_record_id", Kind.TEXT, "la_record_id",
               f"child {n}: the local authority's record id"),
            _c(f"child{n}_age_years", Kind.NUMBER, "age_years", f"child {n}: age in whole years"),
            _c(f"child{n}_looked_after", Kind.YES_NO, "looked_after", f"child {n}: looked after (yes or no)"),
            _c(f"child{n}_care_leaver", Kind.YES_NO, "care_leaver", f"child {n}: a care leaver (yes or no)"),
        ]
    return (*columns, _c("recorded_by", Kind.BY, "", "who recorded the history (default: who imports)"))


REFERRAL_COLUMNS = _referral_columns()
# The columns a tracker's file must have: the referral's, for its first child.
REQUIRED_COLUMNS = tuple(c.name for c in REFERRAL_COLUMNS if c.kind is not Kind.BY
                         and (not c.name.startswith("child") or c.name.startswith("child1_")))


def _groups() -> tuple[Group, ...]:
    agencies = list(Agency)
    groups: list[Group] = [
        Group("dsp-decision", _c("decided_on", Kind.DATE, "decided_on", "the DSPs' decision"), (
            _c("decision_sin", Kind.YES_NO, "sin", "a SIN submitted (yes or no)"),
            _c("decision_rapid_review", Kind.YES_NO, "rapid_review", "a Rapid Review held (yes or no)"),
            _c("decision_rationale", Kind.TEXT, "rationale", "why (at least 10 characters)"),
            *_signed("decision", "the decision"),
            _c("decision_by", Kind.BY, "", "who recorded the decision"))),
        Group("sin-submission", _c("sin_submitted_on", Kind.DATE, "completed_on", "the SIN submitted"), (
            _c("sin_national_ref", Kind.TEXT, "national_ref", "the national notification's reference"),)),
        Group("partners-informed", _c("partners_informed_on", Kind.DATE, "completed_on",
                                      "the safeguarding partners informed")),
    ]
    groups += [Group("rr-agency-responses", _c(f"info_{agency.value}_on", Kind.DATE, "completed_on",
                                              f"{agency.value}'s Rapid Review information received"),
                     fixed={"agency": agency.value}) for agency in agencies]
    groups += [
        Group("rr-meeting", _c("meeting_held_on", Kind.DATE, "completed_on",
                               "the Rapid Review meeting held"), (
            _c("meeting_reference", Kind.TEXT, "reference", "the minutes' reference"),)),
        Group("rr-outcome", _c("outcome_on", Kind.DATE, "decided_on",
                               "the Rapid Review outcome signed off"), (
            _c("outcome_recommendation", Kind.CHOICE, "recommendation",
               "local-cspr, no-cspr or national-review"),
            _c("outcome_immediate_actions", Kind.TEXT, "immediate_actions",
               "the immediate safeguarding actions"),
            _c("outcome_learning", Kind.TEXT, "learning", "the learning identified"),
            _c("outcome_rationale", Kind.TEXT, "rationale", "why (at least 10 characters)"),
            *_signed("outcome", "the outcome"))),
        Group("rr-report-to-panel", _c("rr_report_sent_on", Kind.DATE, "completed_on",
                                       "the Rapid Review sent to the National Panel"), (
            _c("rr_report_reference", Kind.TEXT, "reference", "the Panel's receipt reference"),)),
        Group("rr-panel-response", _c("panel_response_on", Kind.DATE, "completed_on",
                                      "the National Panel's response received"), (
            _c("panel_response", Kind.CHOICE, "response", "agree, disagree or national-review"),
            _c("panel_response_reference", Kind.TEXT, "reference", "the Panel's reference"))),
        Group("rr-action-plan", _c("rr_action_plan_on", Kind.DATE, "completed_on",
                                   "the Rapid Review action plan agreed")),
        Group("cspr-reviewer-appointed", _c("reviewers_appointed_on", Kind.DATE, "completed_on",
                                            "the CSPR's independent reviewer(s) appointed"), (
            _c("reviewers", Kind.LIST, "reviewers", "the reviewers' names, separated by ;"),)),
        Group("cspr-terms-of-reference", _c("terms_agreed_on", Kind.DATE, "completed_on",
                                            "the CSPR's terms of reference agreed")),
        Group("cspr-imr-requests", _c("imrs_requested_on", Kind.DATE, "completed_on", "the IMRs requested"), (
            _c("imrs_due", Kind.DATE, "imrs_due", "the date the review panel set for the IMRs"),
            _c("imr_agencies", Kind.CHOICES, "agencies",
               "the agencies asked (default: every agency involved)"))),
    ]
    for agency in agencies:
        groups += [
            Group("cspr-imr", _c(f"imr_{agency.value}_on", Kind.DATE, "completed_on",
                                 f"{agency.value}'s IMR received"), (
                _c(f"imr_{agency.value}_missing", Kind.LIST, "missing_sections",
                   "the template's sections it lacked, separated by ;"),), fixed={"agency": agency.value}),
            Group("cspr-imr", _c(f"imr_{agency.value}_rest_on", Kind.DATE, "completed_on",
                                 f"the rest of {agency.value}'s incomplete IMR received"),
                  fixed={"agency": agency.value}),
        ]
    groups += [
        Group("cspr-family-engagement", _c("family_engagement_on", Kind.DATE, "completed_on",
                                           "the family's engagement settled"), (
            _c("family_engagement", Kind.CHOICE, "engagement", "engaged, declined or not-appropriate"),
            _c("family_engagement_reason", Kind.TEXT, "reason", "why (at least 10 characters)"))),
        Group("cspr-draft-report", _c("draft_report_on", Kind.DATE, "completed_on",
                                      "the draft report received")),
        Group("cspr-final-report", _c("final_report_on", Kind.DATE, "completed_on",
                                      "the final report agreed")),
        Group("cspr-publication-moved", _c("publication_moved_on", Kind.DATE, "",
                                           "the day the planned publication date was moved"), (
            _c("planned_publication", Kind.DATE, "planned_on", "the new planned publication date"),
            _c("publication_moved_reason", Kind.TEXT, "reason", "why it moved (at least 10 characters)"))),
        Group("cspr-report-to-panel", _c("cspr_report_sent_on", Kind.DATE, "completed_on",
                                         "the final report sent to the Panel and the Secretary of State"), (
            _c("cspr_report_reference", Kind.TEXT, "reference", "the receipt reference"),)),
        Group("cspr-publication", _c("published_on", Kind.DATE, "completed_on", "the CSPR published"), (
            _c("publication_reference", Kind.TEXT, "reference", "the publication's reference"),)),
        Group("cspr-action-plan", _c("cspr_action_plan_on", Kind.DATE, "completed_on",
                                     "the CSPR action plan agreed")),
    ]
    for n in range(1, CSV_ACTIONS + 1):
        groups += [
            Group("action-added", _c(f"action{n}_added_on", Kind.DATE, "", f"action {n} added to the plan"), (
                _c(f"action{n}_source", Kind.CHOICE, "source", "rapid-review or cspr"),
                _c(f"action{n}_agency", Kind.CHOICE, "agency", "the owning agency"),
                _c(f"action{n}_owner_role", Kind.TEXT, "owner_role", "the owner's job title"),
                _c(f"action{n}_summary", Kind.TEXT, "summary", "what is to be done"),
                _c(f"action{n}_due", Kind.DATE, "due", "the date the plan set")), action=n),
            Group("action", _c(f"action{n}_closed_on", Kind.DATE, "completed_on", f"action {n} completed"), (
                _c(f"action{n}_evidence_ref", Kind.TEXT, "evidence_ref", "where its evidence is filed"),),
                action=n),
        ]
    return tuple(groups)


CSV_GROUPS = _groups()
CSV_COLUMNS: tuple[Column, ...] = (*REFERRAL_COLUMNS, *(c for g in CSV_GROUPS for c in g.all_columns))
_KNOWN = {c.name for c in CSV_COLUMNS}


def template_csv() -> str:
    """The tracker template: the header row of every column, in the procedure's order, with CRLF
    line ends as a spreadsheet writes them."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([c.name for c in CSV_COLUMNS])
    return out.getvalue()


def column_reference() -> list[tuple[str, str, str]]:
    """Each column: its name, what it holds, and the step or act it records (the documented list)."""
    rows = [(c.name, c.description, "referral") for c in REFERRAL_COLUMNS]
    rows += [(c.name, c.description, g.name) for g in CSV_GROUPS for c in g.all_columns]
    return rows


def _csv_rows(text: str) -> list[tuple[int, RowReader]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError("the file is empty; it needs the template's header row") from None
    except csv.Error:
        raise ImportFileError("the file is not CSV (row 1)") from None
    names = [cell.strip() for cell in header]
    for position, name in enumerate(names, start=1):
        # A spreadsheet may save empty columns after the last one it used: no header, no values.
        if name not in _KNOWN and name:
            raise ImportFileError(f"column {position} of the header is not a column of the template "
                                  "(see `sbu import --template`)")
    named = [name for name in names if name]
    if len(set(named)) != len(named):
        position = next(i for i, n in enumerate(names, start=1) if n and names.index(n) != i - 1)
        raise ImportFileError(f"column {position} of the header repeats an earlier column")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise ImportFileError(f"the header lacks the columns {', '.join(missing)}")
    rows: list[tuple[int, RowReader]] = []
    try:
        for index, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue  # a spreadsheet's empty rows
            if len(cells) > len(names):
                extra = [cell for cell in cells[len(names):] if cell.strip()]
                if extra:
                    rows.append((index, _refused_reader(index, str(len(names) + 1),
                                                        "a value beyond the header's last column")))
                    continue
            unnamed = next((i for i, name in enumerate(names)
                            if not name and i < len(cells) and cells[i].strip()), None)
            if unnamed is not None:
                rows.append((index, _refused_reader(index, str(unnamed + 1),
                                                    "a value under an empty header")))
                continue
            values = {name: (cells[i].strip() if i < len(cells) else "")
                      for i, name in enumerate(names) if name}
            rows.append((index, _csv_reader(index, values)))
    except csv.Error:
        raise ImportFileError(f"the file is not CSV from row {reader.line_num}") from None
    return rows


def _refused_reader(row: int, column: str, reason: str) -> RowReader:
    def read(now: datetime, registry: Registry) -> ImportCase:
        raise _refuse(row, column, reason)

    return read


_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}
_DEPUTY_ROLES = {"la": "dsp_la", "health": "dsp_health", "police": "dsp_police"}


def _cell(row: int, column: Column, text: str) -> Any:
    match column.kind:
        case Kind.TEXT | Kind.DATE | Kind.BY | Kind.SIGNATURE:
            return text
        case Kind.CHOICE:
            return text.lower()
        case Kind.LIST | Kind.CHOICES:
            parts = [part.strip() for part in text.split(LIST_SEPARATOR) if part.strip()]
            return [part.lower() for part in parts] if column.kind is Kind.CHOICES else parts
        case Kind.YES_NO:
            lowered = text.lower()
            if lowered in _YES:
                return True
            if lowered in _NO:
                return False
            raise _refuse(row, column.name, "must be yes or no")
        case Kind.NUMBER:
            if not re.fullmatch(r"[0-9]{1,3}", text):
                raise _refuse(row, column.name, "must be a whole number")
            return int(text)
        case Kind.DEPUTIES:
            roles = [part.strip().lower() for part in text.split(LIST_SEPARATOR) if part.strip()]
            if not set(roles) <= set(_DEPUTY_ROLES):
                raise _refuse(row, column.name, "must name la, health or police, separated by ;")
            return roles
    raise AssertionError(f"unhandled kind {column.kind}")


def _london_moment(text: str) -> str:
    """A spreadsheet's timestamp without an offset (`2026-05-04 10:15`) read as London time."""
    match = re.fullmatch(r"([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9]{2}:[0-9]{2}(:[0-9]{2})?)", text)
    if match is None:
        return text
    try:
        naive = datetime.fromisoformat(f"{match.group(1)}T{match.group(2)}")
    except ValueError:
        return text
    return naive.replace(tzinfo=LONDON).isoformat()


def _csv_reader(row: int, values: Mapping[str, str]) -> RowReader:
    def read(now: datetime, registry: Registry) -> ImportCase:
        referral = _csv_referral(row, values, now)
        recorded_by = values.get("recorded_by") or None
        if recorded_by is not None and (len(recorded_by) > 80 or hidden_character_in(recorded_by)):
            raise _refuse(row, "recorded_by", "a name of 1 to 80 characters on one line")
        today = london_date(now)
        entries: list[tuple[int, HistoryEntry]] = []
        added: dict[int, HistoryEntry] = {}
        for order, group in enumerate(CSV_GROUPS):
            entry = _csv_entry(row, group, values, registry=registry, today=today)
            if entry is None:
                continue
            if group.action is not None and group.name == "action-added":
                added[group.action] = entry
            entries.append((order, entry))
        return _case(row, referral, _numbered_actions(row, _ordered(entries), added), recorded_by)

    return read


def _csv_referral(row: int, values: Mapping[str, str], now: datetime) -> Referral:
    data: dict[str, Any] = {}
    by_field: dict[str, str] = {}
    for column in REFERRAL_COLUMNS[:8]:
        text = values.get(column.name, "")
        by_field[column.field] = column.name
        if text:
            cell = _cell(row, column, text)
            data[column.field] = _london_moment(cell) if column.field == "referred_at" else cell
    children: list[dict[str, Any]] = []
    for n in range(1, CSV_CHILDREN + 1):
        mine = [c for c in REFERRAL_COLUMNS if c.name.startswith(f"child{n}_")]
        cells = {c.field: values.get(c.name, "") for c in mine}
        if not any(cells.values()) and n > 1:
            continue
        children.append({c.field: _cell(row, c, cells[c.field]) for c in mine if cells[c.field]})

    def column_for(loc: tuple[int | str, ...]) -> str:
        if len(loc) >= 2 and loc[0] == "children" and isinstance(loc[1], int):
            position = loc[1] + 1
            return f"child{position}_{loc[2]}" if len(loc) > 2 else f"child{position}_la_record_id"
        if loc and str(loc[0]) in by_field:
            return by_field[str(loc[0])]
        return "referral"

    return _referral({**data, "children": children}, row=row, now=now, column_for=column_for)


def _csv_entry(row: int, group: Group, values: Mapping[str, str], *, registry: Registry,
               today: date) -> HistoryEntry | None:
    on_text = values.get(group.date.name, "")
    given = [c for c in group.columns if values.get(c.name, "")]
    if not on_text:
        if given:
            raise _refuse(row, given[0].name, f"given without {group.date.name}")
        return None
    form_values: dict[str, Any] = dict(group.fixed)
    by: str | None = None
    deputies: list[str] = []
    if group.date.field:
        form_values[group.date.field] = on_text
    for column in given:
        cell = _cell(row, column, values[column.name])
        match column.kind:
            case Kind.BY:
                by = cell
            case Kind.SIGNATURE:
                form_values[column.field] = {"name": cell}
            case Kind.DEPUTIES:
                deputies = cell
            case _:
                form_values[column.field] = cell
    for role in deputies:
        signed = form_values.get(_DEPUTY_ROLES[role])
        if isinstance(signed, dict):
            signed["deputy"] = True
    if group.action is not None and group.name == "action":
        form_values["action"] = f"a{group.action}"  # numbered as added, once the order is known
    columns = {c.field: c.name for c in group.all_columns if c.field}

    def column_for(loc: tuple[int | str, ...]) -> str:
        name = str(loc[0]) if loc else ""
        if name in columns:
            return columns[name]
        if name == "by":
            return next((c.name for c in group.columns if c.kind is Kind.BY), group.date.name)
        form = registry.choice(group.name)
        if form is not None and issubclass(form.form, SignedByTheDsps) and name in _DEPUTY_ROLES.values():
            return next(c.name for c in group.columns if c.field == name)
        return group.date.name

    return _entry(registry, row=row, name=group.name, values=form_values,
                  on_text=on_text if not group.date.field else None, by=by, column=group.date.name,
                  today=today, column_for=column_for)


def _numbered_actions(row: int, history: list[HistoryEntry],
                      added: Mapping[int, HistoryEntry]) -> list[HistoryEntry]:
    """A tracker's action N is numbered by the plan as it is added (a1 for the first added, ...):
    its closing entry is made to name that number."""
    order = [entry for entry in history if entry.name == "action-added"]
    numbers = {slot: f"a{order.index(entry) + 1}" for slot, entry in added.items()}
    out: list[HistoryEntry] = []
    for entry in history:
        if entry.name == "action":
            slot = int(str(getattr(entry.form, "action")).removeprefix("a"))  # noqa: B009 - a form's field
            if slot not in numbers:
                raise _refuse(row, entry.column, f"action {slot} is closed but never added "
                                                 f"(action{slot}_added_on)")
            entry = HistoryEntry(name=entry.name, is_act=False, on=entry.on,
                                 form=entry.form.model_copy(update={"action": numbers[slot]}), by=entry.by,
                                 column=entry.column)
        out.append(entry)
    return out


# -- time ------------------------------------------------------------------------------------------

def moment_of(on: date, *, after: datetime, now: datetime) -> datetime:
    """When an entry dated `on` is taken to have happened: midday London time on its date, not
    before the entry before it, and never after `now`."""
    return min(now, max(after, london_time(on, ENTRY_TIME)))


def historical(effects: Iterable[Effect]) -> tuple[Effect, ...]:
    """What of the procedure's answer to a past event the import writes: everything but the emails
    and the timers, which belonged to their day and are long past (`catch_up_alerts` times what is
    still open, from now)."""
    return tuple(e for e in effects if not isinstance(e, SendEmail | ScheduleAlert))


def catch_up_alerts(state: CaseState, ctx: Context) -> list[Effect]:
    """The timers of a case just imported, all in the future: a step still open and not yet late
    gets its reminder, overdue alert and escalations as if it had opened now (those already past
    left out); a step already late gets its next escalation on the next working day after today,
    and nothing for the days it was late before the import."""
    effects: list[Effect] = []
    for item in state.open_steps():
        spec = ctx.registry.item(item.step)
        if spec is None or not spec.alerts:
            continue
        if item.due >= ctx.today:
            effects += alerts_for(item.step, item.subject, item.due, ctx)
            continue
        nxt = next_escalation(after=ctx.today, sequence=1, calendar=ctx.calendar, policy=ctx.alerts)
        if nxt is not None:
            effects.append(ScheduleAlert(step=item.step, subject=item.subject, due=item.due, kind=nxt.kind,
                                         sequence=nxt.sequence, fire_at=nxt.fire_at))
    return effects


def late_steps(state: CaseState, ctx: Context) -> tuple[LateStep, ...]:
    """The case's open steps already past their due date, with how many working days late."""
    return tuple(LateStep(case_ref=state.case_ref, step=item.step, subject=item.subject, title=item.title,
                          due=item.due, days_late=ctx.calendar.working_days_between(item.due, ctx.today))
                 for item in state.open_steps() if item.due < ctx.today)
