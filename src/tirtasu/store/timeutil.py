"""Time handling shared by the store backends: everything in UTC."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset


def to_utc_naive(values):
    """UTC wall-clock time without a zone, as the databases store it.

    Aware inputs are converted to UTC; naive inputs are taken to be UTC already.
    Works on scalars, Series and arrays.
    """
    if isinstance(values, (pd.Series, pd.Index, np.ndarray, list)):
        ts = pd.to_datetime(pd.Series(values) if not isinstance(values, pd.Series) else values)
        if ts.dt.tz is not None:
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        return ts.astype("datetime64[us]")
    ts = pd.Timestamp(values)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_pydatetime()


def bucket_spec(resample: str) -> tuple[str, int]:
    """The length of a resampling bucket: ``("months", n)`` or ``("micros", n)``.

    Parameters
    ----------
    resample : str
        A pandas offset alias ("15min", "1h", "1D", "1W", "MS").

    Returns
    -------
    tuple of (str, int)
        Calendar months for month offsets, else the fixed length in microseconds. Backends
        build their SQL from these numbers only, so no user text reaches SQL.
    """
    try:
        offset = to_offset(resample)
    except ValueError:
        raise ValueError(f"unknown resampling interval {resample!r}; use e.g. 15min, 1h, 1D, 1W, MS") from None
    if isinstance(offset, (pd.offsets.MonthBegin, pd.offsets.MonthEnd)):
        if offset.n <= 0:
            raise ValueError(f"resampling interval {resample!r} must be positive")
        return "months", int(offset.n)
    if isinstance(offset, pd.offsets.Week):
        # pandas' "W" is anchored (weeks ending on Sunday); as buckets labelled by their start
        # those are weeks from Monday, which the backends' 2000-01-03 (a Monday) origin gives.
        if offset.weekday not in (None, 6) or offset.n <= 0:
            raise ValueError(f"resampling interval {resample!r}: weeks run Monday to Sunday here; use e.g. 1W")
        return "micros", int(offset.n) * 7 * 86_400_000_000
    try:
        micros = int(pd.Timedelta(offset).total_seconds() * 1e6)
    except ValueError:
        raise ValueError(f"resampling interval {resample!r} has no fixed length; use e.g. 1h, 1D, 1W or MS") from None
    if micros <= 0:
        raise ValueError(f"resampling interval {resample!r} must be positive")
    return "micros", micros


def bucket_interval(resample: str) -> str:
    """A SQL interval literal for a pandas offset alias ("15min", "1h", "1D", "1W", "MS").

    Only the offset's fixed length or its month count reaches SQL, so no user text is
    interpolated.
    """
    unit, n = bucket_spec(resample)
    return f"INTERVAL '{n} months'" if unit == "months" else f"INTERVAL '{n} microseconds'"
