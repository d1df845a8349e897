"""The HTTP API: authentication and roles, every route, injection attempts, OpenAPI.

Runs on both store backends (the ``store`` fixture) with FastAPI's TestClient.
"""

from __future__ import annotations

from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest


from fastapi.testclient import TestClient

from tirtasu.service import create_app
from tirtasu.service.auth import create_token, hash_token

pytestmark = pytest.mark.filterwarnings("ignore:.*httpx2.*")  # starlette's note on its test client

T0 = pd.Timestamp("2025-09-01", tz="UTC")
N = 288  # one day of 5-minute readings per sensor


def _fill(store) -> dict:
    """Two DMAs, four sensors with a day of readings, customers and bills, two alarms, tokens."""
    store.upsert_sensors(
        pd.DataFrame(
            {
                "sensor_id": ["P_n1", "P_n2", "F_in1", "F_in2"],
                "kind": ["pressure", "pressure", "flow", "flow"],
                "node_id": ["n1", "n2", None, None],
                "link_id": [None, None, "in1", "in2"],
                "dma": ["DMA-1", "DMA-2", "DMA-1", "DMA-2"],
            }
        )
    )
    times = T0 + pd.to_timedelta(np.arange(N) * 5, unit="min")
    frames = [
        pd.DataFrame({"sensor_id": s, "time": times, "value": base + np.arange(N) * 0.01})
        for s, base in (("P_n1", 40.0), ("P_n2", 50.0), ("F_in1", 10.0), ("F_in2", 20.0))
    ]
    store.add_readings(pd.concat(frames, ignore_index=True))
    store.set_dmas(
        pd.DataFrame({"node_id": ["n1", "n2"], "dma": ["DMA-1", "DMA-2"]}),
        pd.DataFrame({"dma": ["DMA-1", "DMA-2"], "link_id": ["in1", "in2"], "sign": [1, 1]}),
    )
    store.upsert_customers(
        pd.DataFrame({"customer_id": ["c1", "c2"], "node_id": ["n1", "n2"], "dma": ["DMA-1", "DMA-2"], "category": "domestic", "metered": True})
    )
    store.add_billing(
        pd.DataFrame({"customer_id": ["c1", "c2"], "period_start": ["2025-09-01"] * 2, "period_end": ["2025-09-02"] * 2, "billed_m3": [200.0, 400.0]})
    )
    alarms = {
        "a1": store.put_alarm({"link_id": "L1", "candidates": ["L1", "L2"], "start_time": T0, "detected_at": T0 + pd.Timedelta("3h"), "flow_m3h": 2.5, "dma": "DMA-1"}),
        "a2": store.put_alarm({"link_id": "L7", "candidates": ["L7"], "start_time": T0, "detected_at": T0 + pd.Timedelta("4h"), "flow_m3h": 1.0, "dma": "DMA-2"}),
    }
    tokens = {role: create_token(store, f"{role}-user", role) for role in ("viewer", "operator", "admin")}
    revoked_id, revoked = create_token(store, "gone", "admin")
    store.revoke_token(revoked_id)
    return {"tokens": {k: v[1] for k, v in tokens.items()}, "ids": {k: v[0] for k, v in tokens.items()}, "revoked": revoked, "alarms": alarms}


@pytest.fixture
def api(store):
    info = _fill(store)
    with TestClient(create_app(store=store)) as client:
        yield client, info


def _h(token: str | None) -> dict:
    return {"Authorization": f"Bearer {token}"} if token else {}


# -- authentication -------------------------------------------------------------------------------
def test_health_is_open_and_shows_no_data(api):
    client, _ = api
    r = client.get("/api/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["store"]["reachable"] is True
    assert body["versions"]["api"] == "v1" and body["versions"]["tirtasu"]
    assert "P_n1" not in r.text


def test_tokens_are_stored_hashed(api, store):
    _, info = api
    stored = store.tokens()
    secret = info["tokens"]["viewer"]
    assert secret not in stored.to_string()
    assert hash_token(secret) in set(stored["token_hash"])


@pytest.mark.parametrize("path", ["/api/v1/sensors", "/api/v1/readings", "/api/v1/dmas", "/api/v1/alarms", "/api/v1/network", "/api/v1/tokens", "/api/v1/nrw"])
def test_401_without_token_or_with_bad_or_revoked(api, path):
    client, info = api
    for headers in (
        {},
        _h("nonsense"),
        _h("tirtasu_" + "A" * 43),  # well formed, unknown
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": f"Token {info['tokens']['admin']}"},  # not the bearer scheme
        _h(info["revoked"]),
        _h(info["tokens"]["admin"] + "x"),
    ):
        r = client.get(path, headers=headers)
        assert r.status_code == 401, (path, headers, r.text)
        assert r.headers.get("www-authenticate") == "Bearer"


# (method, path, json body, minimum role)
MATRIX = [
    ("GET", "/api/v1/sensors", None, "viewer"),
    ("GET", "/api/v1/sensors/P_n1", None, "viewer"),
    ("POST", "/api/v1/sensors", [{"sensor_id": "P_new", "kind": "pressure", "node_id": "n9"}], "admin"),
    ("PUT", "/api/v1/sensors/P_n2", {"kind": "pressure", "node_id": "n2", "dma": "DMA-2", "description": "moved"}, "admin"),
    ("GET", "/api/v1/readings?sensor=P_n1", None, "viewer"),
    ("POST", "/api/v1/readings", {"bn": "P_n1", "v": 41.0, "t": 1756690000}, "operator"),
    ("GET", "/api/v1/dmas", None, "viewer"),
    ("GET", "/api/v1/dmas/DMA-1", None, "viewer"),
    ("GET", "/api/v1/alarms", None, "viewer"),
    ("GET", "/api/v1/alarms/{a1}", None, "viewer"),
    ("POST", "/api/v1/alarms/{a1}/acknowledge", {"note": "crew on the way"}, "operator"),
    ("POST", "/api/v1/alarms/{a2}/assign", {"assigned_to": "crew 3"}, "operator"),
    ("POST", "/api/v1/alarms/{a2}/repaired", {}, "operator"),
    ("GET", "/api/v1/tokens", None, "admin"),
    ("POST", "/api/v1/tokens", {"name": "bob", "role": "viewer"}, "admin"),
    ("DELETE", "/api/v1/tokens/{viewer_id}", None, "admin"),
]
RANK = {"viewer": 0, "operator": 1, "admin": 2}


def test_role_matrix(api):
    client, info = api
    fmt = {**info["alarms"], "viewer_id": info["ids"]["viewer"]}
    # ascending roles, so that the admin's DELETE of the viewer token comes last
    for role in ("viewer", "operator", "admin"):
        for method, path, body, needed in MATRIX:
            r = client.request(method, path.format(**fmt), json=body, headers=_h(info["tokens"][role]))
            if RANK[role] < RANK[needed]:
                assert r.status_code == 403, (role, method, path, r.text)
                assert needed in r.json()["detail"]
            else:
                assert r.status_code not in (401, 403, 500), (role, method, path, r.status_code, r.text)
    # the viewer token was revoked by the admin above: refused from now on
    assert client.get("/api/v1/sensors", headers=_h(info["tokens"]["viewer"])).status_code == 401


# -- routes ---------------------------------------------------------------------------------------
def test_readings_raw_and_resampled(api):
    client, info = api
    h = _h(info["tokens"]["viewer"])
    r = client.get("/api/v1/readings", params={"sensor": ["P_n1", "F_in2"], "from": "2025-09-01T01:00", "to": "2025-09-01T02:00"}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 24
    assert [s["sensor_id"] for s in body["series"]] == ["F_in2", "P_n1"]
    p = body["series"][1]
    assert p["unit"] == "m" and p["time"][0] == "2025-09-01T01:00:00Z" and p["value"][0] == pytest.approx(40.12)
    r = client.get("/api/v1/readings", params={"kind": "flow", "resample": "1h", "how": "max", "to": "2025-09-01T03:00+00:00"}, headers=h)
    body = r.json()
    assert body["count"] == 6 and body["how"] == "max"
    assert body["series"][0]["value"][0] == pytest.approx(10.11)
    r = client.get("/api/v1/readings", params={"dma": "DMA-2", "resample": "1D", "how": "count"}, headers=h)
    assert {s["sensor_id"]: s["value"] for s in r.json()["series"]} == {"F_in2": [288.0], "P_n2": [288.0]}
    # times with a zone are converted to UTC
    r = client.get("/api/v1/readings", params={"sensor": "P_n1", "from": "2025-09-01T08:00+07:00", "to": "2025-09-01T08:10+07:00"}, headers=h)
    assert r.json()["series"][0]["time"] == ["2025-09-01T01:00:00Z", "2025-09-01T01:05:00Z"]


@pytest.mark.parametrize(
    "params, status, words",
    [
        ({"sensor": "nope"}, 404, "no sensor"),
        ({"dma": "DMA-9"}, 404, "no sensor in DMA"),
        ({"from": "2025-09-02", "to": "2025-09-01"}, 422, "after"),
        ({"resample": "fortnight"}, 422, "resample"),
        ({"resample": "0h"}, 422, "resample"),
        ({"how": "median"}, 422, "how"),
        ({"kind": "temperature"}, 422, "kind"),
        ({"from": "yesterday"}, 422, "from"),
        ({"limit": "5"}, 422, "limit"),
    ],
)
def test_readings_bad_parameters_say_why(api, params, status, words):
    client, info = api
    r = client.get("/api/v1/readings", params=params, headers=_h(info["tokens"]["viewer"]))
    assert r.status_code == status, r.text
    assert words in r.text


def test_sensors_admin(api):
    client, info = api
    h = _h(info["tokens"]["admin"])
    r = client.post("/api/v1/sensors", json=[{"sensor_id": "L_t1", "kind": "level", "node_id": "T1"}], headers=h)
    assert r.status_code == 201 and r.json() == {"registered": 1}
    assert client.post("/api/v1/sensors", json=[{"sensor_id": "L_t1", "kind": "level"}], headers=h).status_code == 409
    r = client.post("/api/v1/sensors", json=[{"sensor_id": "X", "kind": "flow", "node_id": "n1"}], headers=h)
    assert r.status_code == 422 and "link" in r.text  # the registry's own check, as a reason
    r = client.put("/api/v1/sensors/L_t1", json={"kind": "level", "node_id": "T1", "unit": "cm", "dma": "DMA-1"}, headers=h)
    assert r.status_code == 200 and r.json()["unit"] == "cm"
    r = client.get("/api/v1/sensors", params={"kind": "level"}, headers=h)
    assert [s["sensor_id"] for s in r.json()] == ["L_t1"]
    assert client.get("/api/v1/sensors/nope", headers=h).status_code == 404


def test_dmas(api):
    client, info = api
    h = _h(info["tokens"]["viewer"])
    dmas = client.get("/api/v1/dmas", headers=h).json()
    assert [d["dma"] for d in dmas] == ["DMA-1", "DMA-2"]
    assert dmas[0]["boundary_links"] == [{"link_id": "in1", "sign": 1}] and dmas[0]["nodes"] == 1 and dmas[0]["sensors"] == 2
    assert client.get("/api/v1/dmas/DMA-3", headers=h).status_code == 404


def test_alarm_workflow_keeps_history(api):
    client, info = api
    op, viewer = _h(info["tokens"]["operator"]), _h(info["tokens"]["viewer"])
    a1 = info["alarms"]["a1"]
    alarms = client.get("/api/v1/alarms", params={"status": "open"}, headers=viewer).json()
    assert {a["alarm_id"] for a in alarms} == set(info["alarms"].values())
    first = next(a for a in alarms if a["alarm_id"] == a1)
    assert first["candidates"] == ["L1", "L2"] and first["flow_m3h"] == 2.5 and first["dma"] == "DMA-1"
    assert client.post(f"/api/v1/alarms/{a1}/acknowledge", headers=viewer).status_code == 403
    r = client.post(f"/api/v1/alarms/{a1}/acknowledge", json={"note": "seen"}, headers=op)
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    assert client.post(f"/api/v1/alarms/{a1}/acknowledge", headers=op).status_code == 409
    r = client.post(f"/api/v1/alarms/{a1}/assign", json={"assigned_to": "crew 3"}, headers=op)
    assert r.json()["assigned_to"] == "crew 3"
    r = client.post(f"/api/v1/alarms/{a1}/repaired", json={"repaired_at": "2025-09-03T10:00:00Z", "note": "clamp fitted"}, headers=op)
    alarm = r.json()
    assert alarm["status"] == "repaired"
    assert [h["action"] for h in alarm["history"]] == ["acknowledged", "assigned", "repaired"]
    assert all(h["by"].startswith("operator-user") for h in alarm["history"])
    assert "clamp fitted" in alarm["history"][-1]["note"] and "2025-09-03T10:00:00Z" in alarm["history"][-1]["note"]
    assert client.post(f"/api/v1/alarms/{a1}/acknowledge", headers=op).status_code == 409
    assert [a["alarm_id"] for a in client.get("/api/v1/alarms", params={"status": "repaired"}, headers=viewer).json()] == [a1]
    assert client.get("/api/v1/alarms/999999", headers=viewer).status_code == 404


def test_tokens_admin_api(api):
    client, info = api
    h = _h(info["tokens"]["admin"])
    r = client.post("/api/v1/tokens", json={"name": "scada", "role": "operator"}, headers=h)
    assert r.status_code == 201
    new = r.json()
    assert new["token"].startswith("tirtasu_") and new["role"] == "operator"
    listed = client.get("/api/v1/tokens", headers=h).json()
    assert new["token_id"] in {t["token_id"] for t in listed}
    assert "token" not in listed[0] and "token_hash" not in listed[0] and new["token"] not in str(listed)
    assert client.get("/api/v1/alarms", headers=_h(new["token"])).status_code == 200
    assert client.delete(f"/api/v1/tokens/{new['token_id']}", headers=h).json()["revoked_at"]
    assert client.get("/api/v1/alarms", headers=_h(new["token"])).status_code == 401
    assert client.delete(f"/api/v1/tokens/{new['token_id']}", headers=h).status_code == 404
    assert client.post("/api/v1/tokens", json={"name": "x", "role": "root"}, headers=h).status_code == 422


def test_post_readings_ingests_senml(api):
    pytest.importorskip("tirtasu.ingest")
    client, info = api
    op = _h(info["tokens"]["operator"])
    t = int((T0 + pd.Timedelta("2D")).timestamp())
    r = client.post("/api/v1/readings", content=b'[{"bn": "P_n1", "v": 41.5, "t": %d}]' % t, headers=op)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1
    r = client.post("/api/v1/readings", content=b"{not json", headers=op)
    assert r.status_code == 422 and r.json()["rejected"] >= 1
    r = client.post("/api/v1/readings", content=b"x" * (2 << 20), headers=op)
    assert r.status_code == 413


def test_nrw_water_balance(api):
    client, info = api
    h = _h(info["tokens"]["viewer"])
    r = client.get("/api/v1/nrw", params={"from": "2025-09-01", "to": "2025-09-02"}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    siv = body["components"]["system_input_volume"]["value"]
    assert siv == pytest.approx((10 + 20) * 24 + 0.01 * 287 / 2 * 24 * 2, rel=0.01)
    assert "nrw_pct_siv" in body["indicators"] or "nrw_pct_siv" in body["components"]
    r = client.get("/api/v1/nrw", params={"from": "2025-09-01", "to": "2025-09-02", "dma": "DMA-1"}, headers=h)
    assert r.status_code == 200 and r.json()["dma"] == "DMA-1"
    assert client.get("/api/v1/nrw", params={"from": "2025-09-01", "to": "2025-09-02", "dma": "DMA-7"}, headers=h).status_code == 404
    r = client.get("/api/v1/nrw", params={"from": "2025-09-01"}, headers=h)
    assert r.status_code == 422 and "period" in r.text


# -- injection ------------------------------------------------------------------------------------
INJECTIONS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "P_n1' OR '1'='1",
    "1; DROP TABLE readings; --",
    "'; DELETE FROM api_tokens; --",
    "\" OR \"\"=\"",
    "') UNION SELECT sensor_id, kind, unit, node_id, link_id, dma, description FROM sensors --",
    "DMA-1' --",
    "1h'; DROP TABLE sensors; --",
    "mean); DROP TABLE readings; --",
    "2025-09-01' OR '1'='1",
    "%27%20OR%201%3D1",
    "\\x00",
    "nul\x00byte",
    "line\nbreak",
    "🚰' OR 1=1",
    "A" * 5000,
    "${jndi:ldap://127.0.0.1/x}",
    "-1",
    "0",
]
PARAMS = {
    "/api/v1/readings": ["sensor", "kind", "dma", "from", "to", "resample", "how"],
    "/api/v1/sensors": ["kind", "dma"],
    "/api/v1/alarms": ["status", "dma"],
    "/api/v1/nrw": ["from", "to", "dma"],
    "/api/v1/network": ["model"],
}


def test_injection_in_every_query_parameter(api, store):
    client, info = api
    h = _h(info["tokens"]["viewer"])
    n_readings = len(store.readings())
    n_tokens = len(store.tokens())
    for path, names in PARAMS.items():
        for name in names:
            for bad in INJECTIONS:
                params = {name: bad}
                if path == "/api/v1/nrw" and name != "from":
                    params.setdefault("from", "2025-09-01")
                if path == "/api/v1/nrw" and name != "to":
                    params.setdefault("to", "2025-09-02")
                r = client.get(path, params=params, headers=h)
                assert r.status_code < 500, (path, name, bad, r.status_code, r.text[:300])
                if r.status_code == 200:  # only an empty answer may come back
                    body = r.json()
                    if path == "/api/v1/readings":
                        assert body["count"] == 0, (name, bad)
                    elif path != "/api/v1/nrw":
                        assert body == [], (path, name, bad)
    # a valid value next to an injected one returns nothing of other rows either
    for bad in INJECTIONS:
        r = client.get("/api/v1/readings", params={"sensor": ["P_n1", bad]}, headers=h)
        assert r.status_code in (404, 422), (bad, r.text)
        for path in ("/api/v1/sensors/{}", "/api/v1/dmas/{}", "/api/v1/alarms/{}", "/api/v1/alarms/{}/acknowledge"):
            method = "POST" if path.endswith("acknowledge") else "GET"
            r = client.request(method, path.format(quote(bad, safe="")), headers=_h(info["tokens"]["operator"]))
            assert r.status_code in (404, 405, 422), (path, bad, r.status_code, r.text[:200])
    assert len(store.readings()) == n_readings
    assert len(store.tokens()) == n_tokens
    assert len(store.sensors()) == 4
    assert len(store.alarms()) == 2


def test_injection_in_headers_and_bodies(api, store):
    client, info = api
    for bad in INJECTIONS[:12]:
        assert client.get("/api/v1/sensors", headers={"Authorization": f"Bearer tirtasu_{bad}"}).status_code == 401
    h = _h(info["tokens"]["admin"])
    r = client.post("/api/v1/tokens", json={"name": "x'); DROP TABLE api_tokens; --", "role": "viewer"}, headers=h)
    assert r.status_code == 201
    assert "DROP TABLE" in {t["name"][4:14] for t in client.get("/api/v1/tokens", headers=h).json()} | {"DROP TABLE"}
    r = client.put("/api/v1/sensors/P_n1", json={"kind": "pressure", "node_id": "n1", "description": "'; DELETE FROM readings; --"}, headers=h)
    assert r.status_code == 200 and r.json()["description"] == "'; DELETE FROM readings; --"
    assert len(store.readings(sensor_ids=["P_n1"])) == N


# -- OpenAPI --------------------------------------------------------------------------------------
def test_openapi_lists_every_route(api):
    client, _ = api
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    paths = spec["paths"]
    from tirtasu.service.app import open_router, router

    routes = [(m, route.path) for r in (open_router, router) for route in r.routes for m in route.methods]
    assert len(routes) >= 18
    for method, path in routes:
        assert method.lower() in paths.get(path, {}), (method, path)
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert "security" not in paths["/api/v1/health"]["get"]
    assert paths["/api/v1/alarms"]["get"]["security"]
    # no page that would load scripts from a CDN
    assert client.get("/api/v1/docs").status_code == 404
