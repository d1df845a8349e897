"""MQTT ingestion against real servers: end to end, and through broker, ingester and PostgreSQL restarts.

The end-to-end test uses the broker of ``TIRTASU_TEST_MQTT_URL`` (skipped without it, failed under
CI). The restart tests start their own ``mosquitto`` (a free port, a persistence file) and, for
the PostgreSQL restart, their own throwaway PostgreSQL (initdb + pg_ctl in a temporary
directory) so that the machine's shared servers are never stopped.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.mqtt

paho = pytest.importorskip("paho.mqtt.client")

from tirtasu.ingest.mqtt import Ingester, parse_broker_url  # noqa: E402
from tirtasu.store import open_store  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")
T0 = 1_700_000_000.0


# -- servers ------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


class Broker:
    """A mosquitto of our own, persistent, that can be restarted."""

    def __init__(self, workdir: Path):
        if not shutil.which("mosquitto"):
            pytest.skip("the mosquitto binary is not installed")
        self.port = _free_port()
        self.conf = workdir / "mosquitto.conf"
        # unlimited queue: messages wait for the ingester's session however many there are
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {workdir}/\nmax_queued_messages 0\nlog_dest none\n"
            # as root, mosquitto drops to user mosquitto, who could not write its persistence file here
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        self.proc = None
        self.start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port)

    def stop(self) -> None:
        # SIGTERM: mosquitto saves its sessions and queued messages to the persistence file
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)

    def restart(self, down: float = 0.5) -> None:
        self.stop()
        time.sleep(down)
        self.start()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    yield b
    b.proc.kill()
    b.proc.wait()


def _as_postgres(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class Postgres:
    """A throwaway PostgreSQL server in a temporary directory, on a free port."""

    def __init__(self):
        if not (PG_BIN / "initdb").exists():
            pytest.skip(f"no PostgreSQL binaries in {PG_BIN}")
        self.dir = Path(tempfile.mkdtemp(prefix="tirtasu-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.port = _free_port()
        subprocess.run(
            _as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"), "-w", *args]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def own_postgres():
    pg = Postgres()
    yield pg
    pg.close()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    """A store URL per backend (the ingester opens its own connection)."""
    if request.param == "duckdb":
        return str(tmp_path / "ingest.duckdb")
    return request.getfixturevalue("pg_url")


def _register(url: str, sensors=("P1", "P2", "Q1")) -> None:
    with open_store(url) as st:
        st.upsert_sensors(pd.DataFrame({"sensor_id": list(sensors), "kind": ["flow" if s.startswith("Q") else "pressure" for s in sensors]}))


# -- publishing ---------------------------------------------------------------------------------
def publish_all(url: str, messages: list[tuple[str, bytes]], timeout: float = 60.0, during=None) -> None:
    """Publish at QoS 1 until the broker has acknowledged every message (at least once).

    Whatever the broker has not acknowledged after a stall (it was restarted) is published again;
    duplicates are the ingester's business. ``during(i)`` is called after the i-th publish.
    """
    b = parse_broker_url(url)
    acked: collections.deque = collections.deque()  # filled by paho's thread; no lock shared with it
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(500)
    client.on_publish = lambda c, u, mid, rc, props: acked.append(mid)
    client.reconnect_delay_set(0.1, 1)
    client.connect_async(b["host"], b["port"])
    client.loop_start()
    pending: dict[int, int] = {}  # mid → message index
    done: set[int] = set()

    def drain():
        while acked:
            mid = acked.popleft()
            if mid in pending:
                done.add(pending.pop(mid))

    def send(i):
        info = client.publish(messages[i][0], messages[i][1], qos=1)
        pending[info.mid] = i

    try:
        for i in range(len(messages)):
            send(i)
            if during:
                during(i)
            if len(pending) > 400:
                drain()
                time.sleep(0.001)
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while len(done) < len(messages):
            assert time.monotonic() < deadline, f"the broker acknowledged {len(done)} of {len(messages)} messages"
            time.sleep(0.05)
            before = len(done)
            drain()
            if len(done) > before:
                last = time.monotonic()
            elif time.monotonic() - last > 2.0 and client.is_connected():
                # stalled: publish again whatever is still unacknowledged
                for i in sorted(set(range(len(messages))) - done):
                    send(i)
                last = time.monotonic()
    finally:
        client.disconnect()
        client.loop_stop()


def _stream(prefix: str, n: int, sensors=("P1", "P2")) -> list[tuple[str, bytes]]:
    """n readings, one per message, alternating sensors, plain form."""
    return [
        (f"{prefix}/{sensors[i % len(sensors)]}", json.dumps({"t": T0 + i // len(sensors), "v": 30 + i % 7}).encode())
        for i in range(n)
    ]


def _wait_count(url: str, n: int, timeout: float = 60.0) -> pd.DataFrame:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open_store(url) as st:
                df = st.readings()
        except RuntimeError:  # DuckDB file held by the ingester, or server restarting
            df = None
        if df is not None and len(df) >= n:
            return df
        assert time.monotonic() < deadline, f"{0 if df is None else len(df)} of {n} readings stored"
        time.sleep(0.2)


# -- in-process ingester --------------------------------------------------------------------------
class Running:
    def __init__(self, broker_url, store_url, topic, **kw):
        self.ingester = Ingester(
            broker_url, store_url, topic=topic, client_id=f"ing-{uuid.uuid4().hex[:8]}",
            batch_seconds=0.05, reconnect_delay=(0.1, 1.0), **kw,
        )
        ready = threading.Event()
        self.thread = threading.Thread(target=self.ingester.run, kwargs={"ready": ready}, daemon=True)
        self.thread.start()
        assert ready.wait(15), "the ingester did not subscribe"

    def stop(self):
        self.ingester.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()
        return self.ingester.stats


def test_end_to_end_mixed_stream(mqtt_url, store_url):
    """SenML packs, plain readings, duplicates, out-of-order and malformed payloads in one stream."""
    _register(store_url)
    prefix = f"tirtasu/test-{uuid.uuid4().hex[:8]}"
    run = Running(mqtt_url, store_url, f"{prefix}/+")
    good = [(f"{prefix}/P1", json.dumps({"t": T0 + i, "v": float(i)}).encode()) for i in range(50)]
    good.reverse()  # out of order
    good.append((f"{prefix}/gw", json.dumps([{"bn": "P2", "bt": T0, "v": 0.0}] + [{"t": i, "v": 1.5 * i} for i in range(1, 50)]).encode()))
    good.append((f"{prefix}/Q1", json.dumps([{"bt": T0, "bu": "l/s", "v": 1}, {"t": 1, "v": 2}]).encode()))
    dups = good[:10] + good[-2:]  # redelivered / replayed
    bad = [
        (f"{prefix}/P1", b"not json"),
        (f"{prefix}/P1", b'{"t": 1700000000, "v": NaN}'),
        (f"{prefix}/NOPE", b'{"t": 1700000000, "v": 1}'),
        (f"{prefix}/P1", b'{"t": 1700000000, "v": 1, "u": "l/s"}'),
        (f"{prefix}/P1", json.dumps({"t": time.time() + 86400, "v": 1}).encode()),
        (f"{prefix}/P1", b"[" + b'{"v":1},' * 40000 + b'{"v":1}]'),  # > 256 KiB
    ]
    stream = good[:30] + bad[:3] + dups + good[30:] + bad[3:]
    publish_all(mqtt_url, stream)
    df = _wait_count(store_url, 102) if not store_url.endswith(".duckdb") else None
    time.sleep(0.5)
    stats = run.stop()
    with open_store(store_url) as st:
        df = st.readings()
        q = st.quarantine()
    assert len(df) == 102
    assert not df.duplicated(["sensor_id", "time"]).any()
    p1 = df[df.sensor_id == "P1"]
    assert p1["time"].is_monotonic_increasing and list(p1["value"]) == [float(i) for i in range(50)]
    assert list(df[df.sensor_id == "Q1"]["value"]) == [3.6, 7.2]
    assert sorted(q["code"]) == sorted(["not_json", "not_finite", "unknown_sensor", "wrong_unit", "future_time", "too_large"])
    assert all(q["source"].str.startswith(f"mqtt:{prefix}/"))
    assert stats.accepted == 102 and stats.rejected == 6 and stats.duplicates == 10 + 52


def test_broker_restart_mid_stream(broker, pg_url):
    n = 3000
    _register(pg_url)
    run = Running(broker.url, pg_url, "tirtasu/+/+")

    def during(i):
        if i == n // 2:
            broker.restart()

    publish_all(broker.url, _stream("tirtasu/u1", n), during=during)
    df = _wait_count(pg_url, n)
    stats = run.stop()
    assert len(df) == n and not df.duplicated(["sensor_id", "time"]).any()
    assert stats.rejected == 0
    assert stats.connections >= 2 and stats.sessions_new == 1  # reconnected, and the session survived


def _ingester_process(broker_url, store_url, log: Path, client_id: str) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "tirtasu"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from tirtasu.cli import main; main()"]
    proc = subprocess.Popen(
        [*cmd, "ingest", "mqtt", "--broker", broker_url, "--store", store_url, "--client-id", client_id,
         "--batch", "500", "--batch-seconds", "0.05"],
        stdout=open(log, "ab"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while b"subscribed to" not in log.read_bytes().split(b"ingesting")[-1]:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return proc


def test_ingester_killed_and_restarted(broker, pg_url, tmp_path):
    n = 3000
    _register(pg_url)
    log, cid = tmp_path / "ingest.log", f"ing-{uuid.uuid4().hex[:8]}"
    procs = [_ingester_process(broker.url, pg_url, log, cid)]

    def during(i):
        if i == n // 3:
            procs[0].kill()  # no goodbye: received but unacknowledged messages come again
            procs[0].wait()
        if i == 2 * n // 3:
            procs.append(_ingester_process(broker.url, pg_url, log, cid))

    try:
        publish_all(broker.url, _stream("tirtasu/u1", n), during=during)
        df = _wait_count(pg_url, n)
    finally:
        procs[-1].send_signal(signal.SIGTERM)
        procs[-1].wait(30)
    assert len(df) == n and not df.duplicated(["sensor_id", "time"]).any()
    with open_store(pg_url) as st:
        assert st.quarantine().empty


def test_postgres_restarted_mid_stream(broker, own_postgres):
    n = 3000
    schema = f"t{uuid.uuid4().hex[:8]}"
    import psycopg

    with psycopg.connect(own_postgres.url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = own_postgres.url + f"?options=-csearch_path%3D{schema}"
    _register(url)
    run = Running(broker.url, url, "tirtasu/+/+")

    def during(i):
        if i == n // 2:
            own_postgres.stop()
            time.sleep(1.0)
            own_postgres.start()

    publish_all(broker.url, _stream("tirtasu/u1", n), during=during)
    df = _wait_count(url, n)
    stats = run.stop()
    assert len(df) == n and not df.duplicated(["sensor_id", "time"]).any()
    assert stats.write_retries >= 1  # the outage was met, and ridden out
