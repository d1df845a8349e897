"""Benchmark: leak detection on whole years of L-Town, most of which decided nothing.

The speed run of ``bench_leaks.py`` scores one simulated year of L-Town (seed 2019). That year
has decided choices of the method for many rounds, so its score is tuning data. This script
simulates more years the same way, from other seeds, and scores them:

- the BattLeDIM sensor layout;
- 23 random leaks of 1–8 % of the mean inflow, after two leak-free training weeks;
- detection with the default settings, scored with BattLeDIM's rules.

The default seeds are ``tirtasu.leaks.bench.SCORED_YEARS``. 2020–2025 (``DECIDED_YEARS``)
decided nothing when they were added, but each has decided a choice since: 2020 and 2021 the
localization's misfit-scaled temperature (their false positives were looked at to find it),
2022–2025 turning it off again by default (each was scored with and without it), and all six
the relocalizations, the closing at a fifth with repeated growth reports, the look again at
a track placed too uncertainly for a growth report, and growth reports each time the flow
grows by half. 2026 and 2027 (``HELD_OUT_YEARS``) have decided nothing. The table marks each
year.

Prints the table and writes it into ``docs/benchmarks.md`` between ``<!-- bench_leak_years -->``
and ``<!-- /bench_leak_years -->``.

Usage::

    python benchmarks/bench_leak_years.py [--seeds 2020,2021,2026,2027] [--days 365] [--cache DIR] [--no-docs]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _docs import machine_line, publish  # noqa: E402

from tirtasu.leaks.bench import SCORED_YEARS, render_years, year_scores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default=",".join(str(s) for s in SCORED_YEARS), help="comma-separated seeds (each one year)")
    parser.add_argument("--days", type=float, default=365.0, help="length of each run [days]")
    parser.add_argument("--cache", type=Path, default=None, help="keep and reuse simulated years here")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]

    def progress(frac: float, what: str) -> None:
        print(f"[{frac:4.0%}] {what}", flush=True)

    rows = year_scores(seeds, args.days, args.cache, progress=progress)
    markdown = render_years(rows) + "\n" + machine_line("numpy", "pandas", "wntr") + "\n"
    publish("bench_leak_years", markdown, to_docs=not args.no_docs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
