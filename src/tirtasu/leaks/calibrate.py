"""The model brought to what the leak-free period measured, before its signatures are computed.

Two corrections, both against the training period (assumed leak-free):

* **demand**: the model's demands at each hour of the day are scaled to the water measured into
  the network then (source meters minus tank filling; needs every source metered);
* **roughness**: a factor per diameter class of pipes fitted to the daily swing of the
  pressure sensors (:func:`tirtasu.network.calibration.calibrate_roughness`), with the
  demands, tank levels and pump states of each hour as measured.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import wntr

from tirtasu.leaks.data import LeakInputs
from tirtasu.leaks.residuals import ResidualModel, model_hour
from tirtasu.network.calibration import RoughnessCalibration, calibrate_roughness

__all__ = ["calibrate_against_training", "measured_demand", "pump_on_share", "training_profile"]


def pump_on_share(data: LeakInputs, train: np.ndarray, wn, hour: float, tz: str | None = None) -> dict[str, float]:
    """Share of the training readings within an hour of ``hour`` (model clock) with each metered
    pump running."""
    out = {}
    hod = model_hour(data.index[train], tz)
    near = np.abs(((hod - hour + 12) % 24) - 12) <= 1.0
    for pump in wn.pump_name_list:
        if pump not in data.flow.columns:
            continue
        q = data.flow[pump].to_numpy()[train]
        ok = np.isfinite(q)
        if ok.sum() < 10:
            continue
        top = np.nanpercentile(q[ok], 95)
        if top <= 0:
            continue
        on = q > 0.05 * top
        sel = near & ok
        out[pump] = float(on[sel].mean()) if sel.any() else float(on[ok].mean())
    return out


def measured_demand(rm: ResidualModel, data: LeakInputs, train_end, hours, tz: str | None = None) -> dict[float, float]:
    """Mean water demand of the network [m³/h] in training, in the hour of the day (model clock)
    that begins at each of ``hours`` (the hour an hourly demand pattern holds its value from then)."""
    inflow = rm.inflow_hourly(data)
    inflow = inflow[(inflow.index < train_end) & np.isfinite(inflow.to_numpy())]
    out = {}
    if inflow.empty:
        return out
    hod = np.floor(model_hour(inflow.index, tz)).astype(int)
    for h in hours:
        at = hod == int(np.floor(h)) % 24
        if at.sum() >= 3:
            out[h] = float(inflow.to_numpy()[at].mean())
    return out


def training_profile(frame: pd.DataFrame, train: np.ndarray, tz: str | None = None, min_days: int = 3) -> pd.DataFrame:
    """Median of each column in each hour of the day (model clock) over the training rows.

    Parameters
    ----------
    frame : pandas.DataFrame
        Readings (UTC index), e.g. pressures [m] or tank levels [m].
    train : numpy.ndarray of bool
        Rows of the training period.
    tz : str, optional
        The model's time zone.
    min_days : int
        An hour of the day with fewer readings than this many days' worth is left NaN (the
        median of a sensor that was mostly down is not its profile).

    Returns
    -------
    pandas.DataFrame
        Index the hours 0.0 … 23.0, columns those of ``frame``.
    """
    rows = frame[train]
    hod = np.floor(model_hour(rows.index, tz)).astype(int)
    per_hour = rows.groupby(hod).median()
    counts = rows.notna().groupby(hod).sum()
    step_h = (frame.index[1] - frame.index[0]) / pd.Timedelta(hours=1) if len(frame.index) > 1 else 1.0
    per_hour = per_hour.where(counts >= min_days * max(1.0, 1.0 / step_h))
    per_hour = per_hour.reindex(range(24))
    per_hour.index = per_hour.index.astype(float)
    return per_hour


def calibrate_against_training(
    wn: wntr.network.WaterNetworkModel,
    rm: ResidualModel,
    data: LeakInputs,
    train: np.ndarray,
    train_end,
    tz: str | None = None,
    with_demand: bool = True,
) -> tuple[RoughnessCalibration | None, str]:
    """Pipe roughness fitted to the training period's daily pressure swing.

    Parameters
    ----------
    wn : wntr.network.WaterNetworkModel
    rm : ResidualModel
        Fitted on the training period (its usable pressure, flow and level sensors and, when
        every source is metered, the network's inflow).
    data : LeakInputs
    train : numpy.ndarray of bool
        Training rows of ``data``.
    train_end : pandas.Timestamp
    tz : str, optional
        The model's time zone.
    with_demand : bool
        Scale the model's demands at each hour to the measured inflow.

    Returns
    -------
    (RoughnessCalibration or None, str)
        The calibration and a note for the report (why none, when None).
    """
    sensors = list(rm.pressure_sensors)
    if len(sensors) < 3:
        return None, "pipe roughness not calibrated: fewer than 3 usable pressure sensors"
    profile = training_profile(data.pressure[sensors], train, tz).dropna(how="all")
    if len(profile) < 12:
        return None, "pipe roughness not calibrated: the training period does not cover 12 hours of the day"
    hours = tuple(profile.index)
    levels = training_profile(data.level[rm.level_sensors], train, tz) if rm.level_sensors else None
    tank_levels = (
        {h: {t: float(levels.loc[h, t]) for t in rm.level_sensors if np.isfinite(levels.loc[h, t])} for h in hours}
        if levels is not None else None
    )
    # the state a pump is in most of the time in that hour of the day
    link_status = {h: {p: share > 0.5 for p, share in pump_on_share(data, train, wn, h + 0.5, tz).items()} for h in hours}
    demand = measured_demand(rm, data, train_end, hours, tz) if with_demand else {}
    try:
        cal = calibrate_roughness(wn, profile, total_demand_m3h=demand, tank_levels=tank_levels, link_status=link_status)
    except ValueError as exc:
        return None, f"pipe roughness not calibrated: {exc}"
    if not cal.acceptable:
        worst = sorted(cal.sensor_rms_after_m, key=cal.sensor_rms_after_m.get, reverse=True)[:3]
        why = (f"the fit wants {', '.join(cal.at_bounds)} beyond ×{min(cal.bounds):g}–{max(cal.bounds):g}" if cal.at_bounds
               else f"only {cal.share_within_half_metre:.0%} of sensor-hours within 0.5 m")
        return None, (
            f"pipe roughness not calibrated: roughness alone does not explain the daily pressure swing ({why}; "
            f"misfit {cal.rms_after_m:.2f} m rms, most at {', '.join(worst)}): check the states of valves and "
            "unmetered pumps, tank controls and the sensors' nodes"
        )
    if not cal.material:
        return None, (
            f"pipe roughness left as in the model: the best factors ({', '.join(f'{g} ×{m:.2f}' for g, m in cal.multipliers.items())}) "
            f"would explain little of the daily pressure swing (misfit {cal.rms_before_m:.2f} → {cal.rms_after_m:.2f} m rms)"
        )
    return cal, cal.describe()
