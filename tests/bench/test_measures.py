"""The benchmark's own measures: CPU from /proc, when a run waits on its wait, which build this is,
and how figures are reported."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from bench.build import PerTimerRuns, TimerPass, detect
from bench.figures import ConfigResult, Figure
from bench.procstat import read_trees
from bench.report import RunReport
from bench.settle import ExpectedWaits, RunCounts, key_matches
from models.processes import build_registry
from models.registry import Registry, SystemFlow


def test_a_tree_counts_its_childrens_cpu_after_they_exit() -> None:
    work = "import os; sum(i*i for i in range(3_000_000)); print(sum(os.times()[:2]))"
    child = subprocess.Popen([sys.executable, "-c",
                              "import subprocess, sys, time\n"
                              f"used = subprocess.run([sys.executable, '-c', {work!r}],\n"
                              "                      capture_output=True, text=True)\n"
                              "print('reaped', used.stdout.strip(), flush=True)\n"
                              "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        before = read_trees([child.pid])
        assert child.stdout is not None
        said, grandchild = child.stdout.readline().split()
        assert said == "reaped"
        after = read_trees([child.pid])
        # The grandchild has exited and been reaped: its CPU (as it counted it itself, less a
        # clock tick either side) is still the tree's.
        assert after.processes == 1
        assert after.rss_bytes > 0
        assert float(grandchild) > 0.05
        assert after.cpu_seconds - before.cpu_seconds >= float(grandchild) - 0.02
    finally:
        child.kill()
        child.wait()


def test_a_run_waits_on_its_wait_under_any_attempt() -> None:
    assert key_matches("dsp-decision", "dsp-decision")
    assert key_matches("rr-meeting-3-2", "rr-meeting-3")
    assert not key_matches("rr-meeting-30", "rr-meeting-3")
    assert not key_matches("rr-meeting-3", "rr-meeting-2")
    assert not key_matches(None, "dsp-decision")


def test_the_build_is_told_by_its_system_flows() -> None:
    registry = build_registry()
    others = tuple(flow for flow in registry.system_flows if "timer" not in flow.tags)

    def with_timers(name: str) -> Registry:
        return replace(registry, system_flows=(SystemFlow(name, "flows.any:flow", ("timer",)), *others))

    per_timer = detect(with_timers("deadline-check"))
    assert isinstance(per_timer.timers, PerTimerRuns)
    passing = detect(with_timers("timer-pass"))
    assert isinstance(passing.timers, TimerPass)
    assert passing.timers.flow.name == "timer-pass"
    assert (passing.sweep.name, passing.digest.name) == ("reconcile", "daily-digest")
    # This build fires its timers in passes.
    assert isinstance(detect(registry).timers, TimerPass)


def test_counting_runs_only_lets_a_full_check_through_when_it_could_pass() -> None:
    expected = ExpectedWaits(suspended=3, completed=2)
    assert RunCounts(suspended=3, completed=2, active=0).may_be_settled(expected)
    assert RunCounts(suspended=4, completed=5, active=0).may_be_settled(expected)  # older runs too
    assert not RunCounts(suspended=3, completed=2, active=1).may_be_settled(expected)
    assert not RunCounts(suspended=2, completed=2, active=0).may_be_settled(expected)
    assert not RunCounts(suspended=3, completed=1, active=0).may_be_settled(expected)


def test_a_capped_or_missing_figure_says_so(tmp_path: Path) -> None:
    config = ConfigResult(name="sqlite-n20", n=20, db="sqlite", system="test")
    config.add(Figure("settle_fresh", "settling", "s", value=900.0, cap=900.0, capped=True, load=(1.0, 2.0)))
    config.add(Figure("timer_pass", "a timer pass", "s", missing="not available on this build"))
    config.add(Figure("sweep", "a sweep", "s", value=1.234, load=(0.5, 0.5)))
    unavailable = ConfigResult(name="postgres-n20", n=20, db="postgres", system="test", available=False,
                               reason="not available on this build: no `sbu deploy`")
    report = RunReport(configs=[config, unavailable], commit="abc1234")
    path = report.write(tmp_path)
    text = path.read_text()
    assert "**> 900 s (cap)**" in text
    assert "**not available on this build**" in text
    assert "| a sweep | 1.23 s |" in text
    assert "not available on this build: no `sbu deploy`" in text
    assert (tmp_path / "latest.md").read_text() == text
    saved = json.loads(path.with_suffix(".json").read_text())
    assert saved["configs"][0]["figures"][0]["capped"] is True
    assert path.with_suffix(".png").is_file()
