"""The store interface on both backends (the ``store`` fixture), then what is particular to each.

PostgreSQL tests need ``TIRTASU_TEST_POSTGRES_URL``; without it they skip (fail under CI=true).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tirtasu.store import open_store


def _registry():
    return pd.DataFrame(
        [
            {"sensor_id": "P_a", "kind": "pressure", "node_id": "a", "dma": "North"},
            {"sensor_id": "P_b", "kind": "pressure", "node_id": "b", "dma": "South"},
            {"sensor_id": "Q_m", "kind": "flow", "link_id": "m", "dma": "North", "unit": "L/s"},
        ]
    )


def _batch(sensor, start, n, values=None, freq="5min"):
    t = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    v = np.arange(n, dtype=float) if values is None else np.asarray(values, dtype=float)
    return pd.DataFrame({"sensor_id": sensor, "time": t, "value": v})


def test_registry_roundtrip_and_units(store):
    assert store.upsert_sensors(_registry()) == 3
    reg = store.sensors().set_index("sensor_id")
    assert reg.loc["P_a", "unit"] == "m"  # internal unit filled in
    assert reg.loc["Q_m", "unit"] == "L/s"  # the unit the meter reports in is kept
    assert list(store.sensors(kind="pressure", dma="North").sensor_id) == ["P_a"]
    with pytest.raises(ValueError, match="unknown pressure unit 'furlongs'"):
        store.upsert_sensors([{"sensor_id": "P_c", "kind": "pressure", "unit": "furlongs"}])
    with pytest.raises(ValueError, match="unknown kind"):
        store.upsert_sensors([{"sensor_id": "X", "kind": "temperature"}])


def test_add_readings_is_idempotent_and_never_overwrites(store):
    store.upsert_sensors(_registry())
    batch = _batch("P_a", "2025-01-01", 12)
    first = store.add_readings(batch)
    assert (first.added, first.unchanged, len(first.conflicts)) == (12, 0, 0)
    again = store.add_readings(batch)
    assert (again.added, again.unchanged, len(again.conflicts)) == (0, 12, 0)
    changed = batch.copy()
    changed.loc[5, "value"] = 99.0
    extra = _batch("P_a", "2025-01-01 01:00", 2, [7, 8])
    result = store.add_readings(pd.concat([changed, extra]))
    assert (result.added, result.unchanged) == (2, 11)
    assert result.conflicts[["value", "stored_value"]].values.tolist() == [[99.0, 5.0]]
    stored = store.readings(sensor_ids=["P_a"])
    assert len(stored) == 14 and stored.value.iloc[5] == 5.0


def test_add_readings_refuses_unknown_sensors_and_nan_atomically(store):
    store.upsert_sensors(_registry())
    good = _batch("P_a", "2025-01-01", 3)
    with pytest.raises(KeyError, match="unregistered sensor"):
        store.add_readings(pd.concat([good, _batch("P_zz", "2025-01-01", 3)]))
    with pytest.raises(ValueError, match="finite"):
        store.add_readings(_batch("P_a", "2025-01-01", 3, [1, np.nan, 2]))
    assert len(store.readings()) == 0  # nothing of either batch was kept


def test_transaction_rolls_back_everything(store):
    store.upsert_sensors(_registry())
    store.add_readings(_batch("P_a", "2025-01-01", 3))
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.add_readings(_batch("P_b", "2025-01-01", 3))
            store.set_meta("x", 1)
            raise RuntimeError("boom")
    assert len(store.readings()) == 3 and store.meta("x") is None


def test_query_filters_and_resampling_match_pandas(store):
    store.upsert_sensors(_registry())
    rng = np.random.default_rng(1)
    a = _batch("P_a", "2025-01-01", 288, rng.normal(40, 2, 288))
    b = _batch("P_b", "2025-01-01", 288, rng.normal(30, 2, 288))
    q = _batch("Q_m", "2025-01-01", 288, rng.normal(100, 10, 288))
    store.add_readings(pd.concat([a, b, q]))
    assert set(store.readings(kind="pressure").sensor_id) == {"P_a", "P_b"}
    assert set(store.readings(dma="North").sensor_id) == {"P_a", "Q_m"}
    window = store.readings(sensor_ids="P_a", start="2025-01-01 06:00", end=pd.Timestamp("2025-01-01 09:00+07:00"))
    # naive start is UTC; the aware end (09:00 in Jakarta) is 02:00 UTC → empty
    assert len(window) == 0
    window = store.readings(sensor_ids="P_a", start="2025-01-01 06:00", end="2025-01-01 07:00")
    assert len(window) == 12 and window.time.iloc[0] == pd.Timestamp("2025-01-01 06:00", tz="UTC")
    hourly = store.readings(sensor_ids=["P_a"], resample="1h", how="mean", wide=True)["P_a"]
    expected = a.set_index("time")["value"].resample("1h").mean()
    np.testing.assert_allclose(hourly.to_numpy(), expected.to_numpy())
    assert hourly.index.equals(expected.index)
    daily_max = store.readings(sensor_ids=["Q_m"], resample="1D", how="max")
    assert daily_max.value.iloc[0] == pytest.approx(q.value.max())
    counts = store.readings(kind="pressure", resample="6h", how="count", wide=True)
    assert (counts == 72).all().all()
    with pytest.raises(ValueError, match="unknown resampling interval"):
        store.readings(resample="fortnightly-ish")
    summary = store.readings_summary().set_index("sensor_id")
    assert summary.loc["P_b", "n"] == 288


def test_query_parameters_cannot_inject_sql(store):
    store.upsert_sensors(_registry())
    store.add_readings(_batch("P_a", "2025-01-01", 3))
    for evil in ["North' OR '1'='1", "x'; DROP TABLE readings; --"]:
        assert len(store.readings(dma=evil)) == 0
        assert len(store.readings(sensor_ids=[evil])) == 0
    assert len(store.readings()) == 3


def test_dmas_models_customers_billing_meta(store):
    store.set_dmas(pd.DataFrame({"node_id": ["a", "b"], "dma": ["North", "South"]}), pd.DataFrame({"dma": ["North"], "link_id": ["m"], "sign": [1]}))
    assert store.dma_nodes().values.tolist() == [["a", "North"], ["b", "South"]]
    assert store.dma_links().sign.tolist() == [1]
    store.put_model("net", "[TITLE]\n[END]\n")
    assert store.models() == ["net"] and store.model_text("net").startswith("[TITLE]")
    with pytest.raises(KeyError, match="no model named 'other'"):
        store.model_text("other")
    store.upsert_customers(pd.DataFrame({"customer_id": ["c1", "c2"], "node_id": ["a", "b"], "dma": ["North", "South"], "category": "residential", "metered": [True, False]}))
    store.add_billing(pd.DataFrame({"customer_id": ["c1", "c2", "c1"], "period_start": ["2025-01-01", "2025-01-01", "2025-02-01"], "period_end": ["2025-01-31", "2025-01-31", "2025-02-28"], "billed_m3": [10.0, 12.5, 9.0]}))
    assert store.billing(start="2025-01-01", end="2025-02-01").billed_m3.sum() == pytest.approx(22.5)
    assert store.billing(dma="North").billed_m3.sum() == pytest.approx(19.0)
    store.add_billing(pd.DataFrame({"customer_id": ["c1"], "period_start": ["2025-01-01"], "period_end": ["2025-01-31"], "billed_m3": [11.0]}))
    assert store.billing(dma="North").billed_m3.sum() == pytest.approx(20.0)  # a corrected bill replaces the old one
    store.set_meta("pilot", {"a": [1, 2]})
    assert store.meta("pilot") == {"a": [1, 2]} and store.meta("none", 5) == 5


def test_store_persists_and_reopens(tmp_path):
    path = tmp_path / "s.duckdb"
    with open_store(path) as st:
        st.upsert_sensors(_registry())
        st.add_readings(_batch("P_a", "2025-01-01", 5))
    with open_store(path) as st:
        assert len(st.readings()) == 5 and st.meta("schema_version") == 2


def test_unreachable_postgresql_server_is_named_not_a_traceback():
    # port 1: nothing listens there; no server is needed for this test
    with pytest.raises(RuntimeError, match=r"cannot connect to the PostgreSQL store at nobody@127\.0\.0\.1:1/nowhere"):
        open_store("postgresql://nobody:secret@127.0.0.1:1/nowhere?connect_timeout=2")


def test_batch_order_and_repeats(store):
    store.upsert_sensors(_registry())
    batch = pd.concat([_batch("P_b", "2025-01-01", 4), _batch("P_a", "2025-01-01", 4)]).iloc[::-1]
    repeated = pd.concat([batch, batch.iloc[:2]])  # the same readings twice: collapsed
    assert store.add_readings(repeated).added == 8
    stored = store.readings(wide=True)
    assert stored.index.is_monotonic_increasing and stored["P_a"].tolist() == [0.0, 1.0, 2.0, 3.0]
    clash = _batch("P_a", "2025-02-01", 2)
    clash = pd.concat([clash, clash.assign(value=[5.0, 1.0])])
    with pytest.raises(ValueError, match="1 \\(sensor, time\\) pairs appear with different values"):
        store.add_readings(clash)
    assert len(store.readings()) == 8


def test_store_of_another_schema_version_is_refused(tmp_path):
    path = tmp_path / "old.duckdb"
    with open_store(path) as st:
        st.set_meta("schema_version", 1)
    with pytest.raises(RuntimeError, match="schema version 1, this tirtasu needs 2"):
        open_store(path)


def test_week_and_multi_month_buckets_agree_across_backends(store):
    store.upsert_sensors(_registry())
    store.add_readings(_batch("P_a", "2024-11-20", 120, freq="1D"))  # 2024-11-20 … 2025-03-19
    weekly = store.readings(resample="1W", how="first")
    assert weekly.time.dt.day_of_week.eq(0).all()  # weeks start on Mondays
    assert weekly.value.iloc[:2].tolist() == [0.0, 5.0]  # Wed 20 Nov is in the week of Mon 18 Nov
    quarters = store.readings(resample="3MS", how="count")
    # buckets of 3 months counted from January 2000: Oct–Dec, Jan–Mar
    assert quarters.time.dt.strftime("%Y-%m").tolist() == ["2024-10", "2025-01"]
    assert quarters.value.tolist() == [42.0, 78.0]
    monthly = store.readings(resample="MS", how="last", start="2025-01-01")
    assert monthly.time.dt.month.tolist() == [1, 2, 3] and monthly.value.iloc[0] == 72.0


def test_nested_transactions_keep_the_outer_decision(store):
    store.upsert_sensors(_registry())
    with store.transaction():
        with store.transaction():
            store.add_readings(_batch("P_a", "2025-01-01", 3))
        store.add_readings(_batch("P_b", "2025-01-01", 3))  # a second batch in one transaction
        assert len(store.readings()) == 6
    with pytest.raises(RuntimeError):
        with store.transaction():
            with store.transaction():
                store.add_readings(_batch("Q_m", "2025-03-01", 3))  # a new month (partition) too
            raise RuntimeError("boom")
    assert len(store.readings()) == 6
    assert store.add_readings(_batch("Q_m", "2025-03-01", 3)).added == 3  # the rollback left no trace


# -- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture
def pg(pg_url):
    """A connection to the test's own schema, for looking behind the interface."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


@pytest.mark.postgres
def test_postgres_one_sensor_month_reads_one_partition_by_index(pg_url, pg):
    with open_store(pg_url) as st:
        st.upsert_sensors(_registry())
        for sensor in ("P_a", "P_b"):
            st.add_readings(_batch(sensor, "2024-12-01", 3 * 24 * 31, freq="1h"))  # Dec, Jan, Feb…
        partitions = {r[0] for r in pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'readings_%%'")}
        made = {"readings_default", "readings_y2024m12", "readings_y2025m01", "readings_y2025m02", "readings_y2025m03"}
        assert made <= partitions  # (with this month's and next month's, made on opening)
        assert st.create_partitions("2023-11-15", "2024-02-01") == ["readings_y2023m11", "readings_y2023m12", "readings_y2024m01"]
        key = pg.execute("SELECT sensor_key FROM sensors WHERE sensor_id = 'P_a'").fetchone()[0]
        query, params = st._readings_query([key], "2025-01-01", "2025-02-01")
        pg.execute("ANALYZE readings")
        pg.execute("SET enable_seqscan = off")  # tiny test tables: make the planner show the index path
        plan = "\n".join(r[0] for r in pg.execute(b"EXPLAIN " + query.as_bytes(pg), params))
        touched = sorted(set(re.findall(r"readings_(y\d{4}m\d{2}|default)", plan)))
        assert touched == ["y2025m01"], plan
        assert "Index" in plan and "readings_y2025m01_pkey" in plan, plan
        got = st.readings(sensor_ids=["P_a"], start="2025-01-01", end="2025-02-01")
        assert len(got) == 31 * 24 and got.time.min() == pd.Timestamp("2025-01-01", tz="UTC")


@pytest.mark.postgres
def test_postgres_replay_by_copy_stores_nothing_twice(pg_url, pg):
    rng = np.random.default_rng(3)
    batch = pd.concat(
        [_batch(s, "2025-01-31 12:00", 5000, rng.normal(40, 2, 5000), freq="1min") for s in ("P_a", "P_b", "Q_m")]
    ).sample(frac=1, random_state=1)  # shuffled, across a month boundary
    with open_store(pg_url) as st:
        st.upsert_sensors(_registry())
        assert st.add_readings(batch).added == 15000
    with open_store(pg_url) as st:  # a replay from another session
        again = st.add_readings(batch)
        assert (again.added, again.unchanged, len(again.conflicts)) == (0, 15000, 0)
        changed = batch.iloc[:10].assign(value=-1.0)
        clash = st.add_readings(pd.concat([changed, _batch("P_a", "2025-03-01", 4)]))
        assert (clash.added, clash.unchanged, len(clash.conflicts)) == (4, 0, 10)
        assert clash.conflicts.time.dt.tz is not None and (clash.conflicts.value == -1.0).all()
    assert pg.execute("SELECT count(*) FROM readings").fetchone()[0] == 15004
    assert pg.execute("SELECT count(*) FROM readings_default").fetchone()[0] == 0
    assert pg.execute("SELECT count(*) FROM readings WHERE value = -1").fetchone()[0] == 0


@pytest.mark.postgres
def test_postgres_concurrent_writers_of_one_batch_store_it_once(pg_url, pg):
    from concurrent.futures import ThreadPoolExecutor

    with open_store(pg_url) as st:
        st.upsert_sensors(_registry())
    batch = pd.concat([_batch(s, "2025-04-30 22:00", 500, freq="1min") for s in ("P_a", "P_b")])  # April and May

    def write(_):
        with open_store(pg_url) as st:
            return st.add_readings(batch)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(write, range(3)))  # all three make the same new partitions
    assert sum(r.added for r in results) == 1000 and sum(r.unchanged for r in results) == 2000
    assert pg.execute("SELECT count(*) FROM readings").fetchone()[0] == 1000


@pytest.mark.postgres
def test_postgres_migrates_an_old_database_in_place(pg_url, pg):
    from tirtasu.store.postgres import SCHEMA_VERSION, migrate, schema_version

    assert migrate(pg, target=1) == [1]  # the database as the first release left it
    pg.execute("INSERT INTO sensors (sensor_id, kind, unit, node_id, dma) VALUES ('P_a', 'pressure', 'm', 'a', 'North')")
    pg.execute("CREATE TABLE readings_y2025m01 PARTITION OF readings FOR VALUES FROM ('2025-01-01 00:00+00') TO ('2025-02-01 00:00+00')")
    pg.execute("INSERT INTO readings SELECT 1, t, 42 FROM generate_series(timestamptz '2025-01-01 00:00+00', '2025-01-01 01:00+00', interval '5 min') t")
    pg.execute("INSERT INTO imports (source, checksum) VALUES ('old.csv', 'abc')")
    with open_store(pg_url) as st:
        assert schema_version(st.conn) == SCHEMA_VERSION
        assert len(st.readings(sensor_ids=["P_a"])) == 13 and st.imports().source.tolist() == ["old.csv"]
        st.add_readings(_batch("P_a", "2025-01-01 01:05", 2, [1, 2]))
        st.upsert_sensors(_registry())  # new sensors get keys after the old ones
    versions = [r[0] for r in pg.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert pg.execute("SELECT count(*) FROM readings").fetchone()[0] == 15
    assert pg.execute("SELECT to_regclass('readings_default') IS NOT NULL").fetchone()[0]
    assert migrate(pg) == []  # nothing left to do


@pytest.mark.postgres
def test_postgres_store_of_a_newer_version_is_refused(pg_url, pg):
    with open_store(pg_url):
        pass
    pg.execute("INSERT INTO schema_migrations (version, description) VALUES (999, 'from the future')")
    with pytest.raises(RuntimeError, match="schema version 999, newer than this tirtasu knows"):
        open_store(pg_url)


@pytest.mark.postgres
def test_postgres_chosen_by_environment_and_read_only(pg_url, monkeypatch):
    monkeypatch.setenv("TIRTASU_STORE", pg_url)
    with open_store() as st:
        assert type(st).__name__ == "PostgresStore" and ":" in st.url
        st.set_meta("k", 1)
    with open_store(read_only=True) as st:
        assert st.meta("k") == 1
        with pytest.raises(Exception, match="read-only"):
            st.set_meta("k", 2)


@pytest.mark.postgres
def test_postgres_bulk_copy_path_and_its_fallbacks(pg_url, monkeypatch):
    from tirtasu.store import postgres

    monkeypatch.setattr(postgres, "_BULK_ROWS", 1000)
    monkeypatch.setattr(postgres, "_CHUNK_ROWS", 700)  # several chunks per batch
    first = pd.concat([_batch(s, "2025-01-30", 2000, freq="1min") for s in ("P_a", "P_b")])
    with open_store(pg_url) as st:
        st.upsert_sensors(_registry())
        copied = []
        copy = st._copy_if_new
        monkeypatch.setattr(st, "_copy_if_new", lambda *a: copied.append(copy(*a)) or copied[-1])
        assert st.add_readings(first).added == 4000 and copied == [True]  # new history: COPY
        # January 2025 had no partition: built as a table, indexed, attached, its CHECK dropped
        assert "readings_y2025m01" in st._partitions()
        assert st._rows("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'readings_y2025m01'") == [("readings_y2025m01_pkey",)]
        assert st._rows("SELECT conname FROM pg_constraint WHERE conrelid = 'readings_y2025m01'::regclass AND contype = 'c'") == []
        assert st._rows("SELECT count(*) FROM ONLY readings_default") == [(0,)]
        again = st.add_readings(first)  # stored already: the probe sends it down the INSERT path
        assert (again.added, again.unchanged, len(again.conflicts), copied[-1]) == (0, 4000, 0, False)
        # a concurrent writer's rows the probe did not see: the COPY fails, its savepoint is
        # rolled back, and the INSERT path counts them (a changed value is a conflict)
        monkeypatch.setattr(st, "_nothing_stored", lambda keys, times: True)
        overlap = _batch("P_a", "2025-01-30 16:40", 1500, np.arange(1000, 2500), freq="1min")  # 1000 stored, 500 new
        overlap.loc[3, "value"] = -1.0
        with st.transaction():
            res = st.add_readings(overlap)
        assert (res.added, res.unchanged, len(res.conflicts), copied[-1]) == (500, 999, 1, False)
        assert res.conflicts.iloc[0]["stored_value"] == 1003.0
        assert len(st.readings(sensor_ids=["P_a"])) == 2500
