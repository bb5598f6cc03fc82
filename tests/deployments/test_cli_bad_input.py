"""Bad input typed at `sbu`: `sbu refer FILE`, `sbu decide`, `sbu record` for
every step and act, `sbu retime`, and `--by`, run in-process through the console entry point.
Each is refused with exit code 2 and one line on stderr naming the field, the store is unchanged,
and the value appears in neither the output nor the logs."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy import Engine

from deployments.cli.app import main
from deployments.cli.forms import option_name
from models.enums import Interface
from models.forms import DspDecisionForm, DspSignature, Referral, RetimeForm, parse_referral
from models.processes import build_registry
from models.settings import load_settings
from tasks.service import Actor, CaseService
from tasks.store.db import Store
from tests.bad_inputs import (
    CLASSES,
    INVISIBLE,
    LINE_BREAKS,
    SLOTS,
    Kind,
    Tally,
    bad_input,
    bad_value,
    deep,
    echoes,
    example_of,
    put,
    valid_answer,
)
from tests.conftest import EXAMPLE_NOW, EXAMPLE_REFERRAL, SIGNATURES
from tests.tasks.test_bad_input_store import snapshot

TALLY = Tally("cli")
REGISTRY = build_registry()
# The step or act `sbu record` records each form with, and the field its `--on` fills.
COMMANDS: dict[type[BaseModel], tuple[str, str | None]] = {}
for _name in REGISTRY.steps:
    _spec = REGISTRY.item(_name)
    if _spec is not None and _spec.form is not DspDecisionForm:
        COMMANDS.setdefault(_spec.form, (_name, _spec.date_field))
for _name in REGISTRY.acts:
    _act = REGISTRY.act(_name)
    if _act is not None:
        COMMANDS.setdefault(_act.form, (_name, _act.date_field))
CLI_SLOTS = [slot for slot in SLOTS
             if (slot.form in COMMANDS or slot.form in (Referral, DspDecisionForm, RetimeForm))
             and slot.kind not in (Kind.YESNO, Kind.COUNT)]


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    yield
    TALLY.record()


class Cli:
    """`sbu` in this process, on a data directory of its own holding one decided case."""

    def __init__(self, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in [n for n in os.environ if n.startswith(("SBU_", "PREFECT_"))]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("SBU_DATA_DIR", str(data_dir))
        monkeypatch.setenv("SBU_USER", "test-officer")
        monkeypatch.setenv("SBU_TIME_EPOCH", datetime.now(UTC).isoformat())
        monkeypatch.setenv("SBU_TIME_START", EXAMPLE_NOW.isoformat())
        self.data_dir = data_dir
        settings = load_settings()
        self.store = Store(settings.sqlalchemy_url).migrate()
        service = CaseService(store=self.store, settings=settings, clock=settings.clock())
        officer = Actor("test-officer", Interface.CLI)
        referral = parse_referral(EXAMPLE_REFERRAL, now=EXAMPLE_NOW)
        self.case_ref = service.refer(referral, actor=officer).case_ref
        service.decide(self.case_ref, DspDecisionForm.model_validate(
            {"sin": True, "rapid_review": True, "rationale": "Criteria met on the facts known.", **SIGNATURES,
             "decided_on": "2026-12-23"}), actor=officer)

    @property
    def engine(self) -> Engine:
        return self.store.engine


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    # One data directory for the module: every command here is refused, so none changes it (and
    # each test checks that).
    with pytest.MonkeyPatch.context() as monkeypatch:
        made = Cli(tmp_path_factory.mktemp("sbu"), monkeypatch)
        yield made
        made.store.dispose()


def run(cli: Cli, argv: list[str], capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
        ) -> tuple[int, str, str]:
    capsys.readouterr()
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err + caplog.text


def argv_for(cli: Cli, form: type[BaseModel], answer: dict[str, Any], referral_file: Path) -> list[str]:
    """The command that submits `answer` as `form`."""
    if form is Referral:
        referral_file.write_text(json.dumps(answer), encoding="utf-8")
        return ["refer", str(referral_file)]
    if form is RetimeForm:
        return ["retime", cli.case_ref, "partners-informed", f"--to={answer['due']}",
                f"--reason={answer['reason']}"]
    date_field: str | None
    if form is DspDecisionForm:
        command, date_field = ["decide", cli.case_ref], "decided_on"
    else:
        name, date_field = COMMANDS[form]
        command = ["record", cli.case_ref, name]
    for field, value in answer.items():
        annotation = form.model_fields[field].annotation
        if field == date_field:
            command.append(f"--on={value}")
        elif annotation is DspSignature:
            command.append(f"{option_name(field)}={value['name']}")
        elif isinstance(value, bool):
            command.append(option_name(field) if value else f"--no-{field.replace('_', '-')}")
        elif isinstance(value, list):
            command += [f"{option_name(field, many=True)}={item}" for item in value]
        elif value is not None:
            command.append(f"{option_name(field)}={value}")
    return command


def test_every_form_can_be_submitted_from_the_command_line() -> None:
    # The refusals below are only meaningful if the command without the bad value is complete.
    assert {slot.form for slot in CLI_SLOTS} >= {Referral, DspDecisionForm, RetimeForm, *COMMANDS}
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize("what", CLASSES)
@bad_input(15)
@given(data=st.data())
def test_bad_values_typed_at_sbu_are_refused_with_nothing_written_or_echoed(
        cli: Cli, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, what: str,
        data: st.DataObject) -> None:
    slots = [slot for slot in CLI_SLOTS if not (what == "injection" and slot.kind in (Kind.FREE, Kind.LINE))]
    # As text, as a command line carries it (a referral's JSON with typed values: tests/models).
    slot, value, _keep = data.draw(bad_value(what, slots, strings_only=True), label="bad")
    if slot.form is not Referral and isinstance(value, str) and "\x00" in value:
        value = value.replace("\x00", "\x01")  # a command line cannot carry a NUL
    answer = put(valid_answer(slot.form), slot.path, value)
    before = snapshot(cli.engine)
    argv = argv_for(cli, slot.form, answer, cli.data_dir / "referral.json")
    code, out, err = run(cli, argv, capsys, caplog)
    written = snapshot(cli.engine) != before
    echoed = echoes(value, out, err, known=example_of(slot))
    TALLY.add(what, accepted_wrongly=code == 0, echoed=bool(echoed), written=written)
    assert code == 2, (slot, out, err)
    assert not written
    assert not echoed, echoed[:3]
    line = err.strip().splitlines()[0]
    assert line.startswith("sbu: error: ")
    assert "Traceback" not in err
    option = option_name(slot.field, many=isinstance(valid_answer(slot.form)[slot.field], list))
    # A referral file too large to be one is refused whole, before any field is read.
    whole = slot.form is Referral and "the referral is larger than" in line
    assert whole or any(name in line for name in (slot.field, option, "--on", "--to", "--reason")), line


@pytest.mark.parametrize("content", [
    "[" * 30_000, '{"children": ' + "[" * 900 + "]" * 900 + "}", "{" * 5 + "x" * 10,
    json.dumps({**EXAMPLE_REFERRAL, "children": deep(500, as_list=True)}),
    json.dumps({**EXAMPLE_REFERRAL, "external_ref": "A" * 70_000}), "A" * 5_000_000,
    json.dumps([EXAMPLE_REFERRAL] * 2), "null", "42", '"POL-2026-1234"', "",
])
def test_a_referral_file_that_is_no_referral_is_refused_in_one_line(
        cli: Cli, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, content: str) -> None:
    path = cli.data_dir / "referral.json"
    path.write_text(content, encoding="utf-8")
    before = snapshot(cli.engine)
    code, out, err = run(cli, ["refer", str(path)], capsys, caplog)
    written = snapshot(cli.engine) != before
    # The field names are the form's, not typed values: the error names them.
    echoed = echoes(content[:5000], out, err, known=" ".join(Referral.model_fields))
    TALLY.add("huge-payloads" if len(content) > 1000 else "wrong-types", accepted_wrongly=code == 0,
              echoed=bool(echoed), written=written)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert "internal error" not in err
    assert not written
    assert not echoed


def test_a_referral_file_that_is_not_utf8_is_refused(cli: Cli, capsys: pytest.CaptureFixture[str],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    path = cli.data_dir / "referral.json"
    path.write_bytes(b'{"external_ref": "\xff\xfe POL"}')
    code, _out, err = run(cli, ["refer", str(path)], capsys, caplog)
    TALLY.add("unicode-digits-and-look-alikes", accepted_wrongly=code == 0)
    assert code == 2
    assert "UnicodeDecodeError" in err


@pytest.mark.parametrize("by", ["Dana\r\nBcc: someone@attacker.test",
                                *(f"Dana{mark}Lee" for mark in INVISIBLE),
                                *(f"Dana{brk}Lee" for brk in LINE_BREAKS), "D" * 10_000])
def test_a_recorder_name_with_a_hidden_character_is_refused(
        cli: Cli, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, by: str) -> None:
    by = by.replace("\x00", "\x01")
    before = snapshot(cli.engine)
    code, out, err = run(cli, ["record", cli.case_ref, "partners-informed", "--on=2026-12-23", f"--by={by}"],
                         capsys, caplog)
    written = snapshot(cli.engine) != before
    echoed = echoes(by, out, err, known="Dana")
    TALLY.add("invisible-and-bidi", accepted_wrongly=code == 0, echoed=bool(echoed), written=written)
    assert code == 2
    assert "--by must be a name" in err
    assert not written
    assert not echoed
