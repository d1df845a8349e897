"""Balance inputs and DMA series computed from the data tirtasu holds (any :class:`Store`).

- **System input** of a DMA: Σ sign·Q over its boundary links (``store.dma_links()``: +1 when
  positive link flow enters the DMA), Q from the ``flow`` sensors on those links [m³/h],
  averaged per time bucket and integrated over the period. For the whole utility the DMA inflows
  are summed: a link between two DMAs appears in both with opposite signs and cancels, leaving
  the water that enters the DMA system from outside.
- **Billed consumption**: ``store.billing()`` records, each prorated by the share of its billing
  period inside the audit period, split into metered and
  unmetered by the customer's ``metered`` flag (unknown counts as metered). Whether a record's
  period_end is its last day or the day after is inferred from consecutive bills.
- **Storage**: a tank inside a DMA with a level sensor stores part of the inflow; its rate of
  change of volume (from the level series and the tank's geometry in the stored model) is taken
  out of the DMA's inflow, so that what remains is consumption plus losses.
- **DMA attributes** for the night-flow analysis: customers per DMA (connections, households by
  category) and, when a network model is stored, the length of mains inside each DMA (a pipe
  with one end inside counts half).

Everything stays in internal units: m³, m³/h, m, UTC.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tirtasu.nrw.nightflow import DMAAttributes, DMANightFlow, NightFlowSettings, analyse_dma

__all__ = [
    "StoreVolume",
    "dma_inflows",
    "system_input_from_store",
    "billed_from_store",
    "billing_end_inclusive",
    "balance_volumes_from_store",
    "dma_pressures",
    "dma_attributes_from_store",
    "storage_flows",
    "analyse_dmas_from_store",
    "HOUSEHOLD_CATEGORIES",
]

#: customer categories counted as households for legitimate night use
HOUSEHOLD_CATEGORIES = frozenset({"household", "households", "residential", "domestic", "home", "rumah tangga"})


@dataclass(frozen=True)
class StoreVolume:
    """A volume taken from the store, with a note saying how [m³]."""

    value: float
    note: str
    coverage: float = 1.0  # share of the period the data covered [-]


def _utc(ts) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def dma_inflows(
    store, start, end, dma: str | None = None, resample: str = "15min", storage: bool = True, model: str | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Net inflow of each DMA [m³/h], one column per DMA, on a regular ``resample`` grid.

    A bucket is NaN for a DMA when any of its boundary meters has no reading in it. With
    ``storage``, the filling rate of tanks inside the DMA (:func:`storage_flows`) is subtracted.

    Returns
    -------
    (pandas.DataFrame, list of str)
        The inflows and remarks (boundary links without a flow meter: those DMAs are dropped).
    """
    start, end = _utc(start), _utc(end)
    links = store.dma_links()
    if dma is not None:
        links = links[links["dma"] == dma]
        if links.empty:
            known = ", ".join(sorted(store.dma_links()["dma"].unique())) or "none"
            raise KeyError(f"no boundary links for DMA {dma!r} in the store (DMAs: {known})")
    sensors = store.sensors(kind="flow")
    sensors = sensors[sensors["link_id"].notna()]
    by_link = sensors.groupby("link_id")["sensor_id"].apply(list).to_dict()
    notes = []
    grid = pd.date_range(start, end, freq=resample, inclusive="left")
    wanted = sorted({s for lk in links["link_id"] for s in by_link.get(lk, [])})
    wide = (
        store.readings(sensor_ids=wanted, start=start, end=end, resample=resample, how="mean", wide=True)
        if wanted
        else pd.DataFrame(index=grid)
    )
    wide = wide.reindex(grid)
    out = {}
    for name, grp in links.groupby("dma"):
        unmetered = [lk for lk in grp["link_id"] if lk not in by_link]
        if unmetered:
            notes.append(f"DMA {name}: boundary link(s) without a flow meter: {', '.join(unmetered)}; DMA skipped")
            continue
        total = pd.Series(0.0, index=grid)
        for lk, sign in zip(grp["link_id"], grp["sign"]):
            cols = [s for s in by_link[lk] if s in wide.columns]
            q = wide[cols].mean(axis=1, skipna=True) if cols else pd.Series(np.nan, index=grid)
            total = total + int(sign) * q
        out[name] = total
    flows = pd.DataFrame(out, index=grid)
    if storage and not flows.empty:
        filling, snotes = storage_flows(store, start, end, resample=resample, model=model)
        notes += snotes
        for name in filling.columns.intersection(flows.columns):
            flows[name] = flows[name] - filling[name]
    return flows, notes


def _load_wn(store, model: str | None):
    names = store.models()
    if not names:
        return None
    text = store.model_text(model or names[0])
    import wntr  # heavy; only when a model is there

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.inp")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return wntr.network.WaterNetworkModel(path)


def storage_flows(store, start, end, resample: str = "15min", model: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Rate at which the tanks of each DMA fill [m³/h] (negative when they empty).

    From every ``level`` sensor on a tank of the stored model: the level's bucket means,
    differenced centrally, times the tank's cross-section (its volume curve if it has one).
    """
    start, end = _utc(start), _utc(end)
    grid = pd.date_range(start, end, freq=resample, inclusive="left")
    reg = store.sensors(kind="level")
    reg = reg[reg["node_id"].notna()]
    if reg.empty:
        return pd.DataFrame(index=grid), []
    wn = _load_wn(store, model)
    if wn is None:
        return pd.DataFrame(index=grid), ["level sensors but no network model in the store: tank storage not taken out of DMA inflows"]
    node_dma = dict(zip(store.dma_nodes()["node_id"].astype(str), store.dma_nodes()["dma"]))
    wide = store.readings(sensor_ids=list(reg["sensor_id"]), start=start, end=end, resample=resample, wide=True).reindex(grid)
    step_h = pd.Timedelta(resample) / pd.Timedelta(hours=1)
    out, notes = {}, []
    for row in reg.itertuples():
        node = str(row.node_id)
        if node not in wn.tank_name_list or row.sensor_id not in wide.columns:
            continue
        dma = row.dma or node_dma.get(node)
        if dma is None:
            continue
        tank = wn.get_node(node)
        level = wide[row.sensor_id].interpolate(limit=4, limit_area="inside")
        if tank.vol_curve is not None:
            x, y = zip(*tank.vol_curve.points)
            volume = pd.Series(np.interp(level, x, y), index=level.index)
        else:
            volume = level * math.pi * tank.diameter**2 / 4.0
        rate = (volume.shift(-1) - volume.shift(1)) / (2 * step_h)
        rate = rate.fillna((volume.diff() / step_h)).fillna(volume.diff(-1).mul(-1) / step_h)
        out[dma] = out.get(dma, 0.0) + rate
        notes.append(f"DMA {dma}: filling of tank {node} (from {row.sensor_id}) taken out of its inflow")
    return pd.DataFrame(out, index=grid), notes


def _integrate(series: pd.Series, start, end) -> tuple[float, float]:
    """Volume [m³] of a flow [m³/h] on a regular grid; missing buckets filled by the mean.

    Returns (volume, coverage).
    """
    hours = (end - start) / pd.Timedelta(hours=1)
    valid = series.dropna()
    if valid.empty:
        return float("nan"), 0.0
    coverage = len(valid) / len(series)
    return float(valid.mean() * hours), coverage


def system_input_from_store(store, start, end, dma: str | None = None, resample: str = "15min") -> StoreVolume:
    """System input volume of one DMA, or of the whole DMA system, over [start, end) [m³].

    Missing buckets are filled with the period's mean flow; the note and ``coverage`` say how
    much was measured.
    """
    start, end = _utc(start), _utc(end)
    flows, notes = dma_inflows(store, start, end, dma=dma, resample=resample)
    if flows.empty or flows.shape[1] == 0:
        raise ValueError("no metered DMA inflow in the store for that period" + (": " + "; ".join(notes) if notes else ""))
    skipped = [n for n in notes if n.endswith("DMA skipped")]
    if dma is None and skipped:
        raise ValueError("cannot compute the utility's system input: " + "; ".join(skipped))
    total = flows.sum(axis=1, min_count=flows.shape[1])
    vol, cov = _integrate(total, start, end)
    if not math.isfinite(vol):
        raise ValueError(f"no inflow readings between {start} and {end}")
    what = f"DMA {dma}" if dma else f"{flows.shape[1]} DMA(s)"
    note = f"store: net inflow of {what} over its boundary meters, {100 * cov:.1f} % of {resample} buckets measured"
    if cov < 1:
        note += " (gaps filled with the mean flow)"
    return StoreVolume(vol, note, cov)


def billing_end_inclusive(bills: pd.DataFrame) -> bool:
    """Whether billing records give the last day of their period (inclusive) or the day after.

    Consecutive bills of one customer settle it: a one-day gap between a period_end and the next
    period_start means inclusive ends, equal dates mean exclusive ones. Without consecutive
    bills, ends on the last day of a month (with starts on the 1st) are read as inclusive.
    """
    if bills.empty:
        return False
    b = bills.sort_values(["customer_id", "period_start"])
    ps = pd.to_datetime(b["period_start"])
    pe = pd.to_datetime(b["period_end"])
    same = b["customer_id"].eq(b["customer_id"].shift(-1))
    gap = (ps.shift(-1) - pe)[same] / pd.Timedelta(days=1)
    if len(gap):
        return bool((gap == 1).sum() > (gap == 0).sum())
    return bool((pe.dt.is_month_end & (ps.dt.day == 1)).mean() > 0.5)


def billed_from_store(store, start, end, dma: str | None = None) -> dict[str, StoreVolume]:
    """Billed metered and unmetered consumption over [start, end) from billing records [m³].

    Each record's billed_m3 counts in proportion to the overlap of its billing period with the
    audit period; whether period_end is the period's last day or the day after is inferred
    (:func:`billing_end_inclusive`).
    """
    start, end = _utc(start), _utc(end)
    bills = store.billing(start=start - pd.Timedelta(days=400), end=end, dma=dma)
    customers = store.customers(dma=dma)
    days = (end - start) / pd.Timedelta(days=1)
    if bills.empty:
        zero = StoreVolume(0.0, "store: no billing records for the period", 0.0)
        return {"billed_metered": zero, "billed_unmetered": zero}
    inclusive = billing_end_inclusive(bills)
    ps = pd.to_datetime(bills["period_start"]).map(_utc)
    pe = pd.to_datetime(bills["period_end"]).map(_utc) + pd.Timedelta(days=1 if inclusive else 0)
    length = (pe - ps) / pd.Timedelta(days=1)
    inside = ((pe.where(pe < end, end) - ps.where(ps > start, start)) / pd.Timedelta(days=1)).clip(lower=0)
    share = np.where(length > 0, inside / length.where(length > 0, 1), 0.0)
    bills = bills.assign(_v=bills["billed_m3"].astype(float) * share, _days=inside)
    metered = customers.set_index("customer_id")["metered"] if not customers.empty else pd.Series(dtype=object)
    flag = bills["customer_id"].map(metered)
    is_metered = flag.isna() | flag.astype("boolean").fillna(True).astype(bool)
    n_cust = max(len(customers), bills["customer_id"].nunique())
    covered = bills.groupby("customer_id")["_days"].sum().clip(upper=days).sum() / (n_cust * days) if n_cust else 0
    out = {}
    for key, mask in (("billed_metered", is_metered), ("billed_unmetered", ~is_metered)):
        vol = float(bills.loc[mask, "_v"].sum())
        n = int(bills.loc[mask, "customer_id"].nunique())
        out[key] = StoreVolume(
            vol,
            f"store: {n} customer(s), billing periods (end {'inclusive' if inclusive else 'exclusive'}) "
            f"prorated to the audit period; bills cover {100 * covered:.1f} % of customer-days",
            float(covered),
        )
    return out


def balance_volumes_from_store(store, start, end, dma: str | None = None, resample: str = "15min") -> dict[str, StoreVolume]:
    """The balance volumes the store can provide: system_input_volume, billed_metered,
    billed_unmetered [m³]."""
    out = {"system_input_volume": system_input_from_store(store, start, end, dma=dma, resample=resample)}
    out.update(billed_from_store(store, start, end, dma=dma))
    return out


def dma_pressures(store, start, end, resample: str = "15min") -> pd.DataFrame:
    """Mean of each DMA's pressure sensors [m], one column per DMA (the zone's average-pressure
    proxy when no average-zone-point sensor is designated)."""
    start, end = _utc(start), _utc(end)
    reg = store.sensors(kind="pressure")
    reg = reg[reg["dma"].notna()]
    grid = pd.date_range(start, end, freq=resample, inclusive="left")
    if reg.empty:
        return pd.DataFrame(index=grid)
    wide = store.readings(sensor_ids=list(reg["sensor_id"]), start=start, end=end, resample=resample, wide=True)
    wide = wide.reindex(grid)
    out = {}
    for name, grp in reg.groupby("dma"):
        cols = [s for s in grp["sensor_id"] if s in wide.columns]
        if cols:
            out[name] = wide[cols].mean(axis=1)
    return pd.DataFrame(out, index=grid)


def _mains_km_by_dma(store, model: str | None) -> dict[str, float]:
    wn = _load_wn(store, model)
    if wn is None:
        return {}
    node_dma = dict(zip(store.dma_nodes()["node_id"].astype(str), store.dma_nodes()["dma"]))
    km: dict[str, float] = {}
    for pname, pipe in wn.pipes():
        a, b = node_dma.get(str(pipe.start_node_name)), node_dma.get(str(pipe.end_node_name))
        length = pipe.length / 1000.0
        for d in {a, b} - {None}:
            km[d] = km.get(d, 0.0) + (length if a == b else length / 2.0)
    return km


def dma_attributes_from_store(
    store,
    model: str | None = None,
    exceptional_night_use_m3h: dict | None = None,
    private_pipe_km: dict | None = None,
) -> dict[str, DMAAttributes]:
    """Attributes of each DMA from customers and the stored network model.

    connections = customer accounts in the DMA; households = those whose category is in
    :data:`HOUSEHOLD_CATEGORIES` (all of them when no category is recorded); mains length from the
    model (None without one).
    """
    dmas = sorted(set(store.dma_links()["dma"]) | set(store.dma_nodes()["dma"]))
    customers = store.customers()
    km = _mains_km_by_dma(store, model)
    out = {}
    for d in dmas:
        c = customers[customers["dma"] == d] if not customers.empty else customers
        n = float(len(c))
        cat = c["category"].astype(str).str.strip().str.lower() if n else pd.Series(dtype=str)
        if n and c["category"].notna().any():
            hh = float(cat.isin(HOUSEHOLD_CATEGORIES).sum())
        else:
            hh = n
        out[d] = DMAAttributes(
            name=d,
            mains_km=km.get(d),
            connections=n or None,
            households=hh,
            non_households=n - hh,
            private_pipe_km=(private_pipe_km or {}).get(d, 0.0),
            exceptional_night_use_m3h=(exceptional_night_use_m3h or {}).get(d, 0.0),
        )
    return out


def analyse_dmas_from_store(
    store,
    start,
    end,
    settings: NightFlowSettings = NightFlowSettings(),
    reference: tuple | None = None,
    model: str | None = None,
    dma: str | None = None,
) -> tuple[list[DMANightFlow], list[str]]:
    """Night-flow analysis of every DMA (or one) from the store's inflow meters, pressure
    sensors, customers and model.

    Returns
    -------
    (list of DMANightFlow, list of str)
        The analyses and remarks on the data (unmetered boundaries, tanks taken into account).
    """
    flows, notes = dma_inflows(store, start, end, dma=dma, resample=settings.step, model=model)
    pressures = dma_pressures(store, start, end, resample=settings.step)
    attrs = dma_attributes_from_store(store, model=model)
    results = []
    for name in flows.columns:
        p = pressures[name] if name in pressures.columns else None
        a = attrs.get(name) or DMAAttributes(name=name)
        results.append(analyse_dma(flows[name], p, a, settings, reference=reference))
    return results, notes
