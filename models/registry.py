"""The process registry: every process a case can run, as one entry each.

A process (the case itself, the Rapid Review, and later the CSPR and the action plan) is a
`Process`: its flow and deployment, the dated items it owns (`ItemSpec`: a step's rule, its form,
what recording it does), the waits its flow suspends on (`Wait`: which items a dashboard form
answers, and how its key is named), when it starts and what starting it opens, and the anchor
dates it brings (`models.anchors.AnchorSpec`). Serving, warm start, creating and resuming runs,
and the reconciliation sweep all loop over the registry, so adding a process is one entry here
plus its flow; nothing in the bridge, reconcile or serve changes. The registry knows every anchor
(the procedure's own and each process's) and refuses a step counted from one no one declares.

The built-in processes live in `models.processes`. A partnership's own process (or a test's toy
one) lives in a module (or package, which may carry its emails and their templates) named by the
`SBU_PROCESS_MODULES` setting, which exposes `PROCESSES`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from models.anchors import PROCEDURE_ANCHORS, AnchorSpec
from models.enums import StepId
from models.schedules import SCHEDULE_TIMEZONE
from models.timetable import Anchor, StepRule

if TYPE_CHECKING:
    from models.effects import Effect
    from models.procedure import Context
    from models.state import CaseState, ItemState

# Prefect's pause keys, input keys and our idempotency keys allow lowercase letters, digits and
# dashes only (DESIGN.md §3); every name that reaches a key is held to that.
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


def _key_name(value: str, what: str) -> str:
    if not _KEY_NAME.fullmatch(value) or len(value) > 40:
        raise ValueError(f"{what} {value!r} must be lowercase letters, digits and single dashes")
    return value


@dataclass(frozen=True, slots=True)
class ItemSpec:
    """One kind of dated obligation a process owns: the step's rule (title, owner, anchor, clock,
    source), the form that records it, and what recording it does."""

    rule: StepRule
    form: type[BaseModel]
    # None: recording completes the item with the form's structured values (see `procedure`).
    record: RecordHandler | None = None
    on_repeat: RepeatCheck | None = None
    # The form field naming which item of this kind is recorded (an agency, an action number);
    # None for a step a case has once.
    subject_field: str | None = None
    # The form field holding the date the step was done, checked against today and the anchor.
    date_field: str = "completed_on"
    # A step due before its anchor (the final report, due 7 working days before publication) may
    # be done before the anchor date too.
    done_before_anchor: bool = False
    # Whether opening the item emails its owner (not where the opening sends its own requests).
    notify_owner: bool = True
    # Whether the item gets reminder, overdue and escalation timers.
    alerts: bool = True
    on_retime: RetimeHandler | None = None
    # Its tab on a dashboard form that offers several choices: short, since the Prefect UI's form
    # is 512 px wide and does not wrap its tabs (the rule's title is the tab's description).
    label: str | None = None

    def __post_init__(self) -> None:
        _key_name(self.rule.step, "a step id")
        if self.date_field not in self.form.model_fields:
            raise ValueError(f"{self.form.__name__} has no field {self.date_field}")
        if self.subject_field is not None and self.subject_field not in self.form.model_fields:
            raise ValueError(f"{self.form.__name__} has no field {self.subject_field}")

    @classmethod
    def of(cls, step: StepId, **options: Any) -> ItemSpec:
        """The procedure's own step `step`: its rule (`models.timetable.STEP_RULES`) and its form
        (`models.forms.STEP_FORMS`), with `options`."""
        from models.forms import STEP_FORMS
        from models.timetable import STEP_RULES

        return cls(STEP_RULES[step], STEP_FORMS[step], **options)

    @property
    def step(self) -> str:
        return self.rule.step

    def subject_of(self, form: BaseModel) -> str:
        """Which item of this kind `form` records: '' for a step a case has once."""
        if self.subject_field is None:
            return ""
        value = getattr(form, self.subject_field)
        return str(getattr(value, "value", value))


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
    # Its tab on a dashboard form that offers several choices (see `ItemSpec.label`).
    label: str | None = None

    def __post_init__(self) -> None:
        _key_name(self.name, "an act name")
        if self.date_field is not None and self.date_field not in self.form.model_fields:
            raise ValueError(f"{self.form.__name__} has no field {self.date_field}")


Choice = ItemSpec | Act


def choice_name(choice: Choice) -> str:
    """How a form's choice is named in the store's records and in keys: a step id or an act name."""
    return choice.step if isinstance(choice, ItemSpec) else choice.name


def choice_title(choice: Choice) -> str:
    return choice.rule.title if isinstance(choice, ItemSpec) else choice.title


def choice_label(choice: Choice) -> str:
    """The choice's tab on a dashboard form: its label, or its title."""
    return choice.label or choice_title(choice)


# What a dashboard form's row of tabs can hold without spilling past the Prefect UI's 512 px
# dialog: about 55 characters in all (measured in Chromium; each tab adds its padding).
TAB_BUDGET = 55


@dataclass(frozen=True, slots=True)
class Wait:
    """One dashboard form a process's flow suspends on, answering any of `items`.

    Its key names what it waits for, so that every record, from the dashboard or from `sbu`, wakes
    the run to a fresh wait and no wait is ever answered twice:
    - a wait for one step a case has once is keyed by its name (`dsp-decision`) while it is open;
    - any other wait (several choices, or a step with one item per agency or action) is keyed by
      its name and a count of what is recorded so far (`rr-meeting-3`), so each record moves it to
      a new key. The count is `progress`, or by default how many of its choices' forms the case
      store has recorded (`CaseState.record_counts`).
    An answer the rules refuse is asked again under the same key with `-2`, `-3`, ... after it: a
    key, once answered, keeps its answer.

    The wait is the flow's current one while an item of its `primary` steps is open (by default any
    of its items): a later wait may still offer an earlier step, such as an agency's late
    information, without being held back by it.
    """

    name: str
    title: str
    items: tuple[ItemSpec, ...]
    progress: Callable[[CaseState], int] | None = None
    # The Markdown above the form: what is asked, by when, under which rule.
    describe: Callable[[CaseState, Wait], list[str]] | None = None
    acts: tuple[Act, ...] = ()
    primary: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _key_name(self.name, "a wait name")
        if not self.items:
            raise ValueError(f"wait {self.name} answers no items")
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
    items: tuple[ItemSpec, ...]
    waits: tuple[Wait, ...] = ()
    # When the case starts this process: a rule over the case, checked after every change.
    starts: Callable[[CaseState], bool] = _always
    # What starting it does; None opens each of its items whose anchor date is known.
    on_start: Callable[[CaseState, Context], list[Effect]] | None = None
    # The case closes when this returns a reason (the root process only: the case's own).
    closes: Callable[[CaseState], str | None] | None = None
    tags: tuple[str, ...] = ("case",)
    # The acts this process owns (its waits, or another process's, may offer them).
    acts: tuple[Act, ...] = ()
    # The anchor dates this process brings (the procedure's own are in `models.anchors`): its
    # rules set them (`SetAnchor`), its steps may count from them, a person may move them.
    anchors: tuple[AnchorSpec, ...] = ()

    def __post_init__(self) -> None:
        _key_name(self.id, "a process id")
        if not _FLOW_PATH.match(self.flow):
            raise ValueError(f"process {self.id}: flow must be 'package.module:function'")
        if "{case_ref}" not in self.run_name:
            raise ValueError(f"process {self.id}: run_name must contain {{case_ref}}")
        waited = [spec.step for wait in self.waits for spec in wait.items]
        if not set(waited) <= {spec.step for spec in self.items}:
            raise ValueError(f"process {self.id} waits for an item it does not own")
        names = [wait.name for wait in self.waits]
        for name in names:
            if any(other != name and other.startswith(f"{name}-") for other in names):
                raise ValueError(f"process {self.id}: wait {name} is a prefix of another's name")

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


@dataclass(frozen=True)
class Registry:
    """Every process and system flow, checked for consistency once, when built."""

    processes: tuple[Process, ...]
    system_flows: tuple[SystemFlow, ...]
    _items: dict[str, tuple[Process, ItemSpec]] = field(init=False, repr=False)
    _acts: dict[str, tuple[Process, Act]] = field(init=False, repr=False)
    _anchors: dict[str, AnchorSpec] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.processes:
            raise ValueError("the registry needs the case process")
        ids = [process.id for process in self.processes]
        if len(set(ids)) != len(ids):
            raise ValueError("two processes have the same id")
        names = [flow.name for flow in self.system_flows]
        if len(set(names) | set(ids)) != len(names) + len(ids):
            raise ValueError("a flow name is used twice")
        items: dict[str, tuple[Process, ItemSpec]] = {}
        for process in self.processes:
            for spec in process.items:
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
        anchors: dict[str, AnchorSpec] = {}
        for declared in (*PROCEDURE_ANCHORS, *(a for process in self.processes for a in process.anchors)):
            if declared.anchor in anchors:
                raise ValueError(f"anchor {declared.anchor} is declared twice")
            anchors[declared.anchor] = declared
        for _process, item in items.values():
            if item.rule.anchor not in anchors:
                raise ValueError(f"step {item.step} counts from anchor {item.rule.anchor}, which no "
                                 "process declares")
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_acts", acts)
        object.__setattr__(self, "_anchors", anchors)

    @property
    def root(self) -> Process:
        """The case's own process: started at referral, and the one that says when a case closes."""
        return self.processes[0]

    def process(self, process_id: str) -> Process:
        found = next((p for p in self.processes if p.id == process_id), None)
        if found is None:
            raise KeyError(f"no process {process_id}")
        return found


    def item(self, step: str) -> ItemSpec | None:
        found = self._items.get(step)
        return found[1] if found is not None else None

    def process_of(self, step: str) -> Process | None:
        """The process owning `step`, or the act named `step`."""
        found = self._items.get(step) or self._acts.get(step)
        return found[0] if found is not None else None

    def act(self, name: str) -> Act | None:
        found = self._acts.get(name)
        return found[1] if found is not None else None

    @property
    def acts(self) -> tuple[str, ...]:
        return tuple(self._acts)

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(self._items)

    def system_flow(self, name: str) -> SystemFlow:
        return next(flow for flow in self.system_flows if flow.name == name)

    @property
    def flows(self) -> tuple[str, ...]:
        """Every flow to serve, as "package.module:function"."""
        return (*(p.flow for p in self.processes), *(f.flow for f in self.system_flows))

    def anchored_on(self, anchor: Anchor) -> list[ItemSpec]:
        return [spec for _, spec in self._items.values() if spec.rule.anchor == anchor]

    def anchor(self, anchor: str) -> AnchorSpec | None:
        """The declaration of the anchor `anchor` (an id as typed will do), or None."""
        return self._anchors.get(anchor)

    @property
    def anchors(self) -> tuple[AnchorSpec, ...]:
        """Every anchor: the procedure's own, then each process's, in the order declared."""
        return tuple(self._anchors.values())


def build_registry(modules: Iterable[str] = ()) -> Registry:
    """The built-in processes and system flows, then those of each module in `modules` (each
    exposes `PROCESSES`, a sequence of `Process`). Importing those modules is the caller's edge:
    the CLI, `sbu serve` and a flow run's process call this with `SBU_PROCESS_MODULES`."""
    from models.processes import BUILTIN_PROCESSES, SYSTEM_FLOWS

    processes: list[Process] = list(BUILTIN_PROCESSES)
    for name in modules:
        module = importlib.import_module(name)
        extra: Sequence[Process] = getattr(module, "PROCESSES", ())
        if not extra or not all(isinstance(p, Process) for p in extra):
            raise ValueError(f"process module {name} exposes no PROCESSES")
        processes += extra
    return Registry(tuple(processes), SYSTEM_FLOWS)
