"""Reading the timestamps of SCADA and AMR exports into UTC.

Exports write time in many ways. tirtasu reads, without being told:

- ISO 8601 and its common relaxations: ``2024-03-01 13:05``, ``2024-03-01T13:05:00``,
  ``2024-03-01 13:05:00.250``, ``2024/03/01 13:05``, ``2024-03-01`` (midnight);
- with a zone (respected): ``…Z``, ``… UTC``, ``…+07:00``, ``…+0700``, ``…+07``;
- without a zone (naive): interpreted in the time zone the caller gives (default UTC).

Anything else (``01/03/2024 13:05`` is 1 March in Jakarta and 3 January in Houston) is not
guessed: give its ``strptime`` format (``time_format="%d/%m/%Y %H:%M"``).

Local times that do not exist (the hour skipped when clocks go forward) or exist twice (the
hour repeated when they go back) cannot be placed in UTC without guessing and are rejected with
a reason saying so. Exports in UTC or with an offset avoid the problem.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "TIME_COLUMN_NAMES",
    "ParsedTimes",
    "is_time_column_name",
    "parse_timestamps",
    "resolve_tz",
    "tz_name",
]

#: header names (case-insensitive) recognised as the timestamp column
TIME_COLUMN_NAMES = frozenset({"timestamp", "time", "datetime", "date_time", "date time", "date"})

REASON_UNREADABLE = (
    "unreadable timestamp (expected ISO 8601 such as 2024-03-01 13:05:00 or 2024-03-01T13:05+07:00; "
    "give the format for others, e.g. --time-format '%d/%m/%Y %H:%M')"
)
REASON_MISSING = "missing timestamp"

# a time of day followed by a zone: Z, UTC, GMT or a numeric offset
_ZONE_SUFFIX = r"\d:\d\d(?::\d\d(?:[.,]\d+)?)?\s*(?:[+-]\d\d(?::?\d\d)?)$"
_UTC_WORD = r"(?i)\s*(?:z|utc|gmt)$"
_FIXED_OFFSET = re.compile(r"^(?:utc|gmt)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


def is_time_column_name(name: str) -> bool:
    """True if a header cell names the timestamp column (``Timestamp``, ``time``, ``DateTime`` …)."""
    return name.strip().lower() in TIME_COLUMN_NAMES


def resolve_tz(tz) -> dt.tzinfo:
    """A time zone from an IANA name (``Asia/Jakarta``), ``UTC`` or a fixed offset (``UTC+7``, ``+07:00``).

    Raises
    ------
    ValueError
        If the zone is unknown.
    """
    if tz is None:
        return dt.timezone.utc
    if isinstance(tz, dt.tzinfo):
        return tz
    text = str(tz).strip()
    if text.upper() in ("UTC", "Z", "GMT", "UTC+0", "UTC+00:00", "+00:00"):
        return dt.timezone.utc
    m = _FIXED_OFFSET.match(text)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours > 14 or minutes >= 60:
            raise ValueError(f"time zone offset {text!r} is out of range (−14:00 … +14:00)")
        return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    try:
        return zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {text!r}; use an IANA name such as Asia/Jakarta or Europe/Istanbul, "
            "UTC, or a fixed offset such as UTC+7"
        ) from None


def tz_name(tz: dt.tzinfo) -> str:
    """Readable name of a zone returned by :func:`resolve_tz`."""
    if tz is dt.timezone.utc:
        return "UTC"
    return getattr(tz, "key", None) or str(tz)


@dataclass
class ParsedTimes:
    """Timestamps of a column, in UTC.

    Attributes
    ----------
    utc_us : numpy.ndarray of int64
        Microseconds since 1970-01-01 UTC; meaningless where ``ok`` is False.
    ok : numpy.ndarray of bool
    reason_codes : numpy.ndarray of int
        Why a timestamp was refused, as an index into ``reason_texts`` (0, None, where ``ok``):
        a column of ten million timestamps needs no ten million strings.
    reason_texts : numpy.ndarray of object
    n_naive : int
        How many were read without a zone (and so placed in the given zone).
    """

    utc_us: np.ndarray
    ok: np.ndarray
    reason_codes: np.ndarray
    reason_texts: np.ndarray
    n_naive: int = 0

    def reasons_at(self, rows) -> np.ndarray:
        """Why the timestamps at ``rows`` were refused (None for those accepted)."""
        return self.reason_texts[self.reason_codes[np.asarray(rows, dtype=np.int64)]]


def _encode_reasons(reasons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Object array of reasons (None: accepted) → (codes, texts) with texts[0] = None."""
    codes, uniques = pd.factorize(pd.Series(reasons, dtype=object), use_na_sentinel=True)
    texts = np.empty(len(uniques) + 1, dtype=object)
    texts[1:] = np.asarray(uniques, dtype=object)
    return (codes + 1).astype(np.int32), texts


def _localize(naive: pd.DatetimeIndex, tz: dt.tzinfo, label: str):
    """Naive wall-clock times in ``tz`` → (UTC datetime index, reasons for those refused)."""
    reasons = np.full(len(naive), None, dtype=object)
    if tz is dt.timezone.utc or isinstance(tz, dt.timezone):
        return naive.tz_localize(tz).tz_convert("UTC"), reasons
    localized = naive.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    failed = np.asarray(localized.isna()) & ~np.asarray(naive.isna())
    if failed.any():
        # which of them do not exist at all (clocks go forward), the others exist twice
        one_side = naive[failed].tz_localize(tz, ambiguous=np.ones(int(failed.sum()), bool), nonexistent="NaT")
        nonexistent = np.asarray(one_side.isna())
        idx = np.flatnonzero(failed)
        reasons[idx[nonexistent]] = (
            f"local time does not exist in {label} (clocks go forward at that hour); export in UTC or with an offset"
        )
        reasons[idx[~nonexistent]] = (
            f"ambiguous local time in {label} (the hour is repeated when clocks go back); "
            "export in UTC or with an offset"
        )
    return localized.tz_convert("UTC"), reasons


def _to_us(index: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(index.as_unit("us").asi8, dtype=np.int64)


def parse_timestamps(values, tz=None, time_format: str | None = None) -> ParsedTimes:
    """Read a column of timestamps into UTC.

    Parameters
    ----------
    values : pyarrow Array/ChunkedArray (string or timestamp), or array-like of str
    tz : str or tzinfo, optional
        Zone of the timestamps written without one (default UTC).
    time_format : str, optional
        ``strptime`` format for timestamps that are not ISO 8601 (``%z`` for an offset).

    Returns
    -------
    ParsedTimes
    """
    zone = resolve_tz(tz)
    label = tz_name(zone)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    elif not isinstance(values, pa.Array):
        values = pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=True)

    if pa.types.is_timestamp(values.type):
        return _from_arrow_timestamps(values, zone, label)
    if pa.types.is_date(values.type):
        return _from_arrow_timestamps(pc.cast(values, pa.timestamp("us")), zone, label)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())

    # parse each distinct string once: long files repeat every timestamp once per sensor
    # (trimming after encoding: the dictionary is small)
    encoded = values.dictionary_encode()
    indices = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
    uniq = pc.utf8_trim_whitespace(encoded.dictionary)
    missing_row = np.asarray(encoded.indices.is_null().to_numpy(zero_copy_only=False))
    uniq_empty = np.asarray(pc.equal(uniq, "").to_numpy(zero_copy_only=False), dtype=bool)

    u_us = np.zeros(len(uniq), dtype=np.int64)
    u_ok = np.zeros(len(uniq), dtype=bool)
    unreadable = f"timestamp does not match the format {time_format!r}" if time_format else REASON_UNREADABLE
    u_reason = np.full(len(uniq), unreadable, dtype=object)
    u_reason[uniq_empty] = REASON_MISSING
    u_naive = np.zeros(len(uniq), dtype=bool)
    if len(uniq):
        if time_format:
            texts = uniq.to_numpy(zero_copy_only=False)
            parsed = pd.to_datetime(pd.Series(texts, dtype=object), format=time_format, errors="coerce")
            if getattr(parsed.dt, "tz", None) is not None:  # %z in the format
                good = ~np.asarray(parsed.isna())
                u_us[good] = _to_us(pd.DatetimeIndex(parsed[good]).tz_convert("UTC"))
                u_ok[good] = True
            else:
                naive_ok = ~np.asarray(parsed.isna())
                utc, reasons = _localize(pd.DatetimeIndex(parsed), zone, label)
                good = naive_ok & ~np.asarray(utc.isna())
                u_us[good] = _to_us(utc[good])
                u_ok[good] = True
                bad_tz = naive_ok & ~good
                u_reason[bad_tz] = reasons[bad_tz]
                u_naive[:] = True
        else:
            normalised = pc.replace_substring_regex(uniq, _UTC_WORD, "+00:00")
            aware = np.asarray(
                pc.match_substring_regex(normalised, _ZONE_SUFFIX).to_numpy(zero_copy_only=False), dtype=bool
            )
            texts = normalised.to_numpy(zero_copy_only=False)
            if aware.any():
                parsed = pd.to_datetime(
                    pd.Series(texts[aware], dtype=object), format="ISO8601", errors="coerce", utc=True
                )
                good = ~np.asarray(parsed.isna())
                idx = np.flatnonzero(aware)[good]
                u_us[idx] = _to_us(pd.DatetimeIndex(parsed[good]))
                u_ok[idx] = True
            naive = ~aware & ~uniq_empty
            if naive.any():
                parsed = pd.to_datetime(pd.Series(texts[naive], dtype=object), format="ISO8601", errors="coerce")
                parsed_ok = ~np.asarray(parsed.isna())
                utc, reasons = _localize(pd.DatetimeIndex(parsed), zone, label)
                good = parsed_ok & ~np.asarray(utc.isna())
                idx = np.flatnonzero(naive)
                u_us[idx[good]] = _to_us(utc[good])
                u_ok[idx[good]] = True
                bad_tz = parsed_ok & ~good
                u_reason[idx[bad_tz]] = reasons[bad_tz]
            u_naive = naive
    u_reason[u_ok] = None
    u_codes, texts = _encode_reasons(np.append(u_reason, REASON_MISSING))
    take = np.where(missing_row, len(uniq), indices.astype(np.int64, copy=False))  # last: "missing"
    utc_us = np.append(u_us, 0)[take]
    ok = np.append(u_ok, False)[take]
    n_naive = int(np.append(u_naive & u_ok, False)[take].sum())
    return ParsedTimes(utc_us=utc_us, ok=ok, reason_codes=u_codes[take], reason_texts=texts, n_naive=n_naive)


def _from_arrow_timestamps(values: pa.Array, zone: dt.tzinfo, label: str) -> ParsedTimes:
    """Timestamps already typed (Parquet): aware ones are converted, naive ones placed in ``zone``."""
    n = len(values)
    present = ~np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    reasons = np.full(n, REASON_MISSING, dtype=object)
    utc_us = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    if values.type.tz is not None:
        us = pc.cast(values, pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False)
        utc_us[present] = np.asarray(us)[present]
        ok[:] = present
        n_naive = 0
    else:
        us = pc.cast(values, pa.timestamp("us")).cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        naive = pd.DatetimeIndex(np.asarray(us, dtype=np.int64).view("M8[us]"))
        naive = naive.where(present)
        utc, tz_reasons = _localize(pd.DatetimeIndex(naive), zone, label)
        good = present & ~np.asarray(utc.isna())
        utc_us[good] = _to_us(utc[good])
        ok[:] = good
        bad_tz = present & ~good
        reasons[bad_tz] = tz_reasons[bad_tz]
        n_naive = int(present.sum())
    reasons[ok] = None
    codes, texts = _encode_reasons(reasons)
    return ParsedTimes(utc_us=utc_us, ok=ok, reason_codes=codes, reason_texts=texts, n_naive=n_naive)
