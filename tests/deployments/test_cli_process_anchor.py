"""`sbu` with a partnership's process registered (the toy, through `SBU_PROCESS_MODULES`): its own
anchor shows in `sbu status --json` once its check is recorded, and `sbu retime CASE ANCHOR` moves
it like one of the procedure's, with its items; unknown anchors are refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import DSP_OPTIONS, EXAMPLE_NOW
from tests.deployments.test_cli import SBU, TEST_EPOCH, assert_one_line_error, write_referral

REPO_ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], data_dir: Path, *, toy: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBU_", "PREFECT_"))}
    env.update({"SBU_DATA_DIR": str(data_dir), "SBU_USER": "test-officer",
                "SBU_TIME_EPOCH": TEST_EPOCH, "SBU_TIME_START": EXAMPLE_NOW.isoformat()})
    if toy:
        env.update({"SBU_PROCESS_MODULES": "tests.flows.toy_process", "PYTHONPATH": str(REPO_ROOT)})
    return subprocess.run([SBU, *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def status(case_ref: str, data_dir: Path) -> dict[str, Any]:
    shown = run(["status", case_ref, "--json"], data_dir)
    assert shown.returncode == 0, shown.stderr
    answer: dict[str, Any] = json.loads(shown.stdout)
    return answer


def test_a_process_anchor_is_shown_and_moved_by_the_command(tmp_path: Path) -> None:
    referral = write_referral(tmp_path / "referral.json")
    case_ref = json.loads(run(["refer", str(referral), "--json"], tmp_path).stdout)["case_ref"]
    decided = run(["decide", case_ref, "--sin", "--rapid-review", "--rationale", "Criteria met on the facts.",
                   *DSP_OPTIONS], tmp_path)
    assert decided.returncode == 0, decided.stderr
    assert "toy-visit-booked" not in status(case_ref, tmp_path)["anchors"]

    checked = run(["record", case_ref, "toy-check", "--on", "2026-12-23", "--json"], tmp_path)
    assert checked.returncode == 0, checked.stderr
    shown = status(case_ref, tmp_path)
    assert shown["anchors"]["toy-visit-booked"] == "2026-12-23"
    assert {row["subject"]: row["due"] for row in shown["steps"] if row["step"] == "toy-visit"} == {
        "children-social-care": "2027-01-18", "education": "2027-01-18", "health": "2027-01-18",
        "police": "2027-01-18"}

    later = ["--to", "2026-12-24", "--reason", "Booked a day later"]
    moved = run(["retime", case_ref, "toy-visit-booked", *later, "--json"], tmp_path)
    assert moved.returncode == 0, moved.stderr
    assert sorted(json.loads(moved.stdout)["retimed"]) == [
        "toy-visit:children-social-care", "toy-visit:education", "toy-visit:health", "toy-visit:police"]
    shown = status(case_ref, tmp_path)
    assert shown["anchors"]["toy-visit-booked"] == "2026-12-24"
    assert {row["due"] for row in shown["steps"] if row["step"] == "toy-visit"} == {"2027-01-19"}

    unknown = run(["retime", case_ref, "toy-visit-bookd", *later], tmp_path)
    assert_one_line_error(unknown)
    assert "neither a step nor an anchor date" in unknown.stderr
    assert "toy-visit-booked" in unknown.stderr  # the anchors it could have meant are listed
    # Without the toy registered, its anchor is no anchor at all.
    alone = run(["retime", case_ref, "toy-visit-booked", *later], tmp_path, toy=False)
    assert_one_line_error(alone)
    assert "toy-visit-booked" not in alone.stderr.split("the anchors are", 1)[1]
