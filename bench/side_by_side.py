"""`python -m bench.side_by_side OTHER`: `sbu status` and `sbu timetable` timed against another
checkout of this repository (an earlier commit, say), in one run, turn and turn about.

Why turn and turn about: this machine's speed drifts by a third within minutes, so two runs an
hour apart compare the hour as much as the code. Each round times every command of both checkouts
once, in alternating order, and the figure is the median over the rounds with the ratio beside it.

OTHER is a checkout with its own `.venv` (`make .venv/.installed bytecode` there). Each checkout
gets a data directory of its own with the same referral, made by its own `sbu refer`.

Example: python -m bench.side_by_side /tmp/previous --rounds 15
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

REFERRAL = {
    "referring_agency": "police", "external_ref": "POL-2026-1234", "category": "serious-harm",
    "abuse_or_neglect": "suspected", "incident_date": "2026-11-20", "la_aware_date": "2026-11-23",
    "referred_at": "2026-11-24T10:15:00+00:00",
    "children": [{"la_record_id": "LA-000123", "age_years": 7, "looked_after": False,
                  "care_leaver": False}],
    "agencies_involved": ["police", "health", "children-social-care", "education"],
}
TIMETABLE = ["timetable", "--referred", "2026-12-23T10:15:00+00:00", "--aware", "2026-12-22",
             "--notified", "2026-12-30", "--commissioned", "2027-01-20", "--json"]


@dataclass
class Checkout:
    name: str
    root: Path
    data: Path
    case_ref: str = ""

    def sbu(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SBU_DATA_DIR": str(self.data)}
        return subprocess.run([str(self.root / ".venv" / "bin" / "sbu"), *args], env=env, cwd=self.data,
                              capture_output=True, text=True, check=True)

    def timed(self, args: list[str]) -> float:
        started = time.perf_counter()
        self.sbu(args)
        return time.perf_counter() - started


def commit_of(root: Path) -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() or "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.side_by_side", description=__doc__.split("\n")[0])
    parser.add_argument("other", type=Path, help="the other checkout (with its own .venv)")
    parser.add_argument("--rounds", type=int, default=15, help="rounds of every command (default 15)")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        checkouts = [Checkout(f"this ({commit_of(REPO)})", REPO, Path(scratch) / "this"),
                     Checkout(f"other ({commit_of(options.other)})", options.other.resolve(),
                              Path(scratch) / "other")]
        for checkout in checkouts:
            checkout.data.mkdir()
            (checkout.data / "referral.json").write_text(json.dumps(REFERRAL), encoding="utf-8")
            checkout.case_ref = checkout.sbu(["refer", "referral.json"]).stdout.strip().split()[0]
            checkout.sbu(["status", checkout.case_ref])  # the first run compiles and migrates
        times: dict[tuple[str, str], list[float]] = {}
        for round_ in range(options.rounds):
            order = checkouts if round_ % 2 == 0 else checkouts[::-1]
            for checkout in order:
                times.setdefault((checkout.name, "status"), []).append(
                    checkout.timed(["status", checkout.case_ref, "--json"]))
                times.setdefault((checkout.name, "timetable"), []).append(checkout.timed(TIMETABLE))
            print(f"round {round_ + 1}/{options.rounds}", file=sys.stderr, flush=True)
        load = os.getloadavg()[0]
        print(f"median wall time over {options.rounds} rounds, turn and turn about "
              f"(1-minute load average at the end {load:.1f}, {os.cpu_count()} CPUs):")
        print(f"| command | {checkouts[0].name} | {checkouts[1].name} | ratio |")
        print("|---|---|---|---|")
        for command in ("status", "timetable"):
            this, other = (statistics.median(times[(c.name, command)]) for c in checkouts)
            print(f"| `sbu {command}` | {this:.3f} s | {other:.3f} s | {this / other:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
