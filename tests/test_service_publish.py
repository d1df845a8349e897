"""Alarm publication (a Mosquitto with a password file and ACL, a webhook), detection → alarms,
and the network GeoJSON route."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pandas as pd
import pytest


from tirtasu.service.detection import alarms_from_detections
from tirtasu.service.publish import Publisher, mqtt_publish, post_webhook


pytestmark = pytest.mark.filterwarnings("ignore:.*httpx2.*")  # starlette's note on its test client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


@pytest.fixture
def mosquitto(tmp_path):
    """A Mosquitto on a free loopback port: no anonymous access, a password file and an ACL,
    as docs/service.md shows. Yields (port, users)."""
    broker, passwd = _which("mosquitto"), _which("mosquitto_passwd")
    if not broker or not passwd:
        pytest.skip("needs mosquitto and mosquitto_passwd (apt-get install mosquitto)")
    users = {"tirtasu": "alarm-secret", "dashboard": "read-only-secret"}
    pwfile = tmp_path / "passwd"
    pwfile.touch()
    for user, password in users.items():
        subprocess.run([passwd, "-b", str(pwfile), user, password], check=True, capture_output=True)
    acl = tmp_path / "acl"
    acl.write_text("user tirtasu\ntopic write tirtasu/alarms/#\n\nuser dashboard\ntopic read tirtasu/alarms/#\n")
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {pwfile}\nacl_file {acl}\npersistence false\n"
        # started as root, Mosquitto would drop to user "mosquitto", which cannot read pytest's
        # private temporary directory; a broker in production runs as its own user (docs)
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    for f in (pwfile, acl):
        f.chmod(0o600)  # newer Mosquitto warns about (and will refuse) readable secrets
    proc = subprocess.Popen([broker, "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"mosquitto did not start: {proc.stdout.read().decode()[:500]}")
    yield port, users
    proc.terminate()
    proc.wait(timeout=10)


def _subscribe(port, user, password, topic):
    """A subscribed client collecting messages; returns (client, messages, refused reason)."""
    import paho.mqtt.client as mqtt

    got, ready, reason = [], threading.Event(), []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    if user:
        client.username_pw_set(user, password)

    def on_connect(c, userdata, flags, rc, props):
        if rc.is_failure:
            reason.append(str(rc))
            ready.set()
        else:
            c.subscribe(topic, qos=1)

    client.on_connect = on_connect
    client.on_subscribe = lambda *a: ready.set()
    client.on_message = lambda c, u, msg: got.append((msg.topic, json.loads(msg.payload)))
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.wait(10)
    return client, got, reason


@pytest.mark.mqtt
def test_mosquitto_refuses_anonymous_and_publishes_for_the_authorised(mosquitto):
    port, users = mosquitto
    # anonymous and wrong-password clients are refused
    with pytest.raises(RuntimeError, match="refused"):
        mqtt_publish(f"mqtt://127.0.0.1:{port}", "tirtasu/alarms/1", b"{}")
    with pytest.raises(RuntimeError, match="refused"):
        mqtt_publish(f"mqtt://tirtasu:wrong@127.0.0.1:{port}", "tirtasu/alarms/1", b"{}")
    anon, _, refused = _subscribe(port, None, None, "#")
    anon.loop_stop()
    assert refused, "an anonymous subscriber was let in"
    dash, got, refused = _subscribe(port, "dashboard", users["dashboard"], "tirtasu/alarms/#")
    assert not refused
    try:
        # the service's user publishes alarm events; the ACL lets the dashboard read them
        pub = Publisher(mqtt_url=f"mqtt://tirtasu:{users['tirtasu']}@127.0.0.1:{port}")
        pub.publish("alarm.raised", {"alarm_id": 7, "link_id": "p123", "status": "open"})
        pub.flush(20)
        assert pub.sent == 1 and pub.failed == 0, pub.last_error
        # the ACL keeps the service's user to its topics: a write elsewhere is dropped by the broker
        mqtt_publish(f"mqtt://tirtasu:{users['tirtasu']}@127.0.0.1:{port}", "tirtasu/elsewhere", b'{"x": 1}')
        # and the read-only dashboard cannot publish alarms
        mqtt_publish(f"mqtt://dashboard:{users['dashboard']}@127.0.0.1:{port}", "tirtasu/alarms/99", b'{"forged": true}')
        deadline = time.time() + 10
        while not got and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        dash.loop_stop()
        dash.disconnect()
    assert got == [("tirtasu/alarms/7", {"event": "alarm.raised", "alarm": {"alarm_id": 7, "link_id": "p123", "status": "open"}})]


def test_webhook_is_signed(tmp_path):
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        pub = Publisher(webhook_url=url, webhook_secret="k3y")
        pub.publish("alarm.acknowledged", {"alarm_id": 3, "status": "acknowledged"})
        pub.flush(20)
        assert pub.sent == 1, pub.last_error
        headers, body = received[0]
        assert json.loads(body) == {"event": "alarm.acknowledged", "alarm": {"alarm_id": 3, "status": "acknowledged"}}
        assert headers["X-Tirtasu-Event"] == "alarm.acknowledged"
        assert headers["X-Tirtasu-Signature"] == "sha256=" + hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
        assert post_webhook(url, b"{}", "test") == 204
    finally:
        server.shutdown()
    # an unreachable webhook is counted and reported, never raised into the caller
    pub = Publisher(webhook_url=f"http://127.0.0.1:{_free_port()}/")
    pub.publish("alarm.raised", {"alarm_id": 1})
    pub.flush(20)
    assert pub.failed == 1 and "URLError" in pub.last_error


def test_detections_become_alarms_once():
    det = pd.DataFrame(
        {
            "link_id": ["p1", "p5", ""],
            "start_time": ["2025-09-10 06:00", "2025-09-12 01:00", "2025-09-13 00:00"],
            "leak_flow_m3h": [3.2, 1.1, 0.5],
            "estimated_start": ["2025-09-10 02:00", "", ""],
            "candidates": ["p2;p3", "", ""],
            "node_id": ["n1", "", ""],
            "p_within_300m": [0.8, 0.4, None],
            "peak_flow_m3h": [3.5, 1.1, 0.5],
            "repair_time": ["", "", ""],
            "search_km": [1.3, None, None],
        }
    )
    empty = pd.DataFrame(columns=["alarm_id", "link_id", "candidates", "status", "detected_at"])
    new = alarms_from_detections(det, empty, {"n1": "DMA-1", "n7": "DMA-2"}, {"p5": ("n7", "n8")})
    # a leak that could not be placed (too few pressure sensors) raises an alarm without a pipe
    assert [a["link_id"] for a in new] == ["p1", "p5", None]
    assert new[2]["candidates"] == [] and new[2]["dma"] is None
    assert new[2]["history"][0]["note"] == (
        "leak of 0.50 m³/h found from the water balance; too few pressure sensors to place it"
    )
    assert new[0]["candidates"] == ["p1", "p2", "p3"] and new[0]["dma"] == "DMA-1"
    assert new[0]["start_time"] == pd.Timestamp("2025-09-10 02:00", tz="UTC")
    assert new[0]["detected_at"] == pd.Timestamp("2025-09-10 06:00", tz="UTC")
    assert new[1]["dma"] == "DMA-2" and new[1]["start_time"] == new[1]["detected_at"]
    assert new[0]["history"][0]["by"] == "detector"
    assert new[0]["history"][0]["note"] == (
        "leak of 3.20 m³/h near p1; 80 % likely within 300 m, 1.3 km of mains hold 90 % of the probability"
    )
    assert new[1]["history"][0]["note"] == "leak of 1.10 m³/h near p5; 40 % likely within 300 m"
    # the next run finds the same leaks: nothing new while their alarms are not repaired
    existing = pd.DataFrame(
        [
            {"alarm_id": 1, "link_id": "p2", "candidates": ["p2", "p1"], "status": "acknowledged", "detected_at": pd.Timestamp("2025-09-10 05:00", tz="UTC")},
            {"alarm_id": 2, "link_id": "p5", "candidates": ["p5"], "status": "repaired", "detected_at": pd.Timestamp("2025-09-12 01:00", tz="UTC")},
            {"alarm_id": 3, "link_id": None, "candidates": [], "status": "open", "detected_at": pd.Timestamp("2025-09-12 20:00", tz="UTC")},
        ]
    )
    # the unplaced leak found again at another time is the one still open
    assert alarms_from_detections(det, existing, {}, {}) == []
    # once that one is repaired, a leak found from the balance alone is a new one
    existing.loc[2, "status"] = "repaired"
    again = alarms_from_detections(det, existing, {}, {})
    assert [a["link_id"] for a in again] == [None]


def test_an_alarm_without_a_pipe_gives_the_area_and_gets_its_pipe_later():
    """A detection placed too uncertainly to name a pipe (empty link_id, candidates listed)
    raises an alarm with the area to survey, not the "too few sensors" one; a run on a later
    window that finds it again raises nothing; the row naming its pipe later (same onset)
    places that alarm instead of raising another, and not an alarm of another leak."""
    from tirtasu.service.detection import placements_from_detections

    det = pd.DataFrame(
        {
            "link_id": ["", "p1"],
            "start_time": ["2025-09-10 06:00", "2025-09-10 08:00"],
            "leak_flow_m3h": [6.0, 0.9],
            "estimated_start": ["2025-09-09 20:00", "2025-09-10 03:00"],
            "candidates": ["p7;p8;p9", ""],
            "node_id": ["", "n1"],
            "p_within_300m": [0.25, 0.7],
            "peak_flow_m3h": [6.0, 0.9],
            "repair_time": ["", ""],
            "search_km": [4.2, 0.8],
        }
    )
    empty = pd.DataFrame(columns=["alarm_id", "link_id", "candidates", "status", "detected_at"])
    new = alarms_from_detections(det, empty, {"n7": "DMA-2", "n1": "DMA-1"}, {"p7": ("n7", "n8"), "p1": ("n1", "n2")})
    assert [a["link_id"] for a in new] == [None, "p1"]
    zone = new[0]
    assert zone["candidates"] == ["p7", "p8", "p9"] and zone["dma"] == "DMA-2"
    assert zone["history"][0]["note"] == (
        "leak of 6.00 m³/h whose place is uncertain (25 % likely within 300 m of its best pipe; no pipe named yet): "
        "survey the 4.2 km of mains around p7, p8, p9"
    )
    # a second zone detection is not taken for the leak without a pipe of the water balance
    existing = pd.DataFrame(
        [
            {"alarm_id": 1, "link_id": None, "candidates": [], "status": "open", "detected_at": pd.Timestamp("2025-09-01", tz="UTC"),
             "start_time": pd.Timestamp("2025-09-01", tz="UTC")},
        ]
    )
    assert [a["link_id"] for a in alarms_from_detections(det, existing, {}, {})] == [None, "p1"]
    # found again by a later run (another detection time, its best candidate already listed): nothing new
    existing = pd.DataFrame(
        [
            {"alarm_id": 2, "link_id": None, "candidates": ["p7", "p8", "p9"], "status": "open",
             "detected_at": pd.Timestamp("2025-09-10 05:00", tz="UTC"), "start_time": pd.Timestamp("2025-09-09 20:00", tz="UTC")},
        ]
    )
    assert [a["link_id"] for a in alarms_from_detections(det.iloc[:1], existing, {}, {})] == []
    # the row naming its pipe two days later, same onset: the alarm is placed, nothing new is raised
    later = pd.DataFrame(
        {
            **{c: [det[c].iloc[0]] for c in det.columns},
            "link_id": ["p8"], "start_time": ["2025-09-12 07:00"], "candidates": ["p9;p10"], "p_within_300m": [0.6],
            "search_km": [1.1],
        }
    )
    both = pd.concat([det, later], ignore_index=True)
    placed = placements_from_detections(both, existing)
    assert placed == [{
        "alarm_id": 2, "link_id": "p8", "candidates": ["p8", "p9", "p10", "p7"],
        "note": "placed near p8; 60 % likely within 300 m, 1.1 km of mains hold 90 % of the probability",
    }]
    existing.loc[0, "link_id"] = "p8"
    existing.at[0, "candidates"] = placed[0]["candidates"]
    assert [a["link_id"] for a in alarms_from_detections(both, existing, {}, {})] == ["p1"]
    # a pipe among its candidates named for another leak (onset days apart), or before the
    # alarm was raised, or for a repaired alarm: not this alarm's place
    other = later.assign(estimated_start=["2025-09-12 01:00"])
    existing.loc[0, "link_id"] = None
    existing.at[0, "candidates"] = ["p7", "p8", "p9"]
    assert placements_from_detections(other, existing) == []
    assert placements_from_detections(later.assign(start_time=["2025-09-10 04:00"]), existing) == []
    assert placements_from_detections(later, existing.assign(status="repaired")) == []


def test_an_alarm_without_a_pipe_is_placed_in_the_store(store):
    """The scheduler's round trip on each backend: the alarm raised without a pipe, the change
    that names its pipe, and the alarm as read back (its pipe, its candidates, the event)."""
    from tirtasu.service.detection import placements_from_detections

    zone = pd.DataFrame({
        "link_id": [""], "start_time": ["2025-09-10 06:00"], "leak_flow_m3h": [6.0], "estimated_start": ["2025-09-09 20:00"],
        "candidates": ["p7;p8;p9"], "node_id": [""], "p_within_300m": [0.25], "peak_flow_m3h": [6.0], "repair_time": [""],
        "search_km": [4.2],
    })
    (alarm,) = alarms_from_detections(zone, store.alarms(), {}, {})
    alarm_id = store.put_alarm(alarm)
    named = zone.assign(link_id=["p9"], start_time=["2025-09-12 07:00"], candidates=["p8"], p_within_300m=[0.7])
    (change,) = placements_from_detections(pd.concat([zone, named]), store.alarms())
    assert change["alarm_id"] == alarm_id
    assert store.update_alarm(alarm_id, {"link_id": change["link_id"], "candidates": change["candidates"]},
                              {"at": "2025-09-12T07:00:00+00:00", "by": "detector", "action": "placed", "note": change["note"]})
    back = store.alarms(alarm_id=alarm_id).iloc[0]
    assert back["link_id"] == "p9" and list(back["candidates"]) == ["p9", "p8", "p7"]
    assert [h["action"] for h in back["history"]] == ["raised", "placed"]
    # placed, it needs no second placement nor a second alarm
    assert placements_from_detections(pd.concat([zone, named]), store.alarms()) == []
    assert alarms_from_detections(pd.concat([zone, named]), store.alarms(), {}, {}) == []


def test_network_geojson_route(store, net1_path):
    from fastapi.testclient import TestClient

    from tirtasu.network import load_model
    from tirtasu.network.dma import dmas_from_boundaries
    from tirtasu.service import create_app
    from tirtasu.service.auth import create_token

    wn = load_model(net1_path)
    store.put_model("net1", net1_path.read_text())
    dmas = dmas_from_boundaries(wn, ["10"])
    store.set_dmas(dmas.nodes, dmas.links[["dma", "link_id", "sign"]])
    _, secret = create_token(store, "v", "viewer")
    with TestClient(create_app(store=store)) as client:
        h = {"Authorization": f"Bearer {secret}"}
        r = client.get("/api/v1/network", headers=h)
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
        gj = r.json()
        assert gj["type"] == "FeatureCollection"
        ids = {f["id"] for f in gj["features"]}
        assert set(wn.node_name_list) <= ids and set(wn.link_name_list) <= ids
        assert any(f["properties"]["type"] == "DMA" for f in gj["features"])
        assert client.get("/api/v1/network", params={"model": "other"}, headers=h).status_code == 404
        assert client.get("/api/v1/network", headers=h).text == r.text  # served from the cache
