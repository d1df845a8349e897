"""Benchmark: pressure logger placement (`tirtasu leaks place-sensors`) on L-Town and KY4.

For each network: the layout in place (BattLeDIM's on L-Town; one logger per 25 junctions
spread by distance on KY4, as in the leak benchmark), then ten loggers added. Prints the time
of the EPANET signatures and of the greedy placement, the peak memory, and the seen share,
localizable share and confusable km before and after; writes them into docs/benchmarks.md
between ``<!-- bench_placement -->`` and ``<!-- /bench_placement -->``.

Usage::

    python benchmarks/bench_placement.py [--add 10] [--no-docs]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _docs import machine_line, publish  # noqa: E402

from tirtasu.leaks.bench import network_path
from tirtasu.leaks.placement import junction_signatures, place_pressure_sensors
from tirtasu.network import load_model
from tirtasu.simulator import layout_from_model_tags
from tirtasu.simulator.scenario import spread_pressure_sensors

# day-mean noise left by the leak-free model (residual_logger_noise) in the leak benchmark's
# training fortnights (L-Town #11, KY4 #24; see docs/leaks.md)
NOISE_M = {"L-Town": 0.003, "ky4": 0.005}


def run(network: str, add: int) -> dict:
    wn = load_model(network_path(network))
    if network == "L-Town":
        existing = layout_from_model_tags(network_path(network)).pressure
    else:
        existing = spread_pressure_sensors(wn, max(3, wn.num_junctions // 25), np.random.default_rng(0))
    t = time.perf_counter()
    signatures = junction_signatures(wn, list(wn.junction_name_list))
    sig_s = time.perf_counter() - t
    t = time.perf_counter()
    result = place_pressure_sensors(wn, add, existing=existing, noise_m=NOISE_M[network], signatures=signatures)
    place_s = time.perf_counter() - t
    return {
        "network": network, "junctions": wn.num_junctions,
        "existing": len(existing), "added": len(result.added), "signatures_s": sig_s, "place_s": place_s,
        "before": result.steps.iloc[0].to_dict(), "after": result.steps.iloc[-1].to_dict(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--add", type=int, default=10, help="loggers to add (default 10)")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    rows = [run(n, args.add) for n in ("L-Town", "ky4")]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [
        "## Pressure logger placement (`benchmarks/bench_placement.py`)",
        "",
        f"`tirtasu leaks place-sensors`: {args.add} loggers added to the layout in place (BattLeDIM's on L-Town; one per "
        "25 junctions spread by distance on KY4), 300 m radius, leaks of 2 % of the mean demand, day-mean noise "
        "left by the leak-free model as measured in the leak benchmark (3 mm L-Town, 5 mm KY4), 200 candidate sites.",
        "",
        "| network | junctions | loggers in place | signatures [s] | placement [s] | seen | localizable | confusable [km] |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        b, a = r["before"], r["after"]
        lines.append(
            f"| {r['network']} | {r['junctions']} | {r['existing']} | {r['signatures_s']:.1f} | {r['place_s']:.1f} | "
            f"{b['detectable_share']:.0%} → {a['detectable_share']:.0%} | {b['localizable_share']:.0%} → {a['localizable_share']:.0%} | "
            f"{b['ambiguity_km']:.1f} → {a['ambiguity_km']:.1f} |"
        )
    lines += ["", f"Peak memory {peak_mb:.0f} MB. " + machine_line("wntr", "numpy", "scipy")]
    md = "\n".join(lines) + "\n"
    publish("bench_placement", md, to_docs=not args.no_docs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
