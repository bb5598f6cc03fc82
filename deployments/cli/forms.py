"""A form's fields as command-line options, so that every step and act the registry knows can be
recorded with `sbu record` without a line of CLI code of its own: `--national-ref REF` for a text
field, `--recommendation {local-cspr,...}` for a choice, `--sin/--no-sin` for a yes-or-no,
`--reviewer NAME` (again for each) for a list, and, for the three DSP signatures,
`--dsp-la NAME --dsp-health NAME --dsp-police NAME [--deputy la]`.

The date a step was done is always `--on DATE` (today by default). Values are checked by the
domain form itself, whose errors name the option's field and never echo what was typed.
"""

from __future__ import annotations

import argparse
import types
import typing
from datetime import date
from enum import Enum
from typing import Any, Union

from pydantic import BaseModel

from deployments.cli.parsing import parse_day
from models.errors import SbuError
from models.forms import SIGNATURE_FIELDS, DspSignature

# --deputy takes the role's short name.
_DEPUTY_NAMES = {field.removeprefix("dsp_"): field for field in SIGNATURE_FIELDS.values()}


def option_name(field: str, *, many: bool = False) -> str:
    """`missing_sections` -> `--missing-section` for a list (one per value), else `--missing-sections`."""
    name = field
    if many:
        name = name[:-3] + "y" if name.endswith("ies") else name.removesuffix("s")
    return "--" + name.replace("_", "-")


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without `| None` and its constraints, and whether it was optional."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])[0], True
    if typing.get_origin(annotation) is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    return annotation, False


def add_form_options(parser: argparse.ArgumentParser, form: type[BaseModel], *,
                     date_field: str | None) -> None:
    """An option for every field of `form` but its date (`--on`)."""
    if date_field is not None:
        parser.add_argument("--on", dest=date_field, metavar="DATE",
                            help="The date it was done, YYYY-MM-DD (default: today).")
    signed = False
    for name, info in form.model_fields.items():
        if name == date_field:
            continue
        annotation, _ = _unwrap(info.annotation)
        text = info.description or info.title or name
        if annotation is DspSignature:
            parser.add_argument(option_name(name), dest=name, metavar="NAME", required=True,
                                help=f"{info.title}: who signed.")
            signed = True
        elif annotation is bool:
            group = parser.add_mutually_exclusive_group(required=info.is_required())
            group.add_argument(option_name(name), dest=name, action="store_true", default=None, help=text)
            group.add_argument(f"--no-{name.replace('_', '-')}", dest=name, action="store_false",
                               help=f"The opposite of {option_name(name)}.")
        elif typing.get_origin(annotation) is list:
            item, _ = _unwrap(typing.get_args(annotation)[0])
            choices = _choices(item)
            parser.add_argument(option_name(name, many=True), dest=name, action="append", metavar="VALUE",
                                choices=choices, help=f"{text} Give it once for each.{_one_of(choices)}")
        else:
            choices = _choices(annotation)
            parser.add_argument(option_name(name), dest=name, metavar="VALUE", choices=choices,
                                required=info.is_required(), help=f"{text}{_one_of(choices)}")
    if signed:
        parser.add_argument("--deputy", action="append", choices=sorted(_DEPUTY_NAMES), metavar="ROLE",
                            help="A DSP role signed by a deputy acting for the role-holder (la, health or "
                                 "police); give it once for each.")


def _one_of(choices: list[str] | None) -> str:
    return f" One of: {', '.join(choices)}." if choices else ""


def _choices(annotation: Any) -> list[str] | None:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [member.value for member in annotation]
    if typing.get_origin(annotation) is typing.Literal:
        return [str(arg) for arg in typing.get_args(annotation)]
    return None


def form_values(args: argparse.Namespace, form: type[BaseModel], *, date_field: str | None,
                today: date) -> dict[str, Any]:
    """The options given, as the domain form's values (only those given: its defaults apply)."""
    deputies = {_DEPUTY_NAMES[name] for name in (getattr(args, "deputy", None) or [])}
    values: dict[str, Any] = {}
    for name, info in form.model_fields.items():
        given = getattr(args, name, None)
        annotation, _ = _unwrap(info.annotation)
        if name == date_field:
            values[name] = parse_day(given, field_name="--on") if given is not None else today
        elif given is None:
            continue
        elif annotation is DspSignature:
            values[name] = {"name": given, "deputy": name in deputies}
        elif annotation is date:
            values[name] = parse_day(given, field_name=option_name(name))
        else:
            values[name] = given
    unknown = deputies - {name for name, info in form.model_fields.items()
                          if _unwrap(info.annotation)[0] is DspSignature}
    if unknown:
        raise SbuError("--deputy applies only to a form the DSPs sign")
    return values


# What an example shows for a free-text field, by the field's name; any other reads "TEXT".
_SAMPLES = {
    "national_ref": "CSIN-2026-0042", "reference": "DOC-17", "evidence_ref": "AUD-7",
    "reviewers": '"Dr Jo Reviewer"', "reason": '"Agreed with everyone involved."',
    "rationale": '"Systemic learning across agencies."', "immediate_actions": '"GP alerted."',
    "learning": '"Information was not shared at discharge."', "place": '"Town Hall, Room 3"',
    "start_time": "14:00", "owner_role": '"Named Nurse"', "summary": '"Audit the discharge checklist"',
    "note": '"Checklist drafted"', "action": "a1",
}
_SAMPLE_NAMES = {"dsp_la": '"Dana Lee"', "dsp_health": '"Sam Patel"', "dsp_police": '"Alex Morgan"'}


def form_example(kind: str, form: type[BaseModel], *, date_field: str | None) -> str:
    """A command line that records `kind` with `form`'s required options filled in (and `--on`),
    for the help of `sbu record CASE KIND`: every step and act gets its example from its form."""
    parts = ["sbu record SR-2026-0001", kind]
    if date_field is not None:
        parts += ["--on", "2027-01-14"]
    for name, info in form.model_fields.items():
        if name == date_field or not info.is_required():
            continue
        annotation, _ = _unwrap(info.annotation)
        if annotation is DspSignature:
            parts += [option_name(name), _SAMPLE_NAMES.get(name, '"A Name"')]
        elif annotation is bool:
            parts.append(option_name(name))
        elif annotation is date:
            parts += [option_name(name), "2027-01-21"]
        elif typing.get_origin(annotation) is list:
            item, _ = _unwrap(typing.get_args(annotation)[0])
            choices = _choices(item)
            parts += [option_name(name, many=True), choices[0] if choices else _SAMPLES.get(name, "TEXT")]
        else:
            choices = _choices(annotation)
            parts += [option_name(name), choices[0] if choices else _SAMPLES.get(name, "TEXT")]
    return "Example: " + " ".join(parts)
