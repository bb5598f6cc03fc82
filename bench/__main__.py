"""`python -m bench` (`make bench`): the engine at scale, one configuration after another.

Example: python -m bench --n 100 --db sqlite
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.progress import Progress
from bench.report import REPO, RESULTS, RunReport
from bench.runner import PROBES, Caps, Config, ConfigRun, Database, Seeders
from bench.seed import SeedCache

# Every configuration `make bench` runs, in order: SQLite by size (one store grows through the
# three), then PostgreSQL with two workers.
DEFAULT_CONFIGS = (Config(100, Database.SQLITE), Config(1_000, Database.SQLITE),
                   Config(10_000, Database.SQLITE), Config(1_000, Database.POSTGRES),
                   Config(10_000, Database.POSTGRES))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=(
            "Benchmark the engine at scale: seed N open cases through the case service, start the "
            "system, and measure settling (fresh and after a restart), idle CPU, a sweep, the "
            "digest, the commands, and decisions during the 09:00 alert pass. Writes "
            "bench/results/<date>_<configurations>_<commit>.{md,json,png} and latest.md."),
        epilog="Example: python -m bench --n 100 --db sqlite")
    parser.add_argument("--n", type=int, action="append", metavar="N",
                        help="Open cases; give it once for each size (default: 100, 1000 and 10000 on "
                             "SQLite, 1000 and 10000 on PostgreSQL).")
    parser.add_argument("--db", action="append", type=Database, choices=list(Database),
                        help="The database(s) (default: both).")
    parser.add_argument("--settle-cap", type=float, metavar="S", help="Cap on settling after a fresh start.")
    parser.add_argument("--restart-cap", type=float, metavar="S", help="Cap on settling after a restart.")
    parser.add_argument("--seed-cap", type=float, metavar="S", help="Cap on seeding.")
    parser.add_argument("--pass-cap", type=float, metavar="S", help="Cap on the alert pass.")
    parser.add_argument("--idle-seconds", type=float, metavar="S", help="The idle window (default 60).")
    parser.add_argument("--probes", type=int, default=PROBES, metavar="K",
                        help=f"Decisions timed during the alert pass (default {PROBES}).")
    parser.add_argument("--workdir", type=Path, metavar="DIR",
                        help="Where the stores and data go (default var/bench/<time>; removed after "
                             "a run without failures unless --keep).")
    parser.add_argument("--keep", action="store_true",
                        help="Keep the work directory (and, for PostgreSQL, its databases).")
    parser.add_argument("--reseed", action="store_true",
                        help="Seed every store afresh, rather than reuse one an earlier run seeded "
                             "with the same code (kept under var/bench-cache/).")
    parser.add_argument("--out", type=Path, default=RESULTS, metavar="DIR", help="Where results go.")
    return parser.parse_args(argv)


def configurations(args: argparse.Namespace) -> list[Config]:
    dbs = args.db or list(Database)
    if args.n:
        chosen = [Config(n, db) for db in Database if db in dbs for n in sorted(set(args.n))]
    else:
        chosen = [config for config in DEFAULT_CONFIGS if config.db in dbs]
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    say = Progress()
    configs = configurations(args)
    workdir = (args.workdir or REPO / "var" / "bench" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    say(f"benchmark: {', '.join(config.name for config in configs)}; working in {workdir}")
    report = RunReport(planned=[config.name for config in configs])
    cache = None if args.reseed else SeedCache(REPO / "var" / "bench-cache")
    seeders = Seeders(workdir, say.for_config("seed"), cache)
    overrides = {name: value for name, value in (
        ("settle", args.settle_cap), ("restart", args.restart_cap), ("seed", args.seed_cap),
        ("alert_pass", args.pass_cap), ("idle_window", args.idle_seconds)) if value is not None}
    try:
        for config in configs:
            label = config.name
            began = time.monotonic()
            say.for_config(label)(f"{config.n:,} open cases on {config.db}")
            run = ConfigRun(config, Caps.for_cases(config.n, **overrides), workdir / label, seeders,
                            say.for_config(label), probes=args.probes, keep=args.keep)
            report.configs.append(run.run())
            path = report.write(args.out)
            minutes = (time.monotonic() - began) / 60
            say.for_config(label)(f"done in {minutes:.1f} min; results so far: {path}")
    finally:
        seeders.dispose()
    failed = [config.name for config in report.configs if config.details.get("failed")]
    if not failed and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    elif failed:
        say(f"kept {workdir} for a look: {', '.join(failed)} had a step fail")
    say(f"results: {args.out / (report.stem + '.md')} (and .json, .png; latest.md)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
