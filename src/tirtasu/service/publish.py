"""Publication of alarm events: an MQTT topic and, if configured, a webhook.

Events are queued and sent by one background thread, so a slow broker or webhook never holds up
an API request or the detection run. A failed delivery is logged and counted, not retried
forever: the alarm stays in the store and the API, which remain the record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import urllib.request
from urllib.parse import unquote, urlsplit

__all__ = ["Publisher", "mqtt_publish", "post_webhook"]

log = logging.getLogger("tirtasu.service")


def mqtt_publish(url: str, topic: str, payload: bytes, timeout: float = 10.0) -> None:
    """Publish one message (QoS 1) to the broker at ``mqtt://user:password@host:port``.

    Raises
    ------
    RuntimeError
        paho-mqtt is not installed, the broker refuses the connection (e.g. bad credentials) or
        does not acknowledge in time.
    """
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise RuntimeError("MQTT publication needs paho-mqtt (pip install paho-mqtt)") from None
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp", "mqtts"):
        raise RuntimeError(f"an MQTT URL starts with mqtt:// or mqtts://, not {parts.scheme}://")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"tirtasu-alarms-{threading.get_ident()}")
    if parts.username:
        client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
    if parts.scheme == "mqtts":
        client.tls_set()
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            refused.append(str(reason_code))
        connected.set()

    client.on_connect = on_connect
    client.connect(parts.hostname or "127.0.0.1", parts.port or (8883 if parts.scheme == "mqtts" else 1883), keepalive=30)
    client.loop_start()
    try:
        if not connected.wait(timeout):
            raise RuntimeError(f"the MQTT broker at {parts.hostname}:{parts.port} did not answer")
        if refused:
            raise RuntimeError(f"the MQTT broker refused the connection: {refused[0]}")
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise RuntimeError(f"the MQTT broker did not acknowledge the message on {topic}")
    finally:
        client.disconnect()
        client.loop_stop()


def post_webhook(url: str, payload: bytes, event: str, secret: str | None = None, timeout: float = 10.0) -> int:
    """POST ``payload`` (JSON) to ``url``; with ``secret``, signed in ``X-Tirtasu-Signature``.

    The signature is ``sha256=<hex HMAC-SHA256 of the body>``, so the receiver can check that the
    call comes from this service. Returns the HTTP status; raises on a network error or 4xx/5xx.
    """
    headers = {"Content-Type": "application/json", "User-Agent": "tirtasu", "X-Tirtasu-Event": event}
    if secret:
        headers["X-Tirtasu-Signature"] = "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
    req = urllib.request.Request(url, data=payload, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the operator's own URL
        return resp.status


class Publisher:
    """Sends alarm events to MQTT and a webhook from a background thread.

    Parameters
    ----------
    mqtt_url : str, optional
        ``mqtt://user:password@host:port`` of the broker (None: no MQTT).
    mqtt_topic : str
        Topic of the events; the alarm id is appended (``tirtasu/alarms/17``).
    webhook_url : str, optional
        Where to POST each event as JSON (None: no webhook).
    webhook_secret : str, optional
        Key of the HMAC signature of webhook bodies.
    """

    def __init__(self, mqtt_url=None, mqtt_topic="tirtasu/alarms", webhook_url=None, webhook_secret=None):
        self.mqtt_url, self.mqtt_topic = mqtt_url, mqtt_topic.rstrip("/")
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        self.sent = 0
        self.failed = 0
        self.last_error: str | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=10_000)
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.mqtt_url or self.webhook_url)

    def publish(self, event: str, alarm: dict) -> None:
        """Queue ``{"event": event, "alarm": alarm}`` for delivery (no-op when nothing is configured)."""
        if not self.enabled:
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="tirtasu-publisher", daemon=True)
            self._thread.start()
        try:
            self._queue.put_nowait((event, alarm))
        except queue.Full:
            self.failed += 1
            self.last_error = "event queue full: deliveries are failing or too slow"

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued event was delivered or given up (for tests and shutdown)."""
        done = threading.Event()
        self._queue.put((None, done))
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="tirtasu-publisher", daemon=True)
            self._thread.start()
        done.wait(timeout)

    def _run(self) -> None:
        while True:
            event, alarm = self._queue.get()
            if event is None:  # a flush marker
                alarm.set()
                continue
            payload = json.dumps({"event": event, "alarm": alarm}, default=str).encode()
            for target, send in (
                (self.mqtt_url, lambda: mqtt_publish(self.mqtt_url, f"{self.mqtt_topic}/{alarm.get('alarm_id')}", payload)),
                (self.webhook_url, lambda: post_webhook(self.webhook_url, payload, event, self.webhook_secret)),
            ):
                if not target:
                    continue
                try:
                    send()
                    self.sent += 1
                except Exception as exc:  # noqa: BLE001 - one bad delivery must not stop the others
                    self.failed += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("alarm %s: %s not delivered: %s", alarm.get("alarm_id"), event, self.last_error)
