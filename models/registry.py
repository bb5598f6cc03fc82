"""The process registry: every process a case can run, and every step of each, declared once.

A step is one `Step` declaration in its process's module (`models/processes/*.py`), carrying all
there is to know about it:

    PRACTITIONER_EVENT = Step(
        "cspr-practitioner-event", "Practitioner learning event held",
        owner=Role.SBU, anchor=Anchor.CSPR_COMMISSIONED, source="local procedure, step 6",
        clock=WorkingDaysAfter(ClockSetting("cspr_practitioner_event_days", 30, at_most=250)),
        form=StepCompletionForm, waits=("cspr-evidence",), national_review_cancels=True,
        label="Practitioners")

- who and when: `step` (its id: lowercase letters, digits and dashes), `title`, `owner` (the role
  emailed about it; `Role.AGENCY` for an item an agency owes), `anchor` (the date its clock
  starts from), `clock` (`models.timetable`: a fixed length, or a `ClockSetting` a partnership may
  change with `SBU_CLOCKS__<NAME>`) and `source` (the authority for it);
- how it is recorded: `form` (its pydantic form, which is also its dashboard form and its
  `sbu record` options), `date_field` (the form's date, checked against today and the anchor),
  `subject_field` (for a step with one item per agency or action, the field naming which),
  `recorded_by` (the roles that may record it; `AGENCY_LEAD` adds the lead of the agency an item
  is for), and what recording does beyond completing it: `record` (returns effects), `on_repeat`
  (refuse a conflicting second answer), `on_retime` (what follows a new due date), `uses` (other
  clock settings its handlers count with);
- where it is asked: `waits` (the names of its process's dashboard forms that wait for it: each
  stays its process's current form while the step is open), `also_on` (forms that also take it,
  without waiting for it: late information), `label` (its tab on a form offering several);
- how it opens: `opens=ON_START` (the default: when its process starts, once its anchor date is
  known; a step with a subject is opened by the process's `on_start`, one item per subject), or
  `opens=OpenedBy(name)`, the record of another step or act (`name`) opening it: automatically
  once its anchor date is known (and `when` holds, if given), or, for a step with a subject, by
  that record's own handler;
- what it means for the case: `keeps_case_open` (whether the case can close while it is open),
  `national_review_cancels` (whether a national review cancels it while open), `notify_owner`
  (email its owner when it opens), `alerts` (reminder, overdue and escalation timers).

Everything else is derived from the declarations: the step ids the CLI and the reports know
(`Registry.steps`), the timetable (`Registry.timetable`), the dashboard forms (`Wait.items`, and
`tasks.run_inputs`), who may record what (`models.access`), a case's stage (`Process.stage`,
`Registry.stage_of`), which steps a national review cancels and which open on start.

A process is a `Process`: its flow and deployment, its steps, the dashboard forms its flow suspends
on (`Wait`: named, titled and described here; which steps each form asks is said by the steps),
the acts it owns (`Act`: something a person does that completes no item), when it starts, its
stage, any roles of its own, and the anchor dates its rules set (`anchors`, each an
`models.anchors.AnchorSpec`: a date its own steps, or another process's, may count from). Serving,
warm start, creating and resuming runs, and the reconciliation sweep all loop over the registry.

The built-in processes live in `models.processes`, which builds the registry (`build_registry`).
A partnership's own process, or its own step in a built-in process (or a test's), lives in a module
named by `SBU_PROCESS_MODULES`, which exposes `PROCESSES` (a sequence of `Process`) and/or
`STEPS` (a mapping of a process id to the `Step`s it adds to that process). The registry refuses,
with the reason, when built: a step that is never opened, a step counted from an anchor no process
declares, a wait, `OpenedBy` or `STEPS` entry naming something no process has, a role no one can
hold, and any id (a step's, an act's, an anchor's) used twice.
"""

from __future__ import annotations

import importlib
import re
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from models.anchors import AnchorSpec
from models.calendar import WorkingDayCalendar
from models.enums import PERSON_ROLES, Agency, Anchor, CaseStatus, Role, Stage
from models.schedules import SCHEDULE_TIMEZONE
from models.timetable import Clocks, ClockSetting, Deadline, StepClock, StepRule, timetable

if TYPE_CHECKING:
    from models.effects import Effect
    from models.procedure import Context
    from models.state import CaseState, ItemState

# Prefect's pause keys, input keys and our idempotency keys allow lowercase letters, digits and
# dashes only (docs/architecture.md); every name that reaches a key is held to that.
_KEY_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# A flow named as "package.module:function".
_FLOW_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

# What recording a step does, beyond the checks every record gets (`models.procedure.record`):
# given the case, the validated form and the item, the effects. An empty list means there was
# nothing new to record.
RecordHandler = Callable[["CaseState", Any, "Context", "ItemState"], list["Effect"]]
# Called when a step already done is recorded again: raise `Refused` for a conflicting answer.
RepeatCheck = Callable[["CaseState", Any], None]
# What follows when an open item is given a new due date (the meeting's invitation is updated):
# given the case, the item, the new date, the reason and the context, the effects.
RetimeHandler = Callable[["CaseState", "ItemState", date, str, "Context"], list["Effect"]]
# What an act does (see `Act`): given the case, the validated form and the context, the effects.
ActHandler = Callable[["CaseState", Any, "Context"], list["Effect"]]

# In a step's `recorded_by`: the designated lead of the agency the item is for (its information,
# its IMR), as well as the roles named. Only for a step whose subject is an agency.
AGENCY_LEAD = "agency-lead"


def _key_name(value: str, what: str) -> str:
    if not _KEY_NAME.fullmatch(value) or len(value) > 40:
        raise ValueError(f"{what} {value!r} must be lowercase letters, digits and single dashes")
    return value


# -- how a step opens ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OnStart:
    """Opened when its process starts, once its anchor date is known."""


ON_START = OnStart()


@dataclass(frozen=True, slots=True)
class OpenedBy:
    """Opened by the record of the step or act `name` (the meeting held opens its outcome; the IMR
    requests open each IMR; the act that adds an action opens it). A step without a subject opens
    once that record is in, if its anchor date is known then and `when` (if given) holds of the
    case; a step with one item per subject is opened by that record's own handler."""

    name: str
    when: Callable[[CaseState], bool] | None = None

    def __post_init__(self) -> None:
        _key_name(self.name, "OpenedBy: a step id or act name")


Opening = OnStart | OpenedBy


# -- the declarations ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Step:
    """One step of a process, declared once: see the module's docstring for each field."""

    step: str
    title: str
    _: KW_ONLY
    owner: Role
    anchor: Anchor
    clock: StepClock
    source: str
    form: type[BaseModel]
    recorded_by: tuple[str, ...] = (Role.SBU,)
    waits: tuple[str, ...] = ()
    also_on: tuple[str, ...] = ()
    opens: Opening = ON_START
    # None: recording completes the item with the form's structured values (see `procedure`).
    record: RecordHandler | None = None
    on_repeat: RepeatCheck | None = None
    on_retime: RetimeHandler | None = None
    subject_field: str | None = None
    date_field: str = "completed_on"
    # A step due before its anchor (the final report, due 7 working days before publication) may
    # be done before the anchor date too.
    done_before_anchor: bool = False
    # Whether opening the item emails its owner (not where the opening sends its own requests).
    notify_owner: bool = True
    alerts: bool = True
    # Its tab on a dashboard form that offers several choices: short, since the Prefect UI's form
    # is 512 px wide and does not wrap its tabs (the title is the tab's description).
    label: str | None = None
    keeps_case_open: bool = True
    national_review_cancels: bool = False
    uses: tuple[ClockSetting, ...] = ()
    # Its timing as emails, forms and the timetable name it, made from the fields above.
    rule: StepRule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _key_name(self.step, "a step id")
        fields = self.form.model_fields
        if self.date_field not in fields:
            raise ValueError(f"{self.form.__name__} has no field {self.date_field}")
        if self.subject_field is not None and self.subject_field not in fields:
            raise ValueError(f"{self.form.__name__} has no field {self.subject_field}")
        if not self.recorded_by:
            raise ValueError(f"step {self.step}: recorded_by names no role")
        if AGENCY_LEAD in self.recorded_by and not (
                self.subject_field is not None and _names_an_agency(fields[self.subject_field].annotation)):
            raise ValueError(f"step {self.step}: AGENCY_LEAD needs a subject field naming an agency")
        if isinstance(self.opens, OpenedBy):
            if self.opens.name == self.step:
                raise ValueError(f"step {self.step} cannot be opened by its own record")
            if self.opens.when is not None and self.subject_field is not None:
                raise ValueError(f"step {self.step}: its opener's handler opens each of its items, so "
                                 "OpenedBy.when does not apply")
        for name in (*self.waits, *self.also_on):
            _key_name(name, f"step {self.step}: a wait name")
        if set(self.waits) & set(self.also_on):
            raise ValueError(f"step {self.step}: a wait is named in both waits and also_on")
        object.__setattr__(self, "rule", StepRule(self.step, self.title, self.owner, self.anchor,
                                                  self.source, self.clock))

    def subject_of(self, form: BaseModel) -> str:
        """Which item of this kind `form` records: '' for a step a case has once."""
        if self.subject_field is None:
            return ""
        value = getattr(form, self.subject_field)
        return str(getattr(value, "value", value))

    @property
    def clock_settings(self) -> tuple[ClockSetting, ...]:
        """Every clock setting the step reads: its own clock's, and those its handlers use."""
        return (*self.clock.settings(), *self.uses)


def _names_an_agency(annotation: Any) -> bool:
    return annotation is Agency or Agency in typing.get_args(annotation)


@dataclass(frozen=True, slots=True)
class Act:
    """A human act on a case that completes none of its items: adding an action to the plan, a
    progress note on one, moving the meeting, moving the planned publication date. Like a step it
    has one form and a dashboard choice; unlike a step it has no due date and can happen any
    number of times."""

    name: str
    title: str
    form: type[BaseModel]
    handle: ActHandler
    # The form field holding the act's date, checked against today as a step's is; None if it
    # has none (moving a meeting names a future date).
    date_field: str | None = None
    # Its tab on a dashboard form that offers several choices (see `Step.label`).
    label: str | None = None
    recorded_by: tuple[str, ...] = (Role.SBU,)

    def __post_init__(self) -> None:
        _key_name(self.name, "an act name")
        if self.date_field is not None and self.date_field not in self.form.model_fields:
            raise ValueError(f"{self.form.__name__} has no field {self.date_field}")
        if not self.recorded_by or AGENCY_LEAD in self.recorded_by:
            raise ValueError(f"act {self.name}: recorded_by must name the roles that may do it")


Choice = Step | Act


def choice_name(choice: Choice) -> str:
    """How a form's choice is named in the store's records and in keys: a step id or an act name."""
    return choice.step if isinstance(choice, Step) else choice.name


def choice_title(choice: Choice) -> str:
    return choice.title


def choice_label(choice: Choice) -> str:
    """The choice's tab on a dashboard form: its label, or its title."""
    return choice.label or choice_title(choice)


# What a dashboard form's row of tabs can hold without spilling past the Prefect UI's 512 px
# dialog: about 55 characters in all (measured in Chromium; each tab adds its padding).
TAB_BUDGET = 55


@dataclass(frozen=True, slots=True)
class Wait:
    """One dashboard form a process's flow suspends on.

    Declared in its process by name, title and what it says (`asks`, or `describe` for Markdown of
    its own), with the acts it offers; which steps it answers is said by the steps (`Step.waits`,
    `Step.also_on`), and its process fills `items` and `primary` from them: its steps in the order
    the process declares them, except that a step carried over from an earlier form (still taken,
    but not what this form waits for) comes after this form's own.

    Its key names what it waits for, so that every record, from the dashboard or from `sbu`, wakes
    the run to a fresh wait and no wait is ever answered twice:
    - a wait for one step a case has once is keyed by its name (`dsp-decision`) while it is open;
    - any other wait (several choices, or a step with one item per agency or action) is keyed by
      its name and a count of what is recorded so far (`rr-meeting-3`), so each record moves it to
      a new key. The count is `progress`, or by default how many of its choices' forms the case
      store has recorded (`CaseState.record_counts`).
    An answer the rules refuse is asked again under the same key with `-2`, `-3`, ... after it: a
    key, once answered, keeps its answer.

    The wait is the flow's current one while an item of its `primary` steps (those that wait for
    it) is open: a later wait may still offer an earlier step, such as an agency's late
    information, without being held back by it.
    """

    name: str
    title: str
    items: tuple[Step, ...] = ()
    progress: Callable[[CaseState], int] | None = None
    # The Markdown above the form: what is asked, by when, under which rule. None: `asks`, then
    # each open item's due date and rule (`models.descriptions.form_markdown`).
    describe: Callable[[CaseState, Wait], list[str]] | None = None
    acts: tuple[Act, ...] = ()
    primary: tuple[str, ...] | None = None
    # What the form asks, in a sentence or two, above its items.
    asks: str = ""

    def __post_init__(self) -> None:
        _key_name(self.name, "a wait name")
        if self.primary is not None and not set(self.primary) <= set(self.steps):
            raise ValueError(f"wait {self.name}: a primary step is not one of its items")

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(spec.step for spec in self.items)

    @property
    def choices(self) -> tuple[Choice, ...]:
        """What its form can record: each step, then each act."""
        return (*self.items, *self.acts)

    @property
    def counts_progress(self) -> bool:
        return (self.progress is not None or len(self.choices) > 1
                or any(spec.subject_field is not None for spec in self.items))

    def is_open(self, state: CaseState) -> bool:
        primary = self.primary if self.primary is not None else self.steps
        return any(item.is_open for item in state.steps if item.step in primary)

    def recorded(self, state: CaseState) -> int:
        """How much of what this wait answers is recorded."""
        if self.progress is not None:
            return self.progress(state)
        return sum(state.record_counts.get(choice_name(choice), 0) for choice in self.choices)

    def base_key(self, state: CaseState) -> str | None:
        """The key this wait has now, or None when nothing it answers is open."""
        if not self.is_open(state):
            return None
        return f"{self.name}-{self.recorded(state)}" if self.counts_progress else self.name

    def key(self, base: str, attempt: int) -> str:
        return base if attempt == 1 else f"{base}-{attempt}"

    def owns(self, key: str) -> bool:
        """Whether `key` is one of this wait's keys."""
        if key == self.name:
            return not self.counts_progress
        tail = key.removeprefix(f"{self.name}-")
        if tail == key:
            return False
        parts = tail.split("-")
        numbers = 2 if self.counts_progress else 1
        return 1 <= len(parts) <= numbers and all(part.isdigit() for part in parts)

    def base_of(self, key: str) -> str:
        """`key` without its attempt number."""
        if not self.counts_progress:
            return self.name
        return "-".join(key.split("-")[: len(self.name.split("-")) + 1])

    def answered(self, key: str, state: CaseState) -> bool:
        """Whether the store has moved on from the wait keyed `key`: the run waiting on it can be
        resumed, and will ask again, if at all, under a new key."""
        return self.base_key(state) != self.base_of(key)


def _always(_state: CaseState) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Process:
    """One process a case can run, with its own flow run (a deployment run, not a subflow)."""

    id: str
    title: str
    # The flow, as "package.module:function"; its name must be the process id.
    flow: str
    # The flow run's name; `{case_ref}` is replaced by the case reference.
    run_name: str
    steps: tuple[Step, ...]
    # Its dashboard forms, in the order its flow reaches them; each filled with the steps that
    # name it (see `Wait`).
    waits: tuple[Wait, ...] = ()
    # When the case starts this process: a rule over the case, checked after every change.
    starts: Callable[[CaseState], bool] = _always
    # What starting it does beyond opening its steps that open on start (`ON_START`) with their
    # anchor dates known: it opens those with one item per subject (an agency's information), and
    # anything else starting does (the meeting arranged).
    on_start: Callable[[CaseState, Context], list[Effect]] | None = None
    # The case closes when this returns a reason and no open item keeps it open (the root process
    # only: the case's own).
    closes: Callable[[CaseState], str | None] | None = None
    tags: tuple[str, ...] = ("case",)
    # The acts this process owns (its waits, or another process's, may offer them).
    acts: tuple[Act, ...] = ()
    # The stage a case is in while this process has work open (see `Registry.stage_of`); None for
    # a process that is no stage of its own.
    stage: Stage | None = None
    # Roles of its own that a person may hold (in the people directory) and its steps may name.
    roles: tuple[str, ...] = ()
    # The anchor dates this process's rules set (`SetAnchor`), declared here with the steps that
    # count from them: any process's steps may count from them, a person may move them.
    anchors: tuple[AnchorSpec, ...] = ()

    def __post_init__(self) -> None:
        _key_name(self.id, "a process id")
        if not _FLOW_PATH.match(self.flow):
            raise ValueError(f"process {self.id}: flow must be 'package.module:function'")
        if "{case_ref}" not in self.run_name:
            raise ValueError(f"process {self.id}: run_name must contain {{case_ref}}")
        ids = [spec.step for spec in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError(f"process {self.id}: a step id is declared twice")
        names = [wait.name for wait in self.waits]
        if len(set(names)) != len(names):
            raise ValueError(f"process {self.id}: a wait name is declared twice")
        for name in names:
            if any(other != name and other.startswith(f"{name}-") for other in names):
                raise ValueError(f"process {self.id}: wait {name} is a prefix of another's name")
        for spec in self.steps:
            for name in (*spec.waits, *spec.also_on):
                if name not in names:
                    raise ValueError(f"process {self.id}: step {spec.step} names wait {name}, which the "
                                     "process does not have")
            if spec.opens == ON_START and spec.subject_field is not None and self.on_start is None:
                raise ValueError(f"process {self.id}: step {spec.step} is never opened: it opens on start "
                                 "with one item per subject, and the process has no on_start to open them")
        for role in self.roles:
            _key_name(role, f"process {self.id}: a role")
        object.__setattr__(self, "waits", self._filled_waits())

    def _filled_waits(self) -> tuple[Wait, ...]:
        filled: list[Wait] = []
        offered: set[str] = set()
        for wait in self.waits:
            named = [spec for spec in self.steps if wait.name in spec.waits or wait.name in spec.also_on]
            carried = [spec for spec in named if wait.name in spec.also_on and spec.step in offered]
            items = (*(spec for spec in named if spec not in carried), *carried)
            primary = tuple(spec.step for spec in items if wait.name in spec.waits)
            if not primary:
                raise ValueError(f"process {self.id}: no step waits for wait {wait.name} (Step.waits)")
            if not {spec.step for spec in wait.items} <= {spec.step for spec in items}:
                raise ValueError(f"process {self.id}: wait {wait.name} lists a step that does not name "
                                 "it; a step names the waits it is on (Step.waits, Step.also_on)")
            offered |= {spec.step for spec in named}
            filled.append(replace(wait, items=items, primary=primary))
        return tuple(filled)

    @property
    def deployment(self) -> str:
        """The deployment's full name in Prefect: the flow's name, then the deployment's."""
        return f"{self.id}/{self.id}"

    def name_run(self, case_ref: str) -> str:
        return self.run_name.replace("{case_ref}", case_ref)

    def idempotency_key(self, case_ref: str) -> str:
        return f"{self.id}-{case_ref.lower()}"

    def current_wait(self, state: CaseState) -> Wait | None:
        """The first of its waits with an item open: what its flow waits for now."""
        return next((wait for wait in self.waits if wait.is_open(state)), None)

    def wait_for_key(self, key: str) -> Wait | None:
        """The wait a run suspended on `key` is in."""
        return next((wait for wait in self.waits if wait.owns(key)), None)

    def wait_named(self, name: str) -> Wait:
        found = next((wait for wait in self.waits if wait.name == name), None)
        if found is None:
            raise KeyError(f"process {self.id} has no wait {name}")
        return found

    @property
    def opened_on_start(self) -> tuple[Step, ...]:
        """Its steps that open when it starts (those without a subject by themselves, once their
        anchor date is known; the others by its `on_start`)."""
        return tuple(spec for spec in self.steps if spec.opens == ON_START)


@dataclass(frozen=True, slots=True)
class SystemFlow:
    """A deployment that belongs to no case: deadline checks, outbox delivery, the sweeps, the
    digests and reports. It runs when told (a timer's run), every `every_seconds` (a sweep), or at
    the times of day its `cron` names, read in Europe/London (`SCHEDULE_TIMEZONE`), so 08:00 stays
    08:00 across the clock changes."""

    name: str
    flow: str
    tags: tuple[str, ...]
    every_seconds: int | None = None
    # Five fields: minute, hour, day of month, month, day of week.
    cron: str | None = None

    def __post_init__(self) -> None:
        _key_name(self.name, "a system flow's name")
        if not _FLOW_PATH.match(self.flow):
            raise ValueError(f"system flow {self.name}: flow must be 'package.module:function'")
        if self.every_seconds is not None and self.cron is not None:
            raise ValueError(f"system flow {self.name}: an interval or a cron, not both")
        if self.cron is not None and len(self.cron.split()) != 5:
            raise ValueError(f"system flow {self.name}: a cron has five fields")

    @property
    def timezone(self) -> str | None:
        """The timezone its cron is read in; None without a cron."""
        return SCHEDULE_TIMEZONE if self.cron is not None else None

    @property
    def deployment(self) -> str:
        return f"{self.name}/{self.name}"


# -- the registry ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Registry:
    """Every process and system flow, checked for consistency once, when built."""

    processes: tuple[Process, ...]
    system_flows: tuple[SystemFlow, ...]
    _items: dict[str, tuple[Process, Step]] = field(init=False, repr=False)
    _acts: dict[str, tuple[Process, Act]] = field(init=False, repr=False)
    _settings: dict[str, ClockSetting] = field(init=False, repr=False)
    _anchors: dict[str, AnchorSpec] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.processes:
            raise ValueError("the registry needs the case process")
        if self.processes[0].stage is None:
            raise ValueError(f"the root process {self.processes[0].id} must declare its stage")
        ids = [process.id for process in self.processes]
        if len(set(ids)) != len(ids):
            raise ValueError("two processes have the same id")
        names = [flow.name for flow in self.system_flows]
        if len(set(names) | set(ids)) != len(names) + len(ids):
            raise ValueError("a flow name is used twice")
        items: dict[str, tuple[Process, Step]] = {}
        for process in self.processes:
            for spec in process.steps:
                if spec.step in items:
                    raise ValueError(f"step {spec.step} belongs to two processes")
                items[spec.step] = (process, spec)
        acts: dict[str, tuple[Process, Act]] = {}
        for process in self.processes:
            for act in process.acts:
                if act.name in acts or act.name in items:
                    raise ValueError(f"act {act.name} is named twice")
                acts[act.name] = (process, act)
        offered = {act.name for process in self.processes for wait in process.waits for act in wait.acts}
        if not offered <= set(acts):
            raise ValueError("a wait offers an act no process owns")
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_acts", acts)
        object.__setattr__(self, "_settings", self._checked_settings())
        object.__setattr__(self, "_anchors", self._checked_anchors())
        self._check_openings()
        self._check_roles()

    def _check_openings(self) -> None:
        """Every `OpenedBy` names a step or act, and every step is opened by something that is
        itself opened (its process's start, an act, or a step opened in turn)."""
        opened_by: dict[str, str] = {}
        for _, spec in self._items.values():
            if isinstance(spec.opens, OpenedBy):
                if spec.opens.name not in self._items and spec.opens.name not in self._acts:
                    raise ValueError(f"step {spec.step} is opened by {spec.opens.name}, which no process "
                                     "has as a step or an act")
                opened_by[spec.step] = spec.opens.name
        reached = {step for step in self._items if step not in opened_by} | set(self._acts)
        waiting = dict(opened_by)
        while True:
            newly = {step for step, opener in waiting.items() if opener in reached}
            if not newly:
                break
            reached |= newly
            waiting = {step: opener for step, opener in waiting.items() if step not in newly}
        if waiting:
            step = sorted(waiting)[0]
            raise ValueError(f"step {step} is never opened: it is opened by {waiting[step]}, which is "
                             "itself never opened")

    def _checked_settings(self) -> dict[str, ClockSetting]:
        settings: dict[str, ClockSetting] = {}
        for _, spec in self._items.values():
            for setting in spec.clock_settings:
                known = settings.setdefault(setting.name, setting)
                if known != setting:
                    raise ValueError(f"clock setting {setting.name} is declared twice, differently")
        return settings

    def _checked_anchors(self) -> dict[str, AnchorSpec]:
        """Every anchor the processes declare, each once; every step counts from one of them."""
        anchors: dict[str, AnchorSpec] = {}
        for declared in (a for process in self.processes for a in process.anchors):
            if declared.anchor in anchors:
                raise ValueError(f"anchor {declared.anchor} is declared twice")
            anchors[declared.anchor] = declared
        for _, spec in self._items.values():
            if spec.anchor not in anchors:
                raise ValueError(f"step {spec.step} counts from anchor {spec.anchor}, which no "
                                 "process declares")
        return anchors

    def _check_roles(self) -> None:
        allowed = {role.value for role in PERSON_ROLES} | self.roles | {AGENCY_LEAD}
        choices: list[Choice] = [*(spec for _, spec in self._items.values()),
                                 *(act for _, act in self._acts.values())]
        for choice in choices:
            unknown = sorted(set(choice.recorded_by) - allowed)
            if unknown:
                raise ValueError(f"{choice_name(choice)} is recorded by {', '.join(unknown)}, which is "
                                 "not a role anyone can hold (declare a process's own in Process.roles)")

    @property
    def root(self) -> Process:
        """The case's own process: started at referral, and the one that says when a case closes."""
        return self.processes[0]

    def process(self, process_id: str) -> Process:
        found = next((p for p in self.processes if p.id == process_id), None)
        if found is None:
            raise KeyError(f"no process {process_id}")
        return found

    def item(self, step: str) -> Step | None:
        found = self._items.get(step)
        return found[1] if found is not None else None

    def process_of(self, step: str) -> Process | None:
        """The process owning `step`, or the act named `step`."""
        found = self._items.get(step) or self._acts.get(step)
        return found[0] if found is not None else None

    def act(self, name: str) -> Act | None:
        found = self._acts.get(name)
        return found[1] if found is not None else None

    def choice(self, name: str) -> Choice | None:
        """The step or act named `name`."""
        return self.item(name) or self.act(name)

    @property
    def acts(self) -> tuple[str, ...]:
        return tuple(self._acts)

    @property
    def steps(self) -> tuple[str, ...]:
        """Every step id, process by process, each in its declared order."""
        return tuple(self._items)

    @property
    def rules(self) -> tuple[StepRule, ...]:
        return tuple(spec.rule for _, spec in self._items.values())

    @property
    def roles(self) -> frozenset[str]:
        """The roles the processes bring of their own (beyond the procedure's `PERSON_ROLES`)."""
        return frozenset(role for process in self.processes for role in process.roles)

    def system_flow(self, name: str) -> SystemFlow:
        return next(flow for flow in self.system_flows if flow.name == name)

    @property
    def flows(self) -> tuple[str, ...]:
        """Every flow to serve, as "package.module:function"."""
        return (*(p.flow for p in self.processes), *(f.flow for f in self.system_flows))

    def anchored_on(self, anchor: Anchor) -> list[Step]:
        return [spec for _, spec in self._items.values() if spec.anchor == anchor]

    def anchor(self, anchor: str) -> AnchorSpec | None:
        """The declaration of the anchor `anchor` (an id as typed will do), or None."""
        return self._anchors.get(anchor)

    @property
    def anchors(self) -> tuple[AnchorSpec, ...]:
        """Every anchor, each process's in the order declared, the processes in the registry's order."""
        return tuple(self._anchors.values())

    def opened_by(self, name: str) -> list[Step]:
        """The steps the record of step or act `name` opens."""
        return [spec for _, spec in self._items.values()
                if isinstance(spec.opens, OpenedBy) and spec.opens.name == name]

    # -- what follows from the declarations --------------------------------------------------------

    @property
    def clock_settings(self) -> Mapping[str, ClockSetting]:
        """Every clock a partnership may set, by name (`SBU_CLOCKS__<NAME>`)."""
        return dict(self._settings)

    def check_clocks(self, clocks: Clocks) -> Clocks:
        """`clocks`, once each length set is a setting some step declares and within its bound;
        otherwise a ValueError naming the setting (and the settings there are)."""
        for name, length in clocks.set_lengths.items():
            setting = self._settings.get(name)
            if setting is None:
                raise ValueError(f"clocks: {name} is not a clock setting of any step; the settings are "
                                 + ", ".join(sorted(self._settings)))
            if length > setting.at_most:
                raise ValueError(f"clocks: {name} must be from 1 to {setting.at_most}")
        return clocks

    def timetable(self, anchors: Mapping[Anchor, date], *, clocks: Clocks, calendar: WorkingDayCalendar,
                  near_miss: bool = False) -> list[Deadline]:
        """Every step counted from an anchor in `anchors` (`models.timetable.known_anchors`), by
        anchor in their order, then in the registry's order of steps."""
        return timetable(self.rules, anchors, clocks=clocks, calendar=calendar, near_miss=near_miss)

    def stage_of(self, state: CaseState) -> Stage:
        """Where the case stands: closed, awaiting the DSPs' decision, or the stage of the furthest
        process (the last in the registry) with a stage of its own and work open; else the root's."""
        if state.status is CaseStatus.CLOSED:
            return Stage.CLOSED
        if state.decision is None and state.path is None:
            return Stage.AWAITING_DECISION
        open_processes = {item.process for item in state.steps if item.is_open}
        for process in reversed(self.processes):
            if process.stage is not None and process.id in open_processes:
                return process.stage
        stage = self.root.stage
        assert stage is not None  # checked when built
        return stage


def assemble(processes: Sequence[Process], system_flows: Sequence[SystemFlow],
             modules: Iterable[str] = ()) -> Registry:
    """`processes` and `system_flows`, then what each module in `modules` adds: its `PROCESSES`
    (a sequence of `Process`) after them, and its `STEPS` (a mapping of a process id to the `Step`s
    it adds to that process, after the process's own). Importing those modules is the caller's
    edge: the CLI, `sbu serve` and a flow run's process build the registry with
    `SBU_PROCESS_MODULES` (`models.processes.build_registry`)."""
    found: list[Process] = list(processes)
    added: dict[str, list[Step]] = {}
    for name in modules:
        module = importlib.import_module(name)
        extra: Sequence[Process] = getattr(module, "PROCESSES", ())
        steps: Mapping[str, Sequence[Step]] = getattr(module, "STEPS", {})
        if not extra and not steps:
            raise ValueError(f"process module {name} exposes no PROCESSES (nor STEPS)")
        if not all(isinstance(p, Process) for p in extra):
            raise ValueError(f"process module {name}: PROCESSES must hold Process entries")
        if not all(isinstance(s, Step) for new in steps.values() for s in new):
            raise ValueError(f"process module {name}: STEPS must map process ids to Step entries")
        found += extra
        for process_id, new in steps.items():
            added.setdefault(process_id, []).extend(new)
    missing = sorted(set(added) - {process.id for process in found})
    if missing:
        raise ValueError(f"STEPS adds steps to {', '.join(missing)}, which no process is")
    found = [replace(p, steps=(*p.steps, *added[p.id])) if p.id in added else p for p in found]
    return Registry(tuple(found), tuple(system_flows))
