"""What sensors do to the truth: noise, resolution and faults."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tirtasu.simulator.scenario import SensorFault

__all__ = ["measure", "apply_faults", "quantise"]


def measure(truth: np.ndarray, kind: str, noise_sd: dict, rng: np.random.Generator) -> np.ndarray:
    """Sensor readings of ``truth`` (time × sensor) with Gaussian noise.

    Demand (AMR) noise is relative (a meter's error scales with flow); the others are
    absolute, in the internal unit. Customer meters cannot run backwards: demand ≥ 0.
    """
    sd = float(noise_sd.get(kind, 0.0))
    values = truth.copy()
    if sd > 0:
        noise = rng.standard_normal(values.shape) * sd
        values = values * (1 + noise) if kind == "demand" else values + noise
    if kind == "demand":
        np.maximum(values, 0.0, out=values)
    return values


def quantise(values: np.ndarray, kind: str, resolution: dict) -> np.ndarray:
    """Round readings to the sensor's resolution (NaN stays NaN)."""
    res = float(resolution.get(kind, 0.0))
    if res <= 0:
        return values
    decimals = max(0, int(np.ceil(-np.log10(res))) + 1)
    return np.round(np.round(values / res) * res, decimals)


def apply_faults(
    values: np.ndarray,
    times: pd.DatetimeIndex,
    columns: list[str],
    faults: list[SensorFault],
    rng: np.random.Generator,
) -> np.ndarray:
    """Apply ``faults`` to the sensors among ``columns`` (sensor ids); NaN marks missing data."""
    out = values.copy()
    col = {c: i for i, c in enumerate(columns)}
    tz_times = times.tz_convert("UTC").tz_localize(None) if times.tz is not None else times
    for fault in faults:
        if fault.sensor_id not in col:
            continue
        j = col[fault.sensor_id]
        t0 = pd.Timestamp(fault.start)
        t1 = pd.Timestamp(fault.end) if fault.end else tz_times[-1] + pd.Timedelta(seconds=1)
        mask = (tz_times >= t0) & (tz_times < t1)
        if not mask.any():
            continue
        idx = np.flatnonzero(mask)
        if fault.kind == "drift":
            days = (tz_times[idx] - t0).total_seconds().to_numpy() / 86400.0
            out[idx, j] += fault.magnitude * days
        elif fault.kind == "offset":
            out[idx, j] += fault.magnitude
        elif fault.kind == "stuck":
            out[idx, j] = out[idx[0], j]
        elif fault.kind == "gap":
            out[idx, j] = np.nan
        elif fault.kind == "spikes":
            step_days = (tz_times[1] - tz_times[0]).total_seconds() / 86400.0 if len(tz_times) > 1 else 1.0
            hits = rng.random(len(idx)) < fault.rate_per_day * step_days
            signs = rng.choice([-1.0, 1.0], size=int(hits.sum()))
            out[idx[hits], j] += signs * fault.magnitude
    return out
