"""Benchmark: GET /api/v1/readings for one sensor-month with 100 M readings stored.

Fills a store with ``--sensors`` sensors × 5-minute readings over ``--days`` days (default
1,000 × 100,000 = 100 M readings, 2024-01-01 onwards), then serves it with ``tirtasu serve``'s
app under uvicorn on a free loopback port and asks, over HTTP with a viewer token, for one random
sensor's readings over one random 30-day month (8,640 rows, JSON) ``--requests`` times in a row.
Prints p50/p95/p99/max latency; the target is p99 < 50 ms. Writes the figures into
``docs/benchmarks.md`` (section ``bench_api``) unless ``--no-docs``.

The data are generated inside the database (``generate_series`` on PostgreSQL, ``range`` on
DuckDB) into the store's own ``readings`` table, month by month in (sensor, time) order: about a
tenth of the time ``add_readings`` would take for 100 M rows, and the same table layout. A store
that already holds the generated data (its ``meta`` says so) is reused.

Usage::

    python benchmarks/bench_api.py [--store postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dtirtasu_bench]
        [--sensors 1000] [--days 347.23] [--requests 300] [--no-docs]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _docs import machine_line, write_section  # noqa: E402

from tirtasu.store import open_store

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dtirtasu_bench"
START = pd.Timestamp("2024-01-01", tz="UTC")
STEP = pd.Timedelta("5min")
TARGET_P99_MS = 50.0


def _ensure_schema(url: str) -> None:
    """Create the schema named in the URL's search_path (PostgreSQL), if missing."""
    import re
    from urllib.parse import unquote

    import psycopg

    m = re.search(r"search_path(?:%3D|=)([A-Za-z_][A-Za-z0-9_]*)", unquote(url))
    if m:
        base = url.split("?", 1)[0]
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{m.group(1)}"')  # name checked by the regex


def generate(st, sensors: int, days: float) -> int:
    """Fill ``st`` with the benchmark's readings unless it holds them already; returns their count."""
    n_times = int(round(days * 86400 / STEP.total_seconds()))
    spec = {"sensors": sensors, "times": n_times, "start": START.isoformat()}
    if st.meta("bench_api") == spec:
        return sensors * n_times
    ids = [f"B{i:04d}" for i in range(sensors)]
    st.upsert_sensors(pd.DataFrame({"sensor_id": ids, "kind": "pressure", "node_id": ids, "dma": "BENCH"}))
    end = START + n_times * STEP
    months = pd.date_range(START.tz_localize(None), end.tz_localize(None), freq="MS").tz_localize("UTC").tolist()
    bounds = [START, *[m for m in months if START < m < end], end]
    pg = type(st).__name__ == "PostgresStore"
    if pg:
        st.create_partitions(START, end)
    t0 = time.perf_counter()
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if pg:
            st.conn.execute(
                "INSERT INTO readings (sensor_key, time, value) "
                "SELECT s.sensor_key, t, 30 + 10 * sin(extract(epoch FROM t) / 13751.0 + s.sensor_key) "
                "FROM sensors s CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz - interval '1 microsecond', interval '5 minutes') t "
                "WHERE s.sensor_id LIKE 'B%%' ORDER BY s.sensor_key, t",
                [lo.to_pydatetime(), hi.to_pydatetime()],
            )
        else:
            st.con.execute(
                "INSERT INTO readings SELECT s.sensor_key, t, 30 + 10 * sin(epoch(t) / 13751.0 + s.sensor_key) "
                "FROM sensors s CROSS JOIN range(?::TIMESTAMP, ?::TIMESTAMP, INTERVAL 5 MINUTE) r(t) "
                "WHERE s.sensor_id LIKE 'B%' ORDER BY s.sensor_key, t",
                [lo.tz_localize(None).to_pydatetime(), hi.tz_localize(None).to_pydatetime()],
            )
        print(f"  {lo:%Y-%m}: {time.perf_counter() - t0:,.0f} s", flush=True)
    if pg:
        st.conn.execute("ANALYZE readings")
    st.set_meta("bench_api", spec)
    return sensors * n_times


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(url: str, sensors: int, days: float, requests: int, seed: int = 1) -> dict:
    import httpx
    import uvicorn

    from tirtasu.service import create_app
    from tirtasu.service.auth import create_token

    if url.startswith("postgres"):
        _ensure_schema(url)
    t0 = time.perf_counter()
    with open_store(url) as st:
        total = generate(st, sensors, days)
        _, secret = create_token(st, "bench", "viewer")
    setup_s = time.perf_counter() - t0
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(url), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    rng = np.random.default_rng(seed)
    n_times = int(round(days * 86400 / STEP.total_seconds()))
    month = pd.Timedelta(days=30)
    lat, rows = [], []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {secret}"}, timeout=30) as client:
            for i in range(requests + 10):
                sensor = f"B{rng.integers(sensors):04d}"
                start = START + STEP * int(rng.integers(0, n_times - 8640))
                params = {"sensor": sensor, "from": start.isoformat(), "to": (start + month).isoformat()}
                t = time.perf_counter()
                r = client.get("/api/v1/readings", params=params)
                dt_ms = (time.perf_counter() - t) * 1e3
                r.raise_for_status()
                if i >= 10:  # the first requests warm caches and connections
                    lat.append(dt_ms)
                    rows.append(r.json()["count"])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    lat = np.array(lat)
    return {
        "backend": "PostgreSQL" if url.startswith("postgres") else "DuckDB",
        "readings": total,
        "setup_s": setup_s,
        "requests": len(lat),
        "rows": int(np.median(rows)),
        "p50": float(np.percentile(lat, 50)),
        "p95": float(np.percentile(lat, 95)),
        "p99": float(np.percentile(lat, 99)),
        "max": float(lat.max()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # argparse formats help with %, and the default URL holds one (%3D)
    ap.add_argument("--store", action="append", help="Store URL(s) to measure (default: " + DEFAULT_PG.replace("%", "%%") + ").")
    ap.add_argument("--sensors", type=int, default=1000)
    ap.add_argument("--days", type=float, default=100_000 * 300 / 86400, help="Days of 5-min readings per sensor.")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    results = []
    for url in args.store or [DEFAULT_PG]:
        print(f"{url}: generating / checking {args.sensors:,} sensors × {args.days:g} days …", flush=True)
        res = run(url, args.sensors, args.days, args.requests)
        results.append(res)
        print(
            f"{res['backend']}: {res['readings']:,} readings; {res['requests']} requests of {res['rows']:,} rows: "
            f"p50 {res['p50']:.1f} ms, p95 {res['p95']:.1f} ms, p99 {res['p99']:.1f} ms, max {res['max']:.1f} ms "
            f"(target p99 < {TARGET_P99_MS:g} ms: {'met' if res['p99'] < TARGET_P99_MS else 'NOT met'})",
            flush=True,
        )
    if not args.no_docs:
        lines = [
            "## API readings query (`benchmarks/bench_api.py`)",
            "",
            "`GET /api/v1/readings?sensor=…&from=…&to=…` for one random sensor and 30-day month (8,640 "
            "5-minute readings, JSON), over HTTP on loopback to `create_app` under uvicorn, one request "
            "at a time, with a viewer token (so each request also checks the token in the store).",
            "",
            "| backend | readings stored | requests | p50 [ms] | p95 [ms] | p99 [ms] | max [ms] | target p99 < 50 ms |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in results:
            lines.append(
                f"| {r['backend']} | {r['readings']:,} | {r['requests']} | {r['p50']:.1f} | {r['p95']:.1f} | "
                f"{r['p99']:.1f} | {r['max']:.1f} | {'met' if r['p99'] < TARGET_P99_MS else 'not met'} |"
            )
        load = os.getloadavg()[0]
        lines += [
            "",
            machine_line("fastapi", "uvicorn", "duckdb", "psycopg", "orjson")
            + f" Load average during the run: {load:.1f} on {os.cpu_count()} cores"
            + (" (other work was running: tail latencies are inflated)." if load > 1.5 else "."),
        ]
        write_section("bench_api", "\n".join(lines))
        print("written to docs/benchmarks.md")


if __name__ == "__main__":
    main()
