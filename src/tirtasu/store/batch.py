"""Preparing a batch of readings for storage; shared by the backends.

A batch leaves here as three NumPy arrays — integer sensor key, time in microseconds since
the Unix epoch (UTC), value — grouped by sensor, in time order, one reading per (sensor, time).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tirtasu.store.timeutil import to_utc_naive


def sensor_codes(sensor_ids) -> tuple[np.ndarray, list[str]]:
    """Category codes of a batch's sensor ids and the ids they stand for.

    Parameters
    ----------
    sensor_ids : pandas.Series
        Sensor ids, categorical or not (importers hand in categoricals: no per-row strings).

    Returns
    -------
    codes : numpy.ndarray
        Per reading, an index into ``categories`` (-1 for a missing id).
    categories : list of str
    """
    ids = pd.Series(sensor_ids)
    if not isinstance(ids.dtype, pd.CategoricalDtype):
        ids = ids.astype("category")
    return ids.cat.codes.to_numpy(), [str(c) for c in ids.cat.categories]


def lookup_keys(codes: np.ndarray, categories: list[str], known: dict) -> np.ndarray:
    """Integer sensor key per reading; KeyError naming the unregistered sensors, if any.

    Parameters
    ----------
    codes, categories
        From :func:`sensor_codes`.
    known : dict
        sensor_id → sensor_key for the registered sensors among ``categories``.
    """
    used = np.unique(codes)
    unknown = [categories[c] for c in used if c >= 0 and categories[c] not in known]
    if unknown or (len(used) and used[0] < 0):
        raise KeyError("readings for unregistered sensor(s): " + ", ".join(unknown[:20] or ["(missing id)"]))
    lookup = np.array([known.get(c, -1) for c in categories], dtype=np.int32)
    return lookup[codes]


def times_and_values(readings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Times as int64 microseconds since the epoch (UTC) and values as finite floats.

    Raises
    ------
    ValueError
        If a value is NaN or infinite (the caller validates; the store refuses the batch).
    """
    times = to_utc_naive(readings["time"]).to_numpy().astype("datetime64[us]").view(np.int64)
    values = np.asarray(readings["value"], dtype=float)
    if not np.isfinite(values).all():
        raise ValueError("readings must be finite numbers; validate before storing")
    return times, values


def sorted_unique(keys: np.ndarray, times: np.ndarray, values: np.ndarray):
    """Readings grouped by sensor and ordered by time, one per (sensor, time).

    Exports usually arrive grouped by sensor (in any order of sensors) and in time order,
    which an O(n) check confirms; otherwise they are sorted. Repeats with the same value
    collapse; repeats with different values are refused.
    """
    new_sensor = np.diff(keys) != 0
    starts = keys[np.concatenate([[0], np.flatnonzero(new_sensor) + 1])]
    grouped = len(np.unique(starts)) == len(starts)  # no sensor in two runs
    if grouped and np.all(np.diff(times)[~new_sensor] > 0):
        return keys, times, values
    order = np.lexsort((times, keys))
    keys, times, values = keys[order], times[order], values[order]
    repeat = (np.diff(keys) == 0) & (np.diff(times) == 0)
    if repeat.any():
        differ = values[1:][repeat] != values[:-1][repeat]
        if differ.any():
            raise ValueError(f"{int(differ.sum())} (sensor, time) pairs appear with different values in one batch")
        keep = np.concatenate([[True], ~repeat])
        keys, times, values = keys[keep], times[keep], values[keep]
    return keys, times, values


def where_clause(conditions, placeholder: str) -> tuple[str, list]:
    """A WHERE clause and its parameters from ``(sql, value)`` pairs, skipping None values.

    Each ``sql`` holds ``{p}`` where its value goes; ``placeholder`` is the driver's (``?`` for
    DuckDB, ``%s`` for psycopg). Values always travel as parameters, never in the SQL text.
    """
    parts, params = [], []
    for sql, value in conditions:
        if value is not None:
            parts.append(sql.format(p=placeholder))
            params.append(value)
    return ("WHERE " + " AND ".join(parts)) if parts else "", params


def day(value):
    """A date from a datetime-like, or None."""
    return None if value is None else pd.Timestamp(value).date()
