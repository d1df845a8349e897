"""Benchmark: MQTT → PostgreSQL ingestion rate and end-to-end lag.

Starts a mosquitto of its own on a free port (persistent, unlimited queue) and uses a fresh
schema on the PostgreSQL server of ``--store`` (default: ``$TIRTASU_TEST_POSTGRES_URL``, else
``postgresql://postgres@127.0.0.1:5432/test``), dropped afterwards. A publisher *process*
publishes SenML at QoS 1 at a fixed rate for ``--seconds``; the ingester (``tirtasu.ingest.mqtt``,
same code as ``tirtasu ingest mqtt``) runs in this process. Each pack carries its publish time as
``bt``; the lag of a reading is the time from its publish to the commit that makes it queryable.

Runs, each checked for zero loss (every reading stored, once):

1. packs of ``--pack`` readings per message, paced at ``--rate`` readings/s;
2. one reading per message, as fast as the publisher can.

Writes the figures between ``<!-- bench_mqtt -->`` markers in docs/benchmarks.md.

Usage::

    python benchmarks/bench_mqtt.py [--rate 20000] [--seconds 10] [--pack 10] [--sensors 100] [--no-docs]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _docs import machine_line, write_section  # noqa: E402

from tirtasu.ingest.mqtt import Ingester  # noqa: E402
from tirtasu.store import open_store  # noqa: E402

TARGET = 20_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(workdir: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {workdir}/\nmax_queued_messages 0\nlog_dest none\n"
        + ("user root\n" if os.geteuid() == 0 else "")  # else it drops to a user who cannot write here
    )
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


def publisher(port: int, sensors: int, pack: int, rate: float, seconds: float, out) -> None:
    """Publish ``rate`` readings/s (0: as fast as possible) for ``seconds``; report the count."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}")
    client.max_inflight_messages_set(2000)
    acked = [0]
    client.on_publish = lambda c, u, mid, rc, p: acked.__setitem__(0, acked[0] + 1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = time.time()
    sent = msgs = 0
    seq = 0
    while True:
        now = time.time()
        if now - start >= seconds:
            break
        if rate and sent > (now - start) * rate:
            time.sleep(0.0005)
            continue
        sensor = f"S{seq % sensors}"
        # bt = publish time in whole ms, records 1 ms apart: every (sensor, time) is new (the
        # store keeps µs; float offsets of 1 µs on a sub-µs base time would round onto each other)
        bt = round(now, 3)
        if pack == 1:
            payload = json.dumps({"t": round(now, 6), "v": 40.0 + seq % 13})
        else:
            payload = json.dumps([{"bn": sensor, "bt": bt, "v": 40.0}] + [{"t": k * 1e-3, "v": 40.0 + k % 13} for k in range(1, pack)])
        client.publish(f"tirtasu/bench/{sensor}", payload, qos=1)
        seq += 1
        msgs += 1
        sent += pack
        while msgs - acked[0] > 1500:  # the broker's window
            time.sleep(0.0005)
    while acked[0] < msgs:
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    out.put((sent, msgs, time.time() - start))


def run_case(port: int, url: str, sensors: int, pack: int, rate: float, seconds: float) -> dict:
    with open_store(url) as st:
        before = len(st.readings())
    lags: list[np.ndarray] = []
    commits: list[tuple[float, int]] = []

    def on_commit(batch, result, committed_at):
        t = np.asarray(batch.times_us, dtype=np.float64) / 1e6
        lags.append(committed_at - t)
        commits.append((committed_at, result.accepted, float(t.min()) if len(t) else committed_at))

    ing = Ingester(
        f"mqtt://127.0.0.1:{port}", url, topic="tirtasu/bench/+", client_id=f"bench-{uuid.uuid4().hex[:6]}",
        batch_size=5000, batch_seconds=0.1, on_commit=on_commit, receive_maximum=20000,
    )
    ready = threading.Event()
    th = threading.Thread(target=ing.run, kwargs={"ready": ready}, daemon=True)
    th.start()
    ready.wait(15)
    ctx = mp.get_context("spawn")  # a fresh interpreter: no paho threads inherited
    q = ctx.Queue()
    pub = ctx.Process(target=publisher, args=(port, sensors, pack, rate, seconds, q))
    pub.start()
    sent, msgs, pub_seconds = q.get(timeout=seconds + 120)
    pub.join()
    deadline = time.time() + 120
    while ing.stats.accepted + ing.stats.duplicates < sent and time.time() < deadline:
        time.sleep(0.05)
    ing.stop()
    th.join()
    with open_store(url) as st:
        stored = len(st.readings()) - before
        rejected = len(st.quarantine())
    lag = np.concatenate(lags) if lags else np.zeros(1)
    # from the first reading's publish (not the publisher's start-up) to the last commit
    last_commit = max(c for c, _, _ in commits)
    first_publish = min(f for _, _, f in commits)
    return {
        "pack": pack,
        "sent": sent,
        "messages": msgs,
        "publish_rate": sent / pub_seconds,
        "ingest_rate": stored / (last_commit - first_publish),
        "stored": stored,
        "lost": sent - stored,
        "duplicates": ing.stats.duplicates,
        "rejected": rejected,
        "p50": float(np.percentile(lag, 50)),
        "p99": float(np.percentile(lag, 99)),
        "max": float(lag.max()),
        "batches": ing.stats.batches,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default=os.environ.get("TIRTASU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--rate", type=float, default=TARGET)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--pack", type=int, default=10)
    ap.add_argument("--sensors", type=int, default=100)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()

    import psycopg

    schema = f"bench_mqtt_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.store, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = args.store + ("&" if "?" in args.store else "?") + "options=" + quote(f"-csearch_path={schema}")
    workdir = Path(tempfile.mkdtemp(prefix="bench-mqtt-"))
    broker, port = start_broker(workdir)
    try:
        with open_store(url) as st:
            st.upsert_sensors(pd.DataFrame({"sensor_id": [f"S{i}" for i in range(args.sensors)], "kind": "pressure"}))
        cases = [
            run_case(port, url, args.sensors, args.pack, args.rate, args.seconds),
            run_case(port, url, args.sensors, 1, 0, args.seconds),
        ]
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.wait()
        with psycopg.connect(args.store, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    for c in cases:
        print(
            f"pack {c['pack']:>3}: sent {c['sent']:,} ({c['messages']:,} msgs) at {c['publish_rate']:,.0f}/s, "
            f"stored {c['stored']:,} at {c['ingest_rate']:,.0f}/s, lost {c['lost']}, dup {c['duplicates']}, "
            f"lag p50 {c['p50'] * 1000:.0f} ms p99 {c['p99'] * 1000:.0f} ms max {c['max'] * 1000:.0f} ms"
        )
    if args.no_docs:
        return
    rows = "\n".join(
        f"| {'SenML packs of ' + str(c['pack']) if c['pack'] > 1 else 'one reading per message'} | "
        f"{'paced at ' + format(int(args.rate), ',') + '/s' if c['pack'] > 1 else 'as fast as possible'} | "
        f"{c['sent']:,} ({c['messages']:,}) | {c['publish_rate']:,.0f} | **{c['ingest_rate']:,.0f}** | {c['lost']} | "
        f"{c['p50'] * 1000:.0f} | {c['p99'] * 1000:.0f} |"
        for c in cases
    )
    section = f"""## MQTT → PostgreSQL ingestion (`benchmarks/bench_mqtt.py`)

A publisher process sends SenML at QoS 1 to a local mosquitto for {args.seconds:g} s; `tirtasu.ingest.mqtt`
(MQTT 5 persistent session, manual acknowledgement after commit, batches of ≤ 5000 readings or
0.1 s) writes to PostgreSQL on the same 2-core machine. Lag: from publish to the commit that makes the
reading queryable. Target: ≥ {TARGET:,} readings/s sustained with zero loss.

| stream | publisher | readings (messages) | published/s | stored/s | lost | lag p50 [ms] | lag p99 [ms] |
|---|---|---:|---:|---:|---:|---:|---:|
{rows}

"lost" counts readings published (acknowledged by the broker) but not stored; every stored reading
is stored once (primary key). Publisher, broker, ingester and PostgreSQL share the two cores.
{machine_line("paho-mqtt", "psycopg", "numpy", "pandas")}
"""
    write_section("bench_mqtt", section)


if __name__ == "__main__":
    main()
