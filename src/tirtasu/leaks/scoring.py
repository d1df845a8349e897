"""Score leak detections against the truth the way BattLeDIM 2020 did.

BattLeDIM (the Battle of the Leakage Detection and Isolation Methods, L-Town network) scored a
list of detections, each a pipe and a time, in euros: water saved by finding a leak early, minus
the cost of sending a crew to the wrong place. The rules, as the issue states them and as the
organisers' MATLAB code (KIOS-Research/BattLeDIM, ``Scoring Algorithm/``) applies them:

* The distance between two pipes is the shortest path along the network between their end
  nodes (the nearest pair of the four), each link weighing its length, plus half of each
  pipe's length: the distance between the pipes' midpoints. A pipe is 0 m from itself.
* A detection is a *true positive* when its time lies in [leak start, leak end) and its pipe is
  within ``max_distance_m`` (300 m) of the leak's pipe. Detections are taken in time order;
  among the leaks a detection qualifies for, it goes to the closest one not yet found.
* A true positive earns the leak's volume from the detection time to the leak's end [m³] ×
  0.80 €/m³, minus distance / 300 m × 500 € (the crew's search). A detection that qualifies
  only for leaks already found is a *repeat*: 0 €, and not a false positive. Any other
  detection is a *false positive*: −500 €.

``docs/leak-scoring.md`` lists where this implementation and the official code differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import wntr

from tirtasu.leaks.graph import PipeGraph

__all__ = ["LeakScore", "pipe_distances", "score", "OUTCOMES"]

#: outcome of a detection: found a leak, found nothing, found a leak already found, outside
#: the evaluation period (not scored)
OUTCOMES = ("TP", "FP", "repeat", "ignored")

_TOL_M = 1e-9  # [m] distances are sums of floats; "within 300 m" must not hinge on rounding
_NS_PER_H = 3_600_000_000_000


# --------------------------------------------------------------------------------------------
# distances


def _link_list(wn, ids, what: str) -> list[str]:
    if isinstance(ids, str):
        ids = [ids]
    ids = list(dict.fromkeys(str(i) for i in ids))
    known = set(wn.link_name_list)
    unknown = [i for i in ids if i not in known]
    if unknown:
        more = f" (and {len(unknown) - 10} more)" if len(unknown) > 10 else ""
        raise KeyError(f"{what}: link(s) not in the model: {', '.join(unknown[:10])}{more}")
    return ids


def pipe_distances(
    wn: wntr.network.WaterNetworkModel,
    link_ids_a,
    link_ids_b=None,
    *,
    cut_at_pumps_valves: bool = False,
) -> pd.DataFrame:
    """Distances between pipes as BattLeDIM's 300 m rule measures them [m].

    The distance between two different links is the shortest path along the network between
    their end nodes (the nearest of the four pairs of end nodes), every link weighing its length,
    plus half the length of each of the two links: the distance between their midpoints. A link
    is 0 m from itself.

    Parameters
    ----------
    wn : wntr.network.WaterNetworkModel
        The network model (lengths in m, as WNTR holds them).
    link_ids_a : str or sequence of str
        Links of the rows (duplicates are dropped, order kept).
    link_ids_b : sequence of str, optional
        Links of the columns; default every link of the model.
    cut_at_pumps_valves : bool, default False
        False: pumps and valves join their end nodes at length 0 m. True: a path cannot pass
        through a pump or valve, as in the official BattLeDIM distance matrix (see
        ``docs/leak-scoring.md``); links then unreachable are ``inf`` apart.

    Returns
    -------
    pandas.DataFrame [m]
        Index ``link_ids_a``, columns ``link_ids_b``; ``inf`` where no path joins two links.

    Raises
    ------
    KeyError
        A link id is not in the model.
    """
    a = _link_list(wn, link_ids_a, "link_ids_a")
    b = list(wn.link_name_list) if link_ids_b is None else _link_list(wn, link_ids_b, "link_ids_b")
    graph = PipeGraph(wn, cut_at_pumps_valves)
    out = pd.DataFrame(graph.distances(a, b), index=pd.Index(a, name="link_id"), columns=pd.Index(b, name="link_id"))
    return out


# --------------------------------------------------------------------------------------------
# times


def _utc_ns(values, missing: int | None = None) -> np.ndarray:
    """Times as int64 ns since the epoch, UTC; naive times are taken as UTC.

    Missing times (NaN, None, "") become ``missing``, or raise if it is None.
    """
    t = pd.to_datetime(pd.Series(values).reset_index(drop=True), utc=True)
    absent = t.isna().to_numpy()
    if absent.any() and missing is None:
        raise ValueError("times must not be missing")
    out = np.full(len(t), missing if missing is not None else 0, dtype=np.int64)
    out[~absent] = t[~absent].dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    return out


def _utc_scalar_ns(value) -> int:
    t = pd.Timestamp(value)
    t = t.tz_localize("UTC") if t.tz is None else t.tz_convert("UTC")
    return int(t.tz_localize(None).as_unit("ns").value)


def _to_times(ns: np.ndarray) -> pd.Series:
    """int64 ns since the epoch → UTC timestamps."""
    return pd.Series(pd.to_datetime(np.asarray(ns, dtype=np.int64), unit="ns", utc=True))


# --------------------------------------------------------------------------------------------
# score


@dataclass
class LeakScore:
    """The BattLeDIM score of a set of detections.

    Attributes
    ----------
    tp : int
        Leaks found (true positives).
    fp : int
        False positives (repeats are not counted).
    fn : int
        Leaks of the evaluation period not found.
    repeats : int
        Detections of leaks already found (0 €).
    ignored : int
        Detections outside the evaluation period, or naming no pipe (not scored).
    score_eur : float [€]
        Σ of the detections' euros.
    perfect_eur : float [€]
        Score of a perfect detector: every leak flagged on its own pipe (0 m) when it starts, or
        at the start of the period if it started before.
    fraction : float
        ``score_eur / perfect_eur`` (NaN without leaks).
    median_delay_h : float [h]
        Median over the true positives of detection time − leak start (NaN without any).
    median_distance_m : float [m]
        Median over the true positives of the distance to the leak's pipe (NaN without any).
    detections : pandas.DataFrame
        One row per detection, in the order scored (by time): ``detection`` (the input's row
        label), link_id, start_time (UTC), outcome (TP / FP / repeat / ignored), leak_id (the
        leak found; for a repeat, the leak it repeats; else None), distance_m (to that leak;
        for a false positive, to the nearest leak running at that time, NaN if none), delay_h
        (TP only), volume_m3 (TP: the leak's volume from the detection to its end), eur.
    leaks : pandas.DataFrame
        One row per leak of the evaluation period: leak_id, link_id, start, end (repair, or the
        period's end), volume_m3 (within the period), perfect_eur, found, detected_at,
        detected_link_id, delay_h, distance_m, eur.
    """

    tp: int
    fp: int
    fn: int
    repeats: int
    ignored: int
    score_eur: float
    perfect_eur: float
    fraction: float
    median_delay_h: float
    median_distance_m: float
    detections: pd.DataFrame = field(repr=False)
    leaks: pd.DataFrame = field(repr=False)

    def summary(self) -> dict:
        """The scalar results, for reports and JSON."""
        keys = ("tp", "fp", "fn", "repeats", "ignored", "score_eur", "perfect_eur", "fraction", "median_delay_h", "median_distance_m")
        return {k: getattr(self, k) for k in keys}


def _flows_table(leak_flows: pd.DataFrame) -> pd.DataFrame:
    flows = leak_flows
    if "timestamp" in flows.columns:
        flows = flows.set_index("timestamp")
    flows = flows.copy()
    flows.index = pd.DatetimeIndex(pd.to_datetime(flows.index, utc=True).tz_localize(None))
    flows.columns = [str(c) for c in flows.columns]
    return flows.sort_index()


def score(
    detections: pd.DataFrame,
    leaks: pd.DataFrame,
    leak_flows: pd.DataFrame,
    wn: wntr.network.WaterNetworkModel,
    *,
    period_start=None,
    period_end=None,
    max_distance_m: float = 300.0,
    eur_per_m3: float = 0.80,
    eur_per_fp: float = 500.0,
    eur_per_300m: float = 500.0,
    cut_at_pumps_valves: bool = False,
) -> LeakScore:
    """Score detections against the true leaks, BattLeDIM 2020's way.

    Detections are taken in time order (ties in input order). A detection whose pipe lies
    within ``max_distance_m`` of the pipe of a leak running at its time (start ≤ t < end) is a
    true positive of the closest such leak not yet found (ties: the leak that started first);
    it earns ``eur_per_m3`` × the leak's volume from t to its end − distance /
    ``max_distance_m`` × ``eur_per_300m``. If every leak it qualifies for is already found it is
    a repeat (0 €); if it qualifies for none it is a false positive (−``eur_per_fp``).

    Parameters
    ----------
    detections : pandas.DataFrame
        Columns ``link_id`` and ``start_time`` (when the leak was detected; naive times are
        UTC), as ``tirtasu leaks detect`` writes them; other columns are ignored, and so are
        rows whose ``link_id`` is empty (a leak not placed, or an area to survey: no pipe to
        send a crew to, so neither found nor false).
    leaks : pandas.DataFrame
        The truth, as ``leaks.csv``: ``leak_id``, ``link_id``, ``start``, ``end`` (repair time;
        empty or beyond the period: the leak runs to the period's end).
    leak_flows : pandas.DataFrame [m³/h]
        Outflow of each leak (one column per leak_id) at each time step, time-indexed (or with a
        ``timestamp`` column, as ``leak_flows.csv``). Each value counts for one step (the index's
        median spacing): volume from t to the end = Σ flow·Δt over the steps in [t, end).
    wn : wntr.network.WaterNetworkModel
        The network model the link ids refer to.
    period_start, period_end : time-like, optional
        The evaluation period [period_start, period_end); default the span of ``leak_flows``
        (its first time; its last time + one step). Detections outside it are ignored (as the
        official scoring ignored detections before 2019); leaks outside it are not scored; a
        leak running past its end ends there; a leak that started before it still counts.
    max_distance_m : float [m]
        How far from the leak's pipe a detection still finds it (BattLeDIM: 300 m).
    eur_per_m3 : float [€/m³]
        Value of the water a detection saves (0.80).
    eur_per_fp : float [€]
        Cost of a false positive (a crew sent for nothing, 500).
    eur_per_300m : float [€]
        Crew cost of a true positive at ``max_distance_m`` from the leak, scaling linearly from
        0 at the leak's own pipe (500 € at 300 m).
    cut_at_pumps_valves : bool
        See :func:`pipe_distances` (False: pumps and valves are 0 m long).

    Returns
    -------
    LeakScore

    Raises
    ------
    KeyError
        A link id is not in the model, or a leak has no column in ``leak_flows``.
    ValueError
        Missing columns or times, duplicate leak ids, or no way to tell the period.
    """
    for name, table, cols in (("detections", detections, ("link_id", "start_time")), ("leaks", leaks, ("link_id", "start"))):
        missing = [c for c in cols if c not in table.columns]
        if missing:
            raise ValueError(f"{name} lacks column(s) {', '.join(missing)}")

    flows = _flows_table(leak_flows)
    t_flow = flows.index.to_numpy().astype("datetime64[ns]").astype(np.int64)
    if len(t_flow) >= 2:
        step_ns = int(np.median(np.diff(t_flow)))
    elif len(leaks) or period_start is None or period_end is None:
        raise ValueError("leak_flows needs at least two time steps (or give period_start and period_end without leaks)")
    else:
        step_ns = 0
    p0 = _utc_scalar_ns(period_start) if period_start is not None else int(t_flow[0])
    p1 = _utc_scalar_ns(period_end) if period_end is not None else int(t_flow[-1]) + step_ns
    if p1 <= p0:
        raise ValueError("period_end must lie after period_start")
    step_h = step_ns / _NS_PER_H

    # -- the leaks of the period, their end and their volume from any time to their end ------
    truth = leaks.copy()
    if "leak_id" not in truth.columns:
        truth["leak_id"] = truth["link_id"]
    truth["leak_id"] = truth["leak_id"].astype(str)
    truth["link_id"] = truth["link_id"].astype(str)
    if truth["leak_id"].duplicated().any():
        raise ValueError(f"leaks: duplicate leak_id {truth['leak_id'][truth['leak_id'].duplicated()].iloc[0]!r}")
    start = _utc_ns(truth["start"])
    end = _utc_ns(truth["end"], missing=p1) if "end" in truth.columns else np.full(len(truth), p1, np.int64)
    end = np.minimum(end, p1)
    keep = (start < p1) & (end > np.maximum(start, p0))
    truth, start, end = truth[keep].reset_index(drop=True), start[keep], end[keep]
    missing = [l for l in truth["leak_id"] if l not in flows.columns]
    if missing:
        raise KeyError(f"leak_flows has no column for leak(s): {', '.join(missing)}")
    n_leaks = len(truth)

    # -- detections, in time order --------------------------------------------------------------
    det = pd.DataFrame(
        {
            "detection": detections.index,
            # a row naming no pipe (a leak not placed, or an area to survey) is no (pipe, time) detection
            "link_id": detections["link_id"].fillna("").astype(str).str.strip().to_numpy(),
            "t": _utc_ns(detections["start_time"]),
        }
    )
    det = det.iloc[np.argsort(det["t"].to_numpy(), kind="stable")].reset_index(drop=True)
    named = det["link_id"] != ""
    det_links = _link_list(wn, det["link_id"][named], "detections") if named.any() else []
    leak_links = _link_list(wn, truth["link_id"], "leaks") if n_leaks else []
    if n_leaks and det_links:
        dist = PipeGraph(wn, cut_at_pumps_valves).distances(leak_links, det_links)
        row_of = {l: i for i, l in enumerate(leak_links)}
        row = np.array([row_of[l] for l in truth["link_id"]])
        col_of = {l: i for i, l in enumerate(det_links)}
    limit = max_distance_m + _TOL_M

    found = np.zeros(n_leaks, dtype=bool)
    found_by = np.full(n_leaks, -1)
    records = []
    order = np.arange(n_leaks)
    for i, (link, t) in enumerate(zip(det["link_id"], det["t"])):
        rec = {"outcome": "ignored", "leak_id": None, "distance_m": np.nan, "delay_h": np.nan, "volume_m3": np.nan, "eur": 0.0}
        if p0 <= t < p1 and link:
            d = dist[row, col_of[link]] if n_leaks else np.zeros(0)
            running = (start <= t) & (t < end)
            qualifies = running & (d <= limit)
            if not qualifies.any():
                rec["outcome"], rec["eur"] = "FP", -float(eur_per_fp)
                if running.any():
                    rec["distance_m"] = float(d[running].min())
            else:
                new = qualifies & ~found
                pool = new if new.any() else qualifies
                cand = np.flatnonzero(pool)
                j = int(cand[np.lexsort((order[cand], start[cand], d[cand]))[0]])
                rec["leak_id"], rec["distance_m"] = truth["leak_id"].iat[j], float(d[j])
                if new.any():  # euros once the volumes are known, below
                    rec.update(outcome="TP", delay_h=(t - start[j]) / _NS_PER_H)
                    found[j], found_by[j] = True, i
                else:
                    rec["outcome"] = "repeat"
        records.append(rec)

    # -- volumes [m³]: of each leak from the period's start (or its own) and from its detection to
    # its end; each flow value counts for one step, the steps in [t, end) summed
    first = np.maximum(start, p0)
    volume = np.zeros(n_leaks)
    in_period = t_flow >= p0
    for j, leak_id in enumerate(truth["leak_id"]):
        q = flows[leak_id].to_numpy(dtype=float, na_value=np.nan)
        v = np.where(in_period & (t_flow < end[j]) & np.isfinite(q), q, 0.0) * step_h
        remaining = np.append(np.cumsum(v[::-1])[::-1], 0.0)  # from flow time k to the end
        volume[j] = remaining[np.searchsorted(t_flow, first[j], side="left")]
        if found_by[j] >= 0:
            i = int(found_by[j])
            vol = remaining[np.searchsorted(t_flow, det["t"].iat[i], side="left")]
            records[i]["volume_m3"] = vol
            records[i]["eur"] = eur_per_m3 * vol - records[i]["distance_m"] / max_distance_m * eur_per_300m
    perfect = eur_per_m3 * volume

    det_table = pd.concat([det.drop(columns="t"), pd.DataFrame(records, columns=["outcome", "leak_id", "distance_m", "delay_h", "volume_m3", "eur"])], axis=1)
    det_table.insert(2, "start_time", _to_times(det["t"].to_numpy()))
    det_table["eur"] = det_table["eur"].astype(float)
    det_table["leak_id"] = det_table["leak_id"].astype(object).where(det_table["leak_id"].notna(), None)

    hit = found_by >= 0
    by = found_by[hit]
    leak_table = pd.DataFrame(
        {
            "leak_id": truth["leak_id"],
            "link_id": truth["link_id"],
            "start": _to_times(start),
            "end": _to_times(end),
            "volume_m3": volume,
            "perfect_eur": perfect,
            "found": hit,
        }
    )
    leak_table["detected_at"] = pd.Series(pd.NaT, index=leak_table.index, dtype="datetime64[ns, UTC]")
    leak_table["detected_link_id"] = None
    for c in ("delay_h", "distance_m", "eur"):
        leak_table[c] = np.nan
    if hit.any():
        leak_table.loc[hit, "detected_at"] = det_table["start_time"].to_numpy()[by]
        leak_table.loc[hit, "detected_link_id"] = det_table["link_id"].to_numpy()[by]
        for c in ("delay_h", "distance_m", "eur"):
            leak_table.loc[hit, c] = det_table[c].to_numpy()[by]

    outcome = det_table["outcome"]
    tp = int(hit.sum())
    tps = det_table[outcome == "TP"]
    total = float(det_table["eur"].sum())
    perfect_total = float(perfect.sum())
    return LeakScore(
        tp=tp,
        fp=int((outcome == "FP").sum()),
        fn=n_leaks - tp,
        repeats=int((outcome == "repeat").sum()),
        ignored=int((outcome == "ignored").sum()),
        score_eur=total,
        perfect_eur=perfect_total,
        fraction=total / perfect_total if perfect_total > 0 else float("nan"),
        median_delay_h=float(tps["delay_h"].median()) if tp else float("nan"),
        median_distance_m=float(tps["distance_m"].median()) if tp else float("nan"),
        detections=det_table,
        leaks=leak_table,
    )
