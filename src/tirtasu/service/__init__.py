"""The live service: the HTTP API (FastAPI) over the store, API tokens, scheduled leak detection
and publication of alarms.

- :mod:`tirtasu.service.app` – ``create_app(store_url)``: every route under ``/api/v1``
- :mod:`tirtasu.service.auth` – tokens (random, stored hashed, revocable) and roles
- :mod:`tirtasu.service.detection` – leak detection on a schedule, raising alarms
- :mod:`tirtasu.service.publish` – alarm events to MQTT and a webhook

See docs/service.md.
"""

from tirtasu.service.app import create_app

__all__ = ["create_app"]
