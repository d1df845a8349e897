"""The field-data simulator: a "true" network with leaks, stepped through time by EPANET.

How a run goes:

1. The nominal model is copied into a "true" network that differs from it (pipe roughness and
   node base demands perturbed, see :class:`Scenario`), and each leak's pipe is split at the
   leak's position with a new junction.
2. A one-day run of the true network without leaks gives each leak node's nominal pressure;
   a leak's emitter coefficient is sized from it (Q = C·p^γ, γ the model's emitter exponent).
3. The true network is written in CMH (m³/h, m) and opened with the EPANET 2.2 engine. All
   patterns are resampled to the simulation step and every junction's demand is moved to a
   noisy copy of its pattern (correlated AR(1) noise per group of nodes).
4. EPANET steps through time. Before each step the leaks' emitter coefficients are set
   (growing for incipient leaks, zero after repair); at each report time the sensors' true
   values and the leak outflows are read.
5. Sensor noise, resolution and faults are applied; everything is written as the wide CSVs
   tirtasu imports, with the ground truth beside them.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import wntr
from scipy.signal import lfilter

from tirtasu.network.engine import (
    EN_DEMAND,
    EN_DURATION,
    EN_EMITTER,
    EN_FLOW,
    EN_FLOWCHANGE,
    EN_HYDSTEP,
    EN_PATCOUNT,
    EN_PATTERNSTART,
    EN_PATTERNSTEP,
    EN_PRESSURE,
    EN_REPORTSTEP,
    Engine,
)
from tirtasu.network.hydraulics import run_hydraulics
from tirtasu.network.model import load_model
from tirtasu.simulator.scenario import Scenario
from tirtasu.simulator.sensors import apply_faults, measure, quantise
from tirtasu.telemetry.sensors import WIDE_FILE_KINDS, sensor_id_for

__all__ = ["SimulationResult", "simulate", "write_wide_csv"]

FLOW_TOLERANCE_M3H = 0.01
ACCURACY = 0.001
EMITTER_OFF = 1e-9  # emitter coefficient of a leak that is not running [m³/h/m^γ]
FILE_OF_KIND = {kind: name for name, kind in WIDE_FILE_KINDS.items()}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass
class SimulationResult:
    """The data a simulation produced.

    Attributes
    ----------
    times : pandas.DatetimeIndex
        UTC report times.
    readings : dict of str → pandas.DataFrame
        Per kind (pressure [m], flow [m³/h], level [m], demand [L/h]), one column per node/link
        id as the sensor reports it (noise, resolution, faults; NaN where data is missing).
    truth : dict of str → pandas.DataFrame
        The same without noise and faults.
    leaks : pandas.DataFrame
        Ground truth: leak_id, link_id, node_id (the split node), position, kind, start, peak,
        end, peak_flow_m3h, emitter_coefficient, volume_m3 (within the simulated period).
    leak_flows : pandas.DataFrame [m³/h]
        Outflow of each leak at each report time.
    registry : pandas.DataFrame
        The sensor registry (ids like ``P_n54``, internal units).
    consumption : pandas.DataFrame [m³/h]
        True customer consumption of the whole network per report time (one column, "total").
    node_consumption_m3 : pandas.DataFrame [m³]
        True consumption of each demand node (columns) per calendar month (rows, month start),
        counting each report step as ``step_s`` long.
    elapsed_s : float
        Wall-clock time of the EPANET stepping.
    """

    scenario: Scenario
    times: pd.DatetimeIndex
    readings: dict
    truth: dict
    leaks: pd.DataFrame
    leak_flows: pd.DataFrame
    registry: pd.DataFrame
    consumption: pd.DataFrame
    node_consumption_m3: pd.DataFrame = field(default_factory=pd.DataFrame)
    elapsed_s: float = 0.0


def _ar1(n: int, sd: float, tau_steps: float, rng: np.random.Generator, size: int = 1) -> np.ndarray:
    """``size`` AR(1) series of length ``n`` with marginal sd ``sd`` and correlation time ``tau``."""
    if sd <= 0:
        return np.zeros((size, n))
    phi = float(np.exp(-1.0 / max(tau_steps, 1e-9)))
    eps = rng.standard_normal((size, n)) * sd * np.sqrt(1 - phi**2)
    eps[:, 0] = rng.standard_normal(size) * sd  # start in the stationary distribution
    return lfilter([1.0], [1.0, -phi], eps, axis=1)


def _perturb_true_network(wn: wntr.network.WaterNetworkModel, sc: Scenario, rng: np.random.Generator) -> None:
    if sc.roughness_cv > 0:
        sigma = np.sqrt(np.log(1 + sc.roughness_cv**2))
        for _, pipe in wn.pipes():
            pipe.roughness *= float(np.exp(rng.normal(-sigma**2 / 2, sigma)))
    if sc.roughness_scale != 1.0:
        for _, pipe in wn.pipes():
            pipe.roughness *= sc.roughness_scale
    if sc.demand_bias_cv > 0:
        sigma = np.sqrt(np.log(1 + sc.demand_bias_cv**2))
        for _, junction in wn.junctions():
            factor = float(np.exp(rng.normal(-sigma**2 / 2, sigma)))
            for d in junction.demand_timeseries_list:
                d.base_value *= factor
    if sc.demand_scale != 1.0:
        for _, junction in wn.junctions():
            for d in junction.demand_timeseries_list:
                d.base_value *= sc.demand_scale


def _split_leak_pipes(wn, sc: Scenario) -> dict[str, str]:
    """Split each leaking pipe; returns leak_id → new node id."""
    nodes, seen = {}, set()
    for leak in sc.leaks:
        if leak.link_id not in wn.pipe_name_list:
            raise KeyError(f"leak {leak.leak_id}: {leak.link_id!r} is not a pipe of the model")
        if leak.link_id in seen:
            raise ValueError(f"leak {leak.leak_id}: pipe {leak.link_id!r} already has a leak; one leak per pipe")
        seen.add(leak.link_id)
        node = f"{leak.leak_id}_node"
        wntr.morph.split_pipe(
            wn, leak.link_id, f"{leak.link_id}_leakside", node, add_pipe_at_end=True, split_at_point=leak.position, return_copy=False
        )
        nodes[leak.leak_id] = node
    return nodes


def _leak_size_factor(leak, times_s: np.ndarray, start: pd.Timestamp) -> np.ndarray:
    """Fraction of full size (0–1) of a leak at each time [s after start]."""
    t0 = (pd.Timestamp(leak.start) - start).total_seconds()
    tp = (pd.Timestamp(leak.peak) - start).total_seconds()
    t1 = (pd.Timestamp(leak.end) - start).total_seconds()
    if tp > t0:
        size = np.clip((times_s - t0) / (tp - t0), 0.0, 1.0)
    else:
        size = (times_s >= t0).astype(float)
    size[(times_s < t0) | (times_s >= t1)] = 0.0
    return size


def simulate(scenario: Scenario, out_dir: str | Path | None = None, progress=None) -> SimulationResult:
    """Run a scenario and, with ``out_dir``, write its files.

    Parameters
    ----------
    scenario : Scenario
    out_dir : path, optional
        Receives pressures.csv [m], flows.csv [m³/h], levels.csv [m], demands.csv [L/h],
        sensors.csv, leaks.csv, leak_flows.csv, model.inp (the nominal model) and
        scenario.json.
    progress : callable, optional
        Called with the fraction done (0–1) as the simulation advances.
    """
    sc = scenario
    rng = np.random.default_rng(sc.seed)
    nominal = load_model(sc.model)
    sc.layout.check(nominal)
    start = pd.Timestamp(sc.start)
    if start.tzinfo is not None:
        start = start.tz_convert("UTC").tz_localize(None)
    step = int(sc.step_s)
    n_steps = int(round(sc.days * 86400 / step))
    if n_steps < 1:
        raise ValueError("the scenario covers less than one time step")

    true = load_model(sc.model)
    _perturb_true_network(true, sc, rng)
    leak_nodes = _split_leak_pipes(true, sc)
    gamma = float(true.options.hydraulic.emitter_exponent or 0.5)

    # nominal pressure at each leak node: one day of the true network without leaks
    coefficients = {}
    if sc.leaks:
        day = run_hydraulics(true, duration_h=24)
        for leak in sc.leaks:
            p_nom = max(float(day.pressure[leak_nodes[leak.leak_id]].mean()), 1.0)
            coefficients[leak.leak_id] = leak.peak_flow_m3h / p_nom**gamma

    with tempfile.TemporaryDirectory(prefix="tirtasu-sim-") as tmp:
        true_inp = Path(tmp) / "true.inp"
        true.options.time.duration = (n_steps - 1) * step
        true.options.time.report_timestep = step
        true.options.time.hydraulic_timestep = min(step, int(true.options.time.hydraulic_timestep or step))
        true.options.time.quality_timestep = true.options.time.hydraulic_timestep
        # the truth is solved at least as tightly as EPANET's default (some models, L-Town
        # among them, loosen it to 0.01, which leaves ±2 % flow errors at valves)
        true.options.hydraulic.accuracy = min(float(true.options.hydraulic.accuracy or 1.0), ACCURACY)
        # a model set to stop when a step does not converge would end the data early: carry on
        # (10 more trials) as EPANET's "Unbalanced Continue 10" does
        true.options.hydraulic.unbalanced = "CONTINUE"
        true.options.hydraulic.unbalanced_value = 10
        wntr.network.write_inpfile(true, str(true_inp), units="CMH")
        with Engine(true_inp) as en:
            result = _step(en, sc, true, leak_nodes, coefficients, gamma, start, step, n_steps, rng, progress)
    result_readings, result_truth = {}, {}
    for kind, truth in result["truth"].items():
        ids = [sensor_id_for(kind, c) for c in truth.columns]
        measured = measure(truth.to_numpy(), kind, sc.noise_sd, rng)
        measured = apply_faults(measured, result["times"], ids, sc.faults, rng)
        measured = quantise(measured, kind, sc.resolution)
        result_readings[kind] = pd.DataFrame(measured, index=truth.index, columns=truth.columns)
        result_truth[kind] = truth

    leak_flows = result["leak_flows"]
    step_h = step / 3600.0
    leaks = pd.DataFrame(
        [
            {
                "leak_id": l.leak_id,
                "link_id": l.link_id,
                "node_id": leak_nodes[l.leak_id],
                "position": l.position,
                "kind": l.kind,
                "start": l.start,
                "peak": l.peak,
                "end": l.end,
                "peak_flow_m3h": l.peak_flow_m3h,
                "emitter_coefficient": coefficients[l.leak_id],
                "volume_m3": float(leak_flows[l.leak_id].sum() * step_h),
            }
            for l in sc.leaks
        ],
        columns=[
            "leak_id", "link_id", "node_id", "position", "kind", "start", "peak", "end",
            "peak_flow_m3h", "emitter_coefficient", "volume_m3",
        ],
    )
    sim = SimulationResult(
        scenario=sc,
        times=result["times"],
        readings=result_readings,
        truth=result_truth,
        leaks=leaks,
        leak_flows=leak_flows,
        registry=sc.layout.registry(),
        consumption=result["consumption"],
        node_consumption_m3=result["node_consumption_m3"],
        elapsed_s=result["elapsed_s"],
    )
    if out_dir is not None:
        write_outputs(sim, out_dir)
    return sim


def _step(en: Engine, sc, true, leak_nodes, coefficients, gamma, start, step, n_steps, rng, progress) -> dict:
    # -- patterns at the simulation step, demands on noisy copies ---------------------------------
    pattern_step = en.get_time(EN_PATTERNSTEP)
    pattern_start = en.get_time(EN_PATTERNSTART)
    period = ((np.arange(n_steps, dtype=np.int64) * step + pattern_start) // pattern_step).astype(np.int64)
    expanded = {}
    for i in range(1, en.count(EN_PATCOUNT) + 1):
        base = en.pattern_values(i)
        expanded[i] = base[period % len(base)] if len(base) else np.ones(n_steps)
        en.set_pattern(i, expanded[i])
    en.set_time(EN_PATTERNSTEP, step)
    en.set_time(EN_PATTERNSTART, 0)
    en.set_time(EN_HYDSTEP, min(step, en.get_time(EN_HYDSTEP)))
    en.set_time(EN_REPORTSTEP, step)
    en.set_time(EN_DURATION, (n_steps - 1) * step)

    tau_steps = sc.demand_noise_tau_h * 3600.0 / step
    common = _ar1(n_steps, sc.demand_noise_common, tau_steps * 3, rng)[0]
    groups = max(1, int(sc.demand_groups))
    group_noise = _ar1(n_steps, sc.demand_noise_group, tau_steps, rng, size=groups)
    factors = np.clip(1.0 + common + group_noise, 0.0, None)  # groups × time
    junctions = true.junction_name_list
    group_of = rng.integers(groups, size=len(junctions))
    noisy: dict[tuple[int, int], int] = {}
    node_terms: dict[str, list[tuple[float, tuple[int, int]]]] = {}
    multiplier = float(true.options.hydraulic.demand_multiplier)
    for name, g in zip(junctions, group_of):
        idx = en.node_index(name)
        for d, (base_value, pat) in enumerate(en.demands(idx), start=1):
            if base_value == 0:
                continue
            key = (pat, int(g))
            if key not in noisy:
                values = (expanded[pat] if pat > 0 else np.ones(n_steps)) * factors[g]
                noisy[key] = en.add_pattern(f"tirtasu_{pat}_{g}", values)
            en.set_demand_pattern(idx, d, noisy[key])
            node_terms.setdefault(name, []).append((base_value * multiplier, key))

    # -- what to read each step ------------------------------------------------------------------
    layout = sc.layout
    node_reads = [(en.node_index(n), EN_PRESSURE) for n in layout.pressure]
    node_reads += [(en.node_index(n), EN_PRESSURE) for n in layout.level]  # tank pressure = water level
    node_reads += [(en.node_index(n), EN_DEMAND) for n in layout.demand]
    leak_ids = [l.leak_id for l in sc.leaks]
    leak_idx = [en.node_index(leak_nodes[l]) for l in leak_ids]
    node_reads += [(i, EN_DEMAND) for i in leak_idx]
    link_reads = [(en.link_index(l), EN_FLOW) for l in layout.flow]
    read = en.reader(node_reads, link_reads)
    data = np.full((n_steps, len(node_reads) + len(link_reads)), np.nan)

    times_s = np.arange(n_steps, dtype=float) * step
    size = {l.leak_id: _leak_size_factor(l, times_s, start) for l in sc.leaks}

    # EPANET's stopping rule (relative flow change < ACCURACY) leaves a leak's outflow
    # unconverged for several steps when it appears or is repaired, being small beside the
    # system's flow. Around such jumps an absolute bound on flow changes is added; it is not
    # kept on throughout because it costs about twice the iterations.
    def set_emitters(k: int) -> None:
        jump = False
        for leak_id, node in zip(leak_ids, leak_idx):
            # never exactly 0: EPANET then stops updating the emitter and keeps reporting
            # its last outflow after a repair
            c = max(coefficients[leak_id] * size[leak_id][min(k, n_steps - 1)], EMITTER_OFF)
            if c != current[leak_id]:
                en.set_node_value(node, EN_EMITTER, c)
                jump |= not (0.5 < c / current[leak_id] < 2.0)
                current[leak_id] = c
        if jump:
            strict_until[0] = k + 2
        strict = k <= strict_until[0]
        if strict != strict_on[0]:
            en.set_option(EN_FLOWCHANGE, FLOW_TOLERANCE_M3H if strict else 0.0)
            strict_on[0] = strict

    current = {l: EMITTER_OFF / 4 for l in leak_ids}
    strict_until, strict_on = [-10], [False]
    set_emitters(0)
    report_every = max(1, n_steps // 200)
    t_start = time.perf_counter()
    for t in en.steps():
        if t % step:
            continue
        k = t // step
        if k >= n_steps:
            break
        read(data[k])
        set_emitters(k + 1)
        if progress is not None and k % report_every == 0:
            progress(k / n_steps)
    elapsed = time.perf_counter() - t_start
    if np.isnan(data[-1]).all() and data.shape[1]:
        done = int((~np.isnan(data).all(axis=1)).sum())
        raise RuntimeError(f"EPANET stopped after {done} of {n_steps} time steps; see the model's options")
    if progress is not None:
        progress(1.0)

    times = pd.date_range(start, periods=n_steps, freq=pd.Timedelta(seconds=step), tz="UTC")
    col = 0
    truth = {}
    for kind, ids, scale in (
        ("pressure", layout.pressure, 1.0),
        ("level", layout.level, 1.0),
        ("demand", layout.demand, 1000.0),  # m³/h → L/h
    ):
        truth[kind] = pd.DataFrame(data[:, col : col + len(ids)] * scale, index=times, columns=list(ids))
        col += len(ids)
    leak_flows = pd.DataFrame(data[:, col : col + len(leak_ids)], index=times, columns=leak_ids)
    for leak_id in leak_ids:  # a leak that is not running has no outflow, whatever EMITTER_OFF leaks
        leak_flows.loc[size[leak_id] == 0, leak_id] = 0.0
    col += len(leak_ids)
    truth["flow"] = pd.DataFrame(data[:, col:], index=times, columns=list(layout.flow))
    truth = {k: v for k, v in truth.items() if v.shape[1]}

    # true consumption (demand-driven: base × noisy pattern), total per step and per node [m³]
    step_h = step / 3600.0
    pattern_of = {key: expanded[key[0]] * factors[key[1]] if key[0] > 0 else factors[key[1]] for key in noisy}
    total = np.zeros(n_steps)
    weight: dict[tuple[int, int], float] = {}
    for terms in node_terms.values():
        for base_m3h, key in terms:
            weight[key] = weight.get(key, 0.0) + base_m3h
    for key, w in weight.items():
        total += w * pattern_of[key]
    # per node and calendar month [m³]: what billing sees
    months = times.tz_localize(None).to_period("M")
    month_codes, month_index = pd.factorize(months)
    monthly = {key: np.bincount(month_codes, weights=values, minlength=len(month_index)) * step_h for key, values in pattern_of.items()}
    node_monthly = pd.DataFrame(
        {name: sum(b * monthly[key] for b, key in terms) for name, terms in node_terms.items()},
        index=month_index.to_timestamp(),
    )
    node_monthly.index.name = "month"
    return {
        "times": times,
        "truth": truth,
        "leak_flows": leak_flows,
        "consumption": pd.DataFrame({"total": total}, index=times),
        "node_consumption_m3": node_monthly,
        "elapsed_s": elapsed,
    }


def write_wide_csv(df: pd.DataFrame, path: str | Path) -> None:
    """Write a wide table (UTC index, one column per sensor) as tirtasu and BattLeDIM read it.

    First column ``timestamp`` as ``YYYY-MM-DD HH:MM:SS`` (UTC); missing values are empty cells.
    """
    index = df.index.tz_convert("UTC") if df.index.tz is not None else df.index
    columns = {"timestamp": pa.array(index.strftime(TIME_FORMAT))}
    for c in df.columns:
        columns[str(c)] = pa.array(df[c].to_numpy(), from_pandas=True)
    # the header is written by hand: pyarrow quotes header names whatever the quoting style
    with open(path, "wb") as fh:
        fh.write((",".join(columns) + "\n").encode())
        pacsv.write_csv(pa.table(columns), fh, pacsv.WriteOptions(include_header=False, quoting_style="none"))


def write_outputs(sim: SimulationResult, out_dir: str | Path) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for kind, df in sim.readings.items():
        write_wide_csv(df, out / f"{FILE_OF_KIND[kind]}.csv")
    sim.registry.to_csv(out / "sensors.csv", index=False)
    sim.leaks.to_csv(out / "leaks.csv", index=False)
    write_wide_csv(sim.leak_flows, out / "leak_flows.csv")
    shutil.copyfile(sim.scenario.model, out / "model.inp")
    sim.scenario.to_json(out / "scenario.json")
