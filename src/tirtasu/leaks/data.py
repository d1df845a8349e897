"""The inputs of leak detection: wide sensor tables checked against the model and screened.

Leak detection reads what a SCADA/AMR export gives: one table per kind of sensor, a UTC time
index and one column per node (pressure [m], tank level [m], customer demand [L/h]) or link
(flow [m³/h]). This module reads those tables, checks that every column names an element of
the model that can carry that sensor, puts everything on one regular time grid and screens
each sensor for the faults a single series betrays by itself: gaps, stuck values and spikes.
Faults that only show against the other sensors (drift, offset) are found during detection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import wntr

__all__ = ["InputError", "LeakInputs", "SensorIssue", "read_wide", "check_against_model", "screen_sensors"]

KINDS = ("pressure", "flow", "level", "demand")
UNITS = {"pressure": "m", "flow": "m³/h", "level": "m", "demand": "L/h"}


class InputError(ValueError):
    """Input data that leak detection cannot use, with what is wrong and where."""


@dataclass
class SensorIssue:
    """A problem found in one sensor's data.

    Attributes
    ----------
    kind : str
        pressure, flow, level or demand.
    location : str
        The node or link id (the column of the wide table).
    problem : str
        ``gap``, ``stuck``, ``spikes``, ``drift`` (a step or slow change that no leak explains),
        ``unused`` (too little data).
    start, end : pandas.Timestamp
        UTC period affected (``end`` None: to the end of the data).
    detail : str
        A sentence for the user.
    """

    kind: str
    location: str
    problem: str
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    detail: str

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "location": self.location,
            "problem": self.problem,
            "start": None if self.start is None else self.start.strftime("%Y-%m-%d %H:%M"),
            "end": None if self.end is None else self.end.strftime("%Y-%m-%d %H:%M"),
            "detail": self.detail,
        }


@dataclass
class LeakInputs:
    """Sensor data for leak detection, in internal units, on one regular UTC time grid.

    Attributes
    ----------
    pressure : pandas.DataFrame [m]
        One column per node id.
    flow : pandas.DataFrame [m³/h]
        One column per link id, positive in the link's direction.
    level : pandas.DataFrame [m]
        Water level of tanks, one column per tank id.
    demand : pandas.DataFrame [L/h]
        Smart-meter (AMR) consumption, one column per node id.
    """

    pressure: pd.DataFrame
    flow: pd.DataFrame
    level: pd.DataFrame = field(default_factory=pd.DataFrame)
    demand: pd.DataFrame = field(default_factory=pd.DataFrame)

    def frames(self) -> dict[str, pd.DataFrame]:
        return {k: getattr(self, k) for k in KINDS}

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.pressure.index if len(self.pressure.columns) else self.flow.index

    @property
    def step(self) -> pd.Timedelta:
        idx = self.index
        return pd.Timedelta(idx[1] - idx[0]) if len(idx) > 1 else pd.Timedelta("5min")

    def regular(self, step: pd.Timedelta | None = None) -> "LeakInputs":
        """All tables on one regular grid (the most common step of the pressure or flow data).

        Readings between grid times are averaged into the grid time before them; missing grid
        times are NaN. Raises InputError when there is no time overlap.
        """
        frames = {k: v for k, v in self.frames().items() if v is not None and len(v.columns)}
        if not frames:
            raise InputError("no sensor data: give at least pressures or flows")
        if step is None:
            base = self.pressure if len(self.pressure.columns) else self.flow
            d = pd.Series(base.index).diff().dropna()
            d = d[d > pd.Timedelta(0)]
            if not len(d):
                raise InputError("the data has fewer than two distinct times")
            step = pd.Timedelta(d.mode().iloc[0])
        start = max(v.index.min() for v in frames.values()).floor(step)
        end = min(v.index.max() for v in frames.values())
        if end <= start:
            raise InputError(
                "the tables do not overlap in time: "
                + "; ".join(f"{k} {v.index.min():%Y-%m-%d %H:%M} – {v.index.max():%Y-%m-%d %H:%M}" for k, v in frames.items())
            )
        grid = pd.date_range(start, end, freq=step)
        out = {}
        for k in KINDS:
            v = self.frames()[k]
            if v is None or not len(v.columns):
                out[k] = pd.DataFrame(index=grid)
                continue
            v = v[(v.index >= start) & (v.index <= end)]
            if len(v.index) == len(grid) and (v.index == grid).all():
                out[k] = v.astype(float)
            else:
                binned = v.groupby(v.index.floor(step)).mean()
                out[k] = binned.reindex(grid).astype(float)
        return LeakInputs(**out)


def read_wide(path: str | Path, kind: str) -> pd.DataFrame:
    """Read a wide CSV: first column the time (UTC), one column per node/link id.

    Empty cells are missing readings. Times may be ``YYYY-MM-DD HH:MM[:SS]`` or ISO 8601 with
    an offset (converted to UTC). Raises InputError with the file and problem.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file ({kind} data)")
    try:
        df = pd.read_csv(path, engine="pyarrow")
    except Exception as exc:  # pyarrow's errors are many; all mean "unreadable CSV"
        try:
            df = pd.read_csv(path)
        except Exception:
            raise InputError(f"{path}: cannot read it as CSV: {exc}") from None
    if df.shape[1] < 2:
        raise InputError(f"{path}: expected a time column and one column per sensor; found {df.shape[1]} column(s)")
    tcol = df.columns[0]
    try:
        times = pd.to_datetime(df[tcol].astype(str), utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: first column {tcol!r} must hold times (e.g. 2019-01-01 00:05): {exc}") from None
    data = df.drop(columns=[tcol])
    data.columns = [str(c).strip() for c in data.columns]
    bad = [c for c in data.columns if not pd.api.types.is_numeric_dtype(data[c])]
    for c in bad:
        data[c] = pd.to_numeric(data[c], errors="coerce")
    data.index = pd.DatetimeIndex(times, name="time")
    if data.index.has_duplicates:
        data = data.groupby(level=0).mean()
    return data.sort_index().astype(float)


def check_against_model(inputs: LeakInputs, wn: wntr.network.WaterNetworkModel, source: dict | None = None) -> None:
    """Check that every column names an element of the model that can carry that sensor.

    Pressure and demand columns must be junctions (or any node for pressure), levels tanks,
    flows links. Raises InputError naming the unknown ids and the model.
    """
    source = source or {}
    nodes, junctions = set(wn.node_name_list), set(wn.junction_name_list)
    tanks, links = set(wn.tank_name_list), set(wn.link_name_list)
    model = wn.name or "the model"
    problems = []
    for kind, allowed, what in (
        ("pressure", nodes, "nodes"),
        ("demand", junctions, "junctions"),
        ("level", tanks, "tanks"),
        ("flow", links, "links"),
    ):
        df = getattr(inputs, kind)
        if df is None or not len(df.columns):
            continue
        bad = [c for c in df.columns if c not in allowed]
        if bad:
            where = f" ({source[kind]})" if kind in source else ""
            shown = ", ".join(bad[:8]) + (f" and {len(bad) - 8} more" if len(bad) > 8 else "")
            hint = ""
            if kind == "level":
                hint = " (level sensors must sit in tanks)"
            problems.append(f"{kind} column(s){where} not among the {what} of {model}: {shown}{hint}")
    if problems:
        raise InputError(
            "; ".join(problems) + ". Column names must be the model's node/link ids; check the model or rename the columns."
        )


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) index pairs (end exclusive) of the True runs of a boolean array."""
    if not mask.any():
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def _spikes(x: np.ndarray, spike_sd: float) -> np.ndarray:
    """Isolated readings that jump away from both neighbours in the same direction."""
    d = np.diff(x)
    fin = np.isfinite(d)
    out = np.zeros(len(x), dtype=bool)
    if fin.sum() <= 20:
        return out
    mad = np.nanmedian(np.abs(d[fin] - np.nanmedian(d[fin])))
    sd = max(1.4826 * mad, 1e-9)
    jump_in = np.concatenate([[0.0], d])
    jump_out = np.concatenate([-d, [0.0]])
    with np.errstate(invalid="ignore"):
        out = (np.abs(jump_in) > spike_sd * sd) & (np.abs(jump_out) > spike_sd * sd) & (np.sign(jump_in) == np.sign(jump_out))
    return out


def screen_sensors(
    inputs: LeakInputs,
    stuck_hours: float = 2.0,
    spike_sd: float = 12.0,
    min_coverage: float = 0.5,
    skip_spikes: set | None = None,
) -> tuple[LeakInputs, list[SensorIssue]]:
    """Blank out what a sensor's own series shows to be wrong; report it.

    * gaps longer than an hour are reported (they stay NaN);
    * stuck: the same value repeated for ``stuck_hours`` or more → NaN;
    * spikes: a reading that jumps from both neighbours by more than ``spike_sd`` robust
      standard deviations of the sensor's step-to-step changes → NaN; a jump that several
      sensors of the same kind make at the same time is hydraulics (a pump starting, a valve),
      not a fault, and is kept; so are the jumps of the links in ``skip_spikes`` (pumps);
    * a sensor with less than ``min_coverage`` of its readings left is dropped (``unused``).

    Demand (AMR) columns are only checked for gaps and coverage.
    """
    issues: list[SensorIssue] = []
    out = {}
    step = inputs.step
    idx = inputs.index
    skip_spikes = skip_spikes or set()
    n_stuck = max(3, int(round(pd.Timedelta(hours=stuck_hours) / step)))
    n_gap = max(2, int(round(pd.Timedelta(hours=1) / step)))
    for kind, df in inputs.frames().items():
        if df is None or not len(df.columns):
            out[kind] = df
            continue
        df = df.copy()
        spikes = {}
        if kind != "demand":
            for col in df.columns:
                if not (kind == "flow" and col in skip_spikes):
                    spikes[col] = _spikes(df[col].to_numpy(dtype=float), spike_sd)
            if spikes:
                shared = np.sum(list(spikes.values()), axis=0)
                # the same jump ±1 step in two or more sensors: hydraulics
                near = shared + np.concatenate([[0], shared[:-1]]) + np.concatenate([shared[1:], [0]])
                common = near >= 2
                for col in spikes:
                    spikes[col] &= ~common
        keep = []
        for col in df.columns:
            x = df[col].to_numpy(dtype=float, copy=True)
            for a, b in _runs(~np.isfinite(x)):
                if b - a >= n_gap:
                    issues.append(SensorIssue(kind, col, "gap", idx[a], idx[b - 1], f"no data for {(b - a) * step}"))
            if kind != "demand":
                same = np.zeros(len(x), dtype=bool)
                same[1:] = (x[1:] == x[:-1]) & np.isfinite(x[1:])
                for a, b in _runs(same):  # a run of k equal steps marks k+1 readings
                    if b - a + 1 >= n_stuck:
                        x[max(a - 1, 0) : b] = np.nan
                        issues.append(
                            SensorIssue(kind, col, "stuck", idx[max(a - 1, 0)], idx[b - 1],
                                        f"value {df[col].iloc[a]:g} repeated {b - a + 1} times; readings ignored")
                        )
                spike = spikes.get(col)
                if spike is not None and spike.any():
                    x[spike] = np.nan
                    where = np.flatnonzero(spike)
                    issues.append(
                        SensorIssue(kind, col, "spikes", idx[where[0]], idx[where[-1]], f"{len(where)} isolated spike(s) removed")
                    )
            coverage = 1.0 - (~np.isfinite(x)).mean()
            if coverage < min_coverage:
                issues.append(
                    SensorIssue(kind, col, "unused", None, None, f"only {coverage:.0%} of the readings are usable; sensor not used")
                )
                continue
            df[col] = x
            keep.append(col)
        out[kind] = df[keep]
    return LeakInputs(**out), issues
