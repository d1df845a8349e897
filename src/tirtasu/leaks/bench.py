"""Benchmark of leak detection on simulated scenarios with known leaks.

Each scenario is simulated with :mod:`tirtasu.simulator` (2 leak-free training weeks, then 8
weeks with 6–8 leaks of 1–8 % of the mean inflow, model error, demand noise, sensor noise),
run through :func:`tirtasu.leaks.detect.detect_leaks` and scored with
:func:`tirtasu.leaks.scoring.score` (BattLeDIM rules). Scenarios are split into a *tuning* part
(the only one looked at while choosing the method's settings) and a *held-out* part (other
seeds and another network, never tuned on), reported separately.

The speed benchmark simulates a year of L-Town at 5 min with the BattLeDIM sensor layout and
times detection and localization against EPANET simulating the same year, in the same run.
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import platform
import resource
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["BenchCase", "BenchResult", "CASES", "run_bench", "run_case", "speed_benchmark", "write_section"]

# bumped whenever the simulator builds a case's data differently, so that a kept cache
# (``--cache``) is not reused: 2, sensors spread with parallel pipes measured by the shorter
SCENARIO_VERSION = 2
TRAIN_DAYS = 14
EVAL_DAYS = 56
START = pd.Timestamp("2025-01-01")
# L-Town's 43.2 km of mains over BattLeDIM's 33 pressure sensors
BATTLEDIM_KM_PER_SENSOR = 43.2 / 33
NETWORKS = {
    "L-Town": "L-TOWN.inp",
    "ky2": "asce-tf-wdst/ky2.inp",  # Kentucky KY2, GPM
    "ky4": "asce-tf-wdst/ky4.inp",  # Kentucky KY4, GPM
}


@dataclass(frozen=True)
class BenchCase:
    """One benchmark scenario.

    Attributes
    ----------
    network : str
        Key of :data:`NETWORKS`.
    seed : int
    part : {"tuning", "held-out", "held-out 2", …, "held-out 18"}
        ``held-out 2``: a second held-out part with new seeds, added once the first had been
        looked at for more than one version of the method; ``held-out 3`` likewise, once the
        second had been (with pipe roughness calibration); ``held-out 4`` once the third had;
        ``held-out 5`` once the fourth had, ``held-out 6`` once the fifth had, ``held-out 7``
        once the sixth had, ``held-out 8`` once the seventh had decided a choice, ``held-out 9``
        with the growth re-report made the default (chosen on tuning and the year), ``held-out
        10`` with the guarded two-week window and alarms without a pipe below 40 % (likewise),
        ``held-out 11`` with the detector's pipe distances mended (parallel pipes), ``held-out 12`` with
        the alarms of large leaks too uncertainly placed to be worth a crew reported without a pipe,
        ``held-out 13`` with the localization's misfit scaling (since made an option, off by default),
        ``held-out 14`` with the relocalization a day, two, four and seven days after an alarm,
        reported whenever the best pipe moved more than 50 m and is the more likely, ``held-out
        15`` with a leak closed only below a fifth of its peak flow and reported again each
        time its flow doubles, ``held-out 16`` with a track placed too uncertainly for a growth
        report localized again when its flow doubles, ``held-out 17`` with a growth report each
        time a leak's flow grows by half, ``held-out 18`` with a look at an unsure track that keeps
        its pipe reported as a growth report.
    layout : {"full", "sparse", "placed", "dense"}
        ``full``: BattLeDIM's layout on L-Town, one pressure sensor per 25 junctions elsewhere
        (spread by distance along the pipes); ``sparse``: half as many pressure sensors;
        ``dense``: spread by distance at BattLeDIM's density by length of main (one per 1.3 km;
        one per 25 junctions is one per 6.8 km on KY4, whose pipes are long);
        ``placed``: as many as ``full``, half of them spread, half placed by
        :func:`tirtasu.leaks.placement.place_pressure_sensors`.
    noise : float
        Multiplier of the simulator's default sensor and demand noise.
    demand_scale : float
        The true network's demands are this multiple of the model's (an outdated model).
    roughness_scale : float
        The true network's pipe roughness coefficients are this multiple of the model's
        (Hazen-Williams C 0.7: pipes older than the model says).
    leaks : int
    quick : bool
        Part of the quick set.
    """

    network: str
    seed: int
    part: str
    layout: str = "full"
    noise: float = 1.0
    leaks: int = 6
    quick: bool = False
    demand_scale: float = 1.0
    roughness_scale: float = 1.0

    @property
    def name(self) -> str:
        extra = "" if self.layout == "full" else f", {self.layout}"
        extra += "" if self.noise == 1.0 else f", noise×{self.noise:g}"
        extra += "" if self.demand_scale == 1.0 else f", demand×{self.demand_scale:g}"
        extra += "" if self.roughness_scale == 1.0 else f", C×{self.roughness_scale:g}"
        return f"{self.network} #{self.seed}{extra}"


def _scenario_set(part: str, ltown_seed: int, ky4_seed: int | None) -> list[BenchCase]:
    """Seven scenarios on L-Town (one of each kind) and three on KY4 (none without ``ky4_seed``)."""
    ltown = [
        BenchCase("L-Town", ltown_seed, part),
        BenchCase("L-Town", ltown_seed + 1, part),
        BenchCase("L-Town", ltown_seed + 2, part, leaks=8),
        BenchCase("L-Town", ltown_seed + 3, part, layout="sparse"),
        BenchCase("L-Town", ltown_seed + 4, part, noise=2.0),
        BenchCase("L-Town", ltown_seed + 5, part, demand_scale=1.3),
        BenchCase("L-Town", ltown_seed + 6, part, roughness_scale=0.75),
    ]
    if ky4_seed is None:
        return ltown
    return ltown + [
        BenchCase("ky4", ky4_seed, part),
        BenchCase("ky4", ky4_seed + 1, part),
        BenchCase("ky4", ky4_seed + 2, part, layout="sparse"),
    ]


CASES = [
    # tuning
    BenchCase("L-Town", 11, "tuning", quick=True),
    BenchCase("L-Town", 12, "tuning", quick=True),
    BenchCase("ky2", 21, "tuning", quick=True),
    BenchCase("L-Town", 13, "tuning", leaks=8),
    BenchCase("L-Town", 14, "tuning", layout="sparse"),
    BenchCase("L-Town", 15, "tuning", noise=2.0),
    BenchCase("ky2", 22, "tuning"),
    BenchCase("ky2", 23, "tuning", layout="sparse"),
    BenchCase("L-Town", 16, "tuning", demand_scale=1.3),
    BenchCase("L-Town", 17, "tuning", roughness_scale=0.7),
    BenchCase("ky4", 24, "tuning"),
    BenchCase("ky4", 25, "tuning", layout="sparse"),
    # the same scenarios with half the loggers placed to separate leaks (tirtasu leaks place-sensors)
    BenchCase("ky4", 24, "tuning", layout="placed"),
    BenchCase("ky2", 22, "tuning", layout="placed"),
    # fourteen more L-Town scenarios (added with the known leaks' spread and the joint balance,
    # which were chosen on them: the first ten had been tuned on for long)
    *_scenario_set("tuning", 210, None),
    *_scenario_set("tuning", 217, None),
    # KY4 at BattLeDIM's density: looked at for the alarms of leaks too uncertainly placed to be
    # worth a crew (never reported until unplaced_alarm), so tuning from then on
    BenchCase("ky4", 26, "tuning", layout="dense"),
    BenchCase("ky4", 27, "tuning", layout="dense"),
    # held out: other seeds, another network
    BenchCase("L-Town", 111, "held-out", quick=True),
    BenchCase("L-Town", 112, "held-out", quick=True),
    BenchCase("ky4", 121, "held-out", quick=True),
    BenchCase("L-Town", 113, "held-out", leaks=8),
    BenchCase("L-Town", 114, "held-out", layout="sparse"),
    BenchCase("L-Town", 115, "held-out", noise=2.0),
    BenchCase("ky4", 122, "held-out"),
    BenchCase("ky4", 123, "held-out", layout="sparse"),
    BenchCase("L-Town", 116, "held-out", demand_scale=1.3),
    # held out once more: new seeds, scored once
    BenchCase("L-Town", 131, "held-out 2"),
    BenchCase("L-Town", 132, "held-out 2"),
    BenchCase("L-Town", 133, "held-out 2", leaks=8),
    BenchCase("L-Town", 134, "held-out 2", layout="sparse"),
    BenchCase("L-Town", 135, "held-out 2", noise=2.0),
    BenchCase("L-Town", 136, "held-out 2", demand_scale=1.3),
    BenchCase("ky4", 141, "held-out 2"),
    BenchCase("ky4", 142, "held-out 2"),
    BenchCase("ky4", 143, "held-out 2", layout="sparse"),
    # held out a third time (new seeds, scored once): added with pipe roughness calibration
    *_scenario_set("held-out 3", 151, 161),
    # held out a fourth time (new seeds, scored once, for the method of the third: this part
    # came with logger placement and the search length, which do not change the detection)
    *_scenario_set("held-out 4", 171, 181),
    # held out a fifth time (new seeds, scored once): added with the known leaks' spread and
    # the joint balance
    *_scenario_set("held-out 5", 191, 201),
    # held out a sixth time (new seeds, scored once): added with the known leaks' deviations
    # sized by their change in the window, and with KY4 at BattLeDIM's density by length of main
    *_scenario_set("held-out 6", 231, 241),
    BenchCase("ky4", 244, "held-out 6", layout="dense"),
    BenchCase("ky4", 245, "held-out 6", layout="dense"),
    # held out a seventh time (new seeds): scored for the last week's test against the training
    # period, chosen on tuning and the year, and without it, which was kept
    *_scenario_set("held-out 7", 251, 261),
    BenchCase("ky4", 264, "held-out 7", layout="dense"),
    BenchCase("ky4", 265, "held-out 7", layout="dense"),
    # held out an eighth time (new seeds, scored once): added once the seventh had decided a choice
    *_scenario_set("held-out 8", 271, 281),
    BenchCase("ky4", 284, "held-out 8", layout="dense"),
    BenchCase("ky4", 285, "held-out 8", layout="dense"),
    # held out a ninth time (new seeds, scored once): added with the growth re-report as default
    *_scenario_set("held-out 9", 291, 301),
    BenchCase("ky4", 304, "held-out 9", layout="dense"),
    BenchCase("ky4", 305, "held-out 9", layout="dense"),
    # held out a tenth time (new seeds, scored once): added with the two-week window (tested
    # while every known leak is placed) and alarms without a pipe below 40 % as defaults
    *_scenario_set("held-out 10", 311, 321),
    BenchCase("ky4", 324, "held-out 10", layout="dense"),
    BenchCase("ky4", 325, "held-out 10", layout="dense"),
    # held out an eleventh time (new seeds, scored once): added with the detector's pipe
    # distances mended (parallel pipes, on the KY networks)
    *_scenario_set("held-out 11", 331, 341),
    BenchCase("ky4", 344, "held-out 11", layout="dense"),
    BenchCase("ky4", 345, "held-out 11", layout="dense"),
    # held out a twelfth time (new seeds, scored once): added with the alarms of large leaks
    # reported without a pipe where their place is too uncertain to be worth a crew
    *_scenario_set("held-out 12", 351, 361),
    BenchCase("ky4", 364, "held-out 12", layout="dense"),
    BenchCase("ky4", 365, "held-out 12", layout="dense"),
    # held out a thirteenth time (new seeds, scored once): added with the localization's
    # temperature scaled by the best pipe's misfit, chosen on tuning and the years 2019–2021
    *_scenario_set("held-out 13", 371, 381),
    BenchCase("ky4", 384, "held-out 13", layout="dense"),
    BenchCase("ky4", 385, "held-out 13", layout="dense"),
    # held out a fourteenth time (new seeds, scored once): added with the relocalization at one,
    # two, four and seven days, reported whenever the best pipe moved (chosen on tuning and the
    # years 2019–2025)
    *_scenario_set("held-out 14", 391, 401),
    BenchCase("ky4", 404, "held-out 14", layout="dense"),
    BenchCase("ky4", 405, "held-out 14", layout="dense"),
    # held out a fifteenth time (new seeds, scored once): added with a leak closed only below a
    # fifth of its peak and a growth report each time its flow doubles (chosen on tuning, the
    # study scenarios and the years 2019–2025)
    *_scenario_set("held-out 15", 411, 421),
    BenchCase("ky4", 424, "held-out 15", layout="dense"),
    BenchCase("ky4", 425, "held-out 15", layout="dense"),
    # held out a sixteenth time (new seeds, scored once): added with a track placed too
    # uncertainly for a growth report localized again when its flow doubles (chosen on tuning,
    # the study scenarios and the years 2019–2025)
    *_scenario_set("held-out 16", 431, 441),
    BenchCase("ky4", 444, "held-out 16", layout="dense"),
    BenchCase("ky4", 445, "held-out 16", layout="dense"),
    # held out a seventeenth time (new seeds, scored once): added with a growth report each time
    # a leak's flow grows by half (chosen on tuning, the study scenarios, twenty further L-Town
    # tuning scenarios and the years 2019–2025)
    *_scenario_set("held-out 17", 451, 461),
    BenchCase("ky4", 464, "held-out 17", layout="dense"),
    BenchCase("ky4", 465, "held-out 17", layout="dense"),
    # held out an eighteenth time (new seeds, scored once, with the method before and with growth
    # reports when the flow doubles as well): added with a look that keeps an unsure track's pipe
    # reported as a growth report (chosen on tuning, the study scenarios and twenty further
    # L-Town tuning scenarios)
    *_scenario_set("held-out 18", 471, 481),
    BenchCase("ky4", 484, "held-out 18", layout="dense"),
    BenchCase("ky4", 485, "held-out 18", layout="dense"),
]

# Tuning scenarios outside the benchmark's table, for studies of the method (docs/leaks-history.md,
# the trials): the same seven kinds as each part's L-Town scenarios, from other seeds.
STUDY_CASES = [*_scenario_set("tuning", 224, None), *_scenario_set("tuning", 501, None)]
#: further L-Town seeds run as tuning data in studies outside the table (docs/leaks-history.md, the
#: trials: #601–#607 and #611–#617 of every kind, the sparse and ``C×0.75`` ones of #621–#677,
#: and every kind of #701–#767, seven sets of seven); never to be held out
STUDY_SEEDS = (*range(601, 608), *range(611, 618), *range(621, 678), *(s + k for s in range(701, 762, 10) for k in range(7)))


def network_path(key: str) -> Path:
    import epyt

    path = Path(epyt.__file__).parent / "networks" / NETWORKS[key]
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; is the epyt package installed completely?")
    return path


def build_scenario(case: BenchCase):
    """The simulator scenario of a benchmark case (deterministic in its seed)."""
    from tirtasu.network import load_model, summarize
    from tirtasu.simulator import Scenario, default_layout, layout_from_model_tags, random_leaks

    model = network_path(case.network)
    wn = load_model(model)
    rng = np.random.default_rng(case.seed)
    layout = layout_from_model_tags(model) if case.network == "L-Town" else None
    summary = summarize(wn)
    if case.layout == "dense":
        # BattLeDIM's density by length of main rather than by junction
        layout = default_layout(wn, rng, n_pressure=max(3, round(summary.mains_km / BATTLEDIM_KM_PER_SENSOR)))
    elif layout is None or not layout.pressure:
        layout = default_layout(wn, rng)
    if case.layout == "sparse":
        layout.pressure = layout.pressure[::2]
    elif case.layout == "placed":
        # half of the loggers spread by distance, the other half where they best separate leaks
        from tirtasu.leaks.placement import place_pressure_sensors

        spread = layout.pressure[::2]
        layout.pressure = spread + place_pressure_sensors(wn, len(layout.pressure) - len(spread), existing=spread).added
    t0 = START + pd.Timedelta(days=TRAIN_DAYS)
    end = t0 + pd.Timedelta(days=EVAL_DAYS)
    leaks = random_leaks(wn, case.leaks, t0, end, summary.mean_demand_m3h, rng)
    sc = Scenario(
        model=str(model),
        start=str(START),
        days=TRAIN_DAYS + EVAL_DAYS,
        seed=case.seed,
        layout=layout,
        leaks=leaks,
        demand_scale=case.demand_scale,
        roughness_scale=case.roughness_scale,
    )
    if case.noise != 1.0:
        sc.noise_sd = {k: v * case.noise for k, v in sc.noise_sd.items()}
        sc.demand_noise_group *= case.noise
        sc.demand_noise_common *= case.noise
    return sc


def simulate_case(case: BenchCase, cache: Path | None = None):
    """Simulate a case, or load it from ``cache``."""
    from tirtasu.simulator import simulate

    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        aged = "" if case.roughness_scale == 1.0 else f"-c{case.roughness_scale:g}"
        f = cache / f"v{SCENARIO_VERSION}-{case.network}-{case.seed}-{case.layout}-{case.noise:g}-{case.leaks}-{case.demand_scale:g}{aged}.pkl"
        if f.is_file():
            with open(f, "rb") as fh:
                return pickle.load(fh)
    sim = simulate(build_scenario(case))
    if cache is not None:
        with open(f, "wb") as fh:
            pickle.dump(sim, fh)
    return sim


def inputs_of(sim):
    from tirtasu.leaks.data import LeakInputs

    r = sim.readings
    empty = pd.DataFrame(index=sim.times)
    return LeakInputs(
        pressure=r.get("pressure", empty), flow=r.get("flow", empty), level=r.get("level", empty), demand=r.get("demand", empty)
    )


def detect_and_score(wn, sim, train_until, config=None):
    """Run :func:`~tirtasu.leaks.detect.detect_leaks` on a simulation and score the rows that
    name a pipe with BattLeDIM's rules.

    Returns
    -------
    report : LeakReport
    result : tirtasu.leaks.scoring.LeakScore
    leaks : pandas.DataFrame
        The score's leak table with each leak's ``kind`` and ``peak_flow_m3h``.
    detect_s : float [s]
        Time spent in detection alone.
    """
    from tirtasu.leaks.detect import detect_leaks
    from tirtasu.leaks.scoring import score

    t = time.perf_counter()
    report = detect_leaks(wn, inputs_of(sim), train_until=train_until, config=config)
    detect_s = time.perf_counter() - t
    det = report.detections[report.detections["link_id"] != ""]
    sc = score(det, sim.leaks, sim.leak_flows, wn, period_start=train_until)
    leaks = sc.leaks.merge(sim.leaks[["leak_id", "kind", "peak_flow_m3h"]], on="leak_id")
    return report, sc, leaks, detect_s


def abrupt_delays_h(leaks: pd.DataFrame) -> list[float]:
    """Detection delays [h] of the abrupt leaks found, from a score's leak table (with ``kind``)."""
    return list(leaks.loc[(leaks["kind"] == "abrupt") & leaks["found"], "delay_h"])


def run_case(case: BenchCase, cache: Path | None = None, config=None) -> dict:
    """Simulate (or load), detect and score one case; a row of the benchmark table."""
    from tirtasu.network import load_model

    sim = simulate_case(case, cache)
    wn = load_model(sim.scenario.model)
    train_until = START + pd.Timedelta(days=TRAIN_DAYS)
    _, sc, leaks, elapsed = detect_and_score(wn, sim, train_until, config)
    abrupt = abrupt_delays_h(leaks)
    return {
        "case": case.name,
        "part": case.part,
        "network": case.network,
        "layout": case.layout,
        "units": _units(wn),
        "pressure_sensors": len(sim.scenario.layout.pressure),
        "leaks": len(leaks),
        "tp": sc.tp,
        "fp": sc.fp,
        "repeats": sc.repeats,
        "found_share": sc.tp / max(len(leaks), 1),
        "score_eur": sc.score_eur,
        "perfect_eur": sc.perfect_eur,
        "fraction": sc.fraction,
        "median_delay_h": sc.median_delay_h,
        "abrupt_found": len(abrupt),
        "abrupt_delays_h": abrupt,
        "median_distance_m": sc.median_distance_m,
        "detect_s": elapsed,
        "leak_table": leaks,
        "detections": sc.detections,
    }


def _units(wn) -> str:
    from tirtasu.network import flow_units

    return flow_units(wn)


def _fmt(x, spec=".0f", empty="–") -> str:
    return empty if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def summarize_rows(rows: list[dict]) -> dict:
    """Totals of a part: share found within 300 m, FP per scenario, € fraction, abrupt delay."""
    leaks = sum(r["leaks"] for r in rows)
    tp = sum(r["tp"] for r in rows)
    delays = [d for r in rows for d in r["abrupt_delays_h"]]
    return {
        "scenarios": len(rows),
        "leaks": leaks,
        "tp": tp,
        "found_share": tp / max(leaks, 1),
        "fp_per_scenario": sum(r["fp"] for r in rows) / max(len(rows), 1),
        "max_fp": max((r["fp"] for r in rows), default=0),
        "fraction": sum(r["score_eur"] for r in rows) / max(sum(r["perfect_eur"] for r in rows), 1e-9),
        "median_abrupt_delay_h": float(np.median(delays)) if delays else float("nan"),
        "median_distance_m": float(np.nanmedian([r["median_distance_m"] for r in rows])) if rows else float("nan"),
    }


def part_totals(rows: list[dict]) -> dict:
    """Totals of each part (in the order of the rows) and, when there are several held-out
    parts, of all of them together for each network (its "dense" layout apart)."""
    parts = {part: summarize_rows([r for r in rows if r["part"] == part]) for part in dict.fromkeys(r["part"] for r in rows)}
    held = [r for r in rows if r["part"].startswith("held-out")]
    if len({r["part"] for r in held}) > 1:
        # a network with its sensors at BattLeDIM's density is another case than the same
        # network with a few: totalled apart
        def group(r):
            return r["network"] + (", dense" if r.get("layout") == "dense" else "")

        for g in dict.fromkeys(group(r) for r in held):
            parts[f"held-out, all parts, {g}"] = summarize_rows([r for r in held if group(r) == g])
    return parts


@dataclass
class BenchResult:
    rows: list
    parts: dict
    speed: dict | None
    markdown: str
    targets: dict = field(default_factory=dict)


def targets_met(s: dict) -> dict:
    return {
        "found ≥ 80 % within 300 m": s["found_share"] >= 0.8,
        "≤ 1 false positive per scenario": s["max_fp"] <= 1,
        "€ ≥ 70 % of perfect": s["fraction"] >= 0.7,
        "median abrupt delay ≤ 24 h": np.isfinite(s["median_abrupt_delay_h"]) and s["median_abrupt_delay_h"] <= 24,
    }


SPEED_YEAR = 2019  # seed and year of the speed run's scenario (it has decided choices: tuning data)
#: years simulated alike that decided a choice after they were added: 2020 and 2021 chose the
#: misfit-scaled localization temperature (their false positives were looked at to find it),
#: 2022–2025 turned it off again by default (scored with and without it); all six chose the
#: relocalizations, the closing at a fifth with repeated growth reports, the look again at a
#: track placed too uncertainly for a growth report, and growth reports each time the flow
#: grows by half
DECIDED_YEARS = (2020, 2021, 2022, 2023, 2024, 2025)
HELD_OUT_YEARS = (2026, 2027)  # years simulated alike, never used for a choice before they were added
#: the years ``benchmarks/bench_leak_years.py`` scores by default
SCORED_YEARS = DECIDED_YEARS + HELD_OUT_YEARS


def simulate_year(seed: int, days: float = 365.0, cache: Path | None = None, progress=None):
    """A year of L-Town from ``seed``-01-01, simulated or read from ``cache``.

    BattLeDIM's sensor layout; 23 random leaks of 1–8 % of the mean inflow, all after the
    ``TRAIN_DAYS`` leak-free training days.

    Parameters
    ----------
    seed : int
        Seed of the leaks and the noise, and the calendar year simulated.
        :data:`SPEED_YEAR` is the speed run's year (cached as ``v…-speed-DAYS.pkl``, its name
        before the held-out years were added); :data:`HELD_OUT_YEARS` decided nothing.
    days : float [d]
        Length of the run.
    cache : pathlib.Path, optional
        Directory to keep and reuse simulations in.
    progress : callable, optional
        Called with the fraction simulated.

    Returns
    -------
    tirtasu.simulator.SimulationResult
    """
    from tirtasu.network import load_model, summarize
    from tirtasu.simulator import Scenario, layout_from_model_tags, random_leaks, simulate

    model = network_path("L-Town")
    wn = load_model(model)
    name = f"v{SCENARIO_VERSION}-speed-{days:g}.pkl" if seed == SPEED_YEAR else f"v{SCENARIO_VERSION}-year-{seed}-{days:g}.pkl"
    f = cache / name if cache is not None else None
    if f is not None and f.is_file():
        with open(f, "rb") as fh:
            return pickle.load(fh)
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(f"{seed}-01-01")
    t0 = start + pd.Timedelta(days=TRAIN_DAYS)
    end = start + pd.Timedelta(days=days)
    sc = Scenario(
        model=str(model), start=str(start), days=days, seed=seed, layout=layout_from_model_tags(model),
        leaks=random_leaks(wn, 23, t0, end, summarize(wn).mean_demand_m3h, rng),
    )
    sim = simulate(sc, progress=progress)
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        with open(f, "wb") as fh:
            pickle.dump(sim, fh)
    return sim


def year_scores(seeds=SCORED_YEARS, days: float = 365.0, cache: Path | None = None, progress=None, config=None) -> list[dict]:
    """Detect and score whole years of L-Town (:func:`simulate_year`), one row per seed.

    Parameters
    ----------
    seeds : sequence of int
        Years to run (default :data:`SCORED_YEARS`).
    days : float [d]
    cache : pathlib.Path, optional
    progress : callable, optional
        Called with (fraction done, what).
    config : DetectConfig, optional
        Default settings when None.

    Returns
    -------
    list of dict
        Per year: ``leaks``, ``tp``, ``fp``, ``repeats``, ``score_eur`` and ``perfect_eur`` [€],
        ``fraction``, ``median_abrupt_delay_h`` [h], ``median_distance_m`` [m], ``detect_s`` [s].
    """
    from tirtasu.network import load_model

    wn = load_model(network_path("L-Town"))
    out = []
    for i, seed in enumerate(seeds):
        if progress:
            progress(i / max(len(seeds), 1), f"year {seed}")
        sim = simulate_year(seed, days, cache)
        train_until = pd.Timestamp(sim.scenario.start) + pd.Timedelta(days=TRAIN_DAYS)
        _, sc, leaks, detect_s = detect_and_score(wn, sim, train_until, config)
        abrupt = abrupt_delays_h(leaks)
        out.append({
            "year": seed, "days": days, "leaks": len(leaks), "tp": sc.tp, "fp": sc.fp, "repeats": sc.repeats,
            "fraction": sc.fraction, "score_eur": sc.score_eur, "perfect_eur": sc.perfect_eur,
            "median_abrupt_delay_h": float(np.median(abrupt)) if abrupt else float("nan"),
            "median_distance_m": sc.median_distance_m, "detect_s": detect_s,
        })
    return out


def year_role(seed: int) -> str:
    """What a year has decided: "tuning" (the speed run's), "decided" (:data:`DECIDED_YEARS`),
    "held out" (:data:`HELD_OUT_YEARS`) or "–" (a seed the project has no record of)."""
    if seed == SPEED_YEAR:
        return "tuning"
    if seed in DECIDED_YEARS:
        return "decided"
    return "held out" if seed in HELD_OUT_YEARS else "–"


def render_years(rows: list[dict]) -> str:
    """Markdown table of :func:`year_scores`."""
    lines = [
        "## Leak detection on whole years of L-Town",
        "",
        "Whole years simulated like the speed run's (BattLeDIM layout, 23 random leaks of 1–8 % of the mean inflow, "
        f"two training weeks), from other seeds. The speed run's year ({SPEED_YEAR}) has decided choices of the method for "
        "many rounds (*tuning*); a year marked *decided* has decided one since it was added, a year marked *held out* "
        "none (an accuracy claim rests on those); any other seed is marked *–*. "
        "Produced by `python benchmarks/bench_leak_years.py`.",
        "",
        "| year | | leaks | found ≤ 300 m | false positives | repeats | € / perfect | median delay, abrupt [h] | median distance [m] | detection [s] |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        role = year_role(r["year"])
        lines.append(
            f"| {r['year']} | {role} | {r['leaks']} | {r['tp']} | {r['fp']} | {r['repeats']} | "
            f"{_fmt(r['score_eur'], ',.0f')} / {_fmt(r['perfect_eur'], ',.0f')} ({r['fraction']:.0%}) | "
            f"{_fmt(r['median_abrupt_delay_h'])} | {_fmt(r['median_distance_m'])} | {r['detect_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def speed_benchmark(days: float = 365.0, cache: Path | None = None, progress=None, config=None) -> dict:
    """A year of L-Town (BattLeDIM layout, 23 leaks): detection and localization vs EPANET.

    EPANET alone: the model opened with the EPANET 2.2 engine, solved over ``days`` at 5 min
    with ``EN_solveH``. Detection: :func:`detect_leaks` on the simulated readings (already in
    memory: reading CSVs is not counted), its signatures computed inside the timed run, with
    ``config`` (a :class:`~tirtasu.leaks.detect.DetectConfig`; default settings when None).
    """
    from tirtasu.network import load_model
    from tirtasu.network.engine import EN_DURATION, EN_HYDSTEP, EN_REPORTSTEP, Engine

    model = network_path("L-Town")
    wn = load_model(model)
    sim = simulate_year(SPEED_YEAR, days, cache, progress=(lambda x: progress(x * 0.5, "simulating a year")) if progress else None)
    with tempfile.TemporaryDirectory(prefix="tirtasu-bench-") as tmp:
        with Engine(model, Path(tmp) / "plain.rpt") as en:
            en.set_time(EN_DURATION, int(days * 86400) - 300)
            en.set_time(EN_HYDSTEP, 300)
            en.set_time(EN_REPORTSTEP, 300)
            t = time.perf_counter()
            en.solve_all()
            epanet_s = time.perf_counter() - t
    if progress:
        progress(0.75, "detecting a year")
    train_until = pd.Timestamp(sim.scenario.start) + pd.Timedelta(days=TRAIN_DAYS)
    report, sc, _, detect_s = detect_and_score(wn, sim, train_until, config)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "days": days,
        "epanet_s": epanet_s,
        "detect_s": detect_s,
        "ratio": detect_s / epanet_s,
        "timings": report.timings,
        "peak_mb": peak_mb,
        "readings": int(sum(df.size for df in sim.readings.values())),
        "score": sc.summary(),
        # other work on the machine slows EPANET and detection alike, but say it was there
        "load_avg": os.getloadavg()[0],
    }


def render(rows: list[dict], parts: dict, speed: dict | None, full: bool) -> str:
    lines = [
        "## Leak detection and localization",
        "",
        f"`tirtasu leaks bench{' --full' if full else ''}` (or `python benchmarks/bench_leaks.py`) — simulated scenarios, "
        f"{TRAIN_DAYS} leak-free training days then {EVAL_DAYS} days (8 weeks) with leaks of 1–8 % of the mean inflow "
        "(60 % incipient), 5 % model error on roughness and base demands, correlated demand noise, sensor noise; "
        "some models outdated (true demands ×1.3, or every pipe's Hazen-Williams C ×0.7 or ×0.75); "
        "scored with BattLeDIM's rules (`tirtasu.leaks.scoring`: a detection finds a leak running at its time within "
        "300 m along the network; € = 0.80 €/m³ of water saved from detection to repair − crew cost; −500 € per false positive). "
        "The held-out parts (other seeds and the KY4 network) were not used to tune the method; the first was "
        "scored for two versions of it and decided one choice (a variant that gained a leak on tuning lost two there "
        "and was not kept); the second (new seeds) was scored for the version before roughness calibration; the third "
        "(new seeds) was added with it and scored once; the fourth (new seeds) was scored once, for the "
        "same version (logger placement and the search length came with it and do not change the detection); the fifth "
        "(new seeds) was added with the known leaks' spread and the joint demand balance and scored once, for that version; "
        "the sixth (new seeds, and KY4 with BattLeDIM's density of pressure sensors by length of main, \"dense\": one per "
        "1.3 km instead of one per 6.8 km) was added with the known leaks' deviations sized by their change in the window "
        "and scored once, for this version; the seventh (new seeds, the same kinds of scenario) was scored for two versions "
        "and decided one choice (testing the last week against the training period too, chosen on tuning and the year of "
        "L-Town, raised more false alarms and earned less of the perfect € there, and was not made the default); the "
        "eighth (new seeds) was then added and scored once, for the version of its day; the ninth (new seeds) was added "
        "with the growth re-report made the default (a leak whose tracked flow doubles is reported once more, chosen on "
        "tuning and the year of L-Town) and scored once, for the version of its day; the tenth (new seeds) was added with "
        "the two-week window, tested while every known leak is placed, and alarms whose best pipe is less than 40 % likely "
        "reported without a pipe, made the default (chosen on tuning and the year of L-Town), and scored once, for the "
        "version of its day; the eleventh (new seeds) was added with the detector's pipe distances mended (parallel pipes "
        "had counted as one of their summed length; KY2 and KY4 have such pairs, L-Town none) and scored once, for the "
        "version of its day; the twelfth (new seeds) was added with the alarms of large leaks whose place is too "
        "uncertain to be worth a crew reported without a pipe after a day (before, they were never reported) and "
        "scored once, for the version of its day; the simulator's spreading of pressure sensors was then mended (of two "
        "parallel pipes the later listed had counted, not the shorter; it moved 1–6 of the pressure sensors in 58 of the 59 KY2 "
        "and KY4 layouts, none on L-Town); the thirteenth (new seeds) was added with the localization's temperature "
        "scaled by the best pipe's excess misfit (chosen on tuning and the years 2019–2021 of L-Town) and scored once, "
        "for that version; that scaling was then turned off again by default (seven whole years of L-Town, 2019–2025, "
        "four of them held out until then, scored with and without it, earned less with it); the fourteenth (new seeds) "
        "was added with the relocalization of each leak one, two, four and seven days after its report, corrected "
        "whenever its best pipe moved more than 50 m and is the more likely (chosen on tuning and the years 2019–2025 of "
        "L-Town), and scored once, for that version; the fifteenth (new seeds) was added with a leak closed only once "
        "its flow stays below a fifth of its peak (35 % before) and reported again each time its flow "
        "doubles (once before), chosen on tuning, fourteen further L-Town tuning scenarios and the years 2019–2025 of "
        "L-Town, and scored once, for that version; the sixteenth (new seeds) was added with a leak placed too "
        "uncertainly for a growth report (less than 60 % likely within 300 m) localized again at once when its "
        "flow doubles, chosen on tuning, the study scenarios and the years 2019–2025 of L-Town, and scored once, "
        "for that version; the seventeenth (new seeds) was added with a growth report each time a leak's tracked flow "
        "grows by half (doubles before), chosen on tuning, the study scenarios, twenty further L-Town tuning scenarios "
        "and the years 2019–2025 of L-Town, and scored once, for that version; the eighteenth (new seeds) was added "
        "with a look at a track too uncertainly placed for a growth report that keeps its pipe, now placed there with "
        "at least 60 %, reported as a growth report, chosen on tuning, the study scenarios and twenty further L-Town "
        "tuning scenarios, and scored once, for that version, for the version before and for it with growth reports "
        "when the flow doubles; every row was run again with it: the table is one run of the method as it is. "
        "Two KY4 scenarios joined the tuning part "
        "later (the method unchanged), two tuning scenarios are repeated with half of their loggers placed by "
        "`tirtasu leaks place-sensors` (\"placed\"), fourteen L-Town scenarios (#210–#223) joined it with the "
        "known leaks' spread and the joint balance, which were chosen on them, and two KY4 scenarios at BattLeDIM's "
        "density (#26, #27) with the unplaced alarms, which were looked at on them.",
        "",
        "| part | scenario | units | pressure sensors | leaks | found ≤ 300 m | false pos. | repeats | € score / perfect | median delay [h] | abrupt delays [h] | median distance [m] | detect [s] |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        delays = ", ".join(f"{d:.0f}" for d in r["abrupt_delays_h"]) or "–"
        lines.append(
            f"| {r['part']} | {r['case']} | {r['units']} | {r['pressure_sensors']} | {r['leaks']} | {r['tp']} | {r['fp']} | {r['repeats']} | "
            f"{r['score_eur']:,.0f} / {r['perfect_eur']:,.0f} ({r['fraction']:.0%}) | {_fmt(r['median_delay_h'])} | {delays} | "
            f"{_fmt(r['median_distance_m'])} | {r['detect_s']:.1f} |"
        )
    lines += [
        "",
        "| part | scenarios | leaks | found ≤ 300 m | false pos. per scenario (max) | € score / perfect | median abrupt delay [h] | targets met |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, s in parts.items():
        met = targets_met(s)
        ok = ", ".join(("✓ " if v else "✗ ") + k for k, v in met.items())
        lines.append(
            f"| **{name}** | {s['scenarios']} | {s['leaks']} | {s['tp']} ({s['found_share']:.0%}) | "
            f"{s['fp_per_scenario']:.2f} ({s['max_fp']}) | {s['fraction']:.0%} | {_fmt(s['median_abrupt_delay_h'])} | {ok} |"
        )
    if speed:
        lines += [
            "",
            f"**Speed** — {speed['days']:g} days of L-Town at 5 min, BattLeDIM layout (33 pressure, 3 flow, 1 level, 82 AMR; "
            f"{speed['readings']:,} readings), 23 leaks; in the same run EPANET 2.2 solving the model over the same period "
            "(`EN_solveH`, 5-min step):",
            "",
            "| run | time [s] | ratio to EPANET |",
            "|---|---:|---:|",
            f"| EPANET alone | {speed['epanet_s']:.1f} | 1.00 |",
            f"| detection + localization + tracking (signatures {speed['timings'].get('signatures', 0):.1f} s) | "
            f"{speed['detect_s']:.1f} | **{speed['ratio']:.2f}** (target ≤ 2) |",
            "",
            f"Peak memory of the benchmark process {speed['peak_mb']:.0f} MB (target < 2 GB). "
            f"Year score: {speed['score']['tp']} of {speed['score']['tp'] + speed['score']['fn']} leaks found, "
            f"{speed['score']['fp']} false positive{'' if speed['score']['fp'] == 1 else 's'}, {speed['score']['fraction']:.0%} of the perfect €."
            + (f" Load average at the end of the run: {speed['load_avg']:.1f} on {os.cpu_count()} cores." if "load_avg" in speed else "")
            + (f" {speed['note']}" if speed.get("note") else ""),
        ]
    versions = ", ".join(f"{p} {version(p)}" for p in ("wntr", "numpy", "pandas"))
    lines += [
        "",
        f"Measured {dt.date.today():%Y-%m-%d} on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; {versions}.",
    ]
    return "\n".join(lines) + "\n"


def run_bench(full: bool = False, cache: Path | None = None, speed: bool = True, speed_days: float = 365.0, progress=None, cases=None, config=None) -> BenchResult:
    """Run the quick (default) or full set; returns the rows, per-part totals and the markdown."""
    cases = cases if cases is not None else [c for c in CASES if full or c.quick]
    rows = []
    n = len(cases) + (2 if speed else 0)
    for i, case in enumerate(cases):
        if progress:
            progress(i / n, case.name)
        rows.append(run_case(case, cache, config))
    parts = part_totals(rows)
    sp = None
    if speed:
        sp = speed_benchmark(
            speed_days, cache, progress=(lambda f, w: progress((len(cases) + 2 * f) / n, w)) if progress else None, config=config
        )
    if progress:
        progress(1.0, "done")
    md = render(rows, parts, sp, full)
    return BenchResult(rows=rows, parts=parts, speed=sp, markdown=md, targets={k: targets_met(v) for k, v in parts.items()})


def write_section(path: Path, name: str, markdown: str) -> None:
    """Replace the text between ``<!-- name -->`` and ``<!-- /name -->`` of ``path`` (append if absent)."""
    path = Path(path)
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{begin}\n{markdown.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
