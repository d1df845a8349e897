"""`tirtasu simulate`: synthetic field data with known leaks from a network model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from tirtasu.cli.common import console, fail, progress_bar
from tirtasu.network import ModelError, load_model, summarize
from tirtasu.simulator import (
    Leak,
    Scenario,
    SensorLayout,
    default_layout,
    layout_from_model_tags,
    random_faults,
    random_leaks,
    simulate as run_scenario,
)


def _read_leaks(path: Path) -> list[Leak]:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    needed = {"link_id", "start", "end", "peak_flow_m3h"}
    if not needed <= set(df.columns):
        raise ValueError(f"{path}: needs columns {', '.join(sorted(needed))}; has {', '.join(df.columns)}")
    leaks = []
    for line, row in enumerate(df.to_dict("records"), start=2):
        try:
            leaks.append(
                Leak(
                    link_id=row["link_id"],
                    start=row["start"],
                    end=row["end"],
                    peak_flow_m3h=float(row["peak_flow_m3h"]),
                    kind=row.get("kind") or "abrupt",
                    peak=row.get("peak") or None,
                    position=float(row.get("position") or 0.5),
                    leak_id=row.get("leak_id") or "",
                )
            )
        except ValueError as exc:
            raise ValueError(f"{path}:{line}: {exc}") from None
    return leaks


def _layout_from_registry(path: Path) -> SensorLayout:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    layout = SensorLayout()
    for line, row in enumerate(df.to_dict("records"), start=2):
        kind = row.get("kind", "")
        where = row.get("link_id") if kind == "flow" else row.get("node_id")
        if kind not in ("pressure", "flow", "level", "demand") or not where:
            raise ValueError(f"{path}:{line}: need kind (pressure, flow, level, demand) and its node_id or link_id")
        getattr(layout, kind).append(where)
    return layout


def simulate(
    model: Path = typer.Argument(..., help="Nominal EPANET model (.inp, any units)."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for the data files."),
    start: str = typer.Option("2025-01-01 00:00", help="UTC start time."),
    days: float = typer.Option(7.0, help="Length of the simulation [days]."),
    step: int = typer.Option(300, help="Time step of the data [s] (5 min by default)."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same data."),
    leaks: int = typer.Option(3, help="Number of random leaks (ignored with --leaks-file)."),
    leaks_file: Path = typer.Option(
        None, help="CSV of leaks: link_id,start,end,peak_flow_m3h[,kind,peak,position,leak_id]."
    ),
    leak_size: str = typer.Option(
        "0.01,0.08", help="Random leak flows as a range of fractions of the mean system demand."
    ),
    incipient_share: float = typer.Option(0.6, help="Share of random leaks that grow slowly (incipient)."),
    sensors: Path = typer.Option(
        None, help="Sensor registry CSV (kind, node_id / link_id) to use as the layout."
    ),
    pressure_sensors: int = typer.Option(
        None, help="With an automatic layout: number of pressure sensors (default one per 25 junctions)."
    ),
    amr_fraction: float = typer.Option(0.1, help="With an automatic layout: share of demand nodes with smart meters."),
    flow_meter: list[str] = typer.Option(None, help="Extra flow meters (DMA inlets), link ids; repeat."),
    faults: int = typer.Option(0, help="Number of random sensor faults (drift, stuck, gap, spikes)."),
    roughness_cv: float = typer.Option(0.05, help="Model error: coefficient of variation of pipe roughness."),
    demand_bias_cv: float = typer.Option(0.05, help="Model error: coefficient of variation of node base demands."),
    demand_scale: float = typer.Option(1.0, help="Model error: the true demands are this multiple of the model's (an outdated model)."),
    roughness_scale: float = typer.Option(
        1.0, min=0.01, help="Model error: every pipe's roughness coefficient is this multiple of the model's (Hazen-Williams C 0.7: older pipes)."
    ),
    demand_noise: float = typer.Option(0.05, help="Demand noise: sd of the per-group multiplicative noise."),
    scenario_file: Path = typer.Option(None, "--scenario", help="Re-run a scenario.json written by an earlier run."),
):
    """Simulate field data with known leaks: the files a SCADA/AMR export would give, plus the truth.

    The true network differs from the model (roughness, demands), demands carry correlated
    noise, sensors have noise, resolution and optional faults, and leaks (abrupt or growing)
    sit on pipes with pressure-dependent outflow. Writes pressures.csv [m], flows.csv [m³/h],
    levels.csv [m], demands.csv [L/h], sensors.csv, leaks.csv and leak_flows.csv (ground
    truth), model.inp (the nominal model) and scenario.json (to reproduce the run).

    The sensor layout is, in order of preference: --sensors, elements marked in the model's
    comments (";PRESSURE SENSOR", ";FLOW SENSOR", ";LEVEL SENSOR", ";AMR"), or an automatic
    layout (meters at sources, pumps and --flow-meter links, levels in tanks, spread pressure
    sensors, smart meters on --amr-fraction of the customers).
    """
    try:
        if scenario_file:
            sc = Scenario.from_json(scenario_file)
            sc.model = str(model)
        else:
            wn = load_model(model)
            rng = np.random.default_rng(seed)
            if sensors:
                layout = _layout_from_registry(sensors)
            else:
                layout = layout_from_model_tags(model)
                if not (layout.pressure or layout.flow):
                    layout = default_layout(wn, rng, pressure_sensors, amr_fraction, flow_meter or ())
            layout.flow += [l for l in flow_meter or [] if l not in layout.flow]
            end = pd.Timestamp(start) + pd.Timedelta(days=days)
            if leaks_file:
                leak_list = _read_leaks(leaks_file)
            else:
                lo, hi = (float(x) for x in leak_size.split(","))
                leak_list = random_leaks(
                    wn, leaks, start, end, summarize(wn).mean_demand_m3h, rng, (lo, hi), incipient_share
                )
            sc = Scenario(
                model=str(model),
                start=start,
                days=days,
                step_s=step,
                seed=seed,
                layout=layout,
                leaks=leak_list,
                faults=random_faults(layout, faults, start, end, rng) if faults else [],
                roughness_cv=roughness_cv,
                demand_bias_cv=demand_bias_cv,
                demand_scale=demand_scale,
                roughness_scale=roughness_scale,
                demand_noise_group=demand_noise,
            )
        with progress_bar() as bar:
            task = bar.add_task(f"simulating {sc.days:g} days", total=1.0)
            result = run_scenario(sc, out, progress=lambda f: bar.update(task, completed=f))
    except ModelError as exc:
        fail(str(exc))
    except (KeyError, ValueError) as exc:
        fail(str(exc).strip('"'))

    table = Table(title=f"{len(result.leaks)} leaks (ground truth in {out / 'leaks.csv'})", title_justify="left")
    for col in ("leak", "pipe", "kind", "start", "end", escape("peak flow [m³/h]"), escape("volume [m³]")):
        table.add_column(col)
    for _, l in result.leaks.iterrows():
        table.add_row(l.leak_id, l.link_id, l.kind, l.start, l.end, f"{l.peak_flow_m3h:.2f}", f"{l.volume_m3:,.0f}")
    console.print(table)
    counts = ", ".join(f"{df.shape[1]} {kind}" for kind, df in result.readings.items())
    console.print(f"{len(result.times):,} time steps of {counts} sensors written to {out}/")
