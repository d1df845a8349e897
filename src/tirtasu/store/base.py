"""The storage interface every backend implements.

Analyses and the command line talk to a :class:`Store`; they never know whether DuckDB (the
embedded default, a single local file) or PostgreSQL sits behind it. Everything that crosses
this interface is in internal units (m, m³/h, L/h) with timezone-aware UTC timestamps.

Tables (the same in every backend):

``sensors``    the registry: sensor_id, kind, unit (as the sensor reports), node_id, link_id,
               dma, description
``readings``   sensor (by an integer key into ``sensors``), time (UTC), value (internal unit);
               one value per (sensor, time)
``imports``    what was imported when, from where, with its checksum and report
``dma_nodes``  node_id → dma
``dma_links``  boundary links of each DMA with the sign that makes their flow an inflow
``models``     network models (EPANET .inp text) by name
``customers``  customer accounts: customer_id, node_id, dma, category, metered
``billing``    billed volume per customer and billing period [m³]
``meta``       key → value (JSON text)
``api_tokens`` API tokens: token_id, name, role, token_hash (sha256 of the secret, never the
               secret), created_at, revoked_at
``alarms``     leak alarms: alarm_id, link_id, candidates, start_time, detected_at, flow_m3h, dma,
               status (open / acknowledged / repaired), assigned_to, history, updated_at
``quarantine`` incoming records refused at ingestion: received_at, source, sensor_id, code,
               reason, raw
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass, field

import pandas as pd

READING_COLUMNS = ("sensor_id", "time", "value")
DMA_NODE_COLUMNS = ("node_id", "dma")
DMA_LINK_COLUMNS = ("dma", "link_id", "sign")
CUSTOMER_COLUMNS = ("customer_id", "node_id", "dma", "category", "metered")
BILLING_COLUMNS = ("customer_id", "period_start", "period_end", "billed_m3")
#: columns of the quarantine: when and from where a record came, the sensor it named (if any),
#: a short reason code, the reason in words, and the record as received (text)
QUARANTINE_COLUMNS = ("received_at", "source", "sensor_id", "code", "reason", "raw")
TOKEN_COLUMNS = ("token_id", "name", "role", "token_hash", "created_at", "revoked_at")
ALARM_COLUMNS = (
    "alarm_id",
    "link_id",
    "candidates",
    "start_time",
    "detected_at",
    "flow_m3h",
    "dma",
    "status",
    "assigned_to",
    "history",
    "updated_at",
)
#: the fields of an alarm that :meth:`Store.update_alarm` may change
ALARM_MUTABLE = ("status", "assigned_to", "flow_m3h", "candidates", "link_id", "dma")
ALARM_STATUSES = ("open", "acknowledged", "repaired")


@dataclass
class WriteResult:
    """What :meth:`Store.add_readings` did with a batch.

    Attributes
    ----------
    added : int
        Readings that were new and are now stored.
    unchanged : int
        Readings already stored with the same value (a replay or re-import): nothing written.
    conflicts : pandas.DataFrame
        Readings for a (sensor, time) already stored with a *different* value; they are not
        written, so that nothing stored is ever silently changed. Columns sensor_id, time,
        value, stored_value.
    """

    added: int = 0
    unchanged: int = 0
    conflicts: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["sensor_id", "time", "value", "stored_value"])
    )


class Store(abc.ABC):
    """A tirtasu data store. Use :func:`tirtasu.store.open_store` to get one."""

    url: str

    # -- lifecycle -------------------------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager:
        """All writes inside the block are applied together or not at all."""

    # -- sensor registry ---------------------------------------------------------------------
    @abc.abstractmethod
    def upsert_sensors(self, registry: pd.DataFrame) -> int:
        """Add sensors or update their attributes (columns of ``SENSOR_COLUMNS``)."""

    @abc.abstractmethod
    def sensors(self, kind: str | None = None, dma: str | None = None) -> pd.DataFrame:
        """The registry, optionally filtered by kind and DMA, ordered by sensor_id."""

    # -- readings ----------------------------------------------------------------------------
    @abc.abstractmethod
    def add_readings(self, readings: pd.DataFrame) -> WriteResult:
        """Store a batch of readings atomically; idempotent per (sensor_id, time).

        ``readings`` has columns sensor_id, time (tz-aware UTC), value (internal unit, finite);
        every sensor_id must be registered. The caller validates; the store enforces only
        the invariants it owns (registered sensor, one value per sensor and time).
        """

    @abc.abstractmethod
    def readings(
        self,
        sensor_ids=None,
        kind: str | None = None,
        dma: str | None = None,
        start=None,
        end=None,
        resample: str | None = None,
        how: str = "mean",
        wide: bool = False,
    ) -> pd.DataFrame:
        """Readings in [start, end) ordered by sensor and time.

        Parameters
        ----------
        sensor_ids : list of str, optional
        kind, dma : str, optional
            Filter through the sensor registry.
        start, end : datetime-like, optional
            Naive values are taken as UTC.
        resample : str, optional
            A pandas offset (``"15min"``, ``"1h"``, ``"1D"``): one value per sensor and bucket,
            computed in the database; buckets are labelled by their start.
        how : {"mean", "min", "max", "sum", "first", "last", "count"}
        wide : bool
            Return one column per sensor indexed by time instead of long rows.
        """

    @abc.abstractmethod
    def readings_summary(self) -> pd.DataFrame:
        """Per sensor: kind, dma, count, first and last time."""

    # -- import log --------------------------------------------------------------------------
    @abc.abstractmethod
    def record_import(self, source: str, checksum: str, kind: str | None, report: dict) -> None: ...

    @abc.abstractmethod
    def imports(self) -> pd.DataFrame: ...

    # -- district metered areas --------------------------------------------------------------
    @abc.abstractmethod
    def set_dmas(self, nodes: pd.DataFrame, links: pd.DataFrame) -> None:
        """Replace the DMA definition: ``nodes`` (node_id, dma), ``links`` (dma, link_id, sign)."""

    @abc.abstractmethod
    def dma_nodes(self) -> pd.DataFrame: ...

    @abc.abstractmethod
    def dma_links(self) -> pd.DataFrame: ...

    # -- network models ----------------------------------------------------------------------
    @abc.abstractmethod
    def put_model(self, name: str, inp_text: str) -> None: ...

    @abc.abstractmethod
    def model_text(self, name: str) -> str:
        """The stored .inp text; KeyError if there is no such model."""

    @abc.abstractmethod
    def models(self) -> list[str]: ...

    # -- customers and billing ---------------------------------------------------------------
    @abc.abstractmethod
    def upsert_customers(self, customers: pd.DataFrame) -> int: ...

    @abc.abstractmethod
    def customers(self, dma: str | None = None) -> pd.DataFrame: ...

    @abc.abstractmethod
    def add_billing(self, billing: pd.DataFrame) -> int:
        """Add or replace billed volumes per (customer_id, period_start)."""

    @abc.abstractmethod
    def billing(self, start=None, end=None, dma: str | None = None) -> pd.DataFrame:
        """Billing records whose period starts in [start, end), with the customer's dma."""

    # -- metadata ----------------------------------------------------------------------------
    @abc.abstractmethod
    def set_meta(self, key: str, value) -> None:
        """Store a JSON-serialisable value under ``key``."""

    @abc.abstractmethod
    def meta(self, key: str, default=None): ...

    # -- API tokens --------------------------------------------------------------------------
    @abc.abstractmethod
    def put_token(self, token_id: str, name: str, role: str, token_hash: str) -> None:
        """Record a new API token by the hash of its secret (the secret itself is never stored).

        Raises
        ------
        ValueError
            If ``token_id`` or ``token_hash`` is already taken.
        """

    @abc.abstractmethod
    def tokens(self, token_hash: str | None = None) -> pd.DataFrame:
        """Tokens (columns of ``TOKEN_COLUMNS``, times tz-aware UTC), revoked ones included,
        ordered by creation; only the one with ``token_hash`` when given."""

    @abc.abstractmethod
    def revoke_token(self, token_id: str) -> bool:
        """Mark a token revoked now; False if there is no such token or it was revoked already."""

    # -- leak alarms -------------------------------------------------------------------------
    @abc.abstractmethod
    def put_alarm(self, alarm: dict) -> int:
        """Store a new alarm and return its id.

        ``alarm`` has link_id, candidates (list of link ids, best first), start_time,
        detected_at, flow_m3h [m³/h], dma; optionally status (default ``open``), assigned_to
        and history (list of dicts: at, by, action, note).
        """

    @abc.abstractmethod
    def alarms(self, status: str | None = None, dma: str | None = None, alarm_id: int | None = None) -> pd.DataFrame:
        """Alarms (columns of ``ALARM_COLUMNS``; candidates and history as lists), newest first."""

    @abc.abstractmethod
    def update_alarm(self, alarm_id: int, changes: dict, event: dict | None = None) -> bool:
        """Change fields of ``ALARM_MUTABLE`` and append ``event`` to the history, atomically.

        Returns False if there is no such alarm.
        """

    # -- quarantine --------------------------------------------------------------------------
    @abc.abstractmethod
    def add_quarantine(self, rows: pd.DataFrame) -> int:
        """Keep refused incoming records for review; returns how many were added.

        ``rows`` has the columns of :data:`QUARANTINE_COLUMNS`: received_at (tz-aware UTC),
        source, sensor_id (may be None), code, reason, raw (text). Appended, never merged.
        """

    @abc.abstractmethod
    def quarantine(self, start=None, end=None, source: str | None = None, code: str | None = None,
                   limit: int | None = None) -> pd.DataFrame:
        """Quarantined records received in [start, end), oldest first (the ``limit`` newest if given)."""


def alarm_record(alarm: dict) -> dict:
    """An alarm as the backends write it: lists as JSON text, times naive UTC, defaults filled.

    Raises
    ------
    ValueError
        An unknown status or field, or a missing start_time.
    """
    import json

    from tirtasu.store.timeutil import to_utc_naive

    unknown = set(alarm) - set(ALARM_COLUMNS)
    if unknown:
        raise ValueError(f"unknown alarm field(s): {', '.join(sorted(unknown))}")
    status = alarm.get("status") or "open"
    if status not in ALARM_STATUSES:
        raise ValueError(f"unknown alarm status {status!r}; expected one of {', '.join(ALARM_STATUSES)}")
    if alarm.get("start_time") is None:
        raise ValueError("an alarm needs a start_time")
    now = pd.Timestamp.now(tz="UTC")
    flow = alarm.get("flow_m3h")
    return {
        "link_id": None if alarm.get("link_id") is None else str(alarm["link_id"]),
        "candidates": json.dumps([str(c) for c in alarm.get("candidates") or []]),
        "start_time": to_utc_naive(alarm["start_time"]),
        "detected_at": to_utc_naive(alarm.get("detected_at") or now),
        "flow_m3h": None if flow is None or pd.isna(flow) else float(flow),
        "dma": None if alarm.get("dma") is None else str(alarm["dma"]),
        "status": status,
        "assigned_to": alarm.get("assigned_to"),
        "history": json.dumps(list(alarm.get("history") or []), default=str),
        "updated_at": to_utc_naive(now),
    }


def alarm_changes(changes: dict) -> dict:
    """Validated changes for :meth:`Store.update_alarm`, encoded as the backends write them."""
    import json

    unknown = set(changes) - set(ALARM_MUTABLE)
    if unknown:
        raise ValueError(f"alarm field(s) that cannot be changed: {', '.join(sorted(unknown))}")
    out = dict(changes)
    if "status" in out and out["status"] not in ALARM_STATUSES:
        raise ValueError(f"unknown alarm status {out['status']!r}; expected one of {', '.join(ALARM_STATUSES)}")
    if "candidates" in out:
        out["candidates"] = json.dumps([str(c) for c in out["candidates"] or []])
    return out


def alarm_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Alarms as they leave a backend: JSON lists decoded, times tz-aware UTC, ALARM_COLUMNS order."""
    import json

    if df.empty:
        return pd.DataFrame(columns=list(ALARM_COLUMNS))
    df = df[list(ALARM_COLUMNS)].copy()
    df["candidates"] = [json.loads(v) if v else [] for v in df["candidates"]]
    df["history"] = [json.loads(v) if v else [] for v in df["history"]]
    for col in ("start_time", "detected_at", "updated_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    df["alarm_id"] = df["alarm_id"].astype("int64")
    return df.astype({"flow_m3h": "float64"}).astype(object).where(df.notna(), None)


def token_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Tokens as they leave a backend: TOKEN_COLUMNS, times tz-aware UTC."""
    if df.empty:
        return pd.DataFrame(columns=list(TOKEN_COLUMNS))
    df = df[list(TOKEN_COLUMNS)].copy()
    for col in ("created_at", "revoked_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    return df
