"""Benchmark: HTTP batch ingest, ``POST /api/v1/readings`` with SenML packs, into PostgreSQL.

Starts ``tirtasu serve`` (uvicorn, one process) in a subprocess on a free loopback port, on a
fresh PostgreSQL schema with ``--sensors`` pressure sensors and an operator token, and posts
``--packs`` SenML packs of ``--pack`` readings each (default 200 × 10,000 = 2 M readings), each
pack like a gateway's: 100 sensors × 100 five-minute readings, ``bn``/``bt`` on each sensor's
first record, then ``{"t", "v"}`` (about 22 bytes a reading, under the 256 KiB payload limit).
``--clients`` threads post concurrently, each on its own keep-alive connection; the packs are
made beforehand, so the figure is the server's: readings/s from the first request sent to the
last response received, every reading acknowledged as accepted (and counted in the database
afterwards). Target: ≥ 100,000 readings/s. Writes the figures into ``docs/benchmarks.md``
(section ``bench_http_ingest``) unless ``--no-docs``.

Usage::

    python benchmarks/bench_http_ingest.py [--store postgresql://postgres@127.0.0.1:5432/test]
        [--packs 200] [--pack 10000] [--clients 1 --clients 2] [--no-docs]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _docs import machine_line, write_section  # noqa: E402

TARGET = 100_000
T0 = 1_704_067_200  # 2024-01-01 UTC
STEP = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_packs(n_packs: int, per_pack: int, sensors: int, seed: int = 5) -> list[bytes]:
    """Packs of 100 sensors × (per_pack / 100) readings; together new (sensor, time) pairs only."""
    rng = np.random.default_rng(seed)
    per_sensor = per_pack // 100
    groups = sensors // 100
    packs = []
    for i in range(n_packs):
        group, block = i % groups, i // groups
        recs = []
        for j in range(100):
            values = np.round(rng.uniform(30, 60, per_sensor), 2).tolist()
            recs.append({"bn": f"H{group * 100 + j:04d}", "bt": T0 + block * per_sensor * STEP, "t": 0, "v": values[0]})
            recs += [{"t": k * STEP, "v": values[k]} for k in range(1, per_sensor)]
        packs.append(orjson.dumps(recs))
    return packs


def _schema_url(base: str, schema: str) -> str:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # a fixed name, from this script
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def run(base: str, packs: list[bytes], per_pack: int, sensors: int, clients: int) -> dict:
    import httpx

    from tirtasu.service.auth import create_token
    from tirtasu.store import open_store

    url = _schema_url(base, "tirtasu_bench_http")
    ids = [f"H{i:04d}" for i in range(sensors)]
    with open_store(url) as st:
        st.upsert_sensors(pd.DataFrame({"sensor_id": ids, "kind": "pressure", "node_id": ids, "dma": "BENCH"}))
        blocks = len(packs) // (sensors // 100) + 1
        st.create_partitions(pd.Timestamp(T0, unit="s", tz="UTC"), pd.Timestamp(T0 + blocks * (per_pack // 100) * STEP, unit="s", tz="UTC"))
        _, secret = create_token(st, "bench", "operator")
    port = _free_port()
    exe = Path(sys.executable).with_name("tirtasu")
    cmd = [str(exe), "serve", "--store", url, "--port", str(port), "--detect-every", "0", "--log-level", "warning"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base_url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                raise RuntimeError(f"tirtasu serve exited: {server.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        warm, timed = packs[:2], packs[2:]
        with httpx.Client(base_url=base_url, headers=headers, timeout=120) as c:
            for p in warm:
                r = c.post("/api/v1/readings", content=p)
                r.raise_for_status()
        accepted, latencies, errors = [0] * clients, [], []
        lock = threading.Lock()
        queue = iter(timed)

        def client(k: int) -> None:
            with httpx.Client(base_url=base_url, headers=headers, timeout=120) as c:
                while True:
                    with lock:
                        p = next(queue, None)
                    if p is None:
                        return
                    t = time.perf_counter()
                    r = c.post("/api/v1/readings", content=p)
                    latencies.append(time.perf_counter() - t)
                    if r.status_code != 200:
                        errors.append(r.text[:300])
                        return
                    accepted[k] += r.json()["accepted"]

        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.perf_counter() - t0
        load_after = os.getloadavg()[0]
        if errors:
            raise RuntimeError(f"refused: {errors[0]}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    with open_store(url) as st:
        stored = int(st.conn.execute("SELECT count(*) FROM readings").fetchone()[0])
    expected = per_pack * len(packs)
    if stored != expected or sum(accepted) != per_pack * len(timed):
        raise RuntimeError(f"stored {stored:,} readings (expected {expected:,}), accepted {sum(accepted):,}")
    return {
        "clients": clients,
        "readings": per_pack * len(timed),
        "packs": len(timed),
        "bytes": int(np.mean([len(p) for p in timed])),
        "seconds": elapsed,
        "rate": per_pack * len(timed) / elapsed,
        "p50_ms": float(np.percentile(latencies, 50)) * 1e3,
        "p99_ms": float(np.percentile(latencies, 99)) * 1e3,
        "load": max(load_before, load_after),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default="postgresql://postgres@127.0.0.1:5432/test", help="PostgreSQL server URL (schema tirtasu_bench_http is made afresh).")
    ap.add_argument("--packs", type=int, default=200)
    ap.add_argument("--pack", type=int, default=10_000, help="readings per pack (a multiple of 100)")
    ap.add_argument("--sensors", type=int, default=1000, help="registered sensors (a multiple of 100)")
    ap.add_argument("--clients", type=int, action="append", help="concurrent clients (repeatable; default 1 and 2)")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    print(f"making {args.packs} packs of {args.pack:,} readings …", flush=True)
    packs = make_packs(args.packs, args.pack, args.sensors)
    results = []
    for clients in args.clients or [1, 2]:
        res = run(args.store, packs, args.pack, args.sensors, clients)
        results.append(res)
        print(
            f"{clients} client(s): {res['readings']:,} readings in {res['packs']} packs ({res['bytes'] / 1024:.0f} KiB each) "
            f"in {res['seconds']:.2f} s: {res['rate']:,.0f} readings/s; request p50 {res['p50_ms']:.0f} ms, "
            f"p99 {res['p99_ms']:.0f} ms; load {res['load']:.1f} "
            f"(target ≥ {TARGET:,}/s: {'met' if res['rate'] >= TARGET else 'NOT met'})",
            flush=True,
        )
    if args.no_docs:
        return
    best = max(r["rate"] for r in results)
    lines = [
        "## HTTP batch ingest (`benchmarks/bench_http_ingest.py`)",
        "",
        f"`POST /api/v1/readings` with SenML packs of {args.pack:,} readings (100 sensors × "
        f"{args.pack // 100} five-minute readings, `bn`/`bt` then `{{\"t\", \"v\"}}`, "
        f"{results[0]['bytes'] / 1024:.0f} KiB each) to `tirtasu serve` (uvicorn, one process) "
        "on PostgreSQL, real HTTP on loopback, operator token; packs made beforehand; readings/s from the "
        "first request to the last response, every reading accepted and stored once (counted afterwards). "
        f"Target ≥ {TARGET:,} readings/s.",
        "",
        "| clients | readings (packs) | time [s] | readings/s | request p50 [ms] | request p99 [ms] | load average |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['clients']} | {r['readings']:,} ({r['packs']}) | {r['seconds']:.2f} | **{r['rate']:,.0f}** | "
            f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['load']:.1f} |"
        )
    lines += [
        "",
        f"Target {'met' if best >= TARGET else 'not met'} (best {best:,.0f} readings/s). Client, server and "
        "PostgreSQL share the machine's cores; the load average (1 min, highest of start and end) shows "
        "what else was running.",
        "",
        machine_line("fastapi", "uvicorn", "psycopg", "orjson", "numpy"),
    ]
    write_section("bench_http_ingest", "\n".join(lines))
    print("written to docs/benchmarks.md")


if __name__ == "__main__":
    main()
