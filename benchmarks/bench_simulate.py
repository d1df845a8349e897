"""Benchmark: a year of L-Town field data against a plain EPANET run of the same model.

In the same run, on the same machine:

1. EPANET alone: L-TOWN.inp opened with the EPANET 2.2 engine, duration one year at a 5-min
   hydraulic step, solved with ``EN_solveH`` (EPANET's own complete hydraulic run);
2. ``tirtasu.simulator.simulate``: the BattLeDIM sensor layout (33 pressure, 3 flow, 1 level,
   82 AMR), 23 leaks (as in BattLeDIM 2019), model error, demand noise, two sensor faults,
   EPANET stepped through the year with the leaks' emitters changed as they grow, sensor
   noise, and the wide CSVs written.

Prints both times and their ratio (target ≤ 3) and peak memory, and writes them into
``docs/benchmarks.md`` between ``<!-- bench_simulate -->`` and ``<!-- /bench_simulate -->``.

Usage::

    python benchmarks/bench_simulate.py [--days 365] [--no-docs]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _docs import machine_line, write_section  # noqa: E402

from tirtasu.network import load_model, summarize
from tirtasu.network.engine import EN_DURATION, EN_HYDSTEP, EN_REPORTSTEP, Engine
from tirtasu.pilot import lton_model_path
from tirtasu.simulator import Scenario, layout_from_model_tags, random_faults, random_leaks, simulate

TARGET_RATIO = 3.0


def time_epanet(model: Path, days: float, workdir: Path) -> float:
    with Engine(model, workdir / "plain.rpt") as en:
        en.set_time(EN_DURATION, int(days * 86400) - 300)
        en.set_time(EN_HYDSTEP, 300)
        en.set_time(EN_REPORTSTEP, 300)
        t0 = time.perf_counter()
        en.solve_all()
        return time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=365.0, help="simulated days (365 = the target)")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)

    model = lton_model_path()
    wn = load_model(model)
    rng = np.random.default_rng(2019)
    layout = layout_from_model_tags(model)
    start = pd.Timestamp("2019-01-01")
    end = start + pd.Timedelta(days=args.days)
    scenario = Scenario(
        model=str(model),
        start=str(start),
        days=args.days,
        seed=2019,
        layout=layout,
        leaks=random_leaks(wn, 23, start, end, summarize(wn).mean_demand_m3h, rng),
        faults=random_faults(layout, 2, start, end, rng),
    )
    with tempfile.TemporaryDirectory(prefix="tirtasu-bench-") as tmp:
        workdir = Path(tmp)
        print(f"EPANET alone, {args.days:g} days of L-Town at 5 min …", flush=True)
        plain = time_epanet(model, args.days, workdir)
        print(f"  {plain:.1f} s", flush=True)
        print("tirtasu simulate …", flush=True)
        t0 = time.perf_counter()
        sim = simulate(scenario, workdir / "out")
        total = time.perf_counter() - t0
        size_mb = sum(f.stat().st_size for f in (workdir / "out").iterdir()) / 1e6
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    readings = sum(df.size for df in sim.readings.values())
    ratio = total / plain
    print(f"  {total:.1f} s in all ({sim.elapsed_s:.1f} s stepping EPANET); {readings:,} readings, {size_mb:.0f} MB of CSV")
    print(f"ratio simulate / EPANET = {ratio:.2f} (target ≤ {TARGET_RATIO:g}); peak memory {peak_mb:.0f} MB")

    if not args.no_docs:
        write_section(
            "bench_simulate",
            f"""## Field-data simulator: a year of L-Town

`benchmarks/bench_simulate.py` — {args.days:g} days of L-Town at 5 min, BattLeDIM sensor layout
(33 pressure, 3 flow, 1 level, 82 AMR), 23 leaks, 2 sensor faults; against EPANET 2.2 solving
the same model over the same period with the same step (`EN_solveH`), in the same run.

| run | time [s] | ratio to EPANET |
|---|---:|---:|
| EPANET alone (`EN_solveH`) | {plain:.1f} | 1.00 |
| `tirtasu simulate`: stepping EPANET with leaks, reading sensors | {sim.elapsed_s:.1f} | {sim.elapsed_s / plain:.2f} |
| `tirtasu simulate`: everything, CSVs written | {total:.1f} | **{ratio:.2f}** (target ≤ {TARGET_RATIO:g}) |

{readings:,} readings, {size_mb:.0f} MB of CSV; peak memory {peak_mb:.0f} MB.
The simulator's EPANET runs with an extra stopping rule (flow change ≤ 0.01 m³/h) so that
small leaks are resolved; EPANET alone runs with the model's own settings.
{machine_line("wntr", "numpy", "pandas")}
""",
        )
        print("written to docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
