"""Pipe roughness calibrated against pressures read in a leak-free period.

What is fitted is each pressure sensor's **daily swing**: its pressure at each hour of the day
minus its daily mean. The swing is head loss rising and falling with demand (plus tanks filling
and pumps switching, which are set to what was measured), so it measures the pipes' resistance
while an error in a sensor's elevation or offset, constant through the day, cancels out.

The pipes are grouped (by default into diameter classes: small distribution pipes age and
roughen faster than trunk mains) and each group's roughness coefficient is multiplied by one
factor. The factors are fitted by least squares on their logarithms, each with a prior centred
on the model (standard deviation ``prior_sd``), so a group the sensors cannot see stays as the
model has it. Every evaluation solves one EPANET steady state per hour of the day.
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import wntr
from scipy.optimize import least_squares

from tirtasu.network.engine import (
    EN_DEMANDMULT,
    EN_INITSTATUS,
    EN_PATTERNSTART,
    EN_PRESSURE,
    EN_ROUGHNESS,
    Engine,
    EngineError,
)

__all__ = ["RoughnessCalibration", "calibrate_roughness", "diameter_groups"]


def diameter_groups(wn: wntr.network.WaterNetworkModel, bounds_mm=(150.0, 300.0), min_length_share: float = 0.1) -> dict[str, list[str]]:
    """Pipes grouped into diameter classes.

    Parameters
    ----------
    wn : wntr.network.WaterNetworkModel
    bounds_mm : sequence of float [mm]
        Class boundaries (a pipe of exactly a boundary's diameter goes to the class above).
    min_length_share : float
        A class with less than this share of the network's pipe length joins the class below it
        (the smallest joins the one above): a handful of pipes would only soak up model error.

    Returns
    -------
    dict
        Label (``"D < 150 mm"``, ``"150–300 mm"``, ``"D ≥ 300 mm"``, or a merged range such as
        ``"D ≥ 150 mm"``) → pipe ids; empty classes are left out.
    """
    edges = [0.0, *sorted(float(b) for b in bounds_mm), np.inf]
    classes: list[list] = [[lo, hi, [], 0.0] for lo, hi in zip(edges[:-1], edges[1:])]
    for name, pipe in wn.pipes():
        d_mm = pipe.diameter * 1000.0  # WNTR holds diameters in metres
        k = min(int(np.searchsorted(edges, d_mm, side="right")) - 1, len(classes) - 1)
        classes[k][2].append(name)
        classes[k][3] += float(pipe.length)
    classes = [c for c in classes if c[2]]
    total = sum(c[3] for c in classes) or 1.0
    k = 0
    while len(classes) > 1 and k < len(classes):
        if classes[k][3] / total < min_length_share:
            into = k - 1 if k > 0 else k + 1
            lo, hi = min(classes[k][0], classes[into][0]), max(classes[k][1], classes[into][1])
            classes[into] = [lo, hi, classes[into][2] + classes[k][2], classes[into][3] + classes[k][3]]
            del classes[k]
            k = 0
        else:
            k += 1

    def label(lo: float, hi: float) -> str:
        if lo == 0.0:
            return "all pipes" if np.isinf(hi) else f"D < {hi:g} mm"
        return f"D ≥ {lo:g} mm" if np.isinf(hi) else f"{lo:g}–{hi:g} mm"

    return {label(lo, hi): pipes for lo, hi, pipes, _ in classes}


@dataclass
class RoughnessCalibration:
    """Result of :func:`calibrate_roughness`.

    Attributes
    ----------
    groups : dict
        Group label → pipe ids.
    multipliers : dict
        Group label → factor on the roughness coefficient of its pipes (Hazen-Williams C and
        Chezy-Manning n as in the model; Darcy-Weisbach roughness height).
    headloss : str
        The model's head loss formula (``"H-W"``, ``"D-W"`` or ``"C-M"``).
    rms_before_m, rms_after_m : float [m]
        Root mean square difference between measured and modelled daily swings, over all
        sensors and hours, with the model's roughness and with the fitted one.
    sensors : list of str
        Pressure sensors used.
    hours : tuple of float [h]
        Hours of the day fitted (model clock).
    sensor_rms_after_m : dict [m]
        Sensor → its own root mean square misfit after calibration (a large one is worth a look:
        a closed valve the model has open, a sensor on the wrong node).
    share_within_half_metre : float
        Share of sensor-hours whose swing the calibrated model reproduces within 0.5 m (the
        usual acceptance criterion for pressures asks 85 %).
    at_bounds : list of str
        Groups whose factor ended at the edge of its allowed range: the data wanted more, which
        points at another cause than roughness (a valve or pump state, a tank control).
    bounds : (float, float)
        The allowed range of the factors.
    demand_unscaled_hours : tuple of float [h]
        Hours of the day whose demands were left as in the model: matching them to the water
        measured needs a steady state without demand, which had no hydraulic solution with
        that hour's tank levels and pump states.
    """

    groups: dict
    multipliers: dict
    headloss: str
    rms_before_m: float
    rms_after_m: float
    sensors: list
    hours: tuple
    sensor_rms_after_m: dict = field(default_factory=dict)
    share_within_half_metre: float = 1.0
    at_bounds: list = field(default_factory=list)
    bounds: tuple = (0.5, 2.0)
    demand_unscaled_hours: tuple = ()

    @property
    def acceptable(self) -> bool:
        """No factor at its bound, and 85 % of sensor-hours within 0.5 m."""
        return not self.at_bounds and self.share_within_half_metre >= 0.85

    @property
    def material(self) -> bool:
        """The calibration explains a fifth or more of the misfit (rms down by ≥ 20 %): less, and
        what remains is mostly something else (demand noise, unmetered controls) that the
        factors would only bend to."""
        return self.rms_after_m <= 0.8 * self.rms_before_m

    def apply(self, wn: wntr.network.WaterNetworkModel) -> wntr.network.WaterNetworkModel:
        """A copy of ``wn`` with its pipes' roughness multiplied by their group's factor."""
        out = copy.deepcopy(wn)
        for label, pipes in self.groups.items():
            factor = self.multipliers[label]
            for name in pipes:
                out.get_link(name).roughness *= factor
        return out

    def describe(self) -> str:
        """One line for a report."""
        what = {"H-W": "Hazen-Williams C", "D-W": "roughness height", "C-M": "Manning n"}.get(self.headloss, "roughness")
        parts = ", ".join(f"{label} ×{m:.2f}" for label, m in self.multipliers.items())
        return (
            f"pipe {what} calibrated on the daily pressure swing of {len(self.sensors)} sensors over "
            f"{len(self.hours)} hours: {parts} (misfit {self.rms_before_m:.2f} m → {self.rms_after_m:.2f} m rms)"
            + (
                f"; the model's own demands kept at {', '.join(f'{h:g} h' for h in self.demand_unscaled_hours)} "
                "(no hydraulic solution without demand there)"
                if self.demand_unscaled_hours else ""
            )
        )


def calibrate_roughness(
    wn: wntr.network.WaterNetworkModel,
    profile: pd.DataFrame,
    total_demand_m3h: dict | None = None,
    tank_levels: dict | None = None,
    link_status: dict | None = None,
    groups: dict | None = None,
    prior_sd: float = 0.5,
    sd_m: float = 0.1,
    bounds: tuple | None = None,
) -> RoughnessCalibration:
    """Fit a roughness factor per group of pipes to the daily pressure swing at the sensors.

    Parameters
    ----------
    wn : wntr.network.WaterNetworkModel
        The model (any EPANET units; written in CMH for the engine). Left unchanged.
    profile : pandas.DataFrame [m]
        Leak-free pressure at each hour of the day: index the hour on the model's clock [h],
        columns pressure sensor node ids (e.g. the median over the training days at each hour).
        Sensors with a missing hour are left out.
    total_demand_m3h : dict, optional [m³/h]
        Hour → measured water demand of the network (inflow minus tank filling); the model's
        demands at that hour are scaled to it.
    tank_levels : dict, optional [m]
        Hour → {tank id: level} measured then.
    link_status : dict, optional
        Hour → {pump or valve id: open?} as it mostly was then.
    groups : dict, optional
        Group label → pipe ids; default :func:`diameter_groups`.
    prior_sd : float
        Standard deviation of each factor's logarithm before the data are seen (0.5: a factor
        of 0.6 or 1.65 is one standard deviation away).
    sd_m : float [m]
        Expected misfit of one sensor-hour of swing for a right roughness (model error, noise).
    bounds : (float, float), optional
        Range of each factor; default (0.5, 2) for Hazen-Williams and Manning, (0.1, 10) for a
        Darcy-Weisbach roughness height (friction grows only with its logarithm).

    Returns
    -------
    RoughnessCalibration

    Raises
    ------
    ValueError
        Fewer than 3 hours or no sensor with every hour, or a sensor that is not a node.
    """
    headloss = str(wn.options.hydraulic.headloss).upper()
    if bounds is None:
        bounds = (0.1, 10.0) if headloss == "D-W" else (0.5, 2.0)
    if not 0 < bounds[0] < bounds[1]:
        raise ValueError(f"roughness calibration: bounds must be 0 < low < high, got {bounds}")
    groups = {k: list(v) for k, v in (groups or diameter_groups(wn)).items() if v}
    profile = profile.sort_index()
    complete = [s for s in profile.columns if profile[s].notna().all()]
    hours = tuple(float(h) for h in profile.index)
    if len(hours) < 3:
        raise ValueError(f"roughness calibration needs the pressure at 3 or more hours of the day, got {len(hours)}")
    if not complete:
        raise ValueError("roughness calibration: no pressure sensor has a reading at every hour of the profile")
    missing = [s for s in complete if s not in wn.node_name_list]
    if missing:
        raise ValueError(f"pressure sensor(s) not in the model: {', '.join(missing[:5])}")
    observed = profile[complete].to_numpy(dtype=float)
    observed_swing = observed - observed.mean(axis=0)
    labels = list(groups)

    with tempfile.TemporaryDirectory(prefix="tirtasu-cal-") as tmp:
        inp = Path(tmp) / "model.inp"
        wntr.network.write_inpfile(wn, str(inp), units="CMH")
        with Engine(inp, Path(tmp) / "model.rpt") as en:
            en.for_steady_states()
            sensor_idx = [en.node_index(s) for s in complete]
            group_idx = [[en.link_index(p) for p in groups[g]] for g in labels]
            rough0 = [np.array([en.link_value(i, EN_ROUGHNESS) for i in idx]) for idx in group_idx]
            junction_idx = [en.node_index(j) for j in wn.junction_name_list]
            model_mult = en.get_option(EN_DEMANDMULT) or 1.0
            conditions = [
                (
                    h,
                    {en.node_index(t): float(v) for t, v in ((tank_levels or {}).get(h) or {}).items() if np.isfinite(v)},
                    {en.link_index(lk): bool(v) for lk, v in ((link_status or {}).get(h) or {}).items()},
                )
                for h in hours
            ]

            def set_hour(h: float, levels: dict, status: dict) -> None:
                for i, v in levels.items():
                    en.set_tank_level(i, v)
                for i, v in status.items():
                    en.set_link_value(i, EN_INITSTATUS, 1.0 if v else 0.0)
                en.set_time(EN_PATTERNSTART, int(round(h * 3600)))

            multipliers = []  # found once: demands do not depend on roughness (emitters barely)
            unscaled = []  # hours whose demand could not be matched to the water measured
            for h, levels, status in conditions:
                set_hour(h, levels, status)
                mult = en.demand_multiplier_for(junction_idx, (total_demand_m3h or {}).get(h), model_mult)
                if mult is None:
                    unscaled.append(h)
                multipliers.append(model_mult if mult is None else mult)

            def swing(log_factors: np.ndarray) -> np.ndarray:
                for idx, r0, f in zip(group_idx, rough0, np.exp(log_factors)):
                    for i, r in zip(idx, r0):
                        en.set_link_value(i, EN_ROUGHNESS, float(r * f))
                out = np.empty_like(observed)
                for k, ((h, levels, status), mult) in enumerate(zip(conditions, multipliers)):
                    set_hour(h, levels, status)
                    en.set_option(EN_DEMANDMULT, mult)
                    with en.hydraulics():
                        en.steady_state()
                        out[k] = [en.node_value(i, EN_PRESSURE) for i in sensor_idx]
                return out - out.mean(axis=0)

            memo: dict[bytes, np.ndarray] = {}

            def residuals(log_factors: np.ndarray) -> np.ndarray:
                key = np.asarray(log_factors, dtype=float).tobytes()
                if key not in memo:
                    try:
                        miss = (swing(log_factors) - observed_swing) / sd_m
                    except EngineError:
                        miss = np.full(observed.shape, 1e3)  # no hydraulic solution: as far off as it gets
                    memo[key] = np.concatenate([miss.ravel(), log_factors / prior_sd])
                return memo[key]

            lo, hi = np.log(bounds[0]), np.log(bounds[1])
            step = 0.02  # in log factor (2 %): well above the engine's convergence noise

            def jacobian(log_factors: np.ndarray) -> np.ndarray:
                r0 = residuals(log_factors)
                cols = []
                for g in range(len(labels)):
                    h = step if log_factors[g] + step <= hi else -step
                    x = np.array(log_factors, dtype=float)
                    x[g] += h
                    cols.append((residuals(x) - r0) / h)
                return np.column_stack(cols)

            try:
                before = swing(np.zeros(len(labels))) - observed_swing
            except EngineError as exc:
                raise ValueError(
                    f"the model has no hydraulic solution for the training period's tank levels and pump states ({exc})"
                ) from exc
            x0 = np.full(len(labels), np.clip(0.0, lo, hi))
            fit = least_squares(residuals, x0, jac=jacobian, bounds=(np.full(len(labels), lo), np.full(len(labels), hi)))
            after = swing(fit.x) - observed_swing

    return RoughnessCalibration(
        groups=groups,
        multipliers={g: float(np.exp(x)) for g, x in zip(labels, fit.x)},
        headloss=headloss,
        rms_before_m=float(np.sqrt(np.mean(before**2))),
        rms_after_m=float(np.sqrt(np.mean(after**2))),
        sensors=complete,
        hours=hours,
        sensor_rms_after_m={s: float(np.sqrt(np.mean(after[:, j] ** 2))) for j, s in enumerate(complete)},
        share_within_half_metre=float(np.mean(np.abs(after) <= 0.5)),
        at_bounds=[g for g, x in zip(labels, fit.x) if min(x - lo, hi - x) < 1e-3],
        bounds=(float(bounds[0]), float(bounds[1])),
        demand_unscaled_hours=tuple(unscaled),
    )
