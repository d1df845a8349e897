"""The operations dashboard: a single page (plain JS/SVG, Plotly for charts) served at ``/``.

Everything it loads comes from this server: the page, its script and style from the package's
``static/`` folder, ``plotly.min.js`` from the installed ``plotly`` package, the translations
from ``i18n/{lang}.json``. No CDN, no font or tile server (unless the user configures one).

A few read-only routes under ``/api/v1/dashboard/`` give the page what the core API does not:
who the token is (to show or hide the operators' buttons; the API enforces roles anyway), a
DMA's net inflow with its minimum night flow per night, the DMA night-flow ranking and the NRW %
trend against its target trajectory.
"""

from __future__ import annotations

import json
import math
import re
import time
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from tirtasu.service.app import API, Viewer, _dumps, _iso, _state, require

__all__ = ["mount_dashboard", "LANGUAGES", "catalogue"]

LANGUAGES = ("en", "id", "tr")
HERE = Path(__file__).parent
STATIC = HERE / "static"
I18N = HERE / "i18n"
_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}
# a default target when the store has none (meta "nrw_target"): the IWA/World Bank-style plan of
# bringing NRW down to 20 % of system input within five years, linearly from the first period
DEFAULT_TARGET = {"end_pct": 20.0, "years": 5.0}


@lru_cache(maxsize=None)
def catalogue(lang: str) -> dict:
    """The translations of one language (``i18n/{lang}.json``)."""
    return json.loads((I18N / f"{lang}.json").read_text(encoding="utf-8"))


def _plotly_js() -> Path:
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.exists():  # pragma: no cover - every plotly wheel ships it
        raise FileNotFoundError(path)
    return path


def pick_language(request: Request) -> str:
    """?lang=, else the remembered choice (cookie), else the browser's Accept-Language, else en."""
    lang = request.query_params.get("lang") or request.cookies.get("tirtasu_lang")
    if lang in LANGUAGES:
        return lang
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"


def _page(lang: str) -> str:
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    cat = json.dumps(catalogue(lang), ensure_ascii=False).replace("</", "<\\/")
    return html.replace("{{lang}}", lang).replace("{{catalogue}}", cat).replace("{{title}}", catalogue(lang)["app.title"])


# -- page and assets -------------------------------------------------------------------------------
pages = APIRouter(include_in_schema=False)


@pages.get("/")
def index(request: Request):
    lang = pick_language(request)
    resp = HTMLResponse(_page(lang), headers={"Cache-Control": "no-cache", "Content-Language": lang})
    if request.query_params.get("lang") in LANGUAGES:  # remembered for the next visit
        resp.set_cookie("tirtasu_lang", lang, max_age=365 * 86400, samesite="strict")
    return resp


@pages.get("/static/vendor/plotly.min.js")
def plotly_js():
    return FileResponse(_plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


@pages.get("/static/{name}")
def static(name: str):
    if not re.fullmatch(r"[a-z0-9_-]+\.(js|css|svg|png)", name):
        raise HTTPException(404)
    path = STATIC / name
    if not path.is_file():
        raise HTTPException(404)
    return FileResponse(path, media_type=_STATIC_TYPES[path.suffix], headers={"Cache-Control": "no-cache"})


@pages.get("/i18n/{lang}.json")
def i18n(lang: str):
    if lang not in LANGUAGES:
        raise HTTPException(404)
    return Response(json.dumps(catalogue(lang), ensure_ascii=False), media_type="application/json")


# -- dashboard data --------------------------------------------------------------------------------
api = APIRouter(prefix=f"{API}/dashboard", dependencies=[Depends(require("viewer"))], tags=["dashboard"])


def _period(store, from_: str | None, to: str | None, days: float = 28.0) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[from, to) in UTC; by default the last ``days`` days of flow readings."""
    try:
        t1 = pd.Timestamp(to) if to else None
        t0 = pd.Timestamp(from_) if from_ else None
    except ValueError as exc:
        raise HTTPException(422, f"not a time: {exc}") from None
    if t1 is None or t0 is None:
        summary = store.readings_summary()
        flows = summary[summary["kind"] == "flow"].dropna(subset=["last"])
        if flows.empty:
            raise HTTPException(404, "the store has no flow readings")
        first = pd.Timestamp(flows["first"].min()).floor("1D")
        t1 = t1 if t1 is not None else pd.Timestamp(flows["last"].max()).ceil("1D")
        if t0 is None:  # the last `days` days, not before the first reading
            first = first.tz_localize("UTC") if first.tzinfo is None else first
            t1u = t1.tz_localize("UTC") if t1.tzinfo is None else t1
            t0 = max(t1u - pd.Timedelta(days=days), first)
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")
    t1 = t1.tz_localize("UTC") if t1.tzinfo is None else t1.tz_convert("UTC")
    if t1 <= t0:
        raise HTTPException(422, "to must be after from")
    if t1 - t0 > pd.Timedelta(days=800):
        raise HTTPException(422, "at most 800 days")
    return t0, t1


def _num(v):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


@api.get("/me", summary="Who the token is (name and role)")
def me(request: Request, who: Viewer):
    return {"name": who.name, "role": who.role, "token_id": who.token_id}


@api.get("/period", summary="The span of the store's readings")
def period(request: Request):
    state = _state(request)
    with state.lock:
        summary = state.store.readings_summary()
        tz = state.store.meta("timezone") or "UTC"
    if summary.empty:
        return {"first": None, "last": None, "timezone": tz}
    return {"first": _iso(summary["first"].min()), "last": _iso(summary["last"].max()), "timezone": tz}


def _onsets(alarms: pd.DataFrame, t0, t1) -> list[dict]:
    """The leak alarms whose onset lies in [t0, t1), for marking on a chart: the pipe, or the
    candidates to survey of an alarm that names none yet (none: the leak could not be placed)."""
    if not len(alarms):
        return []
    return [
        {"alarm_id": int(a["alarm_id"]), "start_time": _iso(a["start_time"]), "link_id": a["link_id"], "status": a["status"],
         "candidates": [str(c) for c in (a["candidates"] if a["candidates"] is not None else [])]}
        for _, a in alarms.iterrows()
        if a["start_time"] is not None and t0 <= pd.Timestamp(a["start_time"]).tz_localize(None).tz_localize("UTC") < t1
    ]


@api.get("/inflow", summary="A DMA's net inflow [m³/h], its minimum night flow per night and the leak onsets")
def inflow(
    request: Request,
    dma: Annotated[str, Query(max_length=100)],
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
    resample: Annotated[str, Query(pattern=r"^[1-9][0-9]{0,3}(min|h|D)$")] = "15min",
):
    from tirtasu.nrw.nightflow import NightFlowSettings, minimum_night_flow
    from tirtasu.nrw.store_io import dma_inflows

    state = _state(request)
    with state.lock:
        t0, t1 = _period(state.store, from_, to)
        try:
            flows, notes = dma_inflows(state.store, t0, t1, dma=dma, resample="15min")
        except KeyError as exc:
            raise HTTPException(404, str(exc).strip("\"'")) from None
        tz = state.store.meta("timezone") or "UTC"
        alarms = state.store.alarms(dma=dma)
    if dma not in flows.columns:
        raise HTTPException(422, "; ".join(notes) or f"no inflow for DMA {dma}")
    q = flows[dma]
    mnf = minimum_night_flow(q, NightFlowSettings(tz=tz)) if q.notna().any() else pd.DataFrame(columns=["mnf_m3h", "mnf_start"])
    shown = q.resample(resample).mean() if pd.Timedelta(resample) > pd.Timedelta("15min") else q
    onsets = _onsets(alarms, t0, t1)
    body = {
        "dma": dma,
        "unit": "m3/h",
        "from": _iso(t0),
        "to": _iso(t1),
        "time": [_iso(t) for t in shown.index],
        "value": [_num(v) for v in shown.to_numpy()],
        "mnf": [
            {"night": str(d), "mnf_m3h": _num(r["mnf_m3h"]), "at": _iso(r["mnf_start"]) if pd.notna(r["mnf_start"]) else None}
            for d, r in mnf.iterrows()
        ],
        "onsets": onsets,
        "notes": notes,
    }
    return Response(_dumps(body), media_type="application/json")


@api.get("/mnf", summary="Minimum night flow per night of a sensor's series (flow sensors)")
def sensor_mnf(
    request: Request,
    sensor: Annotated[str, Query(max_length=100)],
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
):
    from tirtasu.nrw.nightflow import NightFlowSettings, minimum_night_flow

    state = _state(request)
    with state.lock:
        t0, t1 = _period(state.store, from_, to)
        sensors = state.store.sensors()
        row = sensors[sensors["sensor_id"] == sensor]
        if row.empty:
            raise HTTPException(404, f"no sensor {sensor!r}")
        df = state.store.readings(sensor_ids=[sensor], start=t0, end=t1, resample="15min", how="mean")
        tz = state.store.meta("timezone") or "UTC"
        dma = row.iloc[0]["dma"]
        alarms = state.store.alarms(dma=dma) if dma else state.store.alarms()
    s = pd.Series(df["value"].to_numpy(float), index=pd.DatetimeIndex(df["time"]))
    mnf = minimum_night_flow(s, NightFlowSettings(tz=tz)) if len(s) else pd.DataFrame(columns=["mnf_m3h", "mnf_start"])
    onsets = _onsets(alarms, t0, t1)
    return {
        "sensor": sensor,
        "mnf": [
            {"night": str(d), "value": _num(r["mnf_m3h"]), "at": _iso(r["mnf_start"]) if pd.notna(r["mnf_start"]) else None}
            for d, r in mnf.iterrows()
        ],
        "onsets": onsets,
    }


_CACHE: dict = {}


def _cached(key, ttl, fn):
    hit = _CACHE.get(key)
    if hit and time.monotonic() - hit[0] < ttl:
        return hit[1]
    value = fn()
    _CACHE[key] = (time.monotonic(), value)
    return value


@api.get("/ranking", summary="DMAs ranked by recoverable leakage (night-flow analysis)")
def ranking(request: Request, from_: Annotated[str | None, Query(alias="from", max_length=40)] = None, to: Annotated[str | None, Query(max_length=40)] = None):
    from tirtasu.nrw.nightflow import NightFlowSettings, rank_dmas
    from tirtasu.nrw.store_io import analyse_dmas_from_store

    state = _state(request)

    def run():
        with state.lock:
            t0, t1 = _period(state.store, from_, to)
            tz = state.store.meta("timezone") or "UTC"
            results, notes = analyse_dmas_from_store(state.store, t0, t1, NightFlowSettings(tz=tz))
        table = rank_dmas(results)
        rows = [{"dma": d, **{k: _num(v) if k != "rank" else int(v) for k, v in r.items()}} for d, r in table.to_dict("index").items()]
        return {"from": _iso(t0), "to": _iso(t1), "units": {"volume": "m3/day"}, "ranking": rows, "notes": notes}

    try:
        return Response(_dumps(_cached(("ranking", id(state), from_, to), 60, run)), media_type="application/json")
    except (ValueError, KeyError) as exc:
        raise HTTPException(422, str(exc).strip("\"'")) from None


@api.get("/nrw-trend", summary="NRW % of system input per period against the target trajectory")
def nrw_trend(
    request: Request,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
    step: Annotated[str, Query(pattern=r"^(1W|1MS)$")] = "1W",
):
    """Per period: system input (DMA inflow meters) minus billed consumption (bills prorated,
    smart meters filling the billing lag), as a share of system input. The target trajectory is
    the store's meta ``nrw_target`` ({start, start_pct, end, end_pct}); without one, a straight
    line from the first period's NRW % to 20 % in five years."""
    from tirtasu.nrw.store_io import billed_from_store, system_input_from_store

    state = _state(request)

    def run():
        with state.lock:
            t0, t1 = _period(state.store, from_, to, days=365)
            target = state.store.meta("nrw_target")
            edges = list(pd.date_range(t0.floor("1D"), t1, freq="7D" if step == "1W" else "MS"))
            if not edges or edges[0] > t0:
                edges.insert(0, t0)
            if edges[-1] < t1:
                edges.append(t1)
            points = []
            for a, b in zip(edges[:-1], edges[1:]):
                if (b - a) < pd.Timedelta(days=1):
                    continue
                try:
                    siv = system_input_from_store(state.store, a, b)
                    billed = billed_from_store(state.store, a, b)
                except (ValueError, KeyError):
                    continue
                total_billed = sum(v.value for v in billed.values())
                if siv.value > 0:
                    points.append({"start": _iso(a), "end": _iso(b), "siv_m3": siv.value, "billed_m3": total_billed,
                                   "nrw_pct": 100 * (siv.value - total_billed) / siv.value})
        if target:
            tgt = {"start": target["start"], "start_pct": float(target["start_pct"]), "end": target["end"], "end_pct": float(target["end_pct"]), "source": "store"}
        elif points:
            start = pd.Timestamp(points[0]["start"])
            tgt = {"start": _iso(start), "start_pct": points[0]["nrw_pct"], "end": _iso(start + pd.DateOffset(years=int(DEFAULT_TARGET["years"]))),
                   "end_pct": DEFAULT_TARGET["end_pct"], "source": "default"}
        else:
            tgt = None
        if tgt:
            s0, s1 = pd.Timestamp(tgt["start"]), pd.Timestamp(tgt["end"])
            for p in points:
                f = (pd.Timestamp(p["end"]) - s0) / (s1 - s0)
                p["target_pct"] = tgt["start_pct"] + min(max(f, 0), 1) * (tgt["end_pct"] - tgt["start_pct"])
                p["on_track"] = p["nrw_pct"] <= p["target_pct"]
        return {"step": step, "points": points, "target": tgt}

    return Response(_dumps(_cached(("trend", id(state), from_, to, step), 60, run)), media_type="application/json")


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at ``/`` and its data routes under ``/api/v1/dashboard``."""
    app.include_router(pages)
    app.include_router(api)
