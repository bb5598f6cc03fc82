"""The benchmark's results: a Markdown table and a JSON file per run under `bench/results/`, named
by date, configurations and commit, a `latest.md`, and a chart of how each figure grows with N.

The chart draws this run's configurations and, for the same commit, the latest earlier result of
any other configuration in the results folder (so running one N at a time still shows growth);
each point is labelled with its own load average in the Markdown beside it.
"""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.figures import ConfigResult
from bench.procstat import cpu_count

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
# The figures the chart draws, in this order, with their titles.
CHARTED = {
    "settle_fresh": "fresh Prefect database → settled", "settle_restart": "restart → settled",
    "cpu_per_flow_run_fresh": "CPU-s per flow run (fresh start)", "idle_cpu": "idle CPU",
    "idle_rss": "resident memory", "sweep": "a sweep, nothing to repair", "digest": "the daily digest",
    "decision_p95": "decision → case run Running, p95", "pass_all_fired": "09:00 alert pass, all fired",
    "cli_status": "`sbu status`", "cli_cases": "`sbu cases`", "seeding": "seeding the cases",
}


def commit() -> tuple[str, bool]:
    """The short commit hash of the work tree, and whether it has changes not committed (results
    excepted)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                          text=True, check=False).stdout.strip() or "unknown"
    status = subprocess.run(["git", "status", "--porcelain", "--", ".", ":!bench/results"], cwd=REPO,
                            capture_output=True, text=True, check=False).stdout.strip()
    return head, bool(status)


@dataclass
class RunReport:
    """One run's results. Written again after each configuration, to the same files: named by the
    configurations the run is to measure (`planned`), not those measured so far."""

    configs: list[ConfigResult] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    commit: str = ""
    dirty: bool = False

    def __post_init__(self) -> None:
        if not self.commit:
            self.commit, self.dirty = commit()

    @property
    def stem(self) -> str:
        names = self.planned or [config.name for config in self.configs]
        which = "+".join(names) if len(names) <= 2 else f"{len(names)}-configurations"
        return f"{self.started:%Y-%m-%d-%H%M}_{which}_{self.commit}{'-dirty' if self.dirty else ''}"

    def as_json(self) -> dict[str, Any]:
        return {"commit": self.commit, "dirty": self.dirty,
                "started": self.started.isoformat(timespec="seconds"),
                "machine": machine(), "configs": [config.as_json() for config in self.configs]}

    def write(self, folder: Path = RESULTS) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{self.stem}.json").write_text(json.dumps(self.as_json(), indent=2) + "\n")
        chart = chart_growth(self, folder)
        markdown = self.markdown(chart.name if chart is not None else None)
        path = folder / f"{self.stem}.md"
        path.write_text(markdown)
        (folder / "latest.md").write_text(markdown)
        return path

    def markdown(self, chart: str | None) -> str:
        info = machine()
        lines = [f"# Benchmark {self.started:%Y-%m-%d %H:%M} UTC, commit `{self.commit}`"
                 + (" (with changes not committed)" if self.dirty else ""), "",
                 f"Machine: {info['cpus']} CPUs, {info['system']}, Python {info['python']}. Every figure "
                 "was measured in this run; the load average (1 minute, the whole machine) is given "
                 "at the start and the end of its measurement. A figure that reached its cap reads "
                 "\"> cap\".", ""]
        for config in self.configs:
            lines += _config_markdown(config)
        if chart is not None:
            lines += ["## How the figures grow with N", "", f"![Each figure against N]({chart})", ""]
        lines += _definitions()
        return "\n".join(lines) + "\n"


def machine() -> dict[str, Any]:
    return {"cpus": cpu_count(), "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}


def _config_markdown(config: ConfigResult) -> list[str]:
    title = f"## {config.name}: {config.n:,} open cases, {config.system}"
    if not config.available:
        return [title, "", f"**{config.reason}.** No figures.", ""]
    lines = [title, "", f"Build: {config.build or 'not reached'}. {config.cpus} CPUs. "
             f"The configuration took {config.seconds / 60:.1f} min.", ""]
    for failure in config.details.get("failed", []):
        lines += [f"**Step failed:** {failure}. The figures after it were not measured.", ""]
    lines += [f"| figure | value | target | load (1 min) on {config.cpus} CPUs, start → end | note |",
              "|---|---|---|---|---|"]
    for figure in config.figures:
        load = f"{figure.load[0]:.1f} → {figure.load[1]:.1f}" if figure.load else ""
        value = figure.shown()
        if figure.capped or figure.missing:
            value = f"**{value}**"
        lines.append(f"| {figure.what} | {value} | {figure.target} | {load} | {_cell(figure.note)} |")
    lines.append("")
    store = config.details.get("store")
    mix = config.details.get("mix")
    if store or mix:
        lines += [f"The store: {_cell(json.dumps(store))}; the mix: {_cell(json.dumps(mix))}.", ""]
    probes = config.details.get("probes") or []
    if probes:
        lines += ["Decisions recorded during the alert pass (seconds from the commit):", "",
                  "| case | what | run | → Running | → next wait | command | timers still due |",
                  "|---|---|---|---|---|---|---|"]
        for probe in probes:
            lines.append(f"| {probe['ref']} | {probe['what']} | {probe['process']} | "
                         f"{_s(probe['to_running'])} | "
                         f"{_s(probe['to_next_wait'])} | {_s(probe['command_seconds'])} | "
                         f"{'yes' if probe['during_pass'] else 'no'} |"
                         + (f" failed: {_cell(probe['error'])}" if probe["error"] else ""))
        lines.append("")
    return lines


def _s(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def _definitions() -> list[str]:
    return [
        "## What the figures mean", "",
        "- **Settled**: every open case's started processes have their run in Prefect, suspended on "
        "the key of the wait the store says is current (or completed when nothing is open), no case "
        "run is scheduled, pending or running, and every timer is in place (per timer: its "
        "deadline-check run scheduled; timer pass: the next pass scheduled), none due unfired "
        "(`bench/settle.py`, `bench/build.py`). The time includes the start. Case runs are counted by "
        "state every 5 s or so, and the store and every case run read in full when the counts allow "
        "it or once a minute: the system's Prefect server answers those reads, and its CPU counts.",
        "- **CPU**: user and system time of every process of the system (`sbu serve` and its tree: "
        "the Prefect server, the warm start and every flow run's process), from /proc, including "
        "children that have exited (`bench/procstat.py`).",
        "- **Decision**: `sbu record` of the case's next step; from its commit (its audit event's "
        "time) to the Running state of the run of the process that owns the step, and to that run "
        "suspended on its next wait (or completed). 'Timers still due': committed before the last "
        "timer due at 09:00 had fired.",
        "- **Alert pass**: the system restarted on a case clock shortly before 09:00 on the next "
        "working day; at 09:00 every overdue item's escalation and the day's reminders fall due, "
        "and a sweep is started.", ""]


def chart_growth(report: RunReport, folder: Path) -> Path | None:
    """One small chart per figure: its value against N, one line per database; a capped value is
    drawn as an open triangle at its cap."""
    points = _points(report, folder)
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [key for key in CHARTED if key in points]
    columns = 3
    rows = (len(keys) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    for axis, key in zip(axes.flat, keys, strict=False):
        _what, unit, series = points[key]
        for db, values in sorted(series.items()):
            values.sort()
            ns = [n for n, _, _ in values]
            axis.plot(ns, [v for _, v, _ in values], marker="o", label=db)
            capped = [(n, v) for n, v, c in values if c]
            if capped:
                axis.scatter([n for n, _ in capped], [v for _, v in capped], marker="^", s=80,
                             facecolors="none", edgecolors="red", label=f"{db}: cap reached")
        axis.set_xscale("log")
        axis.set_ylim(bottom=0)
        axis.set_title(CHARTED[key], fontsize=8)
        axis.set_xlabel("open cases", fontsize=8)
        axis.set_ylabel(unit, fontsize=8)
        axis.tick_params(labelsize=7)
        axis.legend(fontsize=6)
    for axis in list(axes.flat)[len(keys):]:
        axis.set_visible(False)
    figure.suptitle(f"How each figure grows with N (commit {report.commit})", fontsize=10)
    figure.tight_layout()
    path = folder / f"{report.stem}.png"
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


Series = dict[str, list[tuple[int, float, bool]]]  # by database: (N, value, capped)


def _points(report: RunReport, folder: Path) -> dict[str, tuple[str, str, Series]]:
    configs: dict[str, dict[str, Any]] = {}
    for earlier in sorted(folder.glob(f"*_{report.commit}*.json")):
        try:
            data = json.loads(earlier.read_text())
        except (OSError, ValueError):
            continue
        for config in data.get("configs", []):
            configs[config["name"]] = config
    for config in report.configs:
        configs[config.name] = config.as_json()
    points: dict[str, tuple[str, str, Series]] = {}
    for config in configs.values():
        for figure in config.get("figures", []):
            if figure["key"] not in CHARTED or figure["value"] is None or figure["missing"]:
                continue
            _what, _unit, series = points.setdefault(figure["key"], (figure["what"], figure["unit"], {}))
            series.setdefault(config["db"], []).append((config["n"], figure["value"], figure["capped"]))
    return points
