"""The MQTT ingester: SenML readings from a broker into the store, acknowledged once committed.

Topic scheme: ``tirtasu/<utility>/<sensor_id>``; the payload is a SenML JSON pack (RFC 8428) or a
plain ``{"t": …, "v": …}`` object. Records without a name are readings of the topic's sensor;
named records (``bn`` + ``n``) are readings of the sensor of that id, whatever the topic (a
gateway may publish packs for many sensors).

Delivery guarantees: the ingester connects with MQTT 5, a fixed client id, ``clean_start`` off
and a session expiry interval, and subscribes at QoS 1, so the broker keeps its session and
queues messages while it is away. Messages are acknowledged by hand (paho's ``manual_ack``)
only after the batch holding them is committed to the store; a message received but not yet
committed when the ingester, the broker or the database goes away is delivered again, and the
store's idempotent write keeps it once. Messages received on an earlier connection are never
acknowledged on a later one (a packet id may have been reused): the broker redelivers them, and
they are counted as duplicates.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time as _time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from tirtasu.ingest.validate import (
    MAX_PAYLOAD_BYTES,
    IngestResult,
    SensorRegistry,
    Validated,
    validate_payload,
    write_validated,
)

__all__ = ["DEFAULT_TOPIC", "Ingester", "parse_broker_url", "topic_sensor"]

log = logging.getLogger("tirtasu.ingest.mqtt")

DEFAULT_TOPIC = "tirtasu/+/+"
DEFAULT_CLIENT_ID = "tirtasu-ingest"


def parse_broker_url(url: str) -> dict:
    """Host, port, TLS and credentials of ``mqtt://[user:password@]host[:port]`` (``mqtts://`` for TLS).

    Raises
    ------
    ValueError
        For another scheme or no host.
    """
    parts = urllib.parse.urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"broker URL {url!r}: expected mqtt://host:port or mqtts://host:port")
    if not parts.hostname:
        raise ValueError(f"broker URL {url!r} names no host")
    tls = parts.scheme in ("mqtts", "ssl")
    return {
        "host": parts.hostname,
        "port": parts.port or (8883 if tls else 1883),
        "tls": tls,
        "username": urllib.parse.unquote(parts.username) if parts.username else None,
        "password": urllib.parse.unquote(parts.password) if parts.password else None,
    }


def topic_sensor(topic: str) -> str | None:
    """The sensor id of ``tirtasu/<utility>/<sensor_id>`` (the last of three or more levels)."""
    levels = topic.split("/")
    return levels[-1] or None if len(levels) >= 3 else None


@dataclass
class _Message:
    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes
    received: float


@dataclass
class IngestStats:
    """Running totals of an ingester."""

    messages: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    write_retries: int = 0
    acked: int = 0
    not_acked: int = 0  # committed, but received on an earlier connection: redelivered
    connections: int = 0
    sessions_new: int = 0  # connections on which the broker had no session of ours
    reasons: collections.Counter = field(default_factory=collections.Counter)

    def line(self) -> str:
        return (
            f"{self.messages} messages, {self.accepted} readings stored, {self.duplicates} duplicates, "
            f"{self.rejected} rejected, {self.batches} batches, {self.write_retries} write retries"
        )


def _transient(exc: BaseException) -> bool:
    """A failure worth retrying (server gone, connection lost), not a problem with the data."""
    try:
        import psycopg

        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            return True
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    try:
        import duckdb

        if isinstance(exc, (duckdb.IOException, duckdb.ConnectionException)):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, (RuntimeError, OSError, ConnectionError))


class Ingester:
    """Subscribe to a broker and write SenML readings to a store in batches.

    Parameters
    ----------
    broker : str
        ``mqtt://host:port`` (``mqtts://`` for TLS); credentials may be in the URL.
    store : str
        Store URL (DuckDB file or ``postgresql://``); opened, and reopened after failures.
    topic : str
        Subscription filter; default ``tirtasu/+/+``.
    client_id : str
        Fixed, so that the broker keeps this ingester's session across restarts. Two
        ingesters must not share one (use a shared subscription to split load).
    batch_size : int
        Readings per batch at most (a batch closes at this size or after ``batch_seconds``).
    batch_seconds : float
        Longest a message waits before its batch is written.
    username, password : str, optional
        Override those of the URL.
    max_bytes : int
        Larger payloads go to the quarantine as ``too_large``.
    session_expiry : int
        Seconds the broker keeps the session (and queues messages) while the ingester is away.
    receive_maximum : int
        Unacknowledged messages the broker may have in flight to the ingester (MQTT 5); it
        bounds memory and must exceed the messages of one batch for full speed.
    reconnect_delay : (float, float)
        First and longest wait between reconnection attempts (doubling in between), for the
        broker and for the store.
    on_commit : callable, optional
        ``on_commit(batch: Validated, result: IngestResult, committed_at: float)`` after each
        commit (benchmarks measure lag with it).
    """

    def __init__(
        self,
        broker: str,
        store: str,
        *,
        topic: str = DEFAULT_TOPIC,
        client_id: str = DEFAULT_CLIENT_ID,
        batch_size: int = 5000,
        batch_seconds: float = 0.25,
        username: str | None = None,
        password: str | None = None,
        max_bytes: int = MAX_PAYLOAD_BYTES,
        session_expiry: int = 7 * 24 * 3600,
        receive_maximum: int = 20000,
        reconnect_delay: tuple[float, float] = (0.5, 30.0),
        on_commit: Callable | None = None,
    ):
        self.broker = parse_broker_url(broker)
        if username is not None:
            self.broker["username"] = username
        if password is not None:
            self.broker["password"] = password
        self.store_url = store
        self.topic = topic
        self.client_id = client_id
        self.batch_size = max(1, int(batch_size))
        self.batch_seconds = float(batch_seconds)
        self.max_bytes = max_bytes
        self.session_expiry = int(session_expiry)
        self.receive_maximum = max(1, min(int(receive_maximum), 65535))
        self.reconnect_delay = reconnect_delay
        self.on_commit = on_commit
        self.stats = IngestStats()
        self._queue: collections.deque[_Message] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._generation = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._store = None
        self._registry: SensorRegistry | None = None
        self.client = self._make_client()

    # -- MQTT side (paho's network thread) ---------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,  # acknowledged after the commit, in _ack()
        )
        if self.broker["username"]:
            client.username_pw_set(self.broker["username"], self.broker["password"])
        if self.broker["tls"]:
            client.tls_set()
        client.reconnect_delay_set(*self.reconnect_delay)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry
        props.ReceiveMaximum = self.receive_maximum
        return props

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        self._generation += 1
        self.stats.connections += 1
        log.info(
            "connected to %s:%s (session %s)", self.broker["host"], self.broker["port"],
            "resumed" if flags.session_present else "new",
        )
        if not flags.session_present:
            self.stats.sessions_new += 1
            if self.stats.connections > 1:  # the broker forgot us: what it queued meanwhile is gone
                log.warning("the broker kept no session for %s (no persistence, or it expired): "
                            "messages queued for it may be lost", self.client_id)
        # the session keeps the subscription; subscribing again is harmless and covers a new one
        client.subscribe(self.topic, options=SubscribeOptions(qos=1))
        self._connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        failed = [rc for rc in reason_codes if rc.is_failure]
        if failed:
            log.error("the broker refused the subscription to %s: %s", self.topic, failed[0])
        else:
            log.info("subscribed to %s", self.topic)
            self._subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, msg):
        self._queue.append(_Message(self._generation, msg.mid, msg.qos, msg.topic, msg.payload, _time.time()))
        self._wake.set()

    # -- store side (the caller's thread) ------------------------------------------------------
    def _open_store(self):
        from tirtasu.store import open_store

        if self._store is None:
            self._store = open_store(self.store_url)
            if self._registry is None:
                self._registry = SensorRegistry(self._store)
        return self._store

    def _close_store(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            except Exception:  # noqa: BLE001 - it is broken anyway
                pass
            self._store = None

    def _validate(self, messages: list[_Message]) -> Validated:
        batch = Validated()
        for m in messages:
            validate_payload(
                m.payload,
                registry=self._registry,
                source=f"mqtt:{m.topic}",
                topic_sensor=topic_sensor(m.topic),
                now=m.received,
                received_at=dt.datetime.fromtimestamp(m.received, dt.timezone.utc),
                max_bytes=self.max_bytes,
                store=self._store,
                into=batch,
            )
        return batch

    def _write(self, messages: list[_Message], batch: Validated) -> IngestResult | None:
        """Commit a batch, retrying through store outages; None if stopped before it could."""
        delay, longest = self.reconnect_delay
        revalidated = False
        while True:
            try:
                store = self._open_store()
                return write_validated(store, batch)
            except Exception as exc:  # noqa: BLE001 - sorted below: retry, or quarantine
                if _transient(exc):
                    self.stats.write_retries += 1
                    log.warning("store unavailable (%s); retrying in %.1f s", " ".join(str(exc).split())[:200], delay)
                    self._close_store()
                    if self._stop.wait(delay):
                        return None
                    delay = min(delay * 2, longest)
                    continue
                if not revalidated:  # the registry may have changed under us: read it, check again
                    revalidated = True
                    self._registry.refresh(self._store)
                    batch = self._validate(messages)
                    continue
                # the store refuses data that passed validation: keep it for review, don't loop
                log.error("store refused a batch (%s); its readings go to the quarantine", exc)
                failed = Validated(quarantine=list(batch.quarantine))
                received_at = dt.datetime.now(dt.timezone.utc)
                for sid, t, raw, src in zip(batch.sensor_ids, batch.times_us, batch.raws, batch.sources):
                    failed.reject(received_at, src, sid, "store_error", f"the store refused the batch: {exc}", raw)
                batch = failed

    def _ack(self, messages: list[_Message]) -> None:
        generation = self._generation
        for m in messages:
            if m.generation == generation and m.qos > 0:
                rc = self.client.ack(m.mid, m.qos)
                if rc == mqtt.MQTT_ERR_SUCCESS:
                    self.stats.acked += 1
                else:  # connection lost meanwhile: the broker redelivers, stored once
                    self.stats.not_acked += 1
            elif m.qos > 0:
                self.stats.not_acked += 1

    def _next_batch(self) -> list[_Message]:
        """Messages for one batch: up to ``batch_size`` readings or ``batch_seconds`` of waiting."""
        messages: list[_Message] = []
        deadline = None
        records = 0
        while not self._stop.is_set():
            try:
                m = self._queue.popleft()
            except IndexError:
                now = _time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                self._wake.clear()
                if self._queue:
                    continue
                self._wake.wait(0.05 if deadline is None else max(0.0, min(0.05, deadline - now)))
                continue
            if deadline is None:
                deadline = _time.monotonic() + self.batch_seconds
            messages.append(m)
            # a cheap estimate of the readings in a pack: its records are objects
            records += max(1, m.payload.count(b"{"))
            if records >= self.batch_size:
                break
        if self._stop.is_set():  # drain what has arrived: it is committed and acked on the way out
            while self._queue and records < self.batch_size:
                m = self._queue.popleft()
                messages.append(m)
                records += max(1, m.payload.count(b"{"))
        return messages

    def run(self, stop: threading.Event | None = None, ready: threading.Event | None = None) -> IngestStats:
        """Ingest until :meth:`stop` (or ``stop`` is set); the batch in hand is committed first.

        Parameters
        ----------
        stop : threading.Event, optional
            Set it (from a signal handler or another thread) to stop.
        ready : threading.Event, optional
            Set once connected and subscribed (the broker acknowledged the subscription).
        """
        if stop is not None:
            self._stop = stop
        delay, longest = self.reconnect_delay
        while True:  # the store first: without it nothing could be acknowledged
            try:
                self._open_store()
                break
            except Exception as exc:  # noqa: BLE001
                if not _transient(exc):
                    raise
                log.warning("cannot open the store (%s); retrying in %.1f s", exc, delay)
                if self._stop.wait(delay):
                    return self.stats
                delay = min(delay * 2, longest)
        self.client.connect_async(
            self.broker["host"], self.broker["port"], keepalive=30, clean_start=False,
            properties=self._connect_properties(),
        )
        self.client.loop_start()  # connects, and reconnects with backoff, in its own thread
        try:
            if ready is not None:
                threading.Thread(target=lambda: self._subscribed.wait() and ready.set(), daemon=True).start()
            last_report = _time.monotonic()
            while True:
                messages = self._next_batch()
                if messages:
                    self._commit(messages)
                elif self._stop.is_set():
                    break
                if _time.monotonic() - last_report > 30:
                    log.info("%s", self.stats.line())
                    last_report = _time.monotonic()
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            self._close_store()
        return self.stats

    def _commit(self, messages: list[_Message]) -> None:
        if self._registry is None:
            self._open_store()
        batch = self._validate(messages)
        result = self._write(messages, batch)
        if result is None:  # stopped while the store was down: not acked, redelivered later
            return
        committed_at = _time.time()
        self._ack(messages)
        s = self.stats
        s.messages += len(messages)
        s.batches += 1
        s.accepted += result.accepted
        s.duplicates += result.duplicates
        s.rejected += result.rejected
        s.reasons.update(result.reasons)
        if self.on_commit is not None:
            self.on_commit(batch, result, committed_at)

    def stop(self) -> None:
        """Ask :meth:`run` to commit what it holds and return."""
        self._stop.set()
        self._wake.set()
