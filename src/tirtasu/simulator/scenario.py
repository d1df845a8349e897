"""What a simulated field-data scenario is made of: leaks, sensors, their faults, model error."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import wntr

from tirtasu.network.model import node_demands_m3h
from tirtasu.network.spread import farthest_point_sample
from tirtasu.telemetry.sensors import sensor_id_for

__all__ = [
    "Leak",
    "SensorFault",
    "SensorLayout",
    "Scenario",
    "random_leaks",
    "random_faults",
    "spread_pressure_sensors",
    "default_layout",
    "layout_from_model_tags",
]

LEAK_KINDS = ("abrupt", "incipient")
FAULT_KINDS = ("drift", "stuck", "gap", "spikes", "offset")


@dataclass
class Leak:
    """A leak on a pipe.

    Attributes
    ----------
    link_id : str
        The pipe; the leak sits at ``position`` along it (0 = start node, 1 = end node).
    start, end : str
        UTC times the leak begins and is repaired (``end`` may lie beyond the simulation).
    peak : str, optional
        UTC time an incipient leak reaches full size (it grows linearly from ``start``);
        abrupt leaks are at full size from ``start``.
    peak_flow_m3h : float [m³/h]
        Leak flow at full size at the pipe's nominal pressure (mean over a day of the nominal
        model). The outflow then follows the real pressure: Q = C·√p (an EPANET emitter).
    kind : {"abrupt", "incipient"}
    """

    link_id: str
    start: str
    end: str
    peak_flow_m3h: float
    kind: str = "abrupt"
    peak: str | None = None
    position: float = 0.5
    leak_id: str = ""

    def __post_init__(self):
        if self.kind not in LEAK_KINDS:
            raise ValueError(f"leak on {self.link_id}: kind must be one of {LEAK_KINDS}, not {self.kind!r}")
        if not 0.0 < self.position < 1.0:
            raise ValueError(f"leak on {self.link_id}: position must lie strictly between 0 and 1")
        if self.peak_flow_m3h <= 0:
            raise ValueError(f"leak on {self.link_id}: peak_flow_m3h must be positive")
        if pd.Timestamp(self.end) <= pd.Timestamp(self.start):
            raise ValueError(f"leak on {self.link_id}: end {self.end} is not after start {self.start}")
        if self.kind == "abrupt":
            self.peak = self.start
        elif self.peak is None:
            raise ValueError(f"incipient leak on {self.link_id}: give the time it peaks")
        if not self.leak_id:
            self.leak_id = f"leak-{self.link_id}"


@dataclass
class SensorFault:
    """A fault of one sensor.

    kind : ``drift`` (adds ``magnitude`` per day from ``start``), ``offset`` (adds ``magnitude``
    from ``start``), ``stuck`` (repeats the value at ``start`` until ``end``), ``gap`` (no data
    from ``start`` to ``end``), ``spikes`` (``magnitude`` × random sign at ``rate`` per day).
    Magnitudes are in the sensor's internal unit (m, m³/h, L/h).
    """

    sensor_id: str
    kind: str
    start: str
    end: str | None = None
    magnitude: float = 0.0
    rate_per_day: float = 0.0

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault of {self.sensor_id}: kind must be one of {FAULT_KINDS}, not {self.kind!r}")


@dataclass
class SensorLayout:
    """Where the sensors are: node ids for pressure, demand (AMR) and tank level; link ids for flow."""

    pressure: list[str] = field(default_factory=list)
    flow: list[str] = field(default_factory=list)
    level: list[str] = field(default_factory=list)
    demand: list[str] = field(default_factory=list)

    def registry(self, node_dma: dict[str, str] | None = None, link_dma: dict[str, str] | None = None) -> pd.DataFrame:
        """The sensor registry of this layout (internal units)."""
        node_dma, link_dma = node_dma or {}, link_dma or {}
        rows = []
        for kind in ("pressure", "level", "demand"):
            for node in getattr(self, kind):
                rows.append(
                    {"sensor_id": sensor_id_for(kind, node), "kind": kind, "node_id": node, "dma": node_dma.get(node)}
                )
        for link in self.flow:
            rows.append({"sensor_id": sensor_id_for("flow", link), "kind": "flow", "link_id": link, "dma": link_dma.get(link)})
        return pd.DataFrame(rows)

    def check(self, wn: wntr.network.WaterNetworkModel) -> None:
        nodes, links, tanks = set(wn.node_name_list), set(wn.link_name_list), set(wn.tank_name_list)
        for kind in ("pressure", "demand"):
            bad = [n for n in getattr(self, kind) if n not in nodes]
            if bad:
                raise KeyError(f"{kind} sensor(s) on node(s) not in the model: {', '.join(bad[:10])}")
        bad = [n for n in self.level if n not in tanks]
        if bad:
            raise KeyError(f"level sensor(s) on node(s) that are not tanks: {', '.join(bad)}")
        bad = [l for l in self.flow if l not in links]
        if bad:
            raise KeyError(f"flow sensor(s) on link(s) not in the model: {', '.join(bad)}")


@dataclass
class Scenario:
    """Everything that defines a simulated data set; with the same seed, the same data.

    Model error: the "true" network differs from the nominal model by a log-normal factor on
    each pipe's roughness (coefficient of variation ``roughness_cv``) and on each node's base
    demand (``demand_bias_cv``), and all its demands are ``demand_scale`` times the model's (a
    model built when the city used less water, or more); every pipe's roughness coefficient is
    ``roughness_scale`` times the model's (Hazen-Williams C of 0.7: pipes older and rougher than
    the model says; for a Darcy-Weisbach or Manning model a factor above 1 means rougher). Demand noise: every demand pattern is multiplied, per group
    of nodes, by 1 + a utility-wide AR(1) process (sd ``demand_noise_common``, correlation
    time ``demand_noise_tau_h``) + a group AR(1) (sd ``demand_noise_group``); nodes are
    assigned to ``demand_groups`` groups at random, so nearby demands are correlated but not
    identical. Sensor noise is Gaussian (sd per kind, internal units; demand: relative) and
    values are rounded to each kind's resolution.
    """

    model: str
    start: str = "2025-01-01 00:00"
    days: float = 7.0
    step_s: int = 300
    seed: int = 0
    layout: SensorLayout = field(default_factory=SensorLayout)
    leaks: list[Leak] = field(default_factory=list)
    faults: list[SensorFault] = field(default_factory=list)
    roughness_cv: float = 0.05
    demand_bias_cv: float = 0.05
    demand_scale: float = 1.0
    roughness_scale: float = 1.0
    demand_noise_common: float = 0.03
    demand_noise_group: float = 0.05
    demand_noise_tau_h: float = 2.0
    demand_groups: int = 8
    noise_sd: dict = field(default_factory=lambda: {"pressure": 0.05, "flow": 0.2, "level": 0.005, "demand": 0.02})
    resolution: dict = field(default_factory=lambda: {"pressure": 0.01, "flow": 0.01, "level": 0.001, "demand": 0.1})

    @property
    def end(self) -> pd.Timestamp:
        return pd.Timestamp(self.start) + pd.Timedelta(days=self.days)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, default=str))

    @classmethod
    def from_dict(cls, data: dict) -> "Scenario":
        data = dict(data)
        data["layout"] = SensorLayout(**data.get("layout", {}))
        data["leaks"] = [Leak(**leak) for leak in data.get("leaks", [])]
        data["faults"] = [SensorFault(**f) for f in data.get("faults", [])]
        return cls(**data)

    @classmethod
    def from_json(cls, path: str | Path) -> "Scenario":
        return cls.from_dict(json.loads(Path(path).read_text()))


def _ts(t: pd.Timestamp) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%d %H:%M")


def random_leaks(
    wn: wntr.network.WaterNetworkModel,
    n: int,
    start,
    end,
    mean_inflow_m3h: float,
    rng: np.random.Generator,
    flow_fraction=(0.01, 0.08),
    incipient_share: float = 0.6,
    min_duration_days: float = 3.0,
    max_duration_days: float | None = None,
    exclude_links=(),
) -> list[Leak]:
    """``n`` leaks on distinct pipes, at random times in [start, end).

    Leak sizes are drawn log-uniformly between ``flow_fraction`` of the system's mean inflow
    [m³/h]; incipient leaks grow to full size over 10–60 % of their life. Some leaks are still
    running at ``end`` (their repair lies beyond it), as in the field.
    """
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    span = (end - start).total_seconds()
    pipes = [name for name, p in wn.pipes() if name not in set(exclude_links) and p.initial_status != 0]
    chosen = rng.choice(pipes, size=min(n, len(pipes)), replace=False)
    leaks = []
    lo, hi = np.log(flow_fraction[0]), np.log(flow_fraction[1])
    for i, link in enumerate(sorted(chosen, key=lambda x: rng.random())):
        onset = start + pd.Timedelta(seconds=float(rng.uniform(0.02, 0.85)) * span)
        onset = onset.floor("5min")
        remaining = (end - onset).total_seconds() / 86400
        max_days = max_duration_days or max(remaining * 1.3, min_duration_days + 1)
        duration = float(rng.uniform(min(min_duration_days, remaining), max_days))
        repair = (onset + pd.Timedelta(days=duration)).floor("5min")
        kind = "incipient" if rng.random() < incipient_share else "abrupt"
        peak = None
        if kind == "incipient":
            peak = (onset + pd.Timedelta(days=duration * float(rng.uniform(0.1, 0.6)))).floor("5min")
        leaks.append(
            Leak(
                link_id=str(link),
                start=_ts(onset),
                end=_ts(repair),
                peak=_ts(peak) if peak is not None else None,
                peak_flow_m3h=round(float(np.exp(rng.uniform(lo, hi))) * mean_inflow_m3h, 3),
                kind=kind,
                position=round(float(rng.uniform(0.1, 0.9)), 3),
                leak_id=f"leak-{i + 1:02d}",
            )
        )
    return sorted(leaks, key=lambda l: l.start)


def random_faults(layout: SensorLayout, n: int, start, end, rng: np.random.Generator) -> list[SensorFault]:
    """``n`` faults on random pressure and flow sensors: drifts, stuck values, gaps and spikes."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    span = (end - start).total_seconds()
    candidates = [("pressure", s) for s in layout.pressure] + [("flow", s) for s in layout.flow]
    faults = []
    for _ in range(n):
        kind_sensor, loc = candidates[rng.integers(len(candidates))]
        sid = sensor_id_for(kind_sensor, loc)
        t0 = start + pd.Timedelta(seconds=float(rng.uniform(0.05, 0.9)) * span)
        t1 = min(end, t0 + pd.Timedelta(hours=float(rng.uniform(2, 72))))
        kind = str(rng.choice(["drift", "stuck", "gap", "spikes"]))
        scale = 0.5 if kind_sensor == "pressure" else 2.0
        faults.append(
            SensorFault(
                sensor_id=sid,
                kind=kind,
                start=_ts(t0),
                end=_ts(t1) if kind in ("stuck", "gap") else None,
                magnitude=round(scale * float(rng.uniform(0.2, 1.0)) * (1 if kind != "spikes" else 5), 3),
                rate_per_day=2.0 if kind == "spikes" else 0.0,
            )
        )
    return faults


def spread_pressure_sensors(wn: wntr.network.WaterNetworkModel, n: int, rng: np.random.Generator) -> list[str]:
    """``n`` junctions spread over the network: greedy farthest-point on pipe-length distance.

    Spreading sensors evenly by hydraulic distance is the usual first layout before a
    sensitivity-based placement.
    """
    graph = nx.Graph()
    for name, link in wn.links():
        a, b = link.start_node_name, link.end_node_name
        length = getattr(link, "length", 1.0) or 1.0
        # of parallel links the shortest is the distance (a simple graph keeps one edge per pair)
        if not graph.has_edge(a, b) or graph[a][b]["weight"] > length:
            graph.add_edge(a, b, weight=length)
    junctions = [j for j in wn.junction_name_list if j in graph]
    if n >= len(junctions):
        return junctions
    index = {j: i for i, j in enumerate(junctions)}

    def distances_from(i: int) -> np.ndarray:
        d = np.full(len(junctions), np.inf)
        for node, length in nx.single_source_dijkstra_path_length(graph, junctions[i], weight="weight").items():
            if node in index:
                d[index[node]] = length
        return d

    first = int(rng.integers(len(junctions)))
    return [junctions[i] for i in farthest_point_sample(first, n, distances_from)]


def default_layout(
    wn: wntr.network.WaterNetworkModel,
    rng: np.random.Generator,
    n_pressure: int | None = None,
    amr_fraction: float = 0.1,
    extra_flow_links=(),
) -> SensorLayout:
    """A plausible metering layout for any model.

    Flow meters on every link leaving a reservoir, on every pump and on ``extra_flow_links``
    (DMA inlets); a level sensor in every tank; pressure sensors spread over the network
    (default: one per 25 junctions, at least 3); smart meters (AMR) on a random
    ``amr_fraction`` of the demand nodes.
    """
    flows = []
    for name, link in wn.links():
        if link.link_type == "Pump" or link.start_node_name in wn.reservoir_name_list or link.end_node_name in wn.reservoir_name_list:
            flows.append(name)
    flows += [l for l in extra_flow_links if l not in flows]
    n_pressure = n_pressure if n_pressure is not None else max(3, wn.num_junctions // 25)
    demands = node_demands_m3h(wn)
    demand_nodes = demands.index[demands['base_m3h'] > 0].tolist()
    n_amr = int(round(amr_fraction * len(demand_nodes)))
    amr = sorted(rng.choice(demand_nodes, size=n_amr, replace=False).tolist()) if n_amr else []
    return SensorLayout(
        pressure=spread_pressure_sensors(wn, n_pressure, rng),
        flow=flows,
        level=list(wn.tank_name_list),
        demand=amr,
    )


_TAG = re.compile(r";\s*(.*SENSOR.*|AMR.*)$", re.IGNORECASE)


def layout_from_model_tags(inp_path: str | Path) -> SensorLayout:
    """Read a sensor layout marked in the model file's comments.

    Some models (L-Town of BattLeDIM among them) mark metered elements with end-of-line
    comments such as ``;PRESSURE SENSOR``, ``;FLOW SENSOR``, ``;LEVEL SENSOR`` and ``;AMR``.
    """
    layout = SensorLayout()
    section = ""
    for raw in Path(inp_path).read_text(errors="replace").splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line.upper()
            continue
        match = _TAG.search(line)
        if not match or line.startswith(";"):
            continue
        element = line.split()[0]
        tag = match.group(1).upper()
        if section in ("[JUNCTIONS]",):
            if "PRESSURE" in tag:
                layout.pressure.append(element)
            if "AMR" in tag:
                layout.demand.append(element)
        elif section == "[TANKS]" and "LEVEL" in tag:
            layout.level.append(element)
        elif section in ("[PIPES]", "[PUMPS]", "[VALVES]") and "FLOW" in tag:
            layout.flow.append(element)
    return layout
