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


def bucket_interval(resample: str) -> str:
    """A SQL interval literal for a pandas offset alias ("15min", "1h", "1D", "1W", "MS").

    Only the offset's fixed length or its month count reaches SQL, so no user text is
    interpolated.
    """
    try:
        offset = to_offset(resample)
    except ValueError:
        raise ValueError(f"unknown resampling interval {resample!r}; use e.g. 15min, 1h, 1D, 1W, MS") from None
    if isinstance(offset, (pd.offsets.MonthBegin, pd.offsets.MonthEnd)):
        return f"INTERVAL '{int(offset.n)} months'"
    try:
        micros = int(pd.Timedelta(offset).total_seconds() * 1e6)
    except ValueError:
        raise ValueError(f"resampling interval {resample!r} has no fixed length; use e.g. 1h, 1D, 1W or MS") from None
    if micros <= 0:
        raise ValueError(f"resampling interval {resample!r} must be positive")
    return f"INTERVAL '{micros} microseconds'"
