"""The dashboard's forms, derived from the domain's: one Prefect `RunInput` per wait, and the form
of that wait for one case.

A wait that records one thing (one step, or one act) has that form's fields, with their titles and
descriptions, and a "Recorded by" field. A wait that offers several has one field, "What to
record", whose choices are those forms: the Prefect UI shows each as a tab with its own fields.
Their fields are named apart (each prefixed by its choice) because the UI tells which tab an answer
belongs to by the fields it has. Nothing is copied by hand, so a field added to a domain form
appears on the dashboard as it is.

Two layers. `run_input_for` is the model an answer is read with: its types are loosened on purpose
(text as plain text, a closed choice as text, every field of a choice optional), so that any answer
the dashboard sends is read, and the flow validates it into the domain form instead
(`domain_form`), whose errors never echo a value, and asks again with the reason. `case_form` is
what the dashboard is shown for one case: the same fields, with the JSON schema the Prefect UI
draws and checks (`case_schema`): each field the domain form requires is required (so the UI marks
it and will not submit the form without it), closed choices are offered by their titles and
narrowed to the case (`models.choices`), a step already done is not offered, and an answer asked
again carries what was chosen before (never free text) as the fields' defaults. A required
yes-or-no is asked as a choice of "yes" or "no": the UI sends nothing for a switch left alone, and
leaving it alone must not answer "no".
"""

from __future__ import annotations

import copy
import re
import types
import typing
from collections.abc import Sequence
from datetime import date
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, Union

from prefect.input import RunInput
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from models.access import SEAL_MARK
from models.choices import (
    Option,
    base_type,
    domain_required,
    field_options,
    is_list,
    offered,
    value_of_choice,
)
from models.errors import SbuError
from models.fields import HIDDEN_CHARACTERS, hidden_character_in
from models.registry import Choice, Wait, choice_label, choice_name, choice_title
from models.state import CaseState

# What `sbu` puts in every text field when it resumes a run after recording the step in the store
# itself (`wake_up_answer`): the form's schema is met and nothing personal reaches Prefect.
RECORDED_IN_STORE = "Recorded with the sbu command; the details are in the case store."
PLACEHOLDER_DATE = date(2000, 1, 1)
# Who the wake-up answer says recorded it: "sbu" and an invisible separator, which `recorded_by`
# refuses in any answer a person sends, so no answer that could be recorded is taken for a wake-up.
WAKE_UP_NAME = "sbu\u2063"
RECORDED_BY = "recorded_by"
MAX_NAME = 80
RECORD = "record"
YES, NO = "yes", "no"
YesNo = Literal["yes", "no"]
# Separates a choice's prefix from a field's own name.
_SEPARATOR = "__"
_ISO_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class _Loose(BaseModel):
    """A loosened copy of a domain model: it refuses fields it does not have, so an answer can
    belong to one choice only."""

    model_config = ConfigDict(extra="forbid")


def loosened(annotation: Any, *, optional: bool = False) -> Any:
    """`annotation` without its constraints: text and closed choices as plain `str` (a choice is
    offered by its title), lists, optionals and nested forms kept (loosened in turn; with
    `optional`, a nested form's fields are all optional too)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return loosened(typing.get_args(annotation)[0], optional=optional)
    if origin in (Union, types.UnionType):
        args = tuple(loosened(arg, optional=optional) for arg in typing.get_args(annotation))
        return Union[args]  # noqa: UP007 - built from a tuple of types
    if origin is list:
        return list[loosened(typing.get_args(annotation)[0], optional=optional)]  # type: ignore[misc]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _loose_model(annotation, prefix="", title=annotation.model_config.get("title"),
                            optional=optional)
    if isinstance(annotation, type) and issubclass(annotation, str):
        return str
    return annotation


def _field(info: FieldInfo, *, optional: bool = False) -> tuple[Any, FieldInfo]:
    """A domain field as the dashboard reads it; with `optional`, never required (see
    `run_input_for`: a choice's fields are all optional)."""
    annotation = loosened(info.annotation, optional=optional)
    default: Any = ... if info.is_required() else info.default
    if annotation is bool and info.is_required():
        annotation = YesNo
    if not info.is_required() and info.default_factory is not None:
        default = info.default_factory()  # type: ignore[call-arg]
    if optional:
        annotation, default = annotation | None, None
    field: FieldInfo = Field(default, title=info.title, description=info.description,
                             json_schema_extra=_as_plain_input if default is None else None)
    return annotation, field


def _as_plain_input(schema: dict[str, Any]) -> None:
    """Show a field that may be left empty as its own input, not as a choice of types.

    The Prefect UI draws `X | None` as a switch between "X" and "None", set to "None": a person
    sees "Property is type None" where the field should be, and must find the switch before they
    can type (seen in a real browser on the SIN's form). Without the null and its default, the UI
    draws the plain input and sends nothing for it when it is left empty; the model still takes
    None, so an answer from `sbu` or the API is read as before.
    """
    variants = schema.get("anyOf")
    if isinstance(variants, list):
        kept = [variant for variant in variants if variant != {"type": "null"}]
        if len(kept) == 1 and len(kept) < len(variants):
            del schema["anyOf"]
            if "$ref" in kept[0]:
                # A shared definition (a signature) is referred to through allOf: beside a bare
                # $ref, the field's own title would be dropped, and the form must name it.
                schema["allOf"] = kept
            else:
                for key, value in kept[0].items():
                    schema.setdefault(key, value)
    if "default" in schema and schema["default"] is None:
        del schema["default"]


# Which loosened model stands for which domain model.
_DOMAIN: dict[type[BaseModel], type[BaseModel]] = {}


@cache
def _loose_model(form: type[BaseModel], *, prefix: str, title: str | None, about: str | None = None,
                 optional: bool = False) -> type[BaseModel]:
    """`form` loosened; as a choice, its fields prefixed, `title` on its tab and `about` (the step's
    full title) leading the description under it."""
    fields: dict[str, Any] = {f"{prefix}{name}": _field(info, optional=optional)
                              for name, info in form.model_fields.items()}
    name = f"{form.__name__}{'Choice' if prefix else 'Input'}{'Optional' if optional else ''}"
    model: type[BaseModel] = create_model(name, __base__=_Loose, **fields)
    model.__doc__ = f"{about}. {form.__doc__ or ''}".strip() if about else form.__doc__
    model.model_config["title"] = title or form.__name__
    model.model_rebuild(force=True)
    _DOMAIN[model] = form
    return model


def _prefix(choice: Choice) -> str:
    return choice_name(choice).replace("-", "_") + _SEPARATOR


class WaitInput(RunInput):
    """The base of every wait's form. A case's form (`case_form`) carries the JSON schema the
    dashboard is shown in `dashboard_schema`; Prefect stores that schema with the wait, draws the
    form from it and checks an answer against it before resuming the run."""

    dashboard_schema: ClassVar[dict[str, Any] | None] = None

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> Any:
        if cls.dashboard_schema is not None:
            return copy.deepcopy(cls.dashboard_schema)
        return handler(core_schema)


@cache
def run_input_for(wait: Wait) -> type[WaitInput]:
    """The model an answer to `wait` is read with."""
    fields: dict[str, Any] = {}
    if len(wait.choices) == 1:
        form = wait.choices[0].form
        fields.update({name: _field(info) for name, info in form.model_fields.items()})
    else:
        # Every field of a choice is optional here, whatever the form's schema requires: an answer
        # is read whichever tab it fills in, and the domain form names what is missing.
        variants = tuple(_loose_model(choice.form, prefix=_prefix(choice), title=choice_label(choice),
                                      about=choice_title(choice), optional=True)
                         for choice in wait.choices)
        fields[RECORD] = (Union[variants],  # noqa: UP007 - built from a tuple of types
                          Field(title="What to record", description="Choose one, then fill in its fields."))
    fields[RECORDED_BY] = (str, Field(title="Recorded by", description="Your name, for the audit trail."))
    name = "".join(part.capitalize() for part in wait.name.split("-")) + "Input"
    model: type[WaitInput] = create_model(name, __base__=WaitInput, **fields)
    # The form's title is the wait's, as a person names it, not the class name.
    model.model_config["title"] = wait.title
    model.model_rebuild(force=True)
    return model


# -- the form of one case ---------------------------------------------------------------------------

def case_form(wait: Wait, state: CaseState, *, imr_sections: Sequence[str],
              refused: BaseModel | None = None) -> type[WaitInput]:
    """`wait`'s form for the case `state`, as the dashboard shows it (`case_schema`); an answer to it
    is read as `run_input_for(wait)` reads it."""
    base = run_input_for(wait)
    model = typing.cast(type[WaitInput], create_model(base.__name__, __base__=base))
    model.dashboard_schema = case_schema(wait, state, imr_sections=imr_sections, refused=refused)
    return model


def case_schema(wait: Wait, state: CaseState, *, imr_sections: Sequence[str],
                refused: BaseModel | None = None) -> dict[str, Any]:
    """The JSON schema of `wait`'s form for the case `state`: every definition written out in
    place, each field the domain form requires required, closed choices by their titles and
    narrowed to the case, only the choices still to record offered; with `refused` (the answer
    asked again), what was chosen in it as the fields' defaults, and no text that was typed."""
    schema = _inlined(run_input_for(wait).model_json_schema())
    properties: dict[str, Any] = schema["properties"]
    given = refused.model_dump(mode="json") if refused is not None else {}
    if len(wait.choices) == 1:
        choice = wait.choices[0]
        _shape_fields(properties, choice.form, field_options(choice, state, imr_sections=imr_sections))
        schema["required"] = [*domain_required(choice.form), RECORDED_BY]
        for name, value in given.items():
            kept = _chosen(properties.get(name), value) if name != RECORDED_BY else None
            if kept is not None:
                properties[name]["default"] = kept
        return schema
    record = properties[RECORD]
    variants: list[dict[str, Any]] = []
    for choice, variant in zip(wait.choices, record["anyOf"], strict=True):
        options = field_options(choice, state, imr_sections=imr_sections)
        if not offered(choice, state, options):
            continue
        prefix = _prefix(choice)
        _shape_fields(variant["properties"], choice.form,
                      {prefix + name: each for name, each in options.items()}, prefix=prefix)
        variant["required"] = [prefix + name for name in domain_required(choice.form)]
        variants.append(variant)
    record["anyOf"] = variants
    kept = _chosen_in_tab(variants, given.get(RECORD))
    if kept:
        record["default"] = kept
    return schema


def _shape_fields(properties: dict[str, Any], form: type[BaseModel], options: dict[str, tuple[Option, ...]],
                  *, prefix: str = "") -> None:
    """Each field of `form` (named with `prefix` in `properties`) as the case offers it: its choices
    by title, and a nested form's fields required as the domain form requires them."""
    for name, info in form.model_fields.items():
        prop = properties[prefix + name]
        titles = [option.title for option in options.get(prefix + name, ())]
        if titles:
            if is_list(info.annotation):
                prop["items"] = {"type": "string", "enum": titles}
            else:
                prop.pop("anyOf", None)
                prop.update(type="string", enum=titles)
        nested = base_type(info.annotation)
        if isinstance(nested, type) and issubclass(nested, BaseModel) and "properties" in prop:
            prop["required"] = domain_required(nested)


def _chosen(prop: dict[str, Any] | None, value: Any) -> Any:
    """Of `value` given for the field `prop`, what is filled in again when the form is asked again:
    a choice still offered, a date, a yes-or-no, a nested form's choices; never text that was typed
    (a name, a reference, a reason). None for nothing."""
    if prop is None or value is None:
        return None
    if "enum" in prop:
        return value if value in prop["enum"] else None  # a choice no longer offered is not
    kind = prop.get("type")
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "string" and prop.get("format") == "date" and isinstance(value, str) and _ISO_DAY.match(value):
        return value
    if kind == "array" and isinstance(value, list):
        allowed = prop.get("items", {}).get("enum")
        return value if allowed is not None and value and all(each in allowed for each in value) else None
    if kind == "object" and isinstance(value, dict):
        inner = {key: _chosen(prop.get("properties", {}).get(key), each) for key, each in value.items()}
        return {key: each for key, each in inner.items() if each is not None} or None
    return None


def _chosen_in_tab(variants: list[dict[str, Any]], value: Any) -> dict[str, Any] | None:
    """What is filled in again on a form of several choices: the chosen tab's values (`_chosen`);
    the UI opens the tab whose fields they are."""
    if not isinstance(value, dict) or not value:
        return None
    for variant in variants:
        fields = variant.get("properties", {})
        if set(value) <= set(fields):
            kept: dict[str, Any] | None = _chosen(variant, value)
            return kept
    return None


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every `$ref` replaced by a copy of its definition (the field's own title and
    description kept) and a single `allOf` merged into its field: every field of a case's form is
    shaped in place, and no case's narrowing can reach another field sharing a definition."""
    definitions: dict[str, Any] = {**schema.get("definitions", {}), **schema.get("$defs", {})}

    def resolved(node: Any) -> Any:
        if isinstance(node, list):
            return [resolved(each) for each in node]
        if not isinstance(node, dict):
            return node
        node = dict(node)
        ref = node.pop("$ref", None)
        if isinstance(ref, str):
            node = {**resolved(definitions[ref.rsplit("/", 1)[-1]]), **node}
        merged = node.get("allOf")
        if isinstance(merged, list) and len(merged) == 1:
            del node["allOf"]
            node = {**resolved(merged[0]), **node}
        return {key: resolved(value) for key, value in node.items()}

    inlined: dict[str, Any] = resolved({key: value for key, value in schema.items()
                                        if key not in ("$defs", "definitions")})
    return inlined


# -- waking a run -------------------------------------------------------------------------------------

def wake_up_answer(schema: dict[str, Any]) -> dict[str, Any]:
    """An answer that meets the form's `schema` (as Prefect stores it with the wait) and says nothing:
    what `sbu` sends when it has recorded the step in the store and the waiting run only needs
    waking. The flow reads the store before it waits, so it never records this (`is_wake_up`)."""
    answer = _filled(_inlined(schema))
    assert isinstance(answer, dict)
    answer[RECORDED_BY] = WAKE_UP_NAME
    return answer


def is_wake_up(answer: dict[str, Any]) -> bool:
    """Whether a stored answer is `sbu`'s wake-up (`wake_up_answer`)."""
    return answer.get(RECORDED_BY) == WAKE_UP_NAME


def _filled(prop: dict[str, Any]) -> Any:
    variants = prop.get("anyOf")
    if isinstance(variants, list) and variants:
        return _filled(variants[0])
    if prop.get("enum"):
        return prop["enum"][0]
    match prop.get("type"):
        case "object":
            fields: dict[str, Any] = prop.get("properties", {})
            required = [name for name in prop.get("required", []) if name in fields]
            if not required and fields:
                required = [next(iter(fields))]  # a choice is named by one of its fields
            return {name: _filled(fields[name]) for name in required}
        case "array":
            return []
        case "boolean":
            return False
        case "integer" | "number":
            return 0
        case _ if prop.get("format") == "date":
            return PLACEHOLDER_DATE.isoformat()
        case _:
            return RECORDED_IN_STORE


# -- reading an answer -------------------------------------------------------------------------------

def choice_of(wait: Wait, answer: BaseModel) -> Choice:
    """What `answer` records: the wait's one choice, or the one whose tab it filled in."""
    if len(wait.choices) == 1:
        return wait.choices[0]
    picked: BaseModel = getattr(answer, RECORD)
    return next(c for c in wait.choices if _DOMAIN.get(type(picked)) is c.form
                and next(iter(type(picked).model_fields)).startswith(_prefix(c)))


def domain_form(wait: Wait, answer: BaseModel) -> tuple[Choice, BaseModel]:
    """What `answer` records and its domain form, validated there (a `ValidationError` names the
    fields and never the values)."""
    choice = choice_of(wait, answer)
    if len(wait.choices) == 1:
        values = answer.model_dump(exclude={RECORDED_BY})
    else:
        picked: BaseModel = getattr(answer, RECORD)
        values = {name.removeprefix(_prefix(choice)): value for name, value in picked.model_dump().items()}
    return choice, choice.form.model_validate(_as_domain(choice.form, values))


def _as_domain(form: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """The loosened answer in the domain form's shape: yes or no as a boolean, a choice's title as
    its value, nested forms in turn, and empty fields left out."""
    fields = form.model_fields
    given: dict[str, Any] = {}
    for name, value in values.items():
        info = fields.get(name)
        # An empty field is left out: the domain form's default applies, or it names the field as
        # missing. A text field typed in and cleared again comes back from the UI as "".
        if info is None or value is None or value == "":
            continue
        if info.annotation is bool and value in (YES, NO):
            value = value == YES
        elif isinstance(value, list):
            value = [value_of_choice(info, name, each) for each in value]
        else:
            value = value_of_choice(info, name, value)
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel) and isinstance(value, dict):
            value = _as_domain(nested, value)
        given[name] = value
    return given


def recorded_by(answer: BaseModel) -> str:
    """Who the answer says recorded it ("" if no one). Raises `SbuError` for a name holding a
    control or invisible character (a name is shown in the audit trail and `sbu status`), or
    longer than `MAX_NAME`."""
    value = getattr(answer, RECORDED_BY, "")
    if not isinstance(value, str):
        return ""
    if hidden_character_in(value):
        raise SbuError(f"{RECORDED_BY}: {HIDDEN_CHARACTERS}")
    # Behind the sign-in gateway the name carries its seal after it (models.access): the name is
    # what is held to the limit.
    name = value.rpartition(SEAL_MARK)[0] if SEAL_MARK in value else value
    if len(name.strip()) > MAX_NAME:
        # As `sbu --by` refuses it: a name cut short in the audit trail is not the name typed.
        raise SbuError(f"{RECORDED_BY}: a name is at most {MAX_NAME} characters")
    return value
