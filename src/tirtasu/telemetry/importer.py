"""Import of SCADA and AMR exports into the store: validated, atomic, idempotent.

Two layouts are read, from CSV (plain or ``.gz``) or Parquet:

**wide** – the SCADA / BattLeDIM layout: a ``timestamp`` column, then one column per sensor,
named by the sensor id or by the node (link, for flows) it sits on; one file per kind of
measurement, the kind read from the file name (``pressures.csv``, ``2018_SCADA_Flows.csv``) or
given. A column header may carry its unit: ``n54 [bar]`` or ``n54 (bar)``.

**long** – one reading per row: ``sensor_id, timestamp, value[, unit]`` (``time`` is accepted
for ``timestamp``).

Units, in order of precedence: the unit of the column header (wide) or of the row (long); the
unit given for the whole file; the unit the sensor registry gives for the sensor; the internal
unit (m, m³/h, L/h). Values are converted to internal units as they are read.

What is refused, and how:

- *the whole file* (nothing stored, :class:`TelemetryImportError`): unreadable file, no
  timestamp column, columns or sensor ids that match no registered sensor, an unknown unit in a
  header or for the file, no timestamp readable at all;
- *a row* (reported with its line): unreadable or missing timestamp, local time that does not
  exist or is ambiguous (DST), timestamp in the future beyond a tolerance, wrong number of
  fields; in long files also a missing sensor id or an unknown unit;
- *a reading* (reported with its line and column): text that is not a number, NaN, ±inf, a
  physically implausible value (:data:`PLAUSIBLE_RANGE`), a timestamp repeated in the file with
  a different value, a value differing from the one already stored for that sensor and time.

Empty cells are gaps in the record: counted, not refused. Rows repeated with the same values are
kept once, rows out of time order are stored sorted; both are reported as warnings.

With ``strict=True`` any refusal aborts the whole file. One file is one store transaction, and
re-importing a file stores nothing new.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import math
import re
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tirtasu.telemetry.readers import (
    FileFormatError,
    Table,
    head_of,
    numeric_values,
    read_bytes,
    read_csv,
    read_header,
    read_parquet,
    sniff_dialect,
)
from tirtasu.telemetry.sensors import LINK_KINDS, WIDE_FILE_KINDS, sensor_id_for
from tirtasu.telemetry.timestamps import is_time_column_name, parse_timestamps, resolve_tz
from tirtasu.units import INTERNAL_UNIT, KINDS, UnknownUnitError, conversion_factor

__all__ = [
    "DEFAULT_FUTURE_TOLERANCE",
    "PLAUSIBLE_RANGE",
    "REJECTION_COLUMNS",
    "ImportRejectedError",
    "ImportReport",
    "NetworkIds",
    "TelemetryImportError",
    "import_file",
    "infer_kind",
    "split_unit",
]

#: Values outside these bounds (internal units) cannot be real readings and are refused.
#: Deliberately wide: they catch sensor faults and unit mix-ups, not unusual operation.
#:
#: - pressure [m]: below −10.4 m is below a perfect vacuum (−10.33 m of water); above 1000 m
#:   (98 bar) exceeds the rating of any distribution or transmission pipe;
#: - flow [m³/h]: a pipe flow is signed (the sign is its direction); beyond ±10⁶ m³/h
#:   (278 m³/s) is more than the largest water mains carry;
#: - demand [L/h]: a consumption meter cannot register a negative volume; 10⁹ L/h is the
#:   same upper limit as for flows;
#: - level, head, quality: none (levels may be depths or elevations, quality units vary).
PLAUSIBLE_RANGE: dict[str, tuple[float, float]] = {
    "pressure": (-10.4, 1000.0),
    "flow": (-1e6, 1e6),
    "demand": (0.0, 1e9),
}

#: timestamps later than now plus this are refused
DEFAULT_FUTURE_TOLERANCE = pd.Timedelta(hours=1)

#: columns of :attr:`ImportReport.rejections`
REJECTION_COLUMNS = ("line", "column", "value", "reason")

#: header names of the long layout (case-insensitive)
_LONG_SENSOR, _LONG_VALUE, _LONG_UNIT = "sensor_id", "value", "unit"

_PARQUET_SUFFIXES = (".parquet", ".pq")
_UNIT_IN_HEADER = re.compile(r"^(?P<name>.*?)\s*(?:\[(?P<u1>[^\[\]]*)\]|\((?P<u2>[^()]*)\))\s*$")
_MAX_LISTED = 10  # lines or names quoted in one message


class TelemetryImportError(ValueError):
    """A file that cannot be imported at all; nothing of it was stored."""

    def __init__(self, message: str, path=None):
        super().__init__(message)
        self.path = None if path is None else str(path)


class ImportRejectedError(TelemetryImportError):
    """A strict import refused because some readings were rejected; nothing was stored.

    Attributes
    ----------
    report : ImportReport
        What the import would have done, with every rejection.
    """

    def __init__(self, report: "ImportReport"):
        super().__init__(
            f"{report.file}: {report.rejected} reading(s) rejected in strict mode; nothing stored "
            f"(first: line {report.rejections['line'].iloc[0]}, {report.rejections['reason'].iloc[0]})"
            if len(report.rejections)
            else f"{report.file}: rejected in strict mode; nothing stored",
            report.file,
        )
        self.report = report


def _empty_rejections() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "line": pd.Series(dtype="int64"),
            "column": pd.Series(dtype=object),
            "value": pd.Series(dtype=object),
            "reason": pd.Series(dtype=object),
        }
    )


@dataclass
class ImportReport:
    """What the import of one file did.

    Attributes
    ----------
    file : str
    kind : str or None
        Kind of the readings (None for a long file mixing kinds).
    layout : {"wide", "long"}
    checksum : str
        SHA-256 of the file.
    rows_read : int
        Data rows in the file (header excluded).
    sensors : int
        Sensors the file has readings for.
    added : int
        Readings stored by this import.
    unchanged : int
        Readings that were already stored with the same value.
    rejected : int
        Readings refused (a refused row counts its non-empty cells).
    gaps : int
        Empty cells: no reading, nothing refused.
    collapsed : int
        Readings repeated in the file with the same value and kept once.
    registered : list of str
        Sensors registered by this import (``register=True``).
    first_time, last_time : pandas.Timestamp or None
        Range of the accepted readings [UTC].
    warnings : list of str
    rejections : pandas.DataFrame
        One row per refused reading or row: line (1-based; the header is line 1; for Parquet
        the row number), column (header as written), value (as written) and reason.
    stored : bool
        False when nothing was written (dry run, or strict import refused).
    seconds : float
        Wall-clock time of the import [s].
    """

    file: str
    kind: str | None = None
    layout: str = "wide"
    checksum: str = ""
    rows_read: int = 0
    sensors: int = 0
    added: int = 0
    unchanged: int = 0
    rejected: int = 0
    gaps: int = 0
    collapsed: int = 0
    registered: list = field(default_factory=list)
    first_time: pd.Timestamp | None = None
    last_time: pd.Timestamp | None = None
    warnings: list = field(default_factory=list)
    rejections: pd.DataFrame = field(default_factory=_empty_rejections)
    stored: bool = False
    seconds: float = 0.0

    @property
    def accepted(self) -> int:
        """Readings that passed validation and are now in the store (added or unchanged)."""
        return self.added + self.unchanged

    def to_dict(self, max_rejections: int = 1000) -> dict:
        """JSON-friendly summary (the first ``max_rejections`` rejections) for the import log."""
        rej = self.rejections.head(max_rejections)
        return {
            "file": self.file,
            "kind": self.kind,
            "layout": self.layout,
            "checksum": self.checksum,
            "rows_read": self.rows_read,
            "sensors": self.sensors,
            "added": self.added,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "gaps": self.gaps,
            "collapsed": self.collapsed,
            "registered": list(self.registered),
            "first_time": None if self.first_time is None else self.first_time.isoformat(),
            "last_time": None if self.last_time is None else self.last_time.isoformat(),
            "warnings": list(self.warnings),
            "rejections": [
                {"line": int(r.line), "column": r.column, "value": r.value, "reason": r.reason}
                for r in rej.itertuples(index=False)
            ],
            "rejections_total": len(self.rejections),
            "stored": self.stored,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        """One line for logs."""
        return (
            f"{self.file}: {self.rows_read} rows, {self.sensors} sensors; {self.added} readings added, "
            f"{self.unchanged} unchanged, {self.rejected} rejected, {self.gaps} gaps"
            + (f"; {len(self.warnings)} warning(s)" if self.warnings else "")
        )


@dataclass(frozen=True)
class NetworkIds:
    """Node and link ids of a network model: the places sensors can be registered on."""

    nodes: frozenset
    links: frozenset

    @classmethod
    def of(cls, network) -> "NetworkIds":
        """From a WNTR model (anything with ``node_name_list`` and ``link_name_list``), a mapping
        ``{"nodes": [...], "links": [...]}``, or a NetworkIds."""
        if isinstance(network, NetworkIds):
            return network
        if hasattr(network, "node_name_list") and hasattr(network, "link_name_list"):
            return cls(frozenset(map(str, network.node_name_list)), frozenset(map(str, network.link_name_list)))
        if isinstance(network, dict):
            return cls(frozenset(map(str, network.get("nodes", ()))), frozenset(map(str, network.get("links", ()))))
        raise TypeError("network must be a WNTR WaterNetworkModel, a NetworkIds, or {'nodes': [...], 'links': [...]}")


# -- helpers ---------------------------------------------------------------------------------------
def infer_kind(path) -> str | None:
    """Kind of the readings of a wide file from its name, or None when the name does not say.

    ``pressures.csv`` → pressure; ``2018_SCADA_Flows.csv`` → flow; ``levels-2024-03.csv.gz`` →
    level. The name must mention exactly one of :data:`~tirtasu.telemetry.sensors.WIDE_FILE_KINDS`
    (or a kind itself, singular).
    """
    name = Path(str(path)).name.lower()
    for suffix in (".gz", ".csv", ".txt", ".tsv", ".parquet", ".pq"):
        name = name.removesuffix(suffix)
    words = set(re.split(r"[^a-z]+", name))
    found = {kind for word, kind in WIDE_FILE_KINDS.items() if word in words}
    found |= {kind for kind in KINDS if kind in words}
    return found.pop() if len(found) == 1 else None


def split_unit(header: str) -> tuple[str, str | None]:
    """``"n54 [bar]"`` or ``"n54 (bar)"`` → ``("n54", "bar")``; ``"n54"`` → ``("n54", None)``."""
    m = _UNIT_IN_HEADER.match(header)
    if not m or not m.group("name"):
        return header.strip(), None
    unit = m.group("u1") if m.group("u1") is not None else m.group("u2")
    return m.group("name").strip(), unit.strip()


def _listing(items, limit: int = _MAX_LISTED) -> str:
    items = [str(i) for i in items]
    more = f" … (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _sha256_of(path: Path, data: bytes | None) -> str:
    if data is not None:
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _format_values(values: np.ndarray) -> np.ndarray:
    """Numbers as they would be written back: 12.5, nan, inf."""
    return np.asarray(pd.Series(values, dtype="float64").astype(str).to_numpy(), dtype=object)


def _text_of(column, rows: np.ndarray) -> np.ndarray:
    """Cells of a column at the given rows, as text (empty string for nulls)."""
    if len(rows) == 0:
        return np.empty(0, dtype=object)
    taken = column.take(pa.array(rows, type=pa.int64()))
    if pa.types.is_floating(taken.type):
        return _format_values(taken.to_numpy(zero_copy_only=False))
    return np.asarray(
        [("" if v is None else str(v)) for v in taken.to_pylist()],
        dtype=object,
    )


class _Rejections:
    """Collects refused rows and cells; assembled once into a DataFrame."""

    def __init__(self):
        self.parts: list[pd.DataFrame] = []
        self.readings = 0

    def add(self, lines, column, values, reasons, position, readings=None) -> None:
        lines = np.asarray(lines, dtype=np.int64)
        if len(lines) == 0:
            return
        n = len(lines)
        self.parts.append(
            pd.DataFrame(
                {
                    "line": lines,
                    "column": np.asarray(column, dtype=object)
                    if not isinstance(column, str)
                    else np.full(n, column, dtype=object),
                    "value": np.asarray(values, dtype=object),
                    "reason": np.asarray(reasons, dtype=object)
                    if not isinstance(reasons, str)
                    else np.full(n, reasons, dtype=object),
                    "_pos": np.asarray(position, dtype=np.int64) if not np.isscalar(position) else np.full(n, position),
                }
            )
        )
        self.readings += n if readings is None else int(readings)

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return _empty_rejections()
        df = pd.concat(self.parts, ignore_index=True)
        df = df.sort_values(["line", "_pos"], kind="stable").drop(columns="_pos").reset_index(drop=True)
        return df.astype({"line": "int64", "column": object, "value": object, "reason": object})


@dataclass
class _Parsed:
    """A file read and validated, ready to store."""

    readings: pd.DataFrame
    rejections: _Rejections
    locate: Callable  # conflicts (sensor_id, time, value, stored_value) → line, column, value, _pos
    rows_read: int
    sensors: list
    kinds: dict
    layout: str
    kind: str | None
    gaps: int = 0
    collapsed: int = 0
    warnings: list = field(default_factory=list)


class _Resolver:
    """Finds the registered sensor a column (wide) or a sensor id (long) stands for."""

    def __init__(
        self, registry: pd.DataFrame, kind: str | None, network: NetworkIds | None, register: bool, node_dma: dict
    ):
        self.kind = kind
        self.network = network
        self.register = register
        self.node_dma = node_dma
        self.by_id = {str(r.sensor_id): r for r in registry.itertuples(index=False)}
        self.by_location: dict = {}
        for r in registry.itertuples(index=False):
            where = r.link_id if r.kind in LINK_KINDS else r.node_id
            if where is not None and not (isinstance(where, float) and math.isnan(where)):
                self.by_location.setdefault((r.kind, str(where)), []).append(str(r.sensor_id))
        self.new: dict[str, dict] = {}

    def resolve(self, name: str) -> tuple[str | None, str | None]:
        """(sensor_id, None) when found; (None, why not) otherwise."""
        kind = self.kind
        row = self.by_id.get(name)
        note = None
        if row is not None:
            if kind is None or row.kind == kind:
                return name, None
            note = f"{name} is a {row.kind} sensor"
        if kind is None:
            return None, note
        own_id = sensor_id_for(kind, name)
        row = self.by_id.get(own_id)
        if row is not None and row.kind == kind:
            return own_id, None
        matches = self.by_location.get((kind, name), [])
        if len(matches) == 1:
            return matches[0], None
        if len(matches) > 1:
            where = "link" if kind in LINK_KINDS else "node"
            return None, f"{kind} sensors {', '.join(matches)} all sit on {where} {name}; name the column by sensor id"
        if own_id in self.new:
            return own_id, None
        if self.register and self.network is not None:
            on_link = kind in LINK_KINDS
            places = self.network.links if on_link else self.network.nodes
            if name in places:
                if row is not None:
                    return None, f"{own_id} is already registered as a {row.kind} sensor"
                self.new[own_id] = {
                    "sensor_id": own_id,
                    "kind": kind,
                    "unit": None,
                    "node_id": None if on_link else name,
                    "link_id": name if on_link else None,
                    "dma": None if on_link else self.node_dma.get(name),
                    "description": "registered at import",
                }
                return own_id, None
            note = note or f"not a {'link' if on_link else 'node'} of the model"
        return None, note

    def kind_of(self, sensor_id: str) -> str:
        row = self.by_id.get(sensor_id)
        return row.kind if row is not None else self.new[sensor_id]["kind"]

    def unit_of(self, sensor_id: str) -> str | None:
        row = self.by_id.get(sensor_id)
        if row is None:
            return None
        unit = row.unit
        return None if unit is None or (isinstance(unit, float) and math.isnan(unit)) or unit == "-" else str(unit)


def _unknown_message(path, kind, unknown: list[tuple[str, str | None]], resolver: _Resolver, what: str) -> str:
    described = [f"{name} ({note})" if note else name for name, note in unknown]
    kind_text = f"{kind} " if kind else ""
    message = f"{path}: {len(unknown)} {what} match no registered {kind_text}sensor: {_listing(described)}. Nothing was stored. "
    if resolver.register and resolver.network is not None:
        message += (
            "They are neither registered sensors nor model " + ("links" if kind in LINK_KINDS else "nodes") + "; "
        )
        message += "check the names, or register them first (tirtasu telemetry register REGISTRY.csv)."
    else:
        message += "Register them first (tirtasu telemetry register REGISTRY.csv)" + (
            ", or pass the network model (--model) to register sensors on model nodes and links." if kind else "."
        )
    return message


def _factor(unit: str | None, kind: str, where: str) -> float:
    try:
        return conversion_factor(unit, kind)
    except UnknownUnitError as exc:
        raise TelemetryImportError(f"{where}: {exc}. Nothing was stored.") from None


def _bounds(kind: str, plausible: dict) -> tuple[float, float]:
    lo, hi = plausible.get(kind, (-math.inf, math.inf))
    return float(lo), float(hi)


def _implausible_reason(kind: str, lo: float, hi: float) -> str:
    unit = INTERNAL_UNIT.get(kind) or ""
    return f"implausible {kind}: outside {lo:g} … {hi:g} {unit} (after conversion)".rstrip()


def _readings_frame(codes: np.ndarray, sensor_ids: list, times_us: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    """The batch handed to the store: sensor_id (categorical), time (UTC), value [internal unit].

    Built without copying: a year of 5-minute readings from a hundred sensors is ten million rows.
    """
    time = pd.Series(np.asarray(times_us, dtype=np.int64).view("M8[us]"), copy=False).dt.tz_localize("UTC")
    return pd.DataFrame(
        {
            "sensor_id": pd.Categorical.from_codes(
                np.asarray(codes, dtype=np.int32), categories=pd.Index(sensor_ids, dtype=object)
            ),
            "time": time.array,
            "value": np.asarray(values, dtype=np.float64),
        },
        copy=False,
    )


def _future_reason(limit_us: int) -> str:
    limit = pd.Timestamp(limit_us, unit="us", tz="UTC")
    return f"timestamp in the future (later than {limit:%Y-%m-%d %H:%M} UTC, the clock plus the tolerance)"


def _out_of_order_warning(lines: np.ndarray) -> str:
    return (
        f"{len(lines)} row(s) out of time order, earlier than a row above them (lines {_listing(lines)}); "
        "accepted and stored in time order"
    )


# -- the wide layout -------------------------------------------------------------------------------
def _time_column(table: Table) -> int:
    """Position of the timestamp column of a wide file, or a clear error."""
    names = [split_unit(h)[0] for h in table.header]
    found = [i for i, name in enumerate(names) if is_time_column_name(name)]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise TelemetryImportError(
            f"{table.path}: several timestamp columns ({', '.join(table.header[i] for i in found)}); keep one",
            table.path,
        )
    if table.header and table.header[0] == "":  # a pandas index written without a name
        return 0
    typed = [i for i, col in enumerate(table.columns) if pa.types.is_timestamp(col.type)]
    if len(typed) == 1:
        return typed[0]
    raise TelemetryImportError(
        f"{table.path}: no timestamp column; the first column must be named 'timestamp' "
        f"(or time, datetime, date); it is {table.header[0]!r}. Nothing was stored.",
        table.path,
    )


def _tz_from_header(table: Table, time_col: int, tz):
    """The zone of naive timestamps: ``tz``, or the one in a header such as ``timestamp (UTC+7)``."""
    _, header_zone = split_unit(table.header[time_col])
    if header_zone:
        try:
            zone = resolve_tz(header_zone)
        except ValueError as exc:
            raise TelemetryImportError(
                f"{table.path}: timestamp column {table.header[time_col]!r}: {exc}", table.path
            ) from None
        if tz is not None and resolve_tz(tz) != zone:
            raise TelemetryImportError(
                f"{table.path}: the timestamp column says {header_zone} but the time zone {tz} was given; "
                "drop one of them. Nothing was stored.",
                table.path,
            )
        return zone
    return resolve_tz(tz)


class _Column(NamedTuple):
    """A value column of a wide file and the sensor it feeds."""

    pos: int  # position in the file
    sensor: str
    kind: str
    factor: float  # to the internal unit
    unit_stated: bool  # the file says the unit (header or unit for the file)


def _resolve_wide_columns(table: Table, time_col: int, kind, unit, resolver: _Resolver) -> list[_Column]:
    """Sensor, kind and conversion factor of every value column; fatal errors before any parsing."""
    columns, unknown, seen = [], [], {}
    for pos, header in enumerate(table.header):
        if pos == time_col:
            continue
        sensor, note = resolver.resolve(header) if header else (None, "empty header")
        header_unit = None
        if sensor is None and header:
            name, header_unit = split_unit(header)
            if header_unit is not None:
                sensor, note = resolver.resolve(name)
        if sensor is None:
            unknown.append((header or f"column {pos + 1}", note))
            continue
        if sensor in seen:
            raise TelemetryImportError(
                f"{table.path}: columns {table.header[seen[sensor]]!r} and {header!r} are both sensor {sensor}; "
                "keep one. Nothing was stored.",
                table.path,
            )
        seen[sensor] = pos
        columns.append((pos, sensor, header_unit))
    if unknown:
        raise TelemetryImportError(_unknown_message(table.path, kind, unknown, resolver, "column(s)"), table.path)
    resolved = []
    for pos, sensor, header_unit in columns:
        sensor_kind = resolver.kind_of(sensor)
        where = f"{table.path}: column {table.header[pos]!r}"
        if header_unit is not None and unit is not None:
            if _factor(header_unit, sensor_kind, where) != _factor(unit, sensor_kind, where):
                raise TelemetryImportError(
                    f"{where} is in {header_unit} but the unit {unit} was given for the whole file; "
                    "drop one of them. Nothing was stored.",
                    table.path,
                )
        effective = header_unit if header_unit is not None else unit
        if effective is None:
            effective = resolver.unit_of(sensor)
        factor = _factor(effective, sensor_kind, where)
        if sensor in resolver.new and effective is not None:
            resolver.new[sensor]["unit"] = effective
        resolved.append(_Column(pos, sensor, sensor_kind, factor, header_unit is not None or unit is not None))
    return resolved


def _parse_wide(table: Table, kind, unit, tz, time_format, limit_us, plausible, resolver: _Resolver) -> _Parsed:
    path = table.path
    time_col = _time_column(table)
    zone = _tz_from_header(table, time_col, tz)
    resolved = _resolve_wide_columns(table, time_col, kind, unit, resolver)
    n, m = table.n_rows, len(resolved)
    if m == 0:
        raise TelemetryImportError(f"{path}: no sensor columns besides {table.header[time_col]!r}", path)
    rej = _Rejections()
    warnings: list[str] = []
    time_header = table.header[time_col]

    # timestamps: one per row
    times = parse_timestamps(table.columns[time_col], zone, time_format)
    _check_some_time_readable(times, table, time_col, n)
    future = times.ok & (times.utc_us > limit_us)
    row_ok = times.ok & ~future

    # values: a (rows × sensors) matrix, column-major so each sensor is contiguous
    raw = np.empty((n, m), dtype=np.float64, order="F")
    empty = np.empty((n, m), dtype=bool, order="F")
    text_cols = {}
    for j, col in enumerate(resolved):
        values, is_empty, not_number = numeric_values(table.columns[col.pos], table.decimal)
        raw[:, j] = values
        empty[:, j] = is_empty
        if not_number.any():
            text_cols[j] = not_number

    # rows refused as a whole (their non-empty cells count as rejected readings)
    bad_rows = np.flatnonzero(~row_ok)
    if len(bad_rows):
        reasons = times.reasons_at(bad_rows)
        reasons[future[bad_rows]] = _future_reason(limit_us)
        cells = (~empty[bad_rows]).sum(axis=1)
        rej.add(
            table.lines(bad_rows),
            time_header,
            _text_of(table.columns[time_col], bad_rows),
            reasons,
            time_col,
            readings=cells.sum(),
        )
    _reject_ragged(table, rej)

    # cells refused
    finite = np.isfinite(raw)
    valid = np.logical_and(row_ok[:, None], finite, order="F")
    for j, (pos, _sensor, sensor_kind, factor, _stated) in enumerate(resolved):
        column = table.columns[pos]
        header = table.header[pos]
        col_valid = valid[:, j]
        lo, hi = _bounds(sensor_kind, plausible)
        if math.isfinite(lo) or math.isfinite(hi):
            # compare in the file's unit: the matrix is never converted in place
            implausible = col_valid & ((raw[:, j] < lo / factor) | (raw[:, j] > hi / factor))
            if implausible.any():
                rows = np.flatnonzero(implausible)
                rej.add(
                    table.lines(rows), header, _text_of(column, rows), _implausible_reason(sensor_kind, lo, hi), pos
                )
                valid[rows, j] = False
        odd = row_ok & ~empty[:, j] & ~finite[:, j]
        if odd.any():
            rows = np.flatnonzero(odd)
            not_number = text_cols.get(j)
            reasons = np.where(
                np.isnan(raw[rows, j]),
                "NaN is not a reading (leave the cell empty for a gap)",
                "infinite value",
            ).astype(object)
            if not_number is not None:
                reasons[not_number[rows]] = "not a number"
            rej.add(table.lines(rows), header, _text_of(column, rows), reasons, pos)
    gaps = int((empty & row_ok[:, None]).sum())

    # the same timestamp on several rows
    ok_rows = np.flatnonzero(row_ok)
    ok_times = times.utc_us[ok_rows]
    collapsed = 0
    dup = pd.Series(ok_times).duplicated(keep=False).to_numpy()
    if dup.any():
        collapsed, dropped_lines = _wide_duplicates(table, resolved, ok_rows[dup], times.utc_us, raw, valid, rej)
        if collapsed:
            warnings.append(
                f"{collapsed} reading(s) repeated on rows with the same timestamp and value were kept once "
                f"(lines {_listing(dropped_lines)})"
            )

    # rows out of time order: accepted, stored sorted
    order = None
    if len(ok_times) > 1:
        late = ok_times[1:] < np.maximum.accumulate(ok_times)[:-1]
        if late.any():
            warnings.append(_out_of_order_warning(table.lines(ok_rows[1:][late])))
            order = np.argsort(times.utc_us, kind="stable")

    # the batch, sensor by sensor, each in time order, written straight into its final arrays
    row_times = times.utc_us if order is None else times.utc_us[order]
    counts = valid.sum(axis=0)
    if order is None and counts.sum() == n * m:
        # every cell valid (a clean export): the column-major matrix already is the batch
        factors = np.array([col.factor for col in resolved])
        out_values = (raw if np.all(factors == 1.0) else raw * factors[None, :]).ravel(order="F")
        out_times = np.tile(row_times, m)
    else:
        ends = np.cumsum(counts)
        out_times = np.empty(int(ends[-1]) if m else 0, dtype=np.int64)
        out_values = np.empty_like(out_times, dtype=np.float64)
        for j, col in enumerate(resolved):
            keep = valid[:, j] if order is None else valid[order, j]
            col_values = raw[:, j] if order is None else raw[order, j]
            start, end = ends[j] - counts[j], ends[j]
            np.compress(keep, col_values, out=out_values[start:end])
            if col.factor != 1.0:
                out_values[start:end] *= col.factor
            np.compress(keep, row_times, out=out_times[start:end])
    codes = np.repeat(np.arange(m, dtype=np.int32), counts)
    sensor_ids = [col.sensor for col in resolved]
    readings = _readings_frame(codes, sensor_ids, out_times, out_values)

    ends = np.cumsum(counts)
    _unit_hints([out_values[e - c : e] for c, e in zip(counts, ends)], resolved, table, warnings)

    column_of = {col.sensor: j for j, col in enumerate(resolved)}
    first_row_of_time = pd.Series(ok_rows, index=ok_times)
    first_row_of_time = first_row_of_time[~first_row_of_time.index.duplicated()]

    def locate(conflicts: pd.DataFrame) -> pd.DataFrame:
        sensor = conflicts["sensor_id"].astype(str).to_numpy()
        t_us = pd.DatetimeIndex(conflicts["time"]).as_unit("us").asi8
        rows = first_row_of_time.reindex(t_us).to_numpy().astype(np.int64)
        cols = np.array([column_of[s] for s in sensor], dtype=np.int64)
        if dup.any():  # a repeated timestamp: the reading kept may come from a later row
            repeated = set(ok_times[dup].tolist())
            for i in np.flatnonzero([t in repeated for t in t_us.tolist()]):
                candidates = ok_rows[ok_times == t_us[i]]
                rows[i] = next((r for r in candidates if valid[r, cols[i]]), candidates[0])
        pos = np.array([resolved[j].pos for j in cols], dtype=np.int64)
        return pd.DataFrame(
            {
                "line": table.lines(rows),
                "column": [table.header[p] for p in pos],
                "value": _format_values(raw[rows, cols]),
                "_pos": pos,
            }
        )

    kinds = {col.sensor: col.kind for col in resolved}
    return _Parsed(
        readings=readings,
        rejections=rej,
        locate=locate,
        rows_read=n + len(table.ragged),
        sensors=sensor_ids,
        kinds=kinds,
        layout="wide",
        kind=kind or _single_kind(kinds),
        gaps=gaps,
        collapsed=collapsed,
        warnings=warnings,
    )


def _strictly_increasing(major: np.ndarray, minor: np.ndarray) -> bool:
    """True if the pairs (major, minor) strictly increase from row to row."""
    if len(major) < 2:
        return True
    up = major[1:] > major[:-1]
    same = major[1:] == major[:-1]
    return bool(np.all(up | (same & (minor[1:] > minor[:-1]))))


def _reject_ragged(table: Table, rej: _Rejections) -> None:
    """Rows whose number of fields differs from the header's: which value is which is unknown."""
    for line, n_fields, text, n_values in table.ragged:
        rej.add(
            [line],
            "(row)",
            [text[:200]],
            f"row has {n_fields} field(s); the header has {len(table.header)}",
            -1,
            readings=n_values,
        )


def _single_kind(kinds: dict) -> str | None:
    distinct = set(kinds.values())
    return distinct.pop() if len(distinct) == 1 else None


def _check_some_time_readable(times, table: Table, time_col: int, n: int) -> None:
    """A file where no timestamp can be read is in a format we don't know: refuse it whole."""
    if n == 0 or times.ok.any():
        return
    texts = pd.Series(times.reason_texts, dtype=object).fillna("")
    unreadable_codes = np.flatnonzero(texts.str.startswith(("unreadable", "timestamp does not match")).to_numpy())
    unreadable = np.flatnonzero(np.isin(times.reason_codes, unreadable_codes))
    if len(unreadable):
        sample = _text_of(table.columns[time_col], unreadable[:3])
        raise TelemetryImportError(
            f"{table.path}: none of the {n} timestamps in column {table.header[time_col]!r} can be read "
            f"(e.g. {', '.join(repr(s) for s in sample)}): {times.reasons_at(unreadable[:1])[0]}. Nothing was stored.",
            table.path,
        )


def _wide_duplicates(table: Table, resolved, dup_rows, utc_us, raw, valid, rej: _Rejections):
    """Rows sharing a timestamp: same values are kept once, different values are refused.

    Returns (number of readings collapsed, lines of the rows they came from).
    """
    m = len(resolved)
    rows = np.repeat(dup_rows, m)
    cols = np.tile(np.arange(m), len(dup_rows))
    present = valid[rows, cols]
    cells = pd.DataFrame(
        {"row": rows[present], "col": cols[present], "t": utc_us[rows[present]], "v": raw[rows[present], cols[present]]}
    )
    if cells.empty:
        return 0, []
    grouped = cells.groupby(["t", "col"], sort=False)["v"]
    conflicting = (grouped.transform("nunique") > 1).to_numpy()
    repeats = cells.duplicated(subset=["t", "col"], keep="first").to_numpy() & ~conflicting
    # conflicting: refuse every copy, each with the lines of the others
    if conflicting.any():
        bad = cells[conflicting].copy()
        bad["line"] = table.lines(bad["row"].to_numpy())
        lines_of = bad.groupby(["t", "col"])["line"].agg(list)
        reasons = [
            "timestamp repeated on line(s) "
            + _listing([x for x in lines_of[(t, c)] if x != line], 5)
            + " with a different value"
            for t, c, line in zip(bad["t"], bad["col"], bad["line"])
        ]
        for_col = bad["col"].to_numpy()
        positions = np.array([resolved[c].pos for c in for_col])
        headers = [table.header[p] for p in positions]
        rej.add(bad["line"].to_numpy(), headers, _format_values(bad["v"].to_numpy()), reasons, positions)
        valid[bad["row"].to_numpy(), for_col] = False
    dropped = cells[repeats]
    valid[dropped["row"].to_numpy(), dropped["col"].to_numpy()] = False
    return int(len(dropped)), sorted(set(table.lines(dropped["row"].to_numpy()).tolist()))


def _unit_hints(values_by_column: list, resolved, table: Table, warnings: list) -> None:
    """Warn (never refuse) when pressures without a stated unit look like kPa, psi or mbar."""
    for j, col in enumerate(resolved):
        if col.kind != "pressure" or col.unit_stated or col.factor != 1.0:
            continue
        values = values_by_column[j]
        if len(values) and np.median(values) > 200.0:
            warnings.append(
                f"column {table.header[col.pos]!r}: median pressure {np.median(values):.0f} m is high for a "
                "distribution network; if the file is not in metres, state its unit (--unit kPa, or a header "
                "such as 'n54 [kPa]')"
            )


# -- the long layout -------------------------------------------------------------------------------
def _long_columns(table: Table) -> dict[str, int] | None:
    """Positions of sensor_id, timestamp, value (and unit) when the file has the long layout."""
    lower = [split_unit(h)[0].lower() for h in table.header]
    if _LONG_SENSOR not in lower or _LONG_VALUE not in lower:
        return None
    roles = {"sensor_id": lower.index(_LONG_SENSOR), "value": lower.index(_LONG_VALUE)}
    time_cols = [i for i, h in enumerate(lower) if is_time_column_name(h)]
    if not time_cols:
        raise TelemetryImportError(
            f"{table.path}: the file has sensor_id and value columns but no timestamp column "
            "(named timestamp or time). Nothing was stored.",
            table.path,
        )
    roles["timestamp"] = time_cols[0]
    if _LONG_UNIT in lower:
        roles["unit"] = lower.index(_LONG_UNIT)
    return roles


def _parse_long(
    table: Table, roles: dict, kind, unit, tz, time_format, limit_us, plausible, resolver: _Resolver
) -> _Parsed:
    path = table.path
    n = table.n_rows
    rej = _Rejections()
    warnings: list[str] = []
    ignored = [h for i, h in enumerate(table.header) if i not in roles.values()]
    if ignored:
        warnings.append(f"column(s) ignored: {_listing(ignored)}")

    # sensors: each distinct id resolved once
    id_col = table.columns[roles["sensor_id"]]
    if not (pa.types.is_string(id_col.type) or pa.types.is_large_string(id_col.type)):
        id_col = pc.cast(id_col, pa.string())
    id_col = id_col.combine_chunks() if isinstance(id_col, pa.ChunkedArray) else id_col
    encoded = id_col.dictionary_encode()
    raw_ids = [("" if v is None else v.strip()) for v in encoded.dictionary.to_pylist()]
    raw_codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    sensor_ids: list[str] = []
    index_of: dict[str, int] = {}
    code_map = np.full(max(len(raw_ids), 1), -1, dtype=np.int64)
    unknown = []
    for k, raw_id in enumerate(raw_ids):
        if raw_id == "":
            continue
        sensor, note = resolver.resolve(raw_id)
        if sensor is None:
            unknown.append((raw_id, note))
            continue
        code_map[k] = index_of.setdefault(sensor, len(sensor_ids))
        if code_map[k] == len(sensor_ids):
            sensor_ids.append(sensor)
    if unknown:
        raise TelemetryImportError(_unknown_message(path, kind, unknown, resolver, "sensor id(s)"), path)
    codes = np.where(raw_codes >= 0, code_map[np.maximum(raw_codes, 0)], -1)
    kinds = {s: resolver.kind_of(s) for s in sensor_ids}

    # conversion factor of every row: its own unit, else the file's, else the registry's
    where = f"{path}"
    default_factor = np.ones(len(sensor_ids))
    for s, sid in enumerate(sensor_ids):
        effective = unit if unit is not None else resolver.unit_of(sid)
        default_factor[s] = _factor(effective, kinds[sid], f"{where}: sensor {sid}")
        if sid in resolver.new and unit is not None:
            resolver.new[sid]["unit"] = unit
    factor = np.where(codes >= 0, default_factor[np.maximum(codes, 0)], 1.0)
    unit_unknown = np.zeros(n, dtype=bool)
    unit_reason = None
    if "unit" in roles:
        unit_col = table.columns[roles["unit"]]
        if not (pa.types.is_string(unit_col.type) or pa.types.is_large_string(unit_col.type)):
            unit_col = pc.cast(unit_col, pa.string())
        unit_col = unit_col.combine_chunks() if isinstance(unit_col, pa.ChunkedArray) else unit_col
        u_enc = unit_col.dictionary_encode()
        u_names = [("" if v is None else v.strip()) for v in u_enc.dictionary.to_pylist()]
        u_codes = u_enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        has_unit = (u_codes >= 0) & (codes >= 0)
        if has_unit.any():
            pair = u_codes * max(len(sensor_ids), 1) + codes
            uniq, inverse = np.unique(pair[has_unit], return_inverse=True)
            pair_factor = np.ones(len(uniq))
            pair_reason = np.full(len(uniq), None, dtype=object)
            for i, p in enumerate(uniq):
                u_name = u_names[p // max(len(sensor_ids), 1)]
                s_kind = kinds[sensor_ids[p % max(len(sensor_ids), 1)]]
                if u_name == "":
                    pair_factor[i] = default_factor[p % max(len(sensor_ids), 1)]
                    continue
                try:
                    pair_factor[i] = conversion_factor(u_name, s_kind)
                except UnknownUnitError as exc:
                    pair_factor[i] = np.nan
                    pair_reason[i] = str(exc)
            factor[has_unit] = pair_factor[inverse]
            unit_unknown[has_unit] = np.isnan(pair_factor[inverse])
            unit_reason = np.full(n, None, dtype=object)
            unit_reason[has_unit] = pair_reason[inverse]

    zone = _tz_from_header(table, roles["timestamp"], tz)
    times = parse_timestamps(table.columns[roles["timestamp"]], zone, time_format)
    _check_some_time_readable(times, table, roles["timestamp"], n)
    values, empty, not_number = numeric_values(table.columns[roles["value"]], table.decimal)

    # one reason per refused row, the first that applies; codes index the reasons, so that a file
    # of ten million rows does not carry ten million strings
    why_code = np.zeros(n, dtype=np.int16)
    why: list = [None]  # str, an array of a reason per row, or a function of the rows
    why_role: list = [None]

    def refuse(mask, reason, role):
        mask = mask & (why_code == 0)
        if mask.any():
            why.append(reason)
            why_role.append(role)
            why_code[mask] = len(why) - 1

    refuse(codes < 0, "missing sensor id", "sensor_id")
    refuse(~times.ok, times.reasons_at, "timestamp")
    refuse(times.ok & (times.utc_us > limit_us), _future_reason(limit_us), "timestamp")
    refuse(not_number, "not a number", "value")
    refuse(~empty & np.isnan(values), "NaN is not a reading (leave the cell empty for a gap)", "value")
    refuse(~empty & np.isinf(values), "infinite value", "value")
    if unit_reason is not None:
        refuse(unit_unknown & ~empty, unit_reason, "unit")
    converted = values * factor
    sensor_kinds = [kinds[sid] for sid in sensor_ids]
    for sensor_kind in sorted(set(sensor_kinds)):
        lo, hi = _bounds(sensor_kind, plausible)
        if math.isfinite(lo) or math.isfinite(hi):
            of_kind = np.isin(codes, [s for s, k in enumerate(sensor_kinds) if k == sensor_kind])
            outside = of_kind & ~empty & ((converted < lo) | (converted > hi))
            refuse(outside, _implausible_reason(sensor_kind, lo, hi), "value")
    refused = why_code > 0
    # a row whose value cell is empty and nothing else wrong is a gap, not a refusal
    gap = empty & ~refused
    bad = np.flatnonzero(refused)
    if len(bad):
        reasons = np.empty(len(bad), dtype=object)
        columns = np.empty(len(bad), dtype=object)
        positions = np.empty(len(bad), dtype=np.int64)
        texts = np.empty(len(bad), dtype=object)
        for k in np.unique(why_code[bad]):
            sel = why_code[bad] == k
            at = roles[why_role[k]]
            reasons[sel] = (
                why[k](bad[sel]) if callable(why[k]) else why[k][bad[sel]] if isinstance(why[k], np.ndarray) else why[k]
            )
            columns[sel] = table.header[at]
            positions[sel] = at
            texts[sel] = _text_of(table.columns[at], bad[sel])
        # a row refused for its sensor or time loses a reading only if its value cell held one
        row_level = np.isin(positions, [roles["sensor_id"], roles["timestamp"]])
        lost = int((~(row_level & empty[bad])).sum())
        rej.add(table.lines(bad), columns, texts, reasons, positions, readings=lost)
    _reject_ragged(table, rej)

    valid = ~refused & ~empty
    rows = np.flatnonzero(valid)
    out = pd.DataFrame({"code": codes[rows], "t": times.utc_us[rows], "v": converted[rows], "row": rows}, copy=False)
    # rows ordered by sensor then time, or by time then sensor, can hold neither repeats nor
    # disorder: the common case is settled without hashing ten million keys
    code_v, t_v = out["code"].to_numpy(), out["t"].to_numpy()
    in_order = _strictly_increasing(code_v, t_v) or _strictly_increasing(t_v, code_v)

    # the same (sensor, time) on several rows
    collapsed = 0
    dup = np.zeros(len(out), dtype=bool) if in_order else out.duplicated(subset=["code", "t"], keep=False).to_numpy()
    if dup.any():
        cells = out[dup]
        conflicting_mask = (cells.groupby(["code", "t"])["v"].transform("nunique") > 1).to_numpy()
        conflicting = cells[conflicting_mask]
        if len(conflicting):
            lines = table.lines(conflicting["row"].to_numpy())
            lines_of = pd.Series(lines).groupby([conflicting["code"].to_numpy(), conflicting["t"].to_numpy()]).agg(list)
            reasons = [
                "sensor and timestamp repeated on line(s) "
                + _listing([x for x in lines_of[(c, t)] if x != line], 5)
                + " with a different value"
                for c, t, line in zip(conflicting["code"], conflicting["t"], lines)
            ]
            rej.add(
                lines,
                table.header[roles["value"]],
                _text_of(table.columns[roles["value"]], conflicting["row"].to_numpy()),
                reasons,
                roles["value"],
            )
        repeats = cells[~conflicting_mask].duplicated(subset=["code", "t"], keep="first")
        drop_rows = cells[~conflicting_mask][repeats.to_numpy()]["row"].to_numpy()
        collapsed = len(drop_rows)
        if collapsed:
            warnings.append(
                f"{collapsed} row(s) repeat an earlier row's sensor, timestamp and value and were kept once "
                f"(lines {_listing(table.lines(drop_rows))})"
            )
        out = out[~out["row"].isin(np.concatenate([conflicting["row"].to_numpy(), drop_rows]))]

    # out of time order within a sensor: accepted, stored sorted
    if len(out) > 1 and not in_order:
        previous_max = (
            out.groupby("code", sort=False)["t"].cummax().groupby(out["code"].to_numpy(), sort=False).shift(1)
        )
        late = (out["t"] < previous_max).to_numpy()
        if late.any():
            warnings.append(_out_of_order_warning(table.lines(out["row"].to_numpy()[late])))
            out = out.sort_values(["code", "t"], kind="stable")

    readings = _readings_frame(out["code"].to_numpy(), sensor_ids, out["t"].to_numpy(), out["v"].to_numpy())
    value_header = table.header[roles["value"]]

    def locate(conflicts: pd.DataFrame) -> pd.DataFrame:
        kept = out.set_index(["code", "t"])["row"]
        code_of = {s: i for i, s in enumerate(sensor_ids)}
        keys = pd.MultiIndex.from_arrays(
            [
                conflicts["sensor_id"].astype(str).map(code_of).to_numpy(),
                pd.DatetimeIndex(conflicts["time"]).as_unit("us").asi8,
            ]
        )
        rows_ = kept.reindex(keys).to_numpy().astype(np.int64)
        return pd.DataFrame(
            {
                "line": table.lines(rows_),
                "column": value_header,
                "value": _text_of(table.columns[roles["value"]], rows_),
                "_pos": roles["value"],
            }
        )

    return _Parsed(
        readings=readings,
        rejections=rej,
        locate=locate,
        rows_read=n + len(table.ragged),
        sensors=sensor_ids,
        kinds=kinds,
        layout="long",
        kind=kind or _single_kind(kinds),
        gaps=int(gap.sum()),
        collapsed=collapsed,
        warnings=warnings,
    )


# -- the import ------------------------------------------------------------------------------------
def _read_table(path: Path, data: bytes | None, delimiter, decimal) -> Table:
    if data is None:
        return read_parquet(path)
    if not data or data.isspace():
        raise TelemetryImportError(f"{path}: the file is empty", path)
    dialect = sniff_dialect(head_of(data), delimiter=delimiter, decimal=decimal)
    # read the header first to know which columns hold numbers
    header = read_header(data, dialect)
    lower = [split_unit(h)[0].lower() for h in header]
    if _LONG_SENSOR in lower and _LONG_VALUE in lower:
        types = {lower.index(_LONG_VALUE): pa.float64()}
    else:
        time_positions = [i for i, h in enumerate(lower) if is_time_column_name(h)]
        time_col = time_positions[0] if time_positions else 0
        types = {i: pa.float64() for i in range(len(header)) if i != time_col}
    try:
        table = read_csv(str(path), data, dialect, types)
    except FileFormatError as exc:
        raise TelemetryImportError(str(exc), path) from None
    if table.ragged and len(table.ragged) >= table.n_rows + len(table.ragged):
        line, n_fields, text, _ = table.ragged[0]
        raise TelemetryImportError(
            f"{path}: malformed CSV: no data row has the header's {len(table.header)} fields "
            f"(line {line} has {n_fields}: {text[:80]!r}); is the delimiter {dialect.delimiter!r} right? "
            "Nothing was stored.",
            path,
        )
    return table


def import_file(
    store,
    path,
    *,
    kind: str | None = None,
    unit: str | None = None,
    tz=None,
    network=None,
    register: bool = False,
    strict: bool = False,
    dry_run: bool = False,
    time_format: str | None = None,
    delimiter: str | None = None,
    decimal: str | None = None,
    future_tolerance=DEFAULT_FUTURE_TOLERANCE,
    now=None,
    plausible: dict | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> ImportReport:
    """Validate a SCADA/AMR export and store its readings, atomically.

    Parameters
    ----------
    store : tirtasu.store.Store
    path : str or path
        CSV (``.csv``, ``.txt``, ``.tsv``, optionally ``.gz``) or Parquet (``.parquet``) file,
        wide or long layout (see the module documentation).
    kind : str, optional
        Kind of the readings of a wide file (pressure, flow, level, demand, head, quality);
        default: from the file name. A wide file whose name does not say, given no kind, must
        name its columns by registered sensor id.
    unit : str, optional
        Unit of every value in the file (``psi``, ``L/s`` …) unless a header or row says otherwise.
    tz : str, optional
        Time zone of timestamps written without one (``Asia/Jakarta``, ``UTC+7``); default UTC,
        or the zone in the timestamp header (``timestamp (Asia/Jakarta)``).
    network : WaterNetworkModel or NetworkIds or dict, optional
        The model's node and link ids, for ``register``.
    register : bool
        Register sensors for columns that name a node (or, for flows, a link) of ``network``
        and no registered sensor, with id ``sensor_id_for(kind, column)`` (e.g. ``P_n54``).
    strict : bool
        Refuse the whole file if any reading is rejected.
    dry_run : bool
        Validate and compare with the store, store nothing.
    time_format : str, optional
        ``strptime`` format of timestamps that are not ISO 8601 (e.g. ``%d/%m/%Y %H:%M``).
    delimiter, decimal : str, optional
        CSV field separator and decimal mark; default: guessed from the file.
    future_tolerance : timedelta-like
        Timestamps later than ``now`` plus this are rejected (default 1 h, for clock drift).
    now : datetime-like, optional
        The present, for tests and replays (default: the clock).
    plausible : dict, optional
        Bounds to use instead of :data:`PLAUSIBLE_RANGE` for some kinds, in internal units:
        ``{"pressure": (-10.4, 150.0)}``.
    on_stage : callable, optional
        Called with "read", "validate", "store" as the import proceeds (progress display).

    Returns
    -------
    ImportReport

    Raises
    ------
    TelemetryImportError
        When the file cannot be imported at all (nothing is stored).
    ImportRejectedError
        In strict mode when a reading is rejected (nothing is stored).
    """
    started = _time.perf_counter()
    path = Path(path)
    stage = on_stage or (lambda _s: None)
    if kind is not None:
        kind = str(kind).strip().lower()
        if kind not in KINDS:
            raise TelemetryImportError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}", path)
    kind_hint = kind if kind is not None else infer_kind(path)  # wide files; long ones may mix kinds
    if tz is not None:
        try:
            resolve_tz(tz)  # a typo fails before the file is read
        except ValueError as exc:
            raise TelemetryImportError(str(exc), path) from None
    if register and network is None:
        raise TelemetryImportError(
            "registering sensors at import needs the network model (its node and link ids)", path
        )
    network_ids = NetworkIds.of(network) if network is not None else None
    bounds = {**PLAUSIBLE_RANGE, **(plausible or {})}
    now_ts = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    if now_ts.tzinfo is None:
        now_ts = now_ts.tz_localize("UTC")
    limit_us = int((now_ts + pd.Timedelta(future_tolerance)).tz_convert("UTC").as_unit("us").asm8.astype("int64"))

    stage("read")
    is_parquet = path.suffix.lower() in _PARQUET_SUFFIXES
    try:
        data = None if is_parquet else read_bytes(path)
    except FileFormatError as exc:
        raise TelemetryImportError(str(exc), path) from None
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        try:
            table = _read_table(path, data, delimiter, decimal)
        except FileFormatError as exc:
            raise TelemetryImportError(str(exc), path) from None
        # hash while validating: the arrow reader used every core, numpy validation leaves one
        # idle, and hashlib releases the GIL on large buffers
        checksum = pool.submit(_sha256_of, path, None if is_parquet or path.suffix.lower() == ".gz" else data)
        stage("validate")
        registry = store.sensors()
        node_dma = {}
        if register:
            try:
                dmas = store.dma_nodes()
                node_dma = dict(zip(dmas["node_id"].astype(str), dmas["dma"]))
            except Exception:  # noqa: BLE001 - DMAs are a nicety here, never a reason to fail
                node_dma = {}
        roles = _long_columns(table)
        if roles is None:
            resolver = _Resolver(registry, kind_hint, network_ids, register, node_dma)
            if kind_hint is None:
                _require_kind_or_ids(table, resolver, path)
            parsed = _parse_wide(table, kind_hint, unit, tz, time_format, limit_us, bounds, resolver)
        else:
            resolver = _Resolver(registry, kind, network_ids, register, node_dma)
            if unit is not None and kind is not None:
                _factor(unit, kind, str(path))
            parsed = _parse_long(table, roles, kind, unit, tz, time_format, limit_us, bounds, resolver)
        return _store_parsed(
            store, path, parsed, resolver, checksum, strict=strict, dry_run=dry_run, stage=stage, started=started
        )
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _store_parsed(
    store, path: Path, parsed: _Parsed, resolver: _Resolver, checksum_future, *, strict, dry_run, stage, started
):
    """Write a validated file in one transaction and log it; the report of what was done."""
    report = ImportReport(
        file=str(path),
        kind=parsed.kind,
        layout=parsed.layout,
        rows_read=parsed.rows_read,
        sensors=len(parsed.sensors),
        gaps=parsed.gaps,
        collapsed=parsed.collapsed,
        registered=sorted(resolver.new),
        warnings=list(parsed.warnings),
    )
    if parsed.rows_read == 0:
        report.warnings.append("the file has no data rows")
    readings = parsed.readings
    if len(readings):
        report.first_time = readings["time"].min()
        report.last_time = readings["time"].max()

    def finish(rejections: _Rejections) -> None:
        report.rejections = rejections.frame()
        report.rejected = rejections.readings
        report.checksum = checksum_future.result()
        report.seconds = _time.perf_counter() - started

    def note_reimport() -> None:
        try:
            previous = store.imports()
            same = previous[previous["checksum"] == report.checksum] if "checksum" in previous else previous.iloc[0:0]
            if len(same):
                when = pd.Timestamp(same["imported_at"].iloc[-1])
                report.warnings.append(f"this file (same SHA-256) was imported before, on {when:%Y-%m-%d %H:%M} UTC")
        except Exception:  # noqa: BLE001 - the import log is informative only
            pass

    if strict and parsed.rejections.parts:
        finish(parsed.rejections)
        note_reimport()
        raise ImportRejectedError(report)

    stage("store")

    class _Abort(Exception):
        pass

    try:
        with store.transaction():
            if resolver.new:
                store.upsert_sensors(pd.DataFrame(list(resolver.new.values())))
            result = store.add_readings(readings)
            conflicts = result.conflicts
            if len(conflicts):
                located = parsed.locate(conflicts)
                units = np.array(
                    [INTERNAL_UNIT.get(parsed.kinds[s]) or "" for s in conflicts["sensor_id"].astype(str)], dtype=object
                )
                stored_text = _format_values(conflicts["stored_value"].to_numpy(dtype=float))
                reasons = (
                    "already stored as " + pd.Series(stored_text, dtype=object) + " " + pd.Series(units, dtype=object)
                )
                reasons = (
                    reasons.str.rstrip() + " (a different value); stored values are never overwritten"
                ).to_numpy()
                parsed.rejections.add(
                    located["line"],
                    located["column"].to_numpy(),
                    located["value"].to_numpy(),
                    reasons,
                    located["_pos"].to_numpy(),
                )
            report.added, report.unchanged = int(result.added), int(result.unchanged)
            finish(parsed.rejections)
            note_reimport()
            if strict and len(conflicts):
                raise _Abort
            if dry_run:
                raise _Abort
            report.stored = True
            store.record_import(str(path.resolve()), report.checksum, report.kind, report.to_dict())
    except _Abort:
        report.stored = False
        if strict and not dry_run:
            report.added = report.unchanged = 0
            raise ImportRejectedError(report) from None
    except (KeyError, ValueError) as exc:
        raise TelemetryImportError(
            f"{path}: the store refused the readings; nothing was stored ({exc})", path
        ) from None
    report.seconds = _time.perf_counter() - started
    return report


def _require_kind_or_ids(table: Table, resolver: _Resolver, path: Path) -> None:
    """A wide file whose name does not give the kind must name registered sensors."""
    try:
        time_col = _time_column(table)
    except TelemetryImportError:
        return  # reported by the parser with the same words
    for i, header in enumerate(table.header):
        if i == time_col:
            continue
        if resolver.resolve(header)[0] is None and resolver.resolve(split_unit(header)[0])[0] is None:
            raise TelemetryImportError(
                f"{path}: cannot tell which kind of readings this file holds: name it after the kind "
                f"({', '.join(f'{w}.csv' for w in WIDE_FILE_KINDS)}) or give the kind (--kind); "
                f"column {header!r} is not a registered sensor id. Nothing was stored.",
                path,
            )
