"""Every `sbu` command and subcommand, and `sbu record` for every step and act the registry knows,
answers --help with usage and at least one example that is a whole `sbu` command line."""

from __future__ import annotations

import argparse
import shlex

import pytest

from deployments.cli import main
from deployments.cli.app import COMMANDS, Command
from models.processes import build_registry


def every_command() -> list[list[str]]:
    def walk(prefix: list[str], items: tuple[Command, ...] | list[Command]) -> list[list[str]]:
        found = []
        for item in items:
            found.append([*prefix, item.name])
            found += walk([*prefix, item.name], item.subcommands)
        return found

    return [*walk([], COMMANDS), *(["record", "SR-2026-0001", kind] for kind in recordable())]


def recordable() -> list[str]:
    """The steps and acts `sbu record` takes: all the registry's but the DSP decision (`sbu decide`)."""
    registry = build_registry(())
    return [kind for kind in (*registry.steps, *registry.acts) if kind != "dsp-decision"]


def test_the_walk_finds_the_subcommands_and_every_step() -> None:
    names = [" ".join(words) for words in every_command()]
    assert {"demo", "report", "action add", "action close", "outbox retry", "audit verify",
            "record SR-2026-0001 cspr-imr", "record SR-2026-0001 action-added"} <= set(names)
    assert len(names) > 35


@pytest.mark.parametrize("words", every_command(), ids=lambda words: " ".join(words))
def test_every_command_has_help_with_an_example(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*words, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Usage: ")
    examples = [line for line in text.splitlines() if line.startswith(("Example: ", "    Example: "))]
    assert examples, f"no example in `sbu {' '.join(words)} --help`"
    for example in examples:
        command = example.split("Example: ", 1)[1]
        assert command.startswith("sbu "), example
        # The example is of the command it documents (a step's, of its own step).
        assert command.startswith(f"sbu {' '.join(words)}"), example


def test_a_steps_example_parses_as_that_step(capsys: pytest.CaptureFixture[str]) -> None:
    """The generated examples are real command lines: each parses with its step's own options."""
    from deployments.cli.app import make_parser
    from deployments.cli.forms import add_form_options, form_example

    registry = build_registry(())
    for kind in recordable():
        spec, act = registry.item(kind), registry.act(kind)
        form = spec.form if spec is not None else act.form  # type: ignore[union-attr]
        date_field = spec.date_field if spec is not None else act.date_field  # type: ignore[union-attr]
        example = form_example(kind, form, date_field=date_field)
        words = shlex.split(example.removeprefix("Example: "))
        parser = make_parser(f"sbu record CASE_REF {kind}", "")
        add_form_options(parser, form, date_field=date_field)
        assert isinstance(parser.parse_args(words[4:]), argparse.Namespace), kind
