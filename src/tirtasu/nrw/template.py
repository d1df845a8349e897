"""An audit file drafted from the store, for any period and any DMA or the whole utility.

What the store measures (system input from the inflow meters, billed volumes from the bills) is
written as ``value: store`` and computed when the balance runs; the system's attributes (mains
length, connections, average pressure) are filled in from the stored model, customers and
pressure loggers; what no meter tells (unbilled unmetered use, the apparent-loss items, costs)
is left as the utility's estimate, with typical starting values marked as such.
"""

from __future__ import annotations

import pandas as pd

from tirtasu.nrw.store_io import _mains_km_by_dma, _utc, dma_pressures, meter_registration_check

__all__ = ["audit_template"]

_TEMPLATE = """\
# Water balance of {scope}, drafted from the store by `tirtasu nrw template`.
# Volumes marked `store` are computed from the inflow meters and bills when the balance runs
# (the days bills do not cover yet from the customers' smart meters, where they have one);
# the items marked ESTIMATE are starting values to replace with the utility's own.
# Run: tirtasu nrw balance THIS_FILE --store STORE [--html report.html]
name: {name}
period: {{start: {start}, end: {end}}}   # end exclusive
{dma_line}units: m3
country_group: {country_group}

system_input_volume: {{value: store, cl95: 2, grade: 7}}     # inflow meters (±2 %: typical bulk meters)
water_exported: {{value: 0}}
billed_metered: {{value: store, cl95: 1, grade: 8}}
billed_unmetered: {{value: store, cl95: 20, grade: 5}}
unbilled_metered: {{value: 0}}
unbilled_unmetered: {{pct: 0.5, of: water_supplied, cl95: 50, grade: 3}}   # ESTIMATE

unauthorized_consumption: {{pct: 2, of: water_supplied, cl95: 50, grade: 3}}          # ESTIMATE
customer_meter_inaccuracies: {{pct: 3, cl95: 30, grade: 4}}                           # ESTIMATE: meter tests
{meter_check}systematic_data_handling_errors: {{pct: 0.5, of: billed_metered, cl95: 50, grade: 4}} # ESTIMATE

mains_length_km: {mains_km}
service_connections: {connections}     # customer accounts in the store
private_pipe_length_km: 0              # ESTIMATE: property line to meter
average_pressure_m: {pressure_m}     # mean of the pressure loggers over the period

variable_production_cost: 0.25     # ESTIMATE, per m³
customer_retail_unit_cost: 0.60    # ESTIMATE, per m³
"""


def audit_template(
    store,
    start,
    end,
    dma: str | None = None,
    name: str | None = None,
    country_group: str = "developing",
) -> str:
    """YAML text of an audit for [start, end) of ``dma`` (None: the whole utility).

    Parameters
    ----------
    store : tirtasu.store.Store
    start, end : datetime-like
        The audit period (UTC; end exclusive).
    dma : str, optional
    name : str, optional
        The audit's title.

    Raises
    ------
    KeyError
        ``dma`` is not a DMA of the store.
    """
    start, end = _utc(start), _utc(end)
    if end <= start:
        raise ValueError(f"the audit period must end after it starts ({start:%Y-%m-%d} → {end:%Y-%m-%d})")
    dmas = set(store.dma_nodes()["dma"]) | set(store.dma_links()["dma"])
    if dma is not None and dma not in dmas:
        raise KeyError(f"no DMA {dma!r} in the store (have: {', '.join(sorted(dmas)) or 'none'})")
    km = _mains_km_by_dma(store, None)
    mains = km.get(dma) if dma is not None else (sum(km.values()) if km else None)
    customers = store.customers(dma=dma)
    pressures = dma_pressures(store, start, end, resample="1h")
    if dma is not None:
        pressures = pressures[[dma]] if dma in pressures.columns else pressures.iloc[:, :0]
    mean_pressure = float(pressures.stack().mean()) if pressures.size else float("nan")
    scope = f"DMA {dma}" if dma else "the whole utility"
    return _TEMPLATE.format(
        scope=scope,
        name=name or f"Water balance, {scope}, {start:%Y-%m-%d} to {end:%Y-%m-%d}",
        start=f"{start:%Y-%m-%d}",
        end=f"{end:%Y-%m-%d}",
        dma_line=f"dma: {dma}\n" if dma else "",
        country_group=country_group,
        mains_km=f"{mains:.2f}" if mains else "null        # ESTIMATE: no model in the store",
        connections=len(customers) if len(customers) else "null   # ESTIMATE: no customers in the store",
        pressure_m=f"{mean_pressure:.1f}" if pd.notna(mean_pressure) else "null   # ESTIMATE: no pressure loggers",
        meter_check=_meter_check_lines(store, start, end, dma),
    )


def _meter_check_lines(store, start, end, dma) -> str:
    """Comment lines with the bills-vs-smart-meters check, when the store allows it."""
    check = meter_registration_check(store, start, end, dma=dma)
    if check is None:
        return ""
    return (
        f"# smart meters vs bills on {check.nodes} node(s): billing meters register {100 * check.under_registration:.2f} "
        f"± {100 * check.cl95:.2f} % less.\n"
        "# If the smart meters are separate, more accurate meters (not the billing meters read by radio), use instead:\n"
        "# customer_meter_inaccuracies: {pct: store, grade: 6}\n"
    )
