"""`tirtasu ingest` commands: live readings from an MQTT broker into the store."""

from __future__ import annotations

import logging
import signal
import threading

import typer

from tirtasu.cli.common import StoreOption, console, fail, store_url

app = typer.Typer(
    help="Live ingestion: SenML (RFC 8428) readings over MQTT, validated against the sensor registry, "
    "converted to internal units; refused records go to the quarantine. See docs/ingest.md.",
    no_args_is_help=True,
)


@app.command("mqtt")
def mqtt(
    broker: str = typer.Option(..., "--broker", help="The broker: mqtt://host:port (mqtts:// for TLS)."),
    topic: str = typer.Option("tirtasu/+/+", "--topic", help="Subscription: topics tirtasu/<utility>/<sensor_id>."),
    store: str = StoreOption,
    client_id: str = typer.Option(
        "tirtasu-ingest", "--client-id",
        help="Fixed client id: the broker keeps this ingester's session (and queues messages) under it.",
    ),
    batch: int = typer.Option(5000, "--batch", min=1, help="Readings per store write at most."),
    batch_seconds: float = typer.Option(0.25, "--batch-seconds", min=0.0, help="Longest wait before a write."),
    username: str = typer.Option(None, "--username", help="Broker user name."),
    password: str = typer.Option(None, "--password", envvar="TIRTASU_MQTT_PASSWORD", help="Broker password ($TIRTASU_MQTT_PASSWORD)."),
    max_bytes: int = typer.Option(262144, "--max-bytes", min=64, help="Larger payloads are quarantined."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every connection and batch."),
):
    """Subscribe to BROKER at QoS 1 with a persistent session and store readings as they come.

    Messages are acknowledged only once their batch is committed; the ingester rides out broker
    and database restarts (reconnecting with backoff, retrying the write). Stop with Ctrl-C or
    SIGTERM: the batch in hand is committed first.
    """
    from tirtasu.ingest.mqtt import Ingester

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    logging.getLogger("paho").setLevel(logging.WARNING)
    url = store_url(store)
    try:
        ingester = Ingester(
            broker, url, topic=topic, client_id=client_id, batch_size=batch, batch_seconds=batch_seconds,
            username=username, password=password, max_bytes=max_bytes,
        )
    except ValueError as exc:
        fail(str(exc))
    stop = threading.Event()

    def _stop(signum, frame):
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    console.print(f"ingesting {topic} from {broker} into {url.split('@')[-1]} (client id {client_id})", highlight=False)
    try:
        stats = ingester.run(stop=stop)
    except (RuntimeError, OSError) as exc:
        fail(str(exc))
    console.print(stats.line(), highlight=False)
