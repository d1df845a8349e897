"""The HTTP API: ``create_app(store_url)`` gives a FastAPI application serving ``/api/v1``.

Everything but ``/api/v1/health`` needs ``Authorization: Bearer <token>`` (see
:mod:`tirtasu.service.auth`). One store connection is shared by the request threads and the
detection scheduler under a lock: DuckDB connections must not be used by two threads at once,
and a single PostgreSQL connection serialises its queries anyway. Reads of one sensor-month take
a few milliseconds, so a lock costs little next to running one store per thread.
"""

from __future__ import annotations

import json
import logging
import platform
import threading
from contextlib import asynccontextmanager
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tirtasu import __version__
from tirtasu.service import schemas as S
from tirtasu.service.auth import AuthError, Principal, authenticate, create_token
from tirtasu.service.publish import Publisher
from tirtasu.units import INTERNAL_UNIT

__all__ = ["create_app", "ServiceState", "alarm_json"]

log = logging.getLogger("tirtasu.service")
API = "/api/v1"
MAX_READINGS = 2_000_000
REGISTRY_TTL = 10.0  # seconds a cached sensor registry is trusted  # one response; more asks for a narrower period or a resample


class ServiceState:
    """What the routes share: the store, its lock, the publisher, caches, the scheduler."""

    def __init__(self, store, publisher: Publisher | None = None):
        self.store = store
        self.lock = threading.RLock()
        self.publisher = publisher or Publisher()
        self.scheduler = None
        self._geojson: dict = {}
        self._registry: tuple[float, dict, set] | None = None

    def registry(self, refresh: bool = False) -> tuple[dict, set]:
        """(sensor_id → kind, DMAs with sensors), cached for a few seconds.

        Reading the registry on every request would cost more than the readings of one
        sensor-month; sensors registered by another process show up within ``REGISTRY_TTL``
        seconds (at once for ids asked for: a miss refreshes the cache).
        """
        import time

        now = time.monotonic()
        if refresh or self._registry is None or now - self._registry[0] > REGISTRY_TTL:
            with self.lock:
                df = self.store.sensors()
            self._registry = (now, dict(zip(df["sensor_id"], df["kind"])), {d for d in df["dma"] if d is not None})
        return self._registry[1], self._registry[2]


def _state(request: Request) -> ServiceState:
    return request.app.state.tirtasu


State = Annotated[ServiceState, Depends(_state)]
_bearer = HTTPBearer(auto_error=False, description="An API token: `tirtasu token create --role viewer --name NAME`.")


def require(role: str):
    """A dependency that lets through tokens of ``role`` or higher (401/403 otherwise)."""

    def check(request: Request, cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
        state = _state(request)
        header = f"{cred.scheme} {cred.credentials}" if cred is not None else request.headers.get("authorization")
        try:
            with state.lock:
                who = authenticate(state.store, header, role)
        except AuthError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            raise HTTPException(exc.status, exc.reason, headers=headers) from None
        request.state.principal = who
        return who

    check.__name__ = f"require_{role}"
    return check


Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]


# -- JSON helpers --------------------------------------------------------------------------------
def _iso(value) -> str | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.isoformat().replace("+00:00", "Z")


def _naive_utc(values) -> np.ndarray:
    """A datetime column as naive-UTC datetime64[us] (serialised as ISO 8601 with a Z)."""
    idx = pd.DatetimeIndex(values)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.values.astype("datetime64[us]")


def alarm_json(row) -> dict:
    """An alarm row of the store as the API serves it."""
    return {
        "alarm_id": int(row["alarm_id"]),
        "link_id": row["link_id"],
        "candidates": list(row["candidates"]),
        "start_time": _iso(row["start_time"]),
        "detected_at": _iso(row["detected_at"]),
        "flow_m3h": None if row["flow_m3h"] is None else float(row["flow_m3h"]),
        "dma": row["dma"],
        "status": row["status"],
        "assigned_to": row["assigned_to"],
        "history": list(row["history"]),
        "updated_at": _iso(row["updated_at"]),
    }


def _default(value):
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "M":
            return [s + "Z" for s in np.datetime_as_string(value, unit="s" if (value.view("int64") % 1_000_000 == 0).all() else "us").tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


try:  # orjson writes NumPy arrays of times and values ~20x faster than json (a sensor-month: 0.5 ms)
    import orjson

    _OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS

    def _dumps(content) -> bytes:
        return orjson.dumps(content, default=_default, option=_OPTIONS)

except ImportError:  # pragma: no cover - orjson is a dependency; stay usable without it

    def _dumps(content) -> bytes:
        return json.dumps(content, default=_default).encode()


def _json(content, status: int = 200, media_type: str = "application/json") -> Response:
    # serialised directly: the large responses (readings, GeoJSON) skip pydantic's validation;
    # NumPy datetime64 arrays are naive UTC and come out as ISO 8601 with a Z
    return Response(_dumps(content), status_code=status, media_type=media_type)


def _token_json(row) -> dict:
    return {
        "token_id": row["token_id"],
        "name": row["name"],
        "role": row["role"],
        "created_at": _iso(row["created_at"]),
        "revoked_at": _iso(row["revoked_at"]),
    }


# -- routes --------------------------------------------------------------------------------------
open_router = APIRouter(prefix=API)
router = APIRouter(prefix=API, dependencies=[Depends(require("viewer"))])


@open_router.get("/health", tags=["health"], summary="Is the service up and its store reachable? (no token needed)")
def health(state: State):
    """Service and store status and versions. The only route open without a token; it shows
    nothing of the data."""
    import fastapi

    body = {
        "status": "ok",
        "versions": {"tirtasu": __version__, "api": "v1", "python": platform.python_version(), "fastapi": fastapi.__version__},
        "store": {"backend": type(state.store).__name__.removesuffix("Store").lower(), "reachable": True},
    }
    try:
        with state.lock:
            state.store.meta("schema_version")
    except Exception as exc:  # noqa: BLE001 - health reports, never raises
        log.warning("health: store unreachable: %s", exc)
        body["status"] = "unavailable"
        body["store"]["reachable"] = False
        return _json(body, 503)
    sched = state.scheduler
    body["detection"] = (
        {"every_s": sched.every, "runs": sched.runs, "last_run": _iso(sched.last_run), "last_error": sched.last_error}
        if sched is not None
        else None
    )
    body["publication"] = {
        "mqtt": bool(state.publisher.mqtt_url),
        "webhook": bool(state.publisher.webhook_url),
        "sent": state.publisher.sent,
        "failed": state.publisher.failed,
    }
    return body


# sensors ----------------------------------------------------------------------------------------
@router.get("/sensors", tags=["sensors"], response_model=list[S.Sensor], summary="The sensor registry")
def list_sensors(state: State, q: Annotated[S.SensorsQuery, Query()]):
    with state.lock:
        df = state.store.sensors(kind=q.kind, dma=q.dma)
    return _json(df.to_dict("records"))


@router.get("/sensors/{sensor_id}", tags=["sensors"], response_model=S.Sensor, responses={404: {"description": "No such sensor"}})
def get_sensor(state: State, sensor_id: Annotated[S.Text, Path()]):
    with state.lock:
        df = state.store.sensors()
    row = df[df["sensor_id"] == sensor_id]
    if row.empty:
        raise HTTPException(404, f"no sensor {sensor_id!r}")
    return _json(row.iloc[0].to_dict())


def _upsert(state: ServiceState, sensors: list[dict]) -> int:
    try:
        with state.lock:
            return state.store.upsert_sensors(pd.DataFrame(sensors))
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.post("/sensors", tags=["sensors"], status_code=201, summary="Register sensors (admin)")
def add_sensors(state: State, who: Admin, sensors: Annotated[list[S.Sensor], Body(max_length=10_000)]):
    """Register new sensors; 409 if one is registered already (change it with PUT)."""
    ids = [s.sensor_id for s in sensors]
    if len(set(ids)) != len(ids):
        raise HTTPException(422, "a sensor id is given twice")
    with state.lock:
        known = set(state.store.sensors()["sensor_id"])
    taken = sorted(set(ids) & known)
    if taken:
        raise HTTPException(409, f"already registered: {', '.join(taken[:20])}; change them with PUT /sensors/{{id}}")
    n = _upsert(state, [s.model_dump() for s in sensors])
    state.registry(refresh=True)
    log.info("%s registered %d sensor(s)", who.name, n)
    return {"registered": n}


@router.put("/sensors/{sensor_id}", tags=["sensors"], response_model=S.Sensor, summary="Register or change a sensor (admin)")
def put_sensor(state: State, who: Admin, sensor_id: Annotated[S.Text, Path()], sensor: S.SensorUpdate):
    _upsert(state, [{"sensor_id": sensor_id, **sensor.model_dump()}])
    state.registry(refresh=True)
    return get_sensor(state, sensor_id)


# readings ---------------------------------------------------------------------------------------
@router.get(
    "/readings",
    tags=["readings"],
    response_model=S.Readings,
    summary="Readings of sensors, raw or resampled",
    responses={404: {"description": "Unknown sensor or DMA"}, 413: {"description": "Too many readings for one response"}},
)
def get_readings(state: State, q: Annotated[S.ReadingsQuery, Query()]):
    """Readings in [from, to) in internal units (m, m³/h, L/h), one series per sensor, selected by
    sensor id(s), kind and/or DMA; with ``resample`` one value per bucket (``how``), computed in the
    database."""
    kinds, dmas = state.registry()
    if q.sensor and not set(q.sensor) <= kinds.keys():
        kinds, dmas = state.registry(refresh=True)
        unknown = sorted(set(q.sensor) - kinds.keys())
        if unknown:
            raise HTTPException(404, f"no sensor {', '.join(repr(u) for u in unknown[:20])}")
    if q.dma is not None and q.dma not in dmas:
        kinds, dmas = state.registry(refresh=True)
        if q.dma not in dmas:
            raise HTTPException(404, f"no sensor in DMA {q.dma!r}")
    try:
        with state.lock:
            df = state.store.readings(
                sensor_ids=q.sensor, kind=q.kind, dma=q.dma, start=q.from_, end=q.to, resample=q.resample, how=q.how
            )
    except ValueError as exc:  # e.g. a resample interval the backend cannot bucket by
        raise HTTPException(422, str(exc)) from None
    if len(df) > MAX_READINGS:
        raise HTTPException(413, f"{len(df):,} readings: more than {MAX_READINGS:,}; narrow the period or resample")
    series = []
    ids = df["sensor_id"].to_numpy()
    # rows come ordered by sensor: cut at the changes of sensor id
    cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1 if len(ids) else np.array([], dtype=int)
    times = _naive_utc(df["time"])
    values = df["value"].to_numpy(dtype=float)
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(ids)]):
        if a == b:
            continue
        kind = kinds.get(ids[a], "")
        series.append(
            {
                "sensor_id": ids[a],
                "kind": kind,
                "unit": "-" if q.how == "count" and q.resample else (INTERNAL_UNIT.get(kind) or "-"),
                "time": times[a:b],
                "value": values[a:b],
            }
        )
    return _json({"count": len(df), "resample": q.resample, "how": q.how if q.resample else None, "series": series})


@router.post(
    "/readings",
    tags=["readings"],
    summary="Ingest a SenML payload (operator)",
    responses={503: {"description": "Ingestion is not available in this installation"}},
)
async def post_readings(request: Request, who: Operator, topic_sensor: Annotated[S.Text | None, Query()] = None):
    """Store readings sent as SenML (JSON, RFC 8428) through ``tirtasu.ingest.ingest_payload``:
    validated against the registry, units converted, refusals kept in the quarantine with their
    reason (docs/ingest.md). 200 with the counts; 422 when every record was refused; 503 if the
    ingestion module is not installed."""
    try:
        from tirtasu.ingest import MAX_PAYLOAD_BYTES as limit
        from tirtasu.ingest import ingest_payload
    except ImportError:
        raise HTTPException(503, "ingestion not available") from None
    size = request.headers.get("content-length")
    if size is not None and (not size.isdigit() or int(size) > limit):
        raise HTTPException(413, f"a payload is at most {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():  # counted as it comes: a missing Content-Length cannot get round the limit
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"a payload is at most {limit} bytes")
    state = _state(request)

    def run():  # parsing and validation outside the store lock: they overlap other requests' writes
        return ingest_payload(
            state.store, bytes(body), source=f"http:{who.name}", topic_sensor=topic_sensor, max_bytes=limit,
            lock=state.lock,
        )

    result = await run_in_threadpool(run)
    out = result.to_dict()
    refused_all = result.rejected > 0 and result.accepted + result.duplicates == 0
    return _json(out, 422 if refused_all else 200)


# DMAs and network -------------------------------------------------------------------------------
def _dmas(state: ServiceState) -> list[dict]:
    from tirtasu.network.dma import _natural_key

    with state.lock:
        nodes, links, sensors = state.store.dma_nodes(), state.store.dma_links(), state.store.sensors()
    names = sorted(set(nodes["dma"]) | set(links["dma"]), key=_natural_key)
    counts = nodes.groupby("dma").size()
    out = []
    for name in names:
        here = links[links["dma"] == name]
        out.append(
            {
                "dma": name,
                "nodes": int(counts.get(name, 0)),
                "boundary_links": [{"link_id": r.link_id, "sign": int(r.sign)} for r in here.itertuples()],
                "sensors": int((sensors["dma"] == name).sum()),
            }
        )
    return out


@router.get("/dmas", tags=["network"], response_model=list[S.DMA], summary="District metered areas and their boundary links")
def list_dmas(state: State):
    return _json(_dmas(state))


@router.get("/dmas/{dma}", tags=["network"], response_model=S.DMA, responses={404: {"description": "No such DMA"}})
def get_dma(state: State, dma: Annotated[S.Text, Path()]):
    for d in _dmas(state):
        if d["dma"] == dma:
            return _json(d)
    raise HTTPException(404, f"no DMA {dma!r}")


@router.get(
    "/network",
    tags=["network"],
    summary="The stored network model and its DMAs as GeoJSON",
    responses={200: {"content": {"application/geo+json": {}}}, 404: {"description": "No model in the store"}},
)
def network(state: State, model: Annotated[S.Text | None, Query(description="Stored model name (default: the first).")] = None):
    """A FeatureCollection of nodes, links and one feature per DMA (see docs/network.md)."""
    import hashlib

    from tirtasu.network import load_model_text, network_geojson
    from tirtasu.network.dma import DMAs

    with state.lock:
        models = state.store.models()
        name = model or (models[0] if models else None)
        if name is None or name not in models:
            raise HTTPException(404, f"no model {name!r} in the store" if name else "the store holds no network model")
        text = state.store.model_text(name)
        nodes, links = state.store.dma_nodes(), state.store.dma_links()
    key = hashlib.sha256(text.encode() + nodes.to_csv().encode() + links.to_csv().encode()).hexdigest()
    cached = state._geojson.get(name)
    if cached is None or cached[0] != key:  # building it reads the model: a second or so for L-Town
        wn = load_model_text(text, name=name)
        dmas = DMAs(nodes=nodes, links=links) if len(nodes) else None
        body = json.dumps(network_geojson(wn, dmas), default=str)
        state._geojson[name] = cached = (key, body)
    return Response(cached[1], media_type="application/geo+json")


# alarms -----------------------------------------------------------------------------------------
@router.get("/alarms", tags=["alarms"], response_model=list[S.Alarm], summary="Leak alarms, newest first")
def list_alarms(state: State, q: Annotated[S.AlarmsQuery, Query()]):
    with state.lock:
        df = state.store.alarms(status=q.status, dma=q.dma)
    return _json([alarm_json(r) for _, r in df.iterrows()])


def _alarm(state: ServiceState, alarm_id: int) -> dict:
    with state.lock:
        df = state.store.alarms(alarm_id=alarm_id)
    if df.empty:
        raise HTTPException(404, f"no alarm {alarm_id}")
    return alarm_json(df.iloc[0])


AlarmId = Annotated[int, Path(ge=1, le=2**62)]


@router.get("/alarms/{alarm_id}", tags=["alarms"], response_model=S.Alarm, responses={404: {"description": "No such alarm"}})
def get_alarm(state: State, alarm_id: AlarmId):
    return _json(_alarm(state, alarm_id))


def _transition(state: ServiceState, who: Principal, alarm_id: int, action: str, changes: dict, note, allowed_from) -> Response:
    with state.lock:
        current = _alarm(state, alarm_id)
        if current["status"] not in allowed_from:
            raise HTTPException(409, f"alarm {alarm_id} is {current['status']}: it cannot be {action}")
        event = {"at": _iso(pd.Timestamp.now(tz="UTC")), "by": f"{who.name} ({who.token_id})", "action": action, "note": note}
        state.store.update_alarm(alarm_id, changes, event)
        alarm = _alarm(state, alarm_id)
    state.publisher.publish(f"alarm.{action}", alarm)
    return _json(alarm)


@router.post("/alarms/{alarm_id}/acknowledge", tags=["alarms"], response_model=S.Alarm, summary="Acknowledge an open alarm (operator)")
def acknowledge(state: State, who: Operator, alarm_id: AlarmId, body: S.AlarmAction | None = None):
    note = body.note if body else None
    return _transition(state, who, alarm_id, "acknowledged", {"status": "acknowledged"}, note, ("open",))


@router.post("/alarms/{alarm_id}/repaired", tags=["alarms"], response_model=S.Alarm, summary="Close an alarm: the leak is repaired (operator)")
def repaired(state: State, who: Operator, alarm_id: AlarmId, body: S.Repaired | None = None):
    note = body.note if body else None
    when = body.repaired_at if body and body.repaired_at else None
    if when is not None:
        note = f"repaired at {_iso(when)}" + (f": {note}" if note else "")
    return _transition(state, who, alarm_id, "repaired", {"status": "repaired"}, note, ("open", "acknowledged"))


@router.post("/alarms/{alarm_id}/assign", tags=["alarms"], response_model=S.Alarm, summary="Assign an alarm to a crew or person (operator)")
def assign(state: State, who: Operator, alarm_id: AlarmId, body: S.Assign):
    note = f"assigned to {body.assigned_to}" if body.assigned_to else "unassigned"
    if body.note:
        note += f": {body.note}"
    return _transition(state, who, alarm_id, "assigned", {"assigned_to": body.assigned_to}, note, ("open", "acknowledged"))


# NRW --------------------------------------------------------------------------------------------
@router.get("/nrw", tags=["nrw"], summary="IWA water balance and NRW indicators for a period and DMA")
def nrw(state: State, q: Annotated[S.NRWQuery, Query()]):
    """The water balance of [from, to) for a DMA or the whole utility, drafted from the store as
    ``tirtasu nrw template`` does (system input from the inflow meters, billed volumes from the
    bills, the rest typical estimates marked as such) and computed as ``tirtasu nrw balance``.
    Every figure has its value, ±95 % limit and unit."""
    from tirtasu.nrw.audit import AuditError, parse_audit
    from tirtasu.nrw.balance import water_balance
    from tirtasu.nrw.template import audit_template

    try:
        with state.lock:
            text = audit_template(state.store, q.from_, q.to, dma=q.dma, country_group=q.country_group)
            inputs = parse_audit(text, source="api", store=state.store)
        wb = water_balance(inputs)
    except KeyError as exc:
        raise HTTPException(404, str(exc).strip("\"'")) from None
    except (AuditError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    return _json(wb.to_dict())


# tokens -----------------------------------------------------------------------------------------
@router.get("/tokens", tags=["tokens"], response_model=list[S.TokenInfo], summary="API tokens, without their secrets (admin)")
def list_tokens(state: State, who: Admin):
    with state.lock:
        df = state.store.tokens()
    return _json([_token_json(r) for _, r in df.iterrows()])


@router.post("/tokens", tags=["tokens"], status_code=201, response_model=S.NewToken, summary="Create a token (admin); its secret is shown once")
def new_token(state: State, who: Admin, body: S.TokenIn):
    try:
        with state.lock:
            token_id, secret = create_token(state.store, body.name, body.role)
            row = state.store.tokens().set_index("token_id").loc[token_id].to_dict()
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    log.info("%s created token %s (%s) for %s", who.name, token_id, body.role, body.name)
    return _json({**_token_json({"token_id": token_id, **row}), "token": secret}, 201)


@router.delete("/tokens/{token_id}", tags=["tokens"], response_model=S.TokenInfo, summary="Revoke a token (admin)")
def revoke(state: State, who: Admin, token_id: Annotated[S.Text, Path()]):
    with state.lock:
        if not state.store.revoke_token(token_id):
            raise HTTPException(404, f"no active token {token_id!r}")
        row = state.store.tokens().set_index("token_id").loc[token_id].to_dict()
    log.info("%s revoked token %s", who.name, token_id)
    return _json(_token_json({"token_id": token_id, **row}))


# -- the app -------------------------------------------------------------------------------------
def create_app(
    store_url: str | None = None,
    *,
    store=None,
    detect_every: float | None = None,
    detect_days: float = 28.0,
    publisher: Publisher | None = None,
):
    """The tirtasu API as a FastAPI application.

    Parameters
    ----------
    store_url : str, optional
        The store to serve (a DuckDB path or a postgresql:// URL; default as the CLI:
        ``$TIRTASU_STORE`` or ``.tirtasu/tirtasu.duckdb``). Opened when the app starts.
    store : tirtasu.store.Store, optional
        An open store to serve instead (tests); it is not closed with the app.
    detect_every : float, optional
        Run leak detection every so many seconds on the latest ``detect_days`` days of data and
        raise alarms (None or 0: no scheduled detection).
    publisher : Publisher, optional
        Where alarm events go (MQTT, webhook); default: nowhere.

    Returns
    -------
    fastapi.FastAPI
        OpenAPI schema at ``/api/v1/openapi.json``.
    """
    from tirtasu.store import open_store

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        own = store is None
        st = open_store(store_url or _default_url()) if own else store
        state = ServiceState(st, publisher)
        app.state.tirtasu = state
        if detect_every:
            from tirtasu.service.detection import DetectionScheduler

            state.scheduler = DetectionScheduler(state, every=detect_every, days=detect_days)
            state.scheduler.start()
        try:
            yield
        finally:
            if state.scheduler is not None:
                state.scheduler.stop()
            state.publisher.flush(timeout=5)
            if own:
                with state.lock:
                    st.close()

    app = FastAPI(
        title="tirtasu",
        version=__version__,
        summary="Telemetry, leak alarms and non-revenue water of a water utility.",
        description=(
            "Everything but `/api/v1/health` needs `Authorization: Bearer <token>`. Roles: viewer "
            "(reads), operator (also acknowledges, assigns and closes alarms; posts readings), admin "
            "(also manages sensors and tokens). Units: pressure and head [m], flow [m³/h], customer "
            "demand [L/h]; times UTC (ISO 8601; times without a zone are taken as UTC)."
        ),
        openapi_url=f"{API}/openapi.json",
        # FastAPI's Swagger UI and ReDoc pages load their scripts from a CDN: not served, so that
        # nothing reaches the internet; any OpenAPI viewer reads /api/v1/openapi.json.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.include_router(open_router)
    app.include_router(router)
    from tirtasu.service.dashboard import mount_dashboard

    mount_dashboard(app)  # the operations dashboard at / (docs/dashboard.md)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        # 422 with a reason per field; the offending input is not echoed back
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "invalid"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; see the service log"}, status_code=500)

    return app


def _default_url() -> str:
    import os

    from tirtasu.cli.common import DEFAULT_STORE

    return os.environ.get("TIRTASU_STORE") or DEFAULT_STORE

