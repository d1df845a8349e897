"""The dashboard without a browser: page, assets, catalogues, language choice, its data routes.

Browser tests (a real Chromium driven by Playwright) are in test_dashboard_e2e.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tirtasu.service import create_app
from tirtasu.service.auth import create_token
from tirtasu.service.dashboard import I18N, LANGUAGES, STATIC, catalogue

pytestmark = pytest.mark.filterwarnings("ignore:.*httpx2.*")


# -- catalogues -----------------------------------------------------------------------------------
def test_every_key_in_every_language():
    keys = {lang: set(catalogue(lang)) for lang in LANGUAGES}
    for lang in LANGUAGES:
        assert keys[lang] == keys["en"], (lang, keys["en"] ^ keys[lang])
        for k, v in catalogue(lang).items():
            assert isinstance(v, str) and v.strip(), (lang, k)
    assert sorted(p.stem for p in I18N.glob("*.json")) == sorted(LANGUAGES)


def test_page_and_script_use_only_catalogued_keys():
    html = (STATIC / "index.html").read_text()
    js = (STATIC / "app.js").read_text()
    used = set(re.findall(r'data-i18n="([^"]+)"', html)) | set(re.findall(r'\bt\("([a-z0-9_.]+)"\s*[,)]', js))
    # keys built at run time: status.*, role.*, sensor.kind.*, wb.*
    used |= {f"status.{s}" for s in ("open", "acknowledged", "repaired")} | {f"role.{r}" for r in ("viewer", "operator", "admin")}
    used |= {f"sensor.kind.{k}" for k in ("pressure", "flow", "level", "demand")}
    used |= {"wb." + k for k in re.findall(r'box\("([a-z_]+)"', js)}
    missing = used - set(catalogue("en"))
    assert not missing, missing
    # no text in the templates: every element with words gets them from the catalogue
    visible = re.sub(r"<(script|style)[^>]*>.*?</\1>", "", html, flags=re.S)
    words = [w.strip() for w in re.sub(r"<[^>]+>", "\n", visible).split("\n") if w.strip() and "{{" not in w]
    assert set(words) <= {"tirtasu", "English", "Bahasa Indonesia", "Türkçe", "15 min", "1 h", "1 D", "—"}, words


def test_nothing_is_loaded_from_elsewhere():
    for name in ("index.html", "app.js", "app.css"):
        text = (STATIC / name).read_text()
        urls = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s\"')]*", text)
        assert all(u.startswith("http://www.w3.org/2000/svg") for u in urls), (name, urls)
        assert "@import" not in text and "fonts.googleapis" not in text


# -- serving --------------------------------------------------------------------------------------
@pytest.fixture
def client(store):
    tokens = {role: create_token(store, f"{role}-user", role)[1] for role in ("viewer", "operator")}
    with TestClient(create_app(store=store)) as c:
        yield c, tokens


def test_page_at_root_in_the_chosen_language(client):
    c, _ = client
    r = c.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<html lang="en">' in r.text
    r = c.get("/?lang=id")
    assert '<html lang="id">' in r.text and r.headers["content-language"] == "id"
    assert r.cookies.get("tirtasu_lang") == "id" or "tirtasu_lang=id" in r.headers.get("set-cookie", "")
    # the catalogue is inlined: the first paint needs no second request for the labels
    inline = re.search(r'<script id="catalogue" type="application/json">(.*?)</script>', r.text, re.S).group(1)
    assert json.loads(inline) == catalogue("id")
    assert "<title>" + catalogue("id")["app.title"] + "</title>" in r.text
    # remembered (cookie), then the browser's language, then English
    c.cookies.set("tirtasu_lang", "tr")
    assert '<html lang="tr">' in c.get("/").text
    c.cookies.clear()
    assert '<html lang="id">' in c.get("/", headers={"Accept-Language": "id-ID,id;q=0.9,en;q=0.8"}).text
    assert '<html lang="en">' in c.get("/?lang=xx", headers={"Accept-Language": "fr"}).text


def test_assets_are_served_by_us(client):
    c, _ = client
    for path, kind in (("/static/app.js", "javascript"), ("/static/app.css", "css"), ("/static/vendor/plotly.min.js", "javascript")):
        r = c.get(path)
        assert r.status_code == 200 and kind in r.headers["content-type"], path
    assert len(c.get("/static/vendor/plotly.min.js").content) > 1_000_000
    for lang in LANGUAGES:
        assert c.get(f"/i18n/{lang}.json").json() == catalogue(lang)
    for bad in ("/static/../app.py", "/static/app.py", "/static/%2e%2e%2fapp.py", "/i18n/xx.json", "/i18n/..%2fapp.json"):
        assert c.get(bad).status_code == 404, bad


def test_me_needs_a_token_and_tells_the_role(client):
    c, tokens = client
    assert c.get("/api/v1/dashboard/me").status_code == 401
    for role, tok in tokens.items():
        r = c.get("/api/v1/dashboard/me", headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 200 and r.json()["role"] == role


# -- data routes on the pilot ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def pilot(tmp_path_factory):
    from tirtasu.pilot import PilotConfig, build_pilot
    from tirtasu.store import open_store

    tmp = tmp_path_factory.mktemp("dash")
    st = open_store(str(tmp / "pilot.duckdb"))
    build_pilot(st, tmp / "work", PilotConfig(days=8, n_faults=0))
    st.put_alarm({"link_id": "p257", "candidates": ["p257", "p256"], "start_time": pd.Timestamp("2025-09-04 10:00"),
                  "detected_at": pd.Timestamp("2025-09-05 10:00"), "flow_m3h": 3.2, "dma": "DMA-1"})
    tok = create_token(st, "viewer", "viewer")[1]
    with TestClient(create_app(store=st)) as c:
        c.headers["Authorization"] = f"Bearer {tok}"
        yield c
    st.close()


@pytest.mark.slow
def test_dma_inflow_with_night_minima_and_onsets(pilot):
    r = pilot.get("/api/v1/dashboard/inflow", params={"dma": "DMA-1", "resample": "1h"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unit"] == "m3/h" and len(body["time"]) == len(body["value"]) == 8 * 24
    assert 6 <= len(body["mnf"]) <= 9
    mnf = [m["mnf_m3h"] for m in body["mnf"] if m["mnf_m3h"] is not None]
    assert mnf and min(mnf) > 0 and max(mnf) < max(v for v in body["value"] if v is not None)
    assert [o["link_id"] for o in body["onsets"]] == ["p257"]
    assert body["onsets"][0]["candidates"][0] == "p257"  # the alarm's candidates, its pipe first
    assert pilot.get("/api/v1/dashboard/inflow", params={"dma": "nope"}).status_code == 404
    assert pilot.get("/api/v1/dashboard/inflow", params={"dma": "DMA-1", "resample": "1s; drop"}).status_code == 422


@pytest.mark.slow
def test_sensor_night_minima(pilot):
    sensors = pilot.get("/api/v1/sensors", params={"kind": "flow"}).json()
    r = pilot.get("/api/v1/dashboard/mnf", params={"sensor": sensors[0]["sensor_id"]})
    assert r.status_code == 200 and len(r.json()["mnf"]) >= 6
    assert pilot.get("/api/v1/dashboard/mnf", params={"sensor": "nope"}).status_code == 404


@pytest.mark.slow
def test_ranking_and_trend(pilot):
    r = pilot.get("/api/v1/dashboard/ranking")
    assert r.status_code == 200, r.text
    rows = r.json()["ranking"]
    assert [x["rank"] for x in rows] == list(range(1, len(rows) + 1)) and {x["dma"] for x in rows} == {"DMA-1", "DMA-2", "DMA-3"}
    rec = [x["recoverable_m3d"] for x in rows if x["recoverable_m3d"] is not None]
    assert rec == sorted(rec, reverse=True)
    t = pilot.get("/api/v1/dashboard/nrw-trend", params={"from": "2025-09-01", "to": "2025-09-09"}).json()
    assert t["points"] and all(0 < p["nrw_pct"] < 100 for p in t["points"])
    assert t["target"]["source"] == "default" and t["target"]["end_pct"] == 20.0
    assert all("target_pct" in p and isinstance(p["on_track"], bool) for p in t["points"])
    assert pilot.get("/api/v1/dashboard/nrw-trend", params={"from": "2025-09-09", "to": "2025-09-01"}).status_code == 422


def test_period(pilot):
    p = pilot.get("/api/v1/dashboard/period").json()
    assert p["first"].startswith("2025-09-01") and p["last"].startswith("2025-09-08")
