"""`sbu ... | head`: a reader that stops reading ends the command quietly, with no "internal error
(BrokenPipeError)" and no "Exception ignored" from the interpreter's flush at exit."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from pathlib import Path

import pytest

from deployments.cli import main
from deployments.cli.app import EXIT_BROKEN_PIPE
from tests.conftest import EXAMPLE_NOW
from tests.deployments.test_cli import SBU, TEST_EPOCH

TIMETABLE = ["timetable", "--referred", "2026-12-23T10:15:00+00:00", "--aware", "2026-12-22"]


def test_a_closed_pipe_ends_the_command_quietly(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before anything is written
    stdout = io.TextIOWrapper(os.fdopen(write_end, "wb"), encoding="utf-8")
    monkeypatch.setattr("sys.stdout", stdout)
    try:
        code = main(TIMETABLE)
    finally:
        monkeypatch.undo()
        with contextlib.suppress(BrokenPipeError):
            stdout.close()
    assert code == EXIT_BROKEN_PIPE
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("command", [["cases"], TIMETABLE])
def test_the_installed_command_piped_into_a_reader_that_left(tmp_path: Path, command: list[str]) -> None:
    # As `sbu cases | head -1` when head has read its line and gone: the pipe is closed before the
    # command (which takes a few tenths of a second to start) writes anything.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBU_", "PREFECT_"))}
    env.update({"SBU_DATA_DIR": str(tmp_path), "SBU_TIME_EPOCH": TEST_EPOCH,
                "SBU_TIME_START": EXAMPLE_NOW.isoformat()})
    process = subprocess.Popen([SBU, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == EXIT_BROKEN_PIPE, stderr
    assert stderr == ""
