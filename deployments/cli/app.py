"""The scaffolding of the `sbu` command: a registry of commands on the standard library's argparse.

Why argparse: `sbu status` and `sbu timetable` must answer in well under a second, and a
command-line framework that imports a rich-text renderer or builds validators for every option
costs a fifth of a second on our machines before a command starts; argparse costs milliseconds.

The rules every command keeps, enforced here once:
- help on every command (`sbu COMMAND --help`), with an example;
- every error is one line on stderr, `sbu: error: ...`, exit code 2, never a traceback, and never
  the value that was typed (a mistyped value can be a name);
- heavy modules are imported inside the command that needs them.
"""

from __future__ import annotations

import argparse
import getpass
import inspect
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from models.enums import Interface
from models.errors import SbuError

if TYPE_CHECKING:
    from tasks.service import Actor

Handler = Callable[[argparse.Namespace], None]
Arguments = Callable[[argparse.ArgumentParser], None]

SUMMARY = "Run the serious child safeguarding incident procedure: referrals, decisions, deadlines."


@dataclass(frozen=True)
class Command:
    name: str
    arguments: Arguments
    handler: Handler
    # A command with commands of its own (`sbu outbox retry`).
    subcommands: tuple[Command, ...] = ()
    # A paragraph of its help made when the help is shown, before its examples (`sbu record`'s
    # steps, from the registry): building every command's parser must not pay for it.
    more_help: Callable[[], str] | None = None

    @property
    def help(self) -> str:
        return inspect.cleandoc(self.handler.__doc__ or "")

    @property
    def summary(self) -> str:
        """The help's first paragraph, on one line."""
        return " ".join(self.help.split("\n\n", 1)[0].split())


COMMANDS: list[Command] = []


def command(name: str, arguments: Arguments, *, subcommands: Sequence[Command] = (),
            more_help: Callable[[], str] | None = None) -> Callable[[Handler], Handler]:
    """Register `handler` as `sbu NAME`; its docstring is its help, first line first, and
    `more_help` (if given) makes a paragraph of it when it is shown."""
    def register(handler: Handler) -> Handler:
        COMMANDS.append(Command(name, arguments, handler, tuple(subcommands), more_help))
        return handler

    return register


def subcommand(name: str, arguments: Arguments) -> Callable[[Handler], Command]:
    """A command under another (`outbox retry`): passed to `command(..., subcommands=...)`."""
    def make(handler: Handler) -> Command:
        return Command(name, arguments, handler)

    return make


# -- parsing ----------------------------------------------------------------------------------------

class _Formatter(argparse.RawDescriptionHelpFormatter):
    def add_usage(self, usage: str | None, actions: Any, groups: Any, prefix: str | None = None) -> None:
        # argparse asks with prefix '' when it builds a subcommand's name; only the help says Usage.
        super().add_usage(usage, actions, groups, prefix="Usage: " if prefix is None else prefix)


# argparse quotes what was typed in some of its messages ("invalid choice: 'x'"); we never do.
_CHOICE = re.compile(r"invalid choice: .*")
_QUOTED = re.compile(r": '[^']*'")
_UNRECOGNISED = re.compile(r"unrecognized arguments:.*")


class _Parser(argparse.ArgumentParser):
    more_help: Callable[[], str] | None = None

    def format_help(self) -> str:
        if self.more_help is not None and self.description is not None:
            head, examples = self.description, ""
            if "\n\nExample: " in head:
                head, examples = head.split("\n\nExample: ", 1)
                examples = "\n\nExample: " + examples
            self.description = f"{head}\n\n{self.more_help()}{examples}"
            self.more_help = None
        return super().format_help()

    def error(self, message: str) -> NoReturn:
        message = _CHOICE.sub("not one of the choices (see --help)", message)
        message = _UNRECOGNISED.sub("unrecognised arguments (see --help)", _QUOTED.sub("", message))
        where = self.prog.removeprefix("sbu").strip()
        raise SbuError(f"{where}: {message}" if where else message)


def make_parser(prog: str, description: str, *, epilog: str | None = None) -> argparse.ArgumentParser:
    """A parser of our own kind (one-line errors that never quote what was typed), for a command
    that parses the rest of its arguments itself (`sbu record CASE STEP ...`); `epilog` ends its
    help (the example)."""
    return _Parser(prog=prog, description=description, epilog=epilog, formatter_class=_Formatter,
                   allow_abbrev=False)


def _add_command(subparsers: Any, item: Command) -> None:
    # No abbreviations: `--dsp` must not quietly mean `--dsp-la`, nor `--on` something else tomorrow.
    parser: _Parser = subparsers.add_parser(item.name, help=item.summary, description=item.help,
                                            formatter_class=_Formatter, allow_abbrev=False)
    parser.more_help = item.more_help
    item.arguments(parser)
    parser.set_defaults(handler=item.handler)
    if item.subcommands:
        nested = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
        for sub in item.subcommands:
            _add_command(nested, sub)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sbu", description=SUMMARY, formatter_class=_Formatter)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    for item in COMMANDS:
        _add_command(subparsers, item)
    parser.format_help = lambda: _top_help()  # type: ignore[method-assign]
    return parser


def _top_help() -> str:
    width = max(len(item.name) for item in COMMANDS)
    lines = ["Usage: sbu COMMAND [ARGUMENTS] [OPTIONS]", "", SUMMARY,
             "Every command has --help with an example; queries take --json.", "", "Commands:"]
    lines += [f"  {item.name:<{width}}  {item.summary}" for item in COMMANDS]
    return "\n".join(lines) + "\n"


# The exit status of a command whose reader went away (`sbu cases | head -1`): as a command killed
# by SIGPIPE reports it in a shell (128 + 13), so `set -o pipefail` treats it as other tools.
EXIT_BROKEN_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: run one command; turn every known failure into one line on stderr
    and exit code 2. A reader that stops reading (`sbu cases | head -1`) ends it quietly."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not arguments:
        sys.stderr.write(parser.format_help())
        return 2
    try:
        namespace = parser.parse_args(arguments)
        handler: Handler | None = getattr(namespace, "handler", None)
        if handler is None:
            raise SbuError("choose a command; see `sbu --help`")
        handler(namespace)
        # Written out here, inside the guard: a pipe closed early fails this flush, not the
        # interpreter's own at exit (which would print "Exception ignored ...").
        sys.stdout.flush()
    except BrokenPipeError:
        return _reader_gone()
    except SbuError as error:
        return _error_line(str(error))
    except SystemExit as done:  # --help, and argparse's own exits
        return done.code if isinstance(done.code, int) else 0
    except KeyboardInterrupt:
        return _error_line("interrupted")
    except Exception as error:
        if os.environ.get("SBU_DEBUG"):
            raise
        return _error_line(f"internal error ({error.__class__.__name__}); rerun with SBU_DEBUG=1 for details")
    return 0


def _reader_gone() -> int:
    """The reader of our output has gone: say nothing more, and point stdout at nothing so that the
    interpreter's own flush at exit finds nothing left to write."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass  # stdout without a file descriptor (a test's buffer): nothing is flushed at exit
    return EXIT_BROKEN_PIPE


def _error_line(message: str) -> int:
    text = " ".join(message.split())
    sys.stderr.write(f"sbu: error: {text}\n")
    return 2


# -- what commands share ----------------------------------------------------------------------------

def json_option(parser: argparse.ArgumentParser, what: str = "a table") -> None:
    parser.add_argument("--json", dest="as_json", action="store_true", help=f"Print JSON instead of {what}.")


def by_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", metavar="NAME",
                        help="Who is recording this, for the audit trail (default: $SBU_USER or your login).")


def actor(by: str | None) -> Actor:
    from models.fields import hidden_character_in
    from tasks.service import Actor

    name = (by or os.environ.get("SBU_USER") or getpass.getuser()).strip()
    if not name or len(name) > 80 or hidden_character_in(name):
        raise SbuError("--by must be a name of 1 to 80 characters on one line, without control or "
                       "invisible characters")
    return Actor(name, Interface.CLI)


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def echo(line: str = "", *, err: bool = False) -> None:
    (sys.stderr if err else sys.stdout).write(line + "\n")


def fail(message: str) -> NoReturn:
    raise SbuError(message)
