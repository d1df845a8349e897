"""The storage interface every backend implements.

Analyses and the command line talk to a :class:`Store`; they never know whether DuckDB (the
embedded default, a single local file) or PostgreSQL sits behind it. Everything that crosses
this interface is in internal units (m, m³/h, L/h) with timezone-aware UTC timestamps.

Tables (the same in every backend):

``sensors``    the registry: sensor_id, kind, unit (as the sensor reports), node_id, link_id,
               dma, description
``readings``   sensor_id, time (UTC), value (internal unit); one value per (sensor_id, time)
``imports``    what was imported when, from where, with its checksum and report
``dma_nodes``  node_id → dma
``dma_links``  boundary links of each DMA with the sign that makes their flow an inflow
``models``     network models (EPANET .inp text) by name
``customers``  customer accounts: customer_id, node_id, dma, category, metered
``billing``    billed volume per customer and billing period [m³]
``meta``       key → value (JSON text)
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
