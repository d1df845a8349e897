"""The embedded store: one DuckDB file, no server.

Times are kept as naive ``TIMESTAMP`` holding UTC (DuckDB then needs no time-zone extension);
they leave this module tz-aware UTC.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from tirtasu.store.base import (
    ALARM_COLUMNS,
    BILLING_COLUMNS,
    CUSTOMER_COLUMNS,
    DMA_LINK_COLUMNS,
    DMA_NODE_COLUMNS,
    QUARANTINE_COLUMNS,
    TOKEN_COLUMNS,
    Store,
    WriteResult,
    alarm_changes,
    alarm_frame,
    alarm_record,
    token_frame,
)
from tirtasu.store.batch import day, lookup_keys, sensor_codes, sorted_unique, times_and_values, where_clause
from tirtasu.store.timeutil import bucket_interval, to_utc_naive
from tirtasu.telemetry.sensors import SENSOR_COLUMNS, make_registry

SCHEMA_VERSION = 2  # 2: readings refer to sensors by integer key

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sensors (
    sensor_id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    unit VARCHAR,
    node_id VARCHAR,
    link_id VARCHAR,
    dma VARCHAR,
    description VARCHAR,
    sensor_key INTEGER NOT NULL UNIQUE
);
-- Readings refer to sensors by an integer key: half the bytes of a text id per reading.
-- No primary key: the index would cost more at bulk load than the checks add_readings
-- makes to stay idempotent.
CREATE TABLE IF NOT EXISTS readings (
    sensor_key INTEGER NOT NULL,
    time TIMESTAMP NOT NULL,
    value DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS imports (
    imported_at TIMESTAMP NOT NULL,
    source VARCHAR NOT NULL,
    checksum VARCHAR,
    kind VARCHAR,
    report VARCHAR
);
CREATE TABLE IF NOT EXISTS dma_nodes (node_id VARCHAR PRIMARY KEY, dma VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS dma_links (
    dma VARCHAR NOT NULL, link_id VARCHAR NOT NULL, sign INTEGER NOT NULL,
    PRIMARY KEY (dma, link_id)
);
CREATE TABLE IF NOT EXISTS models (name VARCHAR PRIMARY KEY, inp VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS customers (
    customer_id VARCHAR PRIMARY KEY,
    node_id VARCHAR,
    dma VARCHAR,
    category VARCHAR,
    metered BOOLEAN
);
CREATE TABLE IF NOT EXISTS billing (
    customer_id VARCHAR NOT NULL,
    period_start DATE NOT NULL,
    period_end DATE NOT NULL,
    billed_m3 DOUBLE NOT NULL,
    PRIMARY KEY (customer_id, period_start)
);
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
-- API tokens and leak alarms (additive: stores of schema version 2 gain them on opening)
CREATE TABLE IF NOT EXISTS api_tokens (
    token_id VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    token_hash VARCHAR NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE SEQUENCE IF NOT EXISTS alarm_ids;
CREATE TABLE IF NOT EXISTS alarms (
    alarm_id BIGINT PRIMARY KEY DEFAULT nextval('alarm_ids'),
    link_id VARCHAR,
    candidates VARCHAR NOT NULL,
    start_time TIMESTAMP NOT NULL,
    detected_at TIMESTAMP NOT NULL,
    flow_m3h DOUBLE,
    dma VARCHAR,
    status VARCHAR NOT NULL,
    assigned_to VARCHAR,
    history VARCHAR NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
-- incoming records refused by validation (tirtasu.ingest); added in place to older stores
CREATE TABLE IF NOT EXISTS quarantine (
    received_at TIMESTAMP NOT NULL,
    source VARCHAR,
    sensor_id VARCHAR,
    code VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    raw VARCHAR
);
"""

_AGGREGATES = {
    "mean": "avg(value)",
    "min": "min(value)",
    "max": "max(value)",
    "sum": "sum(value)",
    "first": "arg_min(value, time)",
    "last": "arg_max(value, time)",
    "count": "count(value)::DOUBLE",
}


class DuckDBStore(Store):
    """A :class:`~tirtasu.store.base.Store` in a DuckDB file (``":memory:"`` for a throwaway)."""

    def __init__(self, path: str | os.PathLike = ":memory:", read_only: bool = False):
        self.path = str(path)
        self.url = self.path
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.IOException as exc:
            raise RuntimeError(f"cannot open the DuckDB store {self.path}: {exc}") from None
        self._in_transaction = False
        if not read_only:
            fresh = not self.con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
            ).fetchone()[0]
            self.con.execute(_SCHEMA)
            if fresh:
                self.set_meta("schema_version", SCHEMA_VERSION)
        version = self.meta("schema_version")
        if version != SCHEMA_VERSION:
            self.con.close()
            raise RuntimeError(
                f"the store {self.path} has schema version {version}, this tirtasu needs "
                f"{SCHEMA_VERSION}; it was made by another version: move it aside and import again "
                "(for the pilot: tirtasu demo --rebuild)"
            )

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    @contextlib.contextmanager
    def transaction(self):
        if self._in_transaction:  # nested: the outer block decides
            yield self
            return
        self.con.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")
        finally:
            self._in_transaction = False

    def _df(self, sql: str, params=None) -> pd.DataFrame:
        return self.con.execute(sql, params or []).df()

    # -- sensors -----------------------------------------------------------------------------
    def upsert_sensors(self, registry: pd.DataFrame) -> int:
        reg = make_registry(registry)
        columns = ", ".join(SENSOR_COLUMNS)
        with self.transaction():
            self.con.register("_new_sensors", reg)
            try:
                # a sensor keeps its key for life; new sensors get the next ones
                self.con.execute(
                    f"INSERT INTO sensors ({columns}, sensor_key) SELECT "
                    + ", ".join(f"CAST({c} AS VARCHAR)" for c in SENSOR_COLUMNS)
                    + ", (SELECT coalesce(max(sensor_key), 0) FROM sensors) + row_number() OVER () "
                    "FROM _new_sensors ON CONFLICT (sensor_id) DO UPDATE SET "
                    + ", ".join(f"{c} = excluded.{c}" for c in SENSOR_COLUMNS if c != "sensor_id")
                )
            finally:
                self.con.unregister("_new_sensors")
        return len(reg)

    def sensors(self, kind=None, dma=None) -> pd.DataFrame:
        where, params = _filters(kind=kind, dma=dma)
        df = self._df(f"SELECT {', '.join(SENSOR_COLUMNS)} FROM sensors {where} ORDER BY sensor_id", params)
        return df.astype(object).where(df.notna(), None)

    # -- readings ----------------------------------------------------------------------------
    def _sensor_keys(self, sensor_ids) -> np.ndarray:
        """Integer key of each reading's sensor; KeyError for unregistered sensors."""
        codes, categories = sensor_codes(sensor_ids)
        known = dict(
            self.con.execute(
                "SELECT sensor_id, sensor_key FROM sensors WHERE list_contains(?::VARCHAR[], sensor_id)", [categories]
            ).fetchall()
        )
        return lookup_keys(codes, categories, known)

    def add_readings(self, readings: pd.DataFrame) -> WriteResult:
        if len(readings) == 0:
            return WriteResult()
        keys = self._sensor_keys(readings["sensor_id"])
        times, values = times_and_values(readings)
        keys, times, values = sorted_unique(keys, times, values)
        batch = pa.table({"sensor_key": keys, "time": pa.array(times.view("datetime64[us]")), "value": values})
        lo, hi = (pd.Timestamp(int(times.min()), unit="us"), pd.Timestamp(int(times.max()), unit="us"))
        sensor_keys = np.unique(keys).tolist()
        self.con.register("_batch", batch)
        try:
            with self.transaction():
                overlap = self.con.execute(
                    "SELECT count(*) FROM readings WHERE time BETWEEN ? AND ? AND list_contains(?::INTEGER[], sensor_key)",
                    [lo, hi, sensor_keys],
                ).fetchone()[0]
                if overlap == 0:  # the common case: new data, written as it comes
                    self.con.execute("INSERT INTO readings SELECT sensor_key, time, value FROM _batch")
                    return WriteResult(added=len(values))
                self.con.execute(
                    "CREATE OR REPLACE TEMP TABLE _old AS "
                    "SELECT b.sensor_key, b.time, b.value, r.value AS stored_value FROM _batch b "
                    "JOIN (SELECT * FROM readings WHERE time BETWEEN ? AND ?) r "
                    "ON r.sensor_key = b.sensor_key AND r.time = b.time",
                    [lo, hi],
                )
                unchanged = self.con.execute("SELECT count(*) FROM _old WHERE value = stored_value").fetchone()[0]
                conflicts = self._df(
                    "SELECT s.sensor_id, o.time, o.value, o.stored_value FROM _old o "
                    "JOIN sensors s USING (sensor_key) WHERE o.value <> o.stored_value ORDER BY 1, 2"
                )
                added = self.con.execute(
                    "INSERT INTO readings SELECT b.sensor_key, b.time, b.value FROM _batch b "
                    "ANTI JOIN _old o ON o.sensor_key = b.sensor_key AND o.time = b.time"
                ).fetchone()[0]
                self.con.execute("DROP TABLE _old")
        finally:
            self.con.unregister("_batch")
        conflicts["time"] = pd.to_datetime(conflicts["time"]).dt.tz_localize("UTC")
        return WriteResult(added=int(added), unchanged=int(unchanged), conflicts=conflicts)

    def readings(
        self,
        sensor_ids=None,
        kind=None,
        dma=None,
        start=None,
        end=None,
        resample=None,
        how="mean",
        wide=False,
    ) -> pd.DataFrame:
        where, params = _filters(kind=kind, dma=dma, sensor_ids=sensor_ids, start=start, end=end, sensor_table="s.")
        if resample:
            if how not in _AGGREGATES:
                raise ValueError(f"unknown aggregate {how!r}; expected one of {', '.join(_AGGREGATES)}")
            bucket = bucket_interval(resample)
            sql = (
                f"SELECT s.sensor_id, time_bucket({bucket}, r.time) AS time, {_AGGREGATES[how]} AS value "
                f"FROM readings r JOIN sensors s USING (sensor_key) {where} GROUP BY ALL ORDER BY 1, 2"
            )
        else:
            sql = (
                f"SELECT s.sensor_id, r.time, r.value FROM readings r "
                f"JOIN sensors s USING (sensor_key) {where} ORDER BY 1, 2"
            )
        df = self._df(sql, params)
        df["time"] = pd.to_datetime(df["time"]).dt.tz_localize("UTC")
        if wide:
            df = df.pivot(index="time", columns="sensor_id", values="value")
            df.columns.name = None
        return df

    def readings_summary(self) -> pd.DataFrame:
        df = self._df(
            "SELECT s.sensor_id, s.kind, s.dma, count(r.value) AS n, min(r.time) AS first, "
            "max(r.time) AS last FROM sensors s LEFT JOIN readings r USING (sensor_key) "
            "GROUP BY ALL ORDER BY s.kind, s.sensor_id"
        )
        for col in ("first", "last"):
            df[col] = pd.to_datetime(df[col]).dt.tz_localize("UTC")
        return df

    # -- imports -----------------------------------------------------------------------------
    def record_import(self, source, checksum, kind, report) -> None:
        self.con.execute(
            "INSERT INTO imports VALUES (now()::TIMESTAMP, ?, ?, ?, ?)",
            [str(source), checksum, kind, json.dumps(report, default=str)],
        )

    def imports(self) -> pd.DataFrame:
        df = self._df("SELECT * FROM imports ORDER BY imported_at")
        df["imported_at"] = pd.to_datetime(df["imported_at"]).dt.tz_localize("UTC")  # stored as UTC
        return df

    # -- DMAs --------------------------------------------------------------------------------
    def set_dmas(self, nodes, links) -> None:
        nodes = pd.DataFrame(nodes)[list(DMA_NODE_COLUMNS)].astype({"node_id": str, "dma": str})
        links = pd.DataFrame(links)[list(DMA_LINK_COLUMNS)].astype({"dma": str, "link_id": str, "sign": int})
        with self.transaction():
            self.con.execute("DELETE FROM dma_nodes; DELETE FROM dma_links")
            self.con.register("_n", nodes)
            self.con.register("_l", links)
            try:
                self.con.execute("INSERT INTO dma_nodes SELECT node_id, dma FROM _n")
                self.con.execute("INSERT INTO dma_links SELECT dma, link_id, sign FROM _l")
            finally:
                self.con.unregister("_n")
                self.con.unregister("_l")

    def dma_nodes(self) -> pd.DataFrame:
        return self._df("SELECT node_id, dma FROM dma_nodes ORDER BY dma, node_id")

    def dma_links(self) -> pd.DataFrame:
        return self._df("SELECT dma, link_id, sign FROM dma_links ORDER BY dma, link_id")

    # -- models ------------------------------------------------------------------------------
    def put_model(self, name, inp_text) -> None:
        self.con.execute("INSERT OR REPLACE INTO models VALUES (?, ?)", [name, inp_text])

    def model_text(self, name) -> str:
        row = self.con.execute("SELECT inp FROM models WHERE name = ?", [name]).fetchone()
        if row is None:
            raise KeyError(f"no model named {name!r} in the store (have: {', '.join(self.models()) or 'none'})")
        return row[0]

    def models(self) -> list[str]:
        return [r[0] for r in self.con.execute("SELECT name FROM models ORDER BY name").fetchall()]

    # -- customers and billing ---------------------------------------------------------------
    def upsert_customers(self, customers) -> int:
        df = pd.DataFrame(customers)
        for col in CUSTOMER_COLUMNS:
            if col not in df.columns:
                df[col] = None
        df = df[list(CUSTOMER_COLUMNS)]
        with self.transaction():
            self.con.register("_c", df)
            try:
                self.con.execute(
                    "INSERT OR REPLACE INTO customers SELECT CAST(customer_id AS VARCHAR), "
                    "CAST(node_id AS VARCHAR), CAST(dma AS VARCHAR), CAST(category AS VARCHAR), "
                    "CAST(metered AS BOOLEAN) FROM _c"
                )
            finally:
                self.con.unregister("_c")
        return len(df)

    def customers(self, dma=None) -> pd.DataFrame:
        where, params = _filters(dma=dma)
        return self._df(f"SELECT * FROM customers {where} ORDER BY customer_id", params)

    def add_billing(self, billing) -> int:
        df = pd.DataFrame(billing)[list(BILLING_COLUMNS)]
        with self.transaction():
            self.con.register("_bill", df)
            try:
                self.con.execute(
                    "INSERT OR REPLACE INTO billing SELECT CAST(customer_id AS VARCHAR), "
                    "CAST(period_start AS DATE), CAST(period_end AS DATE), CAST(billed_m3 AS DOUBLE) FROM _bill"
                )
            finally:
                self.con.unregister("_bill")
        return len(df)

    def billing(self, start=None, end=None, dma=None) -> pd.DataFrame:
        where, params = where_clause(
            [("b.period_start >= {p}", day(start)), ("b.period_start < {p}", day(end)), ("c.dma = {p}", dma)], "?"
        )
        return self._df(
            "SELECT b.customer_id, b.period_start, b.period_end, b.billed_m3, c.dma, c.category "
            f"FROM billing b LEFT JOIN customers c USING (customer_id) {where} "
            "ORDER BY b.period_start, b.customer_id",
            params,
        )

    # -- quarantine --------------------------------------------------------------------------
    def add_quarantine(self, rows) -> int:
        df = _quarantine_frame(rows)
        if df.empty:
            return 0
        # in a transaction as the other writes (its BEGIN also settles any unfinished result)
        with self.transaction():
            self.con.register("_q", df)
            try:
                self.con.execute(
                    "INSERT INTO quarantine SELECT CAST(received_at AS TIMESTAMP), CAST(source AS VARCHAR), "
                    "CAST(sensor_id AS VARCHAR), CAST(code AS VARCHAR), CAST(reason AS VARCHAR), "
                    "CAST(raw AS VARCHAR) FROM _q"
                )
            finally:
                self.con.unregister("_q")
        return len(df)

    def quarantine(self, start=None, end=None, source=None, code=None, limit=None) -> pd.DataFrame:
        where, params = where_clause(
            [
                ("received_at >= {p}", None if start is None else to_utc_naive(start)),
                ("received_at < {p}", None if end is None else to_utc_naive(end)),
                ("source = {p}", source),
                ("code = {p}", code),
            ],
            "?",
        )
        sql = f"SELECT {', '.join(QUARANTINE_COLUMNS)} FROM quarantine {where} ORDER BY received_at DESC, rowid DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        try:
            df = self._df(sql, params)
        except duckdb.CatalogException:  # a store opened read-only before it had the table
            return pd.DataFrame(columns=list(QUARANTINE_COLUMNS))
        df = df.iloc[::-1].reset_index(drop=True)  # newest first for LIMIT, returned oldest first
        df["received_at"] = pd.to_datetime(df["received_at"]).dt.tz_localize("UTC")
        return df

    # -- meta --------------------------------------------------------------------------------
    def set_meta(self, key, value) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, json.dumps(value, default=str)])

    def meta(self, key, default=None):
        row = self.con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return default if row is None else json.loads(row[0])

    # -- API tokens --------------------------------------------------------------------------
    def put_token(self, token_id, name, role, token_hash) -> None:
        try:
            self.con.execute(
                "INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, NULL)",
                [str(token_id), str(name), str(role), str(token_hash), to_utc_naive(pd.Timestamp.now(tz="UTC"))],
            )
        except duckdb.ConstraintException:
            raise ValueError(f"a token with id {token_id!r} or the same secret exists already") from None

    def tokens(self, token_hash=None) -> pd.DataFrame:
        where, params = ("WHERE token_hash = ?", [token_hash]) if token_hash is not None else ("", [])
        return token_frame(self._df(f"SELECT {', '.join(TOKEN_COLUMNS)} FROM api_tokens {where} ORDER BY created_at, token_id", params))

    def revoke_token(self, token_id) -> bool:
        row = self.con.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL RETURNING token_id",
            [to_utc_naive(pd.Timestamp.now(tz="UTC")), str(token_id)],
        ).fetchone()
        return row is not None

    # -- leak alarms -------------------------------------------------------------------------
    def put_alarm(self, alarm) -> int:
        rec = alarm_record(alarm)
        cols = list(rec)
        return int(
            self.con.execute(
                f"INSERT INTO alarms ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) RETURNING alarm_id",
                [rec[c] for c in cols],
            ).fetchone()[0]
        )

    def alarms(self, status=None, dma=None, alarm_id=None) -> pd.DataFrame:
        clauses, params = [], []
        for col, value in (("status", status), ("dma", dma), ("alarm_id", alarm_id)):
            if value is not None:
                clauses.append(f"{col} = ?")  # column names are fixed here, values are parameters
                params.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return alarm_frame(self._df(f"SELECT {', '.join(ALARM_COLUMNS)} FROM alarms {where} ORDER BY detected_at DESC, alarm_id DESC", params))

    def update_alarm(self, alarm_id, changes, event=None) -> bool:
        fields = alarm_changes(changes)
        with self.transaction():
            row = self.con.execute("SELECT history FROM alarms WHERE alarm_id = ?", [int(alarm_id)]).fetchone()
            if row is None:
                return False
            history = json.loads(row[0] or "[]")
            if event is not None:
                history.append(event)
            fields["history"] = json.dumps(history, default=str)
            fields["updated_at"] = to_utc_naive(pd.Timestamp.now(tz="UTC"))
            # column names come from ALARM_MUTABLE (checked above), values are parameters
            sets = ", ".join(f"{c} = ?" for c in fields)
            self.con.execute(f"UPDATE alarms SET {sets} WHERE alarm_id = ?", [*fields.values(), int(alarm_id)])
        return True


def _filters(kind=None, dma=None, sensor_ids=None, start=None, end=None, sensor_table=""):
    """WHERE clause and parameters; values always go through parameters, never into the SQL.

    ``sensor_table`` is the alias prefix of the table holding kind and dma (e.g. ``"s."``).
    """
    clauses, params = [], []
    if kind is not None:
        clauses.append(f"{sensor_table}kind = ?")
        params.append(kind)
    if dma is not None:
        clauses.append(f"{sensor_table}dma = ?")
        params.append(dma)
    if sensor_ids is not None:
        ids = [sensor_ids] if isinstance(sensor_ids, str) else [str(i) for i in sensor_ids]
        clauses.append("list_contains(?::VARCHAR[], s.sensor_id)")
        params.append(ids)
    if start is not None:
        clauses.append("r.time >= ?")
        params.append(to_utc_naive(start))
    if end is not None:
        clauses.append("r.time < ?")
        params.append(to_utc_naive(end))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _quarantine_frame(rows) -> pd.DataFrame:
    """Quarantine rows with every column, received_at as naive UTC."""
    df = pd.DataFrame(rows)
    for col in QUARANTINE_COLUMNS:
        if col not in df.columns:
            df[col] = None
    df = df[list(QUARANTINE_COLUMNS)].copy()
    df["received_at"] = to_utc_naive(df["received_at"]) if len(df) else pd.Series(dtype="datetime64[us]")
    return df
