"""The desk's forms, derived from the domain forms (`models.forms`) and the process registry
(`models.registry`, each step and act declared once in its process): the one place that reads how
steps are declared, so a change there is adapted here and nowhere else in the desk. A step a
partnership adds in a declaration of its own (`SBU_PROCESS_MODULES`) is offered like the
procedure's: its form, its title, who may record it (the roles its declaration names, a process's
own roles included), and the acts of the waits that ask for it.

A domain form becomes a list of `Input`s: each field with its title and description, marked
required or not, with the HTML constraints the browser checks as a person types (required,
minlength, maxlength, pattern, min and max dates), and choices by their titles, narrowed to the
case: the agencies involved, the agencies whose item is still open, the template's IMR sections,
the open actions by their summary, the people who may sign for each DSP role. The browser's
checks are a courtesy: the domain form and the procedure check everything again on the server,
and their refusals are put back at the field (`deployments.web.refusals`).

Which forms a case offers: each step with an item open (a step already done is not offered), each
act a waiting form of its processes offers now (as the dashboard would), a new due date for an open
item, and a new date for an anchor date of the case (one a person may move: `models.anchors`),
each only to a person whose roles may record it (`models.access.roles_to_record`).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from enum import Enum, StrEnum
from functools import cache
from typing import Any

from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

from models.access import NEW_DUE_DATE, People, roles_to_record
from models.anchors import AnchorSpec
from models.calendar import LONDON
from models.choices import Option, base_type, enum_options, field_shape
from models.enums import DSP_ROLES, ActionSource, Agency, Anchor, CaseStatus, Role
from models.fields import Paragraphs
from models.forms import SIGNATURE_FIELDS, DspSignature, Referral, RetimeForm
from models.processes import StepId
from models.refusals import field_titles as domain_field_titles
from models.registry import Act, Registry, Step
from models.state import CaseState, ItemState
from models.titles import agency_title, words

REFERRAL = "referral"
# The new-anchor-date form's key: moving an anchor is checked as a new due date is (no step or act
# has either name).
NEW_ANCHOR_DATE = "new-anchor-date"
# The field of the new-due-date form naming the item to re-time, and of the new-anchor-date form
# naming the anchor (neither is a field of `RetimeForm`).
ITEM_FIELD = "item"
ANCHOR_FIELD = "anchor"
# How many children a referral can name (the domain form's own limit) and reviewers a CSPR has.
MAX_CHILDREN = 4


class Widget(StrEnum):
    TEXT = "text"
    TEXTAREA = "textarea"
    DATE = "date"
    MOMENT = "datetime-local"
    TIME = "time"
    NUMBER = "number"
    SELECT = "select"
    RADIOS = "radios"
    YES_NO = "yes-no"
    CHECKBOX = "checkbox"
    CHECKBOXES = "checkboxes"
    TEXTS = "texts"  # a list of short texts, one box each (a CSPR's reviewers)


class Kind(StrEnum):
    """What submitting a form does."""

    STEP = "step"
    ACT = "act"
    RETIME = "retime"
    ANCHOR = "anchor"
    REFERRAL = "referral"


@dataclass(frozen=True, slots=True)
class Input:
    """One field of a form as the page draws it. `name` is the domain form's field, dotted into a
    nested form (`dsp_la.name`, `children.0.age_years`)."""

    name: str
    title: str
    hint: str
    widget: Widget
    required: bool
    options: tuple[Option, ...] = ()
    minlength: int | None = None
    maxlength: int | None = None
    pattern: str | None = None
    low: str | None = None  # the earliest date (or time, or number) the browser lets through
    high: str | None = None
    count: int = 1  # how many boxes a list of texts has
    group: str = ""  # the fieldset it belongs to (a signature, a child)
    default: str = ""  # what a new form holds (today's date for the day a step was done)

    @property
    def dom_id(self) -> str:
        return "f-" + re.sub(r"[^A-Za-z0-9]+", "-", self.name)


@dataclass(frozen=True, slots=True)
class DeskForm:
    """A form the desk offers: what it records (`key`: a step id, an act's name, `new-due-date`,
    `new-anchor-date` or `referral`), its title, what it asks, the domain form it is checked by,
    and its inputs."""

    key: str
    kind: Kind
    title: str
    about: str
    model: type[BaseModel]
    inputs: tuple[Input, ...]
    # The open items it answers, for the lines above it (due when, under which rule).
    items: tuple[ItemState, ...] = ()
    date_field: str | None = None

    def input(self, name: str) -> Input | None:
        return next((each for each in self.inputs if each.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(each.name for each in self.inputs)

    @property
    def groups(self) -> list[tuple[str, list[Input]]]:
        """The inputs in fieldsets: consecutive inputs of one group together, ungrouped alone."""
        grouped: list[tuple[str, list[Input]]] = []
        for each in self.inputs:
            if grouped and each.group and grouped[-1][0] == each.group:
                grouped[-1][1].append(each)
            else:
                grouped.append((each.group, [each]))
        return grouped


# -- what a field's annotation says --------------------------------------------------------------

def _constraint(metadata: Iterable[Any], name: str) -> Any:
    for item in metadata:
        value = getattr(item, name, None)
        if value is not None:
            return value
    return None


def html_pattern(pattern: str) -> str:
    """A Python regular expression as an HTML `pattern`: anchored already (the browser anchors it),
    and spelt for the `v` flag browsers compile patterns with, where `( ) [ ] { } / - |` inside a
    character class are escaped."""
    body = pattern.removeprefix("^").removesuffix("$")
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(body):
        ch = body[index]
        if ch == "\\":
            out.append(body[index:index + 2])
            index += 2
            continue
        if not in_class:
            out.append(ch)
            if ch == "[":
                in_class = True
                if body[index + 1:index + 2] == "^":
                    out.append("^")
                    index += 1
            index += 1
            continue
        following = body[index + 1:index + 2]
        if ch == "]":
            in_class = False
            out.append(ch)
        elif ch == "-":
            previous = out[-1] if out else ""
            literal = previous in ("[", "^") or following == "]"
            out.append("\\-" if literal else "-")
        elif ch in "()[]{}/|" or (ch in "&!#$%*+,.:;<=>?@^`~" and following == ch):
            out.append("\\" + ch)
        else:
            out.append(ch)
        index += 1
    return "".join(out)


# What a field's pattern asks for, in words: said under the field before anything is typed.
_PATTERN_HINTS: dict[str, str] = {
    r"^[A-Za-z0-9][A-Za-z0-9._/-]*$": "Letters, digits and . _ / - only, starting with a letter or digit.",
    r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$": "Letters, digits and . _ / - only, starting with a letter or "
                                           "digit; up to 64 characters.",
    r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$": "Letters, digits and dashes, starting with a letter or digit; up "
                                        "to 32 characters.",
    r"^[A-Za-z][A-Za-z0-9 ,.'&()/-]*$": "A job title, starting with a letter.",
}


def pattern_hint(pattern: str | None) -> str:
    return _PATTERN_HINTS.get(pattern or "", "")


# Fields the domain forms leave untitled (the referral's): how the desk asks for them.
_TITLES: dict[str, tuple[str, str]] = {
    "referring_agency": ("Referring agency", "The agency that referred the incident."),
    "external_ref": ("Referring agency's reference", "The referring agency's own reference."),
    "category": ("Category", "A death, serious harm, or a near miss."),
    "abuse_or_neglect": ("Abuse or neglect", "Whether abuse or neglect is known or suspected."),
    "incident_date": ("Incident date", "The day the incident happened."),
    "la_aware_date": ("Local authority aware on", "The day the local authority became aware."),
    "referred_at": ("Received by the SBU at", "When the SBU received the referral (London time)."),
    "children": ("Children", "Each child the incident concerns, by the local authority's record id only."),
    "agencies_involved": ("Agencies involved", "Every agency asked for information."),
    "la_record_id": ("Local authority record id", "The local authority's record id for the child: no "
                                                  "name."),
    "age_years": ("Age in years", "Age in whole years."),
    "looked_after": ("Looked after", "Looked after by the local authority."),
    "care_leaver": ("Care leaver", "A care leaver (up to and including age 24)."),
}


# A procedure's step whose declared title names the thing, not what the form records (any other
# step, a partnership's own included, is offered under its declared title).
_FORM_TITLES = {StepId.ACTION.value: "Action closed",
                StepId.CSPR_IMR.value: "Individual Management Review received"}
# What a field offered as the case's own choices asks, where its description names codes instead.
_NARROWED_HINTS = {"action": "The action, by its number, what it is, its agency and its due date."}


def _titled(name: str, info: FieldInfo) -> tuple[str, str]:
    fallback = _TITLES.get(name, (words(name), ""))
    return info.title or fallback[0], info.description or fallback[1]


# -- building a form's inputs ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Narrowing:
    """What the case allows in a form's choices: for a field (by name), its options; for each DSP
    role, who may sign (None: any name may be typed)."""

    options: Mapping[str, tuple[Option, ...]] = field(default_factory=dict)
    signers: Mapping[Role, tuple[Option, ...]] | None = None
    today: date | None = None
    date_field: str | None = None


def build_inputs(model: type[BaseModel], narrowing: Narrowing, *, prefix: str = "", group: str = "",
                 required: bool = True) -> list[Input]:
    """The inputs of `model`'s fields; inside a group (a signature, a child) named `prefix.field`.
    With `required` False (a second child, say) none is required."""
    inputs: list[Input] = []
    for name, info in model.model_fields.items():
        inputs += _inputs_of(name, info, narrowing, prefix=prefix, group=group,
                             required=required and info.is_required())
    return inputs


def _inputs_of(name: str, info: FieldInfo, narrowing: Narrowing, *, prefix: str, group: str,
               required: bool) -> list[Input]:
    shape = field_shape(info.annotation, info.metadata)
    title, hint = _titled(name, info)
    full = f"{prefix}{name}"
    base = Input(name=full, title=title, hint=hint, widget=Widget.TEXT, required=required, group=group)
    options = narrowing.options.get(full)
    if options is not None and name in _NARROWED_HINTS:
        base = replace(base, hint=_NARROWED_HINTS[name])
    kind = shape.base
    if kind is DspSignature:
        return _signature(name, title, narrowing, required=required)
    item = shape.item
    if item is not None:
        if isinstance(item.base, type) and issubclass(item.base, BaseModel):
            return _repeated(name, title, item.base, narrowing, required=required)
        if options is None and isinstance(item.base, type) and issubclass(item.base, Enum):
            options = enum_options(item.base)
        if options is not None:
            return [replace(base, widget=Widget.CHECKBOXES, options=options)]
        most = _constraint(shape.metadata, "max_length") or 1
        return [replace(base, widget=Widget.TEXTS, count=int(most), **_text_limits(item.metadata))]
    if options is not None or (isinstance(kind, type) and issubclass(kind, Enum)):
        chosen = options if options is not None else enum_options(kind)
        widget = Widget.RADIOS if len(chosen) <= 4 else Widget.SELECT
        return [replace(base, widget=widget, options=chosen)]
    if kind is bool:
        return [replace(base, widget=Widget.YES_NO if info.is_required() else Widget.CHECKBOX,
                        required=required and info.is_required())]
    if kind is int:
        return [replace(base, widget=Widget.NUMBER, low=_number(shape.metadata, "ge"),
                        high=_number(shape.metadata, "le"))]
    if kind is date:
        return [_date_input(base, name, narrowing)]
    if kind is AwareDatetime or (isinstance(kind, type) and issubclass(kind, datetime)):
        today = narrowing.today
        return [replace(base, widget=Widget.MOMENT, high=f"{today.isoformat()}T23:59" if today else None,
                        hint=f"{hint} London time.".strip())]
    limits = _text_limits(shape.metadata)
    if limits.get("pattern") == html_pattern(r"^([01][0-9]|2[0-3]):[0-5][0-9]$"):
        return [replace(base, widget=Widget.TIME, hint=f"{hint} London time, as HH:MM.".strip())]
    widget = Widget.TEXTAREA if any(item is Paragraphs for item in shape.metadata) else Widget.TEXT
    extra = pattern_hint(_constraint(shape.metadata, "pattern"))
    return [replace(base, widget=widget, hint=" ".join(part for part in (hint, extra) if part), **limits)]


def _number(metadata: Sequence[Any], name: str) -> str | None:
    value = _constraint(metadata, name)
    return str(value) if value is not None else None


def _text_limits(metadata: Sequence[Any]) -> dict[str, Any]:
    pattern = _constraint(metadata, "pattern")
    return {"minlength": _constraint(metadata, "min_length"),
            "maxlength": _constraint(metadata, "max_length"),
            "pattern": html_pattern(pattern) if pattern else None}


def _date_input(base: Input, name: str, narrowing: Narrowing) -> Input:
    """The day a step was done is today or before (today's date to begin with); any other date a
    form asks for (a due date, a meeting, a planned publication) is today or after."""
    today = narrowing.today.isoformat() if narrowing.today else None
    if name == narrowing.date_field:
        return replace(base, widget=Widget.DATE, high=today, default=today or "")
    if name.endswith(("_date", "decided_on", "completed_on", "noted_on")):
        return replace(base, widget=Widget.DATE, high=today)
    return replace(base, widget=Widget.DATE, low=today)


def _signature(name: str, title: str, narrowing: Narrowing, *, required: bool) -> list[Input]:
    role = next(role for role, field_name in SIGNATURE_FIELDS.items() if field_name == name)
    signers = narrowing.signers.get(role) if narrowing.signers is not None else None
    info = DspSignature.model_fields["name"]
    if signers is not None:
        who = Input(name=f"{name}.name", title="Signed by", widget=Widget.SELECT, required=required,
                    hint="A person the partnership's directory names for this role, or as its deputy.",
                    options=signers, group=title)
    else:
        shape = field_shape(info.annotation, info.metadata)
        who = Input(name=f"{name}.name", title="Signed by", hint=info.description or "", widget=Widget.TEXT,
                    required=required, group=title, **_text_limits(shape.metadata))
    deputy = Input(name=f"{name}.deputy", title="Signed by a deputy acting for the role-holder",
                   hint="", widget=Widget.CHECKBOX, required=False, group=title)
    return [who, deputy]


def _repeated(name: str, title: str, model: type[BaseModel], narrowing: Narrowing, *,
              required: bool) -> list[Input]:
    """A list of nested forms (a referral's children): a fieldset each, the first required."""
    inputs: list[Input] = []
    singular = "Child" if name == "children" else title
    for index in range(MAX_CHILDREN):
        label = f"{singular} {index + 1}"
        if index:
            label += " (if there is one)"
        inputs += build_inputs(model, narrowing, prefix=f"{name}.{index}.", group=label,
                               required=required and index == 0)
    return inputs


# -- the forms a case offers -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ActionSummary:
    """An action of the plan as a choice names it: its number, what it is, its agency and due date."""

    action: str
    summary: str
    agency: str
    due: date
    open: bool


@dataclass(frozen=True, slots=True)
class CaseContext:
    """Everything the case's forms are narrowed by."""

    state: CaseState
    registry: Registry
    imr_sections: tuple[str, ...]
    actions: tuple[ActionSummary, ...]
    people: People | None
    today: date


class MayRecord(typing.Protocol):
    def __call__(self, step: str, subject: str = "") -> bool: ...


def case_forms(context: CaseContext, *, may: MayRecord) -> list[DeskForm]:
    """Every form the case offers now to a person who `may` record what it records."""
    state = context.state
    if state.status is CaseStatus.CLOSED:
        return []
    forms: list[DeskForm] = []
    for process in context.registry.processes:
        for spec in process.steps:
            built = _step_form(spec, context, may=may)
            if built is not None:
                forms.append(built)
    offered: set[str] = set()
    for process in context.registry.processes:
        if not state.started(process.id):
            continue
        for wait in process.waits:
            if not wait.is_open(state):
                continue
            for act in wait.acts:
                if act.name not in offered and may(act.name):
                    offered.add(act.name)
                    built_act = _act_form(act, context)
                    if built_act is not None:
                        forms.append(built_act)
    if state.open_steps() and may(NEW_DUE_DATE):
        forms.append(_retime_form(context))
    anchors = movable_anchors(context)
    if anchors and may(NEW_DUE_DATE):
        forms.append(_anchor_form(context, anchors))
    return forms


def case_form(context: CaseContext, key: str, *, may: MayRecord) -> DeskForm | None:
    """The form `key` of the case, if the case offers it now to this person."""
    return next((form for form in case_forms(context, may=may) if form.key == key), None)


def _step_form(spec: Step, context: CaseContext, *, may: MayRecord) -> DeskForm | None:
    state = context.state
    open_items = [item for item in state.items_of(spec.step) if item.is_open]
    if not open_items:
        return None
    options = _field_options(spec.form, context)
    if spec.subject_field is not None:
        allowed = [item for item in open_items if may(spec.step, item.subject)]
        if not allowed:
            return None
        options[spec.subject_field] = _subject_options(spec, allowed, context)
        open_items = allowed
    elif not may(spec.step):
        return None
    narrowing = Narrowing(options=options, signers=_signers(context.people), today=context.today,
                          date_field=spec.date_field)
    return DeskForm(key=spec.step, kind=Kind.STEP, title=_FORM_TITLES.get(spec.step, spec.title),
                    about=_about(spec.form),
                    model=spec.form, inputs=tuple(build_inputs(spec.form, narrowing)),
                    items=tuple(open_items), date_field=spec.date_field)


def _act_form(act: Act, context: CaseContext) -> DeskForm | None:
    options = _field_options(act.form, context)
    if any(not choices for choices in options.values()):
        return None  # e.g. progress on an action when none is open
    narrowing = Narrowing(options=options, signers=_signers(context.people), today=context.today,
                          date_field=act.date_field)
    return DeskForm(key=act.name, kind=Kind.ACT, title=act.title, about=_about(act.form), model=act.form,
                    inputs=tuple(build_inputs(act.form, narrowing)), date_field=act.date_field)


def _retime_form(context: CaseContext) -> DeskForm:
    state = context.state
    choices = tuple(Option(item.label, f"{item.title}{_subject_words(item)}, due {item.due:%a %d %b %Y}")
                    for item in sorted(state.open_steps(), key=lambda each: (each.due, each.label)))
    which = Input(name=ITEM_FIELD, title="Which step", hint="The open step whose due date moves.",
                  widget=Widget.SELECT, required=True, options=choices)
    narrowing = Narrowing(today=context.today)
    inputs = [which, *build_inputs(RetimeForm, narrowing)]
    inputs = [replace(each, title="New due date", hint="The day it is now due (today or later).")
              if each.name == "due" else each for each in inputs]
    return DeskForm(key=NEW_DUE_DATE, kind=Kind.RETIME, title="New due date for a step",
                    about="Give an open step a new due date, with the reason; its reminders, overdue "
                          "alert and escalations move with it.",
                    model=RetimeForm, inputs=tuple(inputs))


def movable_anchors(context: CaseContext) -> list[AnchorSpec]:
    """The case's anchor dates a person may move: each declared as the case's own and movable,
    and already set on the case (a date not yet reached is set by the procedure's own rule)."""
    return [spec for spec in context.registry.anchors
            if spec.movable and spec.of_case and context.state.anchors.get(spec.anchor) is not None]


def _anchor_form(context: CaseContext, anchors: Sequence[AnchorSpec]) -> DeskForm:
    known = context.state.anchors
    choices = tuple(Option(spec.anchor.value, f"{spec.title}: now {known[spec.anchor]:%a %d %b %Y}")
                    for spec in anchors)
    which = Input(name=ANCHOR_FIELD, title="Which date", hint="The date of the case to correct.",
                  widget=Widget.SELECT, required=True, options=choices)
    inputs = [which, *build_inputs(RetimeForm, Narrowing(today=context.today))]
    # The date it moves to may be past or to come (a planned publication): no bound in the browser.
    inputs = [replace(each, hint="The date it should be.", low=None, high=None) if each.name == "due"
              else each for each in inputs]
    return DeskForm(key=NEW_ANCHOR_DATE, kind=Kind.ANCHOR, title="New anchor date",
                    about="Correct a date of the case that due dates are counted from, with the reason; "
                          "every open step counted from it follows, with its reminders, overdue alert and "
                          "escalations (a due date a person set stays).",
                    model=RetimeForm, inputs=tuple(inputs))


def referral_form(*, today: date) -> DeskForm:
    narrowing = Narrowing(today=today)
    inputs = build_inputs(Referral, narrowing)
    return DeskForm(key=REFERRAL, kind=Kind.REFERRAL, title="Refer a serious incident or near miss",
                    about="A new case: the SBU's record of the referral. Only the local authority's record "
                          "id identifies a child; no names, addresses or narrative.",
                    model=Referral, inputs=tuple(inputs))


def step_title(registry: Registry, step: str) -> str:
    """A step by its declared title (an id the registry does not know, as it is)."""
    spec = registry.item(step)
    return spec.title if spec is not None else step


def step_source(registry: Registry, step: str) -> str:
    """The authority for a step's due date, as its declaration names it ("" if unknown)."""
    spec = registry.item(step)
    return spec.source if spec is not None else ""


def _about(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").split())


def _subject_words(item: ItemState) -> str:
    return f" ({agency_title(item.subject)})" if item.agency is not None else \
        (f" ({item.subject})" if item.subject else "")


def _subject_options(spec: Step, items: Sequence[ItemState], context: CaseContext) -> tuple[Option, ...]:
    if spec.subject_field == "action":
        return _action_options([a for a in context.actions if a.open and
                                a.action in {item.subject for item in items}])
    return tuple(sorted((Option(item.subject, _subject_title(item)) for item in items),
                        key=lambda option: option.title))


def _subject_title(item: ItemState) -> str:
    title = agency_title(item.subject) if item.agency is not None else item.subject
    missing = item.details.get("missing_sections")
    if missing:
        title += f" (received; sections missing: {', '.join(words(each) for each in missing)})"
    return title


def _action_options(actions: Sequence[ActionSummary]) -> tuple[Option, ...]:
    return tuple(Option(a.action, f"{a.action.upper()}: {_clip(a.summary)} ({agency_title(a.agency)}, due "
                                  f"{a.due:%d %b %Y})") for a in actions)


def _clip(text: str, limit: int = 70) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1].rstrip() + "…"


def _field_options(model: type[BaseModel], context: CaseContext) -> dict[str, tuple[Option, ...]]:
    """The case's own choices for `model`'s fields, by what each field holds."""
    state = context.state
    options: dict[str, tuple[Option, ...]] = {}
    for name, info in model.model_fields.items():
        inner = base_type(info.annotation)
        if inner is Agency and name not in options:
            options[name] = enum_options(Agency, [a.value for a in state.agencies] or None)
        elif inner is ActionSource:
            sources = [source for source, anchor in ((ActionSource.RAPID_REVIEW, Anchor.RR_OUTCOME),
                                                     (ActionSource.CSPR, Anchor.CSPR_COMMISSIONED))
                       if state.anchors.get(anchor) is not None]
            options[name] = enum_options(ActionSource, sources)
        elif name == "missing_sections":
            options[name] = tuple(Option(section, words(section)) for section in context.imr_sections)
        elif name == "action":
            options[name] = _action_options([a for a in context.actions if a.open])
    return options


def _signers(people: People | None) -> dict[Role, tuple[Option, ...]] | None:
    """Who may sign for each DSP role, from the directory: its holders, then its named deputies."""
    if people is None:
        return None
    signers: dict[Role, tuple[Option, ...]] = {}
    for role in DSP_ROLES:
        holders = sorted((p for p in people.by_handle.values() if role.value in p.roles),
                         key=lambda p: p.name)
        deputies = sorted((p for p in people.by_handle.values()
                           if role.value in p.deputy_for and role.value not in p.roles), key=lambda p: p.name)
        signers[role] = (*(Option(p.name, p.name) for p in holders),
                         *(Option(p.name, f"{p.name} (named deputy)") for p in deputies))
    return signers


def may_record_anything(step: str, subject: str = "") -> bool:
    """Without a people directory anyone may record anything (the case service allows it too)."""
    del step, subject
    return True


def roles_allow(roles: frozenset[str], *, registry: Registry) -> MayRecord:
    """Whether a person holding `roles` may record a step or act (for an agency's item, that
    agency's), as its declaration in `registry` says."""
    def may(step: str, subject: str = "") -> bool:
        return bool(roles & roles_to_record(registry, step, subject))

    return may


# -- reading a submission ----------------------------------------------------------------------------

# What a browser posted: every value of every name, as typed.
Posted = Mapping[str, Sequence[str]]


def first(posted: Posted, name: str) -> str:
    values = posted.get(name) or ()
    return values[0] if values else ""


def domain_values(form: DeskForm, posted: Posted) -> dict[str, Any]:
    """What was posted for `form`, in the shape its domain form validates: empty fields left out (the
    domain form then names what is missing, or its default applies), yes-or-no as booleans, whole
    numbers as numbers, a London time as a moment with its offset, a nested form's fields nested.
    Anything else posted is ignored: only the form's own inputs are read."""
    values: dict[str, Any] = {}
    rows: dict[str, dict[int, dict[str, Any]]] = {}
    typed: dict[str, dict[int, bool]] = {}
    for each in form.inputs:
        if (each.name, form.kind) in ((ITEM_FIELD, Kind.RETIME), (ANCHOR_FIELD, Kind.ANCHOR)):
            continue
        found = _value_of(each, posted)
        parts = each.name.split(".")
        if len(parts) == 3 and parts[1].isdigit():
            index = int(parts[1])
            raw = posted.get(each.name) or ()
            typed.setdefault(parts[0], {}).setdefault(index, False)
            if any(value.strip() for value in raw):
                typed[parts[0]][index] = True
            if found is not _EMPTY:
                rows.setdefault(parts[0], {}).setdefault(index, {})[parts[2]] = found
            continue
        if found is _EMPTY:
            continue
        if len(parts) == 2:
            nested = values.setdefault(parts[0], {})
            if isinstance(nested, dict):
                nested[parts[1]] = found
        else:
            values[each.name] = found
    for name, by_index in rows.items():
        kept = [row for index, row in sorted(by_index.items()) if typed.get(name, {}).get(index)]
        if kept:
            values[name] = kept
    # A signature with nothing chosen is missing, not a signature by no one.
    for name in [key for key, value in values.items() if isinstance(value, dict)]:
        if set(values[name]) <= {"deputy"}:
            del values[name]
    return values


_EMPTY = object()


def _value_of(each: Input, posted: Posted) -> Any:
    raw = list(posted.get(each.name) or ())
    text = raw[0] if raw else ""
    match each.widget:
        case Widget.CHECKBOX:
            return bool(raw)
        case Widget.CHECKBOXES:
            return raw if raw else _EMPTY
        case Widget.TEXTS:
            given = [value for value in raw if value.strip()]
            return given if given else _EMPTY
        case Widget.YES_NO:
            return {"yes": True, "no": False}.get(text, text or _EMPTY)
        case Widget.NUMBER:
            return int(text) if re.fullmatch(r"[0-9]{1,4}", text) else (text or _EMPTY)
        case Widget.MOMENT:
            return _london_moment(text) if text else _EMPTY
        case Widget.TIME:
            # A browser's time box may send seconds; the form holds HH:MM.
            return text[:5] if re.fullmatch(r"[0-9]{2}:[0-9]{2}(:[0-9]{2})?", text) else (text or _EMPTY)
        case _:
            return text if text.strip() else _EMPTY


def _london_moment(text: str) -> str:
    """A `datetime-local` value (London wall time) as a moment with its offset; anything else as
    typed, for the domain form to refuse."""
    try:
        day, clock = text.split("T")
        moment = datetime.combine(date.fromisoformat(day), time.fromisoformat(clock), tzinfo=LONDON)
    except ValueError:
        return text
    return moment.isoformat()


@cache
def field_names(model: type[BaseModel]) -> frozenset[str]:
    """Every field name of `model` and of the forms nested in it (for finding a field a message names)."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(name)
        nested = base_type(info.annotation)
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            names |= field_names(nested)
    return frozenset(names)


@cache
def field_titles(model: type[BaseModel]) -> dict[str, str]:
    """The title of every field of `model` and of the forms nested in it, as the desk's inputs show
    them, by code name (the outer form's title wins where a nested form has a field of the same name)."""
    return domain_field_titles(model, title=lambda name, info: _titled(name, info)[0])


def item_of(state: CaseState, label: str) -> ItemState | None:
    """An open item by its label (`rr-agency-responses:police`)."""
    step, _, subject = label.partition(":")
    found = state.item(step, subject)
    return found if found is not None and found.is_open else None


def anchor_of(context: CaseContext, value: str) -> Anchor | None:
    """An anchor the case's new-anchor-date form offers, by its id as posted."""
    return next((spec.anchor for spec in movable_anchors(context) if spec.anchor.value == value), None)


def signature_roles() -> dict[str, Role]:
    return {name: role for role, name in SIGNATURE_FIELDS.items()}
