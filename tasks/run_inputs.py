"""The dashboard's forms, derived from the domain's: one Prefect `RunInput` per wait.

A wait's form has the fields of the domain form of each step it answers (`models.forms`), with
their titles and descriptions, and a "Recorded by" field; a wait that answers several steps adds a
choice of step and offers every field any of them needs. Nothing is copied by hand, so a field
added to a domain form appears on the dashboard as it is.

The types are loosened on purpose: a text field is plain text here, with no pattern or length,
because Prefect's server validates an answer against the form's schema and its error would quote
what was typed. The flow validates the answer into the domain form instead (`domain_form`), whose
errors never echo a value (DESIGN.md §4), and asks again with the reason.
"""

from __future__ import annotations

import types
import typing
from datetime import date
from enum import Enum
from functools import cache
from typing import Annotated, Any, Literal, Union

from prefect.input import RunInput
from pydantic import BaseModel, Field, create_model
from pydantic.fields import FieldInfo

from models.registry import ItemSpec, Wait

# What `sbu` puts in every text field when it resumes a run after recording the step in the store
# itself (`WaitInput.placeholder`): the form's schema is met and nothing personal reaches Prefect.
RECORDED_IN_STORE = "Recorded with the sbu command; the details are in the case store."
PLACEHOLDER_DATE = date(2000, 1, 1)
RECORDED_BY = "recorded_by"
STEP = "step"


def loosened(annotation: Any) -> Any:
    """`annotation` without its constraints: text as plain `str`, lists and optionals kept."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return loosened(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = tuple(loosened(arg) for arg in typing.get_args(annotation))
        return Union[args]  # noqa: UP007 - built from a tuple of types
    if origin is list:
        return list[loosened(typing.get_args(annotation)[0])]  # type: ignore[misc]
    if isinstance(annotation, type) and issubclass(annotation, str) and not issubclass(annotation, Enum):
        return str
    return annotation


def _field(info: FieldInfo, *, required: bool, title: str | None) -> FieldInfo:
    default: Any = ... if required else (None if info.is_required() else info.default)
    field: FieldInfo = Field(default, title=title, description=info.description)
    return field


def _fields_of(specs: tuple[ItemSpec, ...]) -> dict[str, Any]:
    """Every field any of the forms has; required only where every form requires it."""
    forms = list(dict.fromkeys(spec.form for spec in specs))
    names = list(dict.fromkeys(name for form in forms for name in form.model_fields))
    fields: dict[str, Any] = {}
    for name in names:
        infos = [form.model_fields[name] for form in forms if name in form.model_fields]
        required = len(infos) == len(forms) and all(info.is_required() for info in infos)
        annotation = loosened(infos[0].annotation)
        if not required:
            annotation = annotation | None
        titles = list(dict.fromkeys(info.title for info in infos if info.title))
        fields[name] = (annotation, _field(infos[0], required=required,
                                           title=" / ".join(titles) if titles else None))
    return fields


class WaitInput(RunInput):
    """The base of every wait's form: it knows the answer `sbu` sends in its place."""

    @classmethod
    def placeholder(cls) -> dict[str, Any]:
        """An answer that meets this form's schema and says nothing: what `sbu` sends when it has
        recorded the step in the store and the waiting run only needs waking. The flow reads the
        store before it waits, so it never reads this."""
        answer = {name: _placeholder_value(info.annotation)
                  for name, info in cls.model_fields.items() if info.is_required()}
        answer[RECORDED_BY] = "sbu"
        return answer


@cache
def run_input_for(wait: Wait) -> type[WaitInput]:
    """The dashboard form of `wait`."""
    fields: dict[str, Any] = {}
    if len(wait.items) > 1:
        # A literal of the step ids: the form offers them as a choice.
        steps = Literal[tuple(spec.step for spec in wait.items)]  # type: ignore[valid-type]
        fields[STEP] = (steps, Field(title="Step", description="The step to record."))
    fields.update(_fields_of(wait.items))
    fields[RECORDED_BY] = (str, Field(title="Recorded by", description="Your name, for the audit trail."))
    name = "".join(part.capitalize() for part in wait.name.split("-")) + "Input"
    model: type[WaitInput] = create_model(name, __base__=WaitInput, **fields)
    return model


def _placeholder_value(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return typing.get_args(annotation)[0]
    if origin is list:
        return []
    if annotation is bool:
        return False
    if annotation is date:
        return PLACEHOLDER_DATE.isoformat()
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return next(iter(annotation)).value
    return RECORDED_IN_STORE


def domain_form(wait: Wait, answer: BaseModel) -> tuple[ItemSpec, BaseModel]:
    """The step `answer` records and its domain form, validated there (a `ValidationError` names
    the fields and never the values)."""
    values = answer.model_dump()
    chosen = values.pop(STEP, None)
    values.pop(RECORDED_BY, None)
    spec = next((s for s in wait.items if s.step == chosen), wait.items[0])
    fields = spec.form.model_fields
    # Fields another step of the wait needs are left out, and so are empty optional ones.
    given = {name: value for name, value in values.items()
             if name in fields and (value is not None or fields[name].is_required())}
    return spec, spec.form.model_validate(given)


def recorded_by(answer: BaseModel) -> str:
    value = getattr(answer, RECORDED_BY, "")
    return value if isinstance(value, str) else ""
