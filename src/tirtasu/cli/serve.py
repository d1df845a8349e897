"""`tirtasu serve`: the HTTP API over the store, with scheduled leak detection and alarm publication."""

from __future__ import annotations

import typer

from tirtasu.cli.common import StoreOption, console, fail, store_url


def run_server(
    url: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    detect_every_min: float = 60.0,
    detect_days: float = 28.0,
    mqtt_url: str | None = None,
    mqtt_topic: str = "tirtasu/alarms",
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve the store at ``url`` until interrupted (Ctrl-C).

    A store without any token gets a first admin token, printed once, so that the API can be
    used at all; later tokens are made with `tirtasu token create` or POST /api/v1/tokens.
    """
    import uvicorn

    from tirtasu.service import create_app
    from tirtasu.service.auth import create_token
    from tirtasu.service.publish import Publisher
    from tirtasu.store import open_store

    try:
        with open_store(url) as st:
            if st.tokens().empty:
                token_id, secret = create_token(st, "first-admin", "admin")
                console.print(
                    f"The store had no API token: made admin token {token_id}. Its secret, shown this once "
                    "(keep it; revoke it with DELETE /api/v1/tokens/" + token_id + " once you have others):",
                    highlight=False,
                )
                typer.echo(secret)
    except RuntimeError as exc:
        fail(str(exc))
    publisher = Publisher(mqtt_url=mqtt_url, mqtt_topic=mqtt_topic, webhook_url=webhook_url, webhook_secret=webhook_secret)
    app = create_app(url, detect_every=detect_every_min * 60 if detect_every_min > 0 else None, detect_days=detect_days, publisher=publisher)
    console.print(
        f"Dashboard on http://{host}:{port}/ , API on http://{host}:{port}/api/v1 (OpenAPI: /api/v1/openapi.json); Ctrl-C stops it",
        highlight=False, soft_wrap=True,
    )
    # one process: the app shares one store connection under a lock (see tirtasu.service.app)
    uvicorn.run(app, host=host, port=port, log_level=log_level, workers=1)


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface; put TLS in front)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    store: str = StoreOption,
    detect_every: float = typer.Option(60.0, "--detect-every", help="Run leak detection every so many minutes on the latest data (0: never)."),
    detect_days: float = typer.Option(28.0, "--detect-days", help="Days of data each detection run reads (the first part trains the leak-free model)."),
    mqtt_url: str = typer.Option(None, "--mqtt-url", envvar="TIRTASU_MQTT_URL", help="Publish alarm events to this broker: mqtt://user:password@host:1883 (env TIRTASU_MQTT_URL keeps the password off the command line)."),
    mqtt_topic: str = typer.Option("tirtasu/alarms", "--mqtt-topic", help="Topic prefix of alarm events (the alarm id is appended)."),
    webhook_url: str = typer.Option(None, "--webhook-url", envvar="TIRTASU_WEBHOOK_URL", help="Also POST alarm events (JSON) to this URL."),
    webhook_secret: str = typer.Option(None, "--webhook-secret", envvar="TIRTASU_WEBHOOK_SECRET", help="Sign webhook bodies with HMAC-SHA256 under this key (header X-Tirtasu-Signature)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level."),
):
    """Serve the HTTP API (everything under /api/v1; only /api/v1/health without a token).

    Sensors, readings (raw and resampled), DMAs, network GeoJSON, leak alarms, NRW indicators,
    tokens. Leak detection runs on a schedule and raises alarms, published to MQTT and a webhook
    when configured. See docs/service.md.
    """
    run_server(store_url(store), host, port, detect_every, detect_days, mqtt_url, mqtt_topic, webhook_url, webhook_secret, log_level)
