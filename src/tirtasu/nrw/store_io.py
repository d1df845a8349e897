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
- **Smart meters** (``demand`` sensors [L/h] on nodes; a meter covers the accounts on its node):
  their consumption over a period (:func:`smart_meter_consumption`); the days bills do not cover
  yet filled from them (:func:`smart_meter_lag_fill`, part of billed metered consumption); bills
  against smart meters (:func:`meter_registration_check`: the billing meters' under-registration,
  if the smart meters are separate meters); and a DMA's legitimate night use measured by them
  (:func:`smart_meter_night_use`).
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

from tirtasu.nrw.nightflow import (
    DMAAttributes,
    DMANightFlow,
    NightFlowSettings,
    NightUse,
    _in_night,
    _local_regular,
    _window_mean,
    analyse_dma,
    night_use_from_sample,
)

__all__ = [
    "StoreVolume",
    "dma_inflows",
    "system_input_from_store",
    "billed_from_store",
    "billing_end_inclusive",
    "SmartMeterConsumption",
    "smart_meter_consumption",
    "MeterCheck",
    "meter_registration_check",
    "smart_meter_lag_fill",
    "LagFill",
    "smart_meter_night_use",
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
    bills, calendar-month bills (starting on the 1st) are read as inclusive unless they end on a
    1st: an exclusive calendar bill ends on the 1st of the next month, an inclusive one on the
    month's last day or, for a partial month, on its last billed day (1–7 September).
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
    return bool(((ps.dt.day == 1) & (pe.dt.day != 1)).mean() > 0.5)


def _bills_in_period(store, start, end, dma: str | None = None) -> tuple[pd.DataFrame, bool]:
    """Billing records that may overlap [start, end) with their period as UTC timestamps.

    Columns added: ``_ps``, ``_pe`` (end exclusive), ``_len`` and ``_days`` (days inside the
    period), ``_v`` (billed_m3 prorated to the period). Returns (bills, end inclusive).
    """
    bills = store.billing(start=start - pd.Timedelta(days=400), end=end, dma=dma)
    if bills.empty:
        return bills, False
    inclusive = billing_end_inclusive(bills)
    ps = pd.to_datetime(bills["period_start"]).map(_utc)
    pe = pd.to_datetime(bills["period_end"]).map(_utc) + pd.Timedelta(days=1 if inclusive else 0)
    length = (pe - ps) / pd.Timedelta(days=1)
    inside = ((pe.where(pe < end, end) - ps.where(ps > start, start)) / pd.Timedelta(days=1)).clip(lower=0)
    share = np.where(length > 0, inside / length.where(length > 0, 1), 0.0)
    bills = bills.assign(_ps=ps, _pe=pe, _len=length, _days=inside, _v=bills["billed_m3"].astype(float) * share)
    return bills, inclusive


def _is_metered(customers: pd.DataFrame, ids: pd.Series) -> pd.Series:
    """The customer's ``metered`` flag (unknown counts as metered)."""
    metered = customers.set_index("customer_id")["metered"] if not customers.empty else pd.Series(dtype=object)
    flag = ids.map(metered)
    return flag.isna() | flag.astype("boolean").fillna(True).astype(bool)


def billed_from_store(store, start, end, dma: str | None = None, smart_meters: bool = True) -> dict[str, StoreVolume]:
    """Billed metered and unmetered consumption over [start, end) from billing records [m³].

    Each record's billed_m3 counts in proportion to the overlap of its billing period with the
    audit period; whether period_end is the period's last day or the day after is inferred
    (:func:`billing_end_inclusive`). With ``smart_meters``, the days of the audit period that no
    bill of a metered customer covers yet (billing lags the meters) are filled from the smart
    meter on the customer's node (:func:`smart_meter_lag_fill`): the consumption of those days
    will be billed, and an audit counts it in its own period (*Water Loss Control*, 2nd ed.,
    systematic data handling errors: lag-time correction of customer meter readings).
    """
    start, end = _utc(start), _utc(end)
    bills, inclusive = _bills_in_period(store, start, end, dma)
    customers = store.customers(dma=dma)
    days = (end - start) / pd.Timedelta(days=1)
    if bills.empty:
        zero = StoreVolume(0.0, "store: no billing records for the period", 0.0)
        return {"billed_metered": zero, "billed_unmetered": zero}
    is_metered = _is_metered(customers, bills["customer_id"])
    n_cust = max(len(customers), bills["customer_id"].nunique())
    covered = bills.groupby("customer_id")["_days"].sum().clip(upper=days).sum() / (n_cust * days) if n_cust else 0
    lag = smart_meter_lag_fill(store, start, end, dma=dma) if smart_meters else None
    out = {}
    for key, mask in (("billed_metered", is_metered), ("billed_unmetered", ~is_metered)):
        vol = float(bills.loc[mask, "_v"].sum())
        n = int(bills.loc[mask, "customer_id"].nunique())
        note = (
            f"store: {n} customer(s), billing periods (end {'inclusive' if inclusive else 'exclusive'}) "
            f"prorated to the audit period; bills cover {100 * covered:.1f} % of customer-days"
        )
        if key == "billed_metered" and lag is not None and lag.customer_days > 0:
            vol += lag.value
            with_smart = covered + lag.customer_days / (n_cust * days) if n_cust else covered
            note += f"; {lag.note}; bills and smart meters together cover {100 * min(1.0, with_smart):.1f} % of customer-days"
        out[key] = StoreVolume(vol, note, float(covered))
    return out


@dataclass(frozen=True)
class SmartMeterConsumption:
    """Consumption measured by the smart meters (``demand`` sensors) of a DMA or of all [m³].

    Attributes
    ----------
    value : float [m³]
        Σ over the meters of their readings integrated over the period, gaps filled.
    coverage : float [-]
        Share of meter-hours with readings.
    meters : pandas.DataFrame
        One row per meter: sensor_id, node_id, dma, volume_m3, coverage, accounts,
        metered_accounts (customer accounts on its node, i.e. the customers it covers).
    daily : pandas.DataFrame [m³/day]
        Days (UTC) × meters, gaps filled.
    """

    value: float
    note: str
    coverage: float
    meters: pd.DataFrame
    daily: pd.DataFrame

    @property
    def nodes_without_accounts(self) -> list[str]:
        m = self.meters
        return sorted(m.loc[(m["accounts"] == 0) & m["volume_m3"].notna(), "node_id"].astype(str))


def _smart_meters(store, dma: str | None = None) -> pd.DataFrame:
    """Registered ``demand`` sensors on a node, with the node's DMA (sensor's own, else the node's)."""
    reg = store.sensors(kind="demand")
    reg = reg[reg["node_id"].notna()].copy()
    if reg.empty:
        return reg
    nodes = store.dma_nodes()
    node_dma = dict(zip(nodes["node_id"].astype(str), nodes["dma"]))
    reg["node_id"] = reg["node_id"].astype(str)
    reg["dma"] = reg["dma"].where(reg["dma"].notna(), reg["node_id"].map(node_dma))
    return reg[reg["dma"] == dma] if dma is not None else reg


def smart_meter_consumption(store, start, end, dma: str | None = None) -> SmartMeterConsumption:
    """Consumption measured by smart meters over [start, end) [m³], per meter and in total.

    Each ``demand`` sensor's readings [L/h] are averaged per hour and integrated; an hour without
    readings gets the meter's mean for that hour of the day over the period (consumption follows
    the day), else its mean; a meter with no reading at all is left out and named. A meter sits
    on a node and covers the customer accounts on that node. Meters on nodes without any account
    are named: their water is consumed but billed to no one.
    """
    start, end = _utc(start), _utc(end)
    reg = _smart_meters(store, dma)
    grid = pd.date_range(start.floor("h"), end, freq="1h", inclusive="left")
    days = pd.date_range(start.floor("D"), end, freq="1D", inclusive="left")
    cols = ["sensor_id", "node_id", "dma", "volume_m3", "coverage", "accounts", "metered_accounts"]
    if reg.empty:
        return SmartMeterConsumption(0.0, "store: no smart meters", 0.0, pd.DataFrame(columns=cols), pd.DataFrame(index=days))
    ids = list(reg["sensor_id"])
    wide = store.readings(sensor_ids=ids, start=start, end=end, resample="1h", how="mean", wide=True)
    wide = wide.reindex(index=grid, columns=ids) / 1000.0  # L/h → m³/h
    measured = wide.notna().mean()
    filled = wide.fillna(wide.groupby(wide.index.hour).transform("mean")).fillna(wide.mean())
    volume = filled.sum(min_count=1)  # m³ (hourly means × 1 h)
    daily = filled.groupby(filled.index.floor("D")).sum(min_count=1).reindex(days)
    customers = store.customers()
    if not customers.empty:
        customers = customers.assign(_m=_is_metered(customers, customers["customer_id"]).to_numpy(), node_id=customers["node_id"].astype(str))
        accounts = customers.groupby("node_id").size()
        metered = customers.groupby("node_id")["_m"].sum()
    else:
        accounts = metered = pd.Series(dtype=float)
    meters = pd.DataFrame(
        {
            "sensor_id": ids,
            "node_id": reg["node_id"].to_numpy(),
            "dma": reg["dma"].to_numpy(),
            "volume_m3": volume.reindex(ids).to_numpy(),
            "coverage": measured.reindex(ids).to_numpy(),
            "accounts": reg["node_id"].map(accounts).fillna(0).astype(int).to_numpy(),
            "metered_accounts": reg["node_id"].map(metered).fillna(0).astype(int).to_numpy(),
        }
    )
    ok = meters["volume_m3"].notna()
    total = float(meters.loc[ok, "volume_m3"].sum())
    cov = float(measured.mean())
    scope = f"DMA {dma}" if dma else "all DMAs"
    note = (
        f"store: {int(ok.sum())} smart meter(s) of {scope}, readings averaged per hour and integrated, "
        f"{100 * cov:.1f} % of meter-hours measured"
        + (" (gaps filled with the meter's mean for the hour of day)" if cov < 1 else "")
        + f"; they cover {int(meters.loc[ok, 'accounts'].sum())} customer account(s) on {int((ok & (meters['accounts'] > 0)).sum())} node(s)"
    )
    if (~ok).any():
        note += f"; no readings from {', '.join(meters.loc[~ok, 'sensor_id'])}"
    lone = sorted(meters.loc[ok & (meters["accounts"] == 0), "node_id"])
    if lone:
        vol = float(meters.loc[ok & (meters["accounts"] == 0), "volume_m3"].sum())
        note += f"; {vol:,.1f} m³ measured on node(s) without any customer account ({', '.join(lone)}): unbilled or unauthorized use, check them"
    return SmartMeterConsumption(total, note, cov, meters, daily)


@dataclass(frozen=True)
class MeterCheck:
    """Billing meters against smart meters on the nodes where both measure the same customers.

    Attributes
    ----------
    ratio : float [-]
        Σ billed / Σ smart-metered over the node-days every account of the node was billed for.
    under_registration : float [-]
        1 − ratio: the share of consumption the billing meters miss, *if* the smart meters are
        independent of (and more accurate than) the billing meters.
    cl95 : float [-]
        Absolute 95 % limit of both (ratio estimator over the nodes).
    """

    ratio: float
    under_registration: float
    cl95: float
    nodes: int
    accounts: int
    billed_m3: float
    smart_m3: float
    note: str


def _smart_basis(store, start, end, dma):
    """What the lag fill and the meter check share: smart-meter volumes, the accounts on
    smart-metered nodes, their daily billed volume [m³/day] (NaN where no bill covers the day)
    and each account's share of its node's consumption (by billed volume per day)."""
    sm = smart_meter_consumption(store, start, end, dma=dma)
    meters = sm.meters[sm.meters["volume_m3"].notna() & (sm.meters["accounts"] > 0)]
    if meters.empty:
        return sm, None, None, None
    customers = store.customers(dma=dma)
    customers = customers.assign(node_id=customers["node_id"].astype(str))
    on = customers[customers["node_id"].isin(set(meters["node_id"]))].copy()
    on["_m"] = _is_metered(customers, on["customer_id"]).to_numpy()
    bills, _ = _bills_in_period(store, start, end, dma)
    days = sm.daily.index
    rates = pd.DataFrame(np.nan, index=days, columns=list(on["customer_id"]))
    if not bills.empty:
        bills = bills[bills["customer_id"].isin(set(on["customer_id"]))]
        first = bills.groupby("customer_id")["_ps"].min()
        per_day = bills.groupby("customer_id")["billed_m3"].sum() / bills.groupby("customer_id")["_len"].sum()
        arr = rates.to_numpy(copy=True)
        col = {c: i for i, c in enumerate(rates.columns)}
        day0 = days[0] if len(days) else start
        for cid, ps, pe, length, inside, billed in zip(
            bills["customer_id"], bills["_ps"], bills["_pe"], bills["_len"], bills["_days"], bills["billed_m3"].astype(float)
        ):
            if length <= 0 or inside <= 0:
                continue
            a = max(0, int(np.ceil((ps - day0) / pd.Timedelta(days=1))))
            b = min(len(days), int(np.ceil((pe - day0) / pd.Timedelta(days=1))))
            arr[a:b, col[cid]] = billed / length
        rates = pd.DataFrame(arr, index=days, columns=rates.columns)
    else:
        first = pd.Series(dtype=object)
        per_day = pd.Series(dtype=float)
    on["_first"] = on["customer_id"].map(first)
    w = on["customer_id"].map(per_day)
    w = w.fillna(w.groupby(on["node_id"]).transform("mean")).fillna(1.0)
    on["_share"] = w / w.groupby(on["node_id"]).transform("sum")
    return sm, on, rates, meters


def meter_registration_check(store, start, end, dma: str | None = None, _basis=None) -> MeterCheck | None:
    """Compare what the billing meters registered with what the smart meters measured.

    On every smart-metered node whose accounts are all metered, over the days every account of
    the node has a bill for: ratio = Σ billed / Σ smart-metered (a ratio estimator over nodes,
    Cochran, *Sampling Techniques*, §6.4, with the finite-population correction for the share of
    the scope's metered accounts checked). ``under_registration`` = 1 − ratio estimates the
    billing meters' under-registration only if the smart meters are separate, more accurate
    meters; where the smart meter *is* the billing meter read remotely, the ratio is 1 by
    construction and says nothing about accuracy. None when no node qualifies.
    """
    start, end = _utc(start), _utc(end)
    sm, on, rates, meters = _basis if _basis is not None else _smart_basis(store, start, end, dma)
    if on is None:
        return None
    rows = []
    for node, grp in on.groupby("node_id"):
        if not grp["_m"].all():
            continue
        both = rates[list(grp["customer_id"])].notna().all(axis=1)
        if not both.any():
            continue
        sid = meters.loc[meters["node_id"] == node, "sensor_id"]
        smart = float(sm.daily.loc[both, list(sid)].sum().sum())
        billed = float(rates.loc[both, list(grp["customer_id"])].sum().sum())
        if smart > 0:
            rows.append((node, billed, smart, len(grp)))
    if len(rows) < 2:
        return None
    df = pd.DataFrame(rows, columns=["node", "billed", "smart", "accounts"])
    n = len(df)
    r = float(df["billed"].sum() / df["smart"].sum())
    all_metered = int(_is_metered(store.customers(dma=dma), store.customers(dma=dma)["customer_id"]).sum())
    f = min(1.0, df["accounts"].sum() / all_metered) if all_metered else 0.0
    var = (1 - f) / (n * df["smart"].mean() ** 2) * float(((df["billed"] - r * df["smart"]) ** 2).sum()) / (n - 1)
    cl = 1.96 * math.sqrt(var)
    note = (
        f"store: billing meters vs smart meters on {n} node(s) ({int(df['accounts'].sum())} metered accounts) over "
        f"the days all their accounts were billed: billed/smart = {r:.4f} ± {cl:.4f}, i.e. under-registration "
        f"{100 * (1 - r):.2f} ± {100 * cl:.2f} % if the smart meters are separate, more accurate meters"
    )
    return MeterCheck(r, 1 - r, cl, n, int(df["accounts"].sum()), float(df["billed"].sum()), float(df["smart"].sum()), note)


@dataclass(frozen=True)
class LagFill:
    """Metered consumption of unbilled days taken from smart meters [m³]."""

    value: float
    note: str
    customer_days: int
    accounts: int


def smart_meter_lag_fill(store, start, end, dma: str | None = None) -> LagFill | None:
    """Metered consumption of the days no bill covers yet, from smart meters [m³].

    For every metered account on a smart-metered node: the days of [start, end) after its first
    billing period began that none of its bills covers (billing lags the meters, or a bill is
    missing) get its share of the node's smart-metered volume (shares by billed volume per day),
    times the billed/smart ratio of :func:`meter_registration_check` (1 without one), so that the
    filled days are on the billing meters' footing and meter under-registration is not removed
    twice. Accounts without a smart meter are not filled. None without smart-metered accounts.
    """
    start, end = _utc(start), _utc(end)
    basis = _smart_basis(store, start, end, dma)
    sm, on, rates, meters = basis
    if on is None:
        return None
    check = meter_registration_check(store, start, end, dma, _basis=basis)
    r = check.ratio if check is not None else 1.0
    node_daily = pd.DataFrame(
        {node: sm.daily[list(g["sensor_id"])].sum(axis=1) for node, g in meters.groupby("node_id")}, index=sm.daily.index
    )
    total, n_acc, n_days = 0.0, 0, 0
    todo = on[on["_m"] & on["_first"].notna()]
    for cid, node, first, share in zip(todo["customer_id"], todo["node_id"], todo["_first"], todo["_share"]):
        gap = rates[cid].isna() & (rates.index >= first.floor("D"))
        if gap.any():
            total += float(node_daily.loc[gap, node].sum()) * share * r
            n_acc += 1
            n_days += int(gap.sum())
    note = (
        f"{n_days} unbilled day(s) of {n_acc} metered account(s) filled from the smart meter on their node "
        f"(their share by billed volume, × {r:.3f} billed/smart): {total:,.1f} m³"
    )
    return LagFill(total, note, n_days, n_acc)


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


def smart_meter_night_use(store, start, end, dma: str, settings: NightFlowSettings = NightFlowSettings(),
                          exceptional_m3h: float = 0.0) -> NightUse | None:
    """Legitimate night use of a DMA from its smart meters [m³/h], night by night.

    The smart-metered nodes with customer accounts are a sample of the DMA's customers: their
    flow in every candidate window of the night hours is scaled up by billed volume
    (:func:`tirtasu.nrw.nightflow.night_use_from_sample`: each account weighs its billed volume
    per day over its bills of the last 400 days, the DMA all its accounts), and each night keeps
    the window of least use, where leakage is the largest share of the inflow. The night's flow
    is then read in that same window (:attr:`NightUse.windows`): choosing the window by the
    minimum of the noisy inflow instead would bias night leakage low.

    By billed volume, not by households and non-households, because a smart meter on a node
    measures all the accounts there together, whatever their category, and night use grows with
    the size of the user more than with the number of accounts; without bills for half the
    accounts, the number of accounts is the weight. Meters on nodes without an account are added
    as measured (water used, not leaked). ``exceptional_m3h`` (known night users outside the
    sample) is added. None when fewer than two smart-metered nodes with accounts have readings.
    """
    reg = _smart_meters(store, dma)
    customers = store.customers(dma=dma)
    if reg.empty or customers.empty:
        return None
    start, end = _utc(start), _utc(end)
    wide = store.readings(sensor_ids=list(reg["sensor_id"]), start=start, end=end, resample=settings.step, how="mean", wide=True)
    if wide.empty:
        return None
    n = int(pd.Timedelta(settings.window) / pd.Timedelta(settings.step))
    win = {sid: _window_mean(_local_regular(wide[sid] / 1000.0, settings.step, settings.tz), n) for sid in wide.columns}  # m³/h
    sample = pd.DataFrame(win)
    sample = sample[_in_night(sample.index, settings)]
    node_of = dict(zip(reg["sensor_id"], reg["node_id"]))
    by_node = sample.T.groupby(sample.columns.map(node_of)).sum(min_count=1).T  # meters on one node add up

    customers = customers.assign(node_id=customers["node_id"].astype(str))
    bills, _ = _bills_in_period(store, start, end, dma)
    weight_name = "billed volume"
    w = pd.Series(np.nan, index=customers.index)
    if not bills.empty:
        per_day = bills.groupby("customer_id")["billed_m3"].sum() / bills.groupby("customer_id")["_len"].sum()
        w = customers["customer_id"].map(per_day)
    if w.notna().mean() < 0.5:
        w, weight_name = pd.Series(1.0, index=customers.index), "number of accounts"
    w = w.fillna(0.0)
    node_w = w.groupby(customers["node_id"]).sum()
    with_accounts = [c for c in by_node.columns if c in node_w.index and node_w[c] > 0]
    without = [c for c in by_node.columns if c not in node_w.index]
    if len(with_accounts) < 2:
        return None
    unscaled = by_node[without].sum(axis=1, min_count=1).fillna(0.0) if without else 0.0
    kw = dict(
        weights=node_w,
        total_weight=float(w.sum()),
        population=float(customers["node_id"].nunique()),
        meter_cl95=settings.smart_meter_cl95,
        what=f"smart meters on {len(with_accounts)} of {customers['node_id'].nunique()} customer nodes",
    )
    every = night_use_from_sample(by_node[with_accounts], unscaled=unscaled, **kw).per_night.dropna()
    if every.empty:
        return None
    best = every.groupby(every.index.normalize()).idxmin()
    chosen = by_node.loc[best.to_numpy(), with_accounts].set_axis(best.index)
    extra = unscaled.loc[best.to_numpy()].set_axis(best.index) if isinstance(unscaled, pd.Series) else unscaled
    use = night_use_from_sample(chosen, unscaled=extra, **kw)
    method = use.method.replace("measured in each night's MNF window", "in each night's hour of least use").replace(
        "scaled by billed volume", f"scaled by {weight_name}"
    )
    if exceptional_m3h:
        method += f"; + {exceptional_m3h:g} m³/h exceptional night use"
    windows = pd.Series(pd.DatetimeIndex(best.to_numpy()), index=best.index)
    return NightUse(use.per_night + exceptional_m3h, use.sigma_m3h, method, windows)


def analyse_dmas_from_store(
    store,
    start,
    end,
    settings: NightFlowSettings = NightFlowSettings(),
    reference: tuple | None = None,
    model: str | None = None,
    dma: str | None = None,
    smart_meters: bool = True,
) -> tuple[list[DMANightFlow], list[str]]:
    """Night-flow analysis of every DMA (or one) from the store's inflow meters, pressure
    sensors, customers, smart meters and model.

    Legitimate night use, by precedence: reference nights when given; else the DMA's smart
    meters (``smart_meters``, two or more smart-metered nodes with accounts, see
    :func:`smart_meter_night_use`); else per-property allowances (with a warning).

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
        use = None
        if reference is None and smart_meters:
            use = smart_meter_night_use(store, start, end, name, settings, a.exceptional_night_use_m3h)
        results.append(analyse_dma(flows[name], p, a, settings, reference=reference, night_use=use))
    return results, notes
