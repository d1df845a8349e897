"""The dashboard end to end, in a real browser: Debian's chromium (/usr/bin/chromium) driven by
Playwright, against the real server (`tirtasu serve`) on a short L-Town pilot.

Skipped with a reason without a browser or without the playwright package; under CI (``CI=true``,
set by .ci/run, which installs chromium) their absence is a failure. Screenshots of each view go
to ``$TIRTASU_E2E_ARTIFACTS`` (default ``build/e2e/``); with ``TIRTASU_UPDATE_DOCS=1`` they are
also copied to ``docs/dashboard/``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import Request, urlopen

import pandas as pd
import pytest

from tirtasu.service.dashboard import catalogue

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("TIRTASU_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("TIRTASU_E2E_ARTIFACTS", ROOT / "build" / "e2e"))
DOCS = ROOT / "docs" / "dashboard"
# as root, in a closed network: no sandbox, no GPU, and none of Chromium's own calls home
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions"]
LEAK_FLOW = 1234.5  # m³/h: big enough to show the thousands separator of each language


def _need(what: str, request):
    if request.config.ci:
        pytest.fail(what + " (CI must run the browser tests: .ci/run installs chromium)", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="module")
def browser(request):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("the playwright package is not installed (pip install -e '.[test]')", request)
    if not Path(CHROMIUM).exists():
        _need(f"no browser at {CHROMIUM} (apt-get install -y chromium)", request)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    """`tirtasu serve` on an 8-day pilot with two open alarms and viewer and operator tokens."""
    if not Path(CHROMIUM).exists():  # do not build a pilot for nothing
        _need(f"no browser at {CHROMIUM} (apt-get install -y chromium)", request)
    from tirtasu.pilot import PilotConfig, build_pilot
    from tirtasu.service.auth import create_token
    from tirtasu.store import open_store

    tmp = tmp_path_factory.mktemp("e2e")
    path = tmp / "pilot.duckdb"
    with open_store(str(path)) as st:
        build_pilot(st, tmp / "work", PilotConfig(days=8, n_faults=0))
        alarms = [
            st.put_alarm({"link_id": "p257", "candidates": ["p257", "p256", "p258"], "start_time": pd.Timestamp("2025-09-04 10:00"),
                          "detected_at": pd.Timestamp("2025-09-05 10:00"), "flow_m3h": LEAK_FLOW, "dma": "DMA-1"}),
            st.put_alarm({"link_id": "p120", "candidates": ["p120", "p121"], "start_time": pd.Timestamp("2025-09-06 02:00"),
                          "detected_at": pd.Timestamp("2025-09-06 12:00"), "flow_m3h": 2.5, "dma": "DMA-1"}),
        ]
        tokens = {role: create_token(st, f"{role}-e2e", role)[1] for role in ("viewer", "operator")}
    port = _free_port()
    exe = Path(sys.executable).with_name("tirtasu")
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen([str(exe), "serve", "--store", str(path), "--port", str(port), "--detect-every", "0", "--log-level", "warning"],
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urlopen(base + "/api/v1/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("the server stopped: " + (tmp / "server.log").read_text())
                time.sleep(0.1)
        yield {"base": base, "tokens": tokens, "alarms": alarms}
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _get(server, path, role="viewer"):
    req = Request(server["base"] + path, headers={"Authorization": "Bearer " + server["tokens"][role]})
    return json.loads(urlopen(req, timeout=30).read())


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1366, "height": 820}, locale="en-US")
    pg = ctx.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    ctx.close()
    assert not pg.errors, pg.errors


def _open(page, server, role: str, hash_="map", lang: str | None = None):
    q = f"?lang={lang}" if lang else ""
    page.goto(f"{server['base']}/{q}#token={server['tokens'][role]}")
    page.wait_for_selector("#map[data-ready='1']", timeout=15_000)
    if hash_ != "map":
        page.evaluate(f"location.hash = '#{hash_}'")


def _shot(page, name: str):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    if os.environ.get("TIRTASU_UPDATE_DOCS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS / path.name)


# -- the map --------------------------------------------------------------------------------------
def test_map_draws_every_pipe_and_the_alarms(page, server):
    net = _get(server, "/api/v1/network")
    pipes = {f["id"] for f in net["features"] if f["properties"]["type"] == "Pipe"}
    assert len(pipes) > 900
    _open(page, server, "viewer")
    drawn = page.eval_on_selector_all("#map path.pipe[data-type='Pipe']", "els => els.map(e => e.dataset.id)")
    assert set(drawn) == pipes and len(drawn) == len(pipes)
    assert page.locator("#map-summary").get_attribute("data-pipes") == str(len(pipes))
    # DMAs in colour: as many pipe colours as DMAs (boundary pipes drawn dashed in black)
    colours = set(page.eval_on_selector_all("#map path.pipe:not(.boundary)", "els => els.map(e => e.getAttribute('stroke'))"))
    assert len(colours) == 3
    # tanks, sources, pumps; the open alarms' candidate pipes
    assert page.locator("#map .tank").count() >= 1 and page.locator("#map .reservoir").count() >= 1 and page.locator("#map .pump").count() >= 1
    assert sorted(page.eval_on_selector_all("#map path.cand", "els => els.map(e => e.dataset.id)")) == sorted(["p257", "p256", "p258", "p120", "p121"])
    _shot(page, "map")
    # a sensor: last value, sparkline, link to its series
    page.locator("#map circle.sensor[data-id^='P_']").first.click(force=True)
    page.wait_for_selector("#popup .series-link")
    assert page.locator("#popup .last").inner_text().endswith(" m")
    assert page.locator("#popup svg.spark polyline").count() == 1
    _shot(page, "map-sensor")
    page.locator("#popup .series-link").click()
    page.wait_for_selector("#series-chart .main-svg", timeout=15_000)
    assert page.locator("#series-what").input_value().startswith("s:P_")


# -- alarms and roles -----------------------------------------------------------------------------
def _row(page, alarm_id):
    return page.locator(f"#alarms-table tr[data-alarm='{alarm_id}']")


def test_viewer_sees_alarms_but_cannot_act(page, server):
    a = server["alarms"][1]
    _open(page, server, "viewer", "alarms")
    page.wait_for_selector(f"#alarms-table tr[data-alarm='{a}']")
    assert page.locator("#alarms-table button").count() == 0
    assert page.locator("#alarms-readonly").is_visible()
    # and the API refuses it anyway, whatever the page shows
    status = page.evaluate(
        """async ([id, tok]) => (await fetch('/api/v1/alarms/' + id + '/acknowledge', {method: 'POST',
             headers: {Authorization: 'Bearer ' + tok, 'Content-Type': 'application/json'}, body: '{}'})).status""",
        [a, server["tokens"]["viewer"]],
    )
    assert status == 403
    assert _get(server, f"/api/v1/alarms/{a}")["status"] == "open"
    _shot(page, "alarms-viewer")


def test_operator_acknowledges_assigns_and_repairs(page, server):
    a = server["alarms"][0]
    _open(page, server, "operator", "alarms")
    row = _row(page, a)
    row.wait_for()
    assert row.get_attribute("data-status") == "open"
    row.locator("button.ack").click()
    page.wait_for_selector(f"#alarms-table tr[data-alarm='{a}'][data-status='acknowledged']")
    page.once("dialog", lambda d: d.accept("Crew 7"))
    _row(page, a).locator("button.assign").click()
    page.wait_for_function(f"document.querySelector(\"#alarms-table tr[data-alarm='{a}']\").textContent.includes('Crew 7')")
    _shot(page, "alarms-operator")
    body = _get(server, f"/api/v1/alarms/{a}")
    assert body["status"] == "acknowledged" and body["assigned_to"] == "Crew 7"
    assert [h["action"] for h in body["history"]][-2:] == ["acknowledged", "assigned"]
    assert all(h["by"].startswith("operator-e2e") for h in body["history"][-2:])
    page.once("dialog", lambda d: d.accept("joint replaced"))
    _row(page, a).locator("button.repair").click()
    page.wait_for_selector(f"#alarms-table tr[data-alarm='{a}'][data-status='repaired']")
    body = _get(server, f"/api/v1/alarms/{a}")
    assert body["status"] == "repaired" and body["history"][-1]["note"] == "joint replaced"
    assert _row(page, a).locator("button").count() == 0  # final: no more actions, the history stays
    _row(page, a).locator("details summary").click()
    assert _row(page, a).locator("details li").count() == len(body["history"])


# -- languages ------------------------------------------------------------------------------------
FLOW_TEXT = {"en": "1,234.5", "id": "1.234,5", "tr": "1.234,5"}


def test_language_switch_changes_labels_and_numbers(page, server):
    _open(page, server, "viewer", "alarms", lang="en")
    page.wait_for_selector("#alarms-table td.flow")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert LEAK_FLOW and FLOW_TEXT["en"] in page.locator("#alarms-table").inner_text()
    for lang in ("id", "tr"):
        page.select_option("#lang", lang)
        cat = catalogue(lang)
        page.wait_for_function(f"document.documentElement.lang === '{lang}'")
        page.wait_for_function(
            "([sel, text]) => document.querySelector(sel).textContent === text", arg=["header a[data-view='alarms']", cat["nav.alarms"]]
        )
        # wait for the table in this language: id and tr write numbers alike, so the status word decides
        page.wait_for_function(
            "([a, b]) => { const t = document.querySelector('#alarms-table').innerText; return t.includes(a) && t.includes(b); }",
            arg=[FLOW_TEXT[lang], cat["status.open"]],
        )
        assert page.locator("h1:visible").first.inner_text() == cat["alarms.title"]
        _shot(page, f"alarms-{lang}")
    # remembered: the next visit without ?lang= comes in Turkish, declared in <html lang>
    page.goto(server["base"] + "/#alarms")
    assert page.evaluate("document.documentElement.lang") == "tr"
    assert page.locator("header a[data-view='map']").inner_text() == catalogue("tr")["nav.map"]


# -- time series and NRW, and that nothing leaves our server ------------------------------------------
def test_every_view_loads_only_from_our_server(page, server):
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    failed = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    _open(page, server, "operator", lang="id")
    page.evaluate("location.hash = '#series?dma=DMA-1'")
    page.wait_for_selector("#series-chart .main-svg", timeout=20_000)
    page.wait_for_function("document.querySelectorAll('#series-chart .scatterlayer .trace, #series-chart .gl-container canvas').length > 0")
    _shot(page, "series")
    page.evaluate("location.hash = '#nrw'")
    page.wait_for_selector("#wb div[data-key='real_losses']", timeout=30_000)
    page.wait_for_selector("#ranking tbody tr", timeout=30_000)
    page.wait_for_selector("#trend .main-svg", timeout=30_000)
    assert page.locator("#ili-line").inner_text().count(",") >= 1  # ILI with a decimal comma in Indonesian
    assert "±" in page.locator("#wb").inner_text()
    _shot(page, "nrw")
    # the same on a tablet
    page.set_viewport_size({"width": 820, "height": 1180})
    page.evaluate("location.hash = '#map'")
    page.wait_for_timeout(300)
    _shot(page, "map-tablet")
    outside = [u for u in requests if not u.startswith(server["base"] + "/") and not u.startswith("data:")]
    assert not outside, outside
    assert not failed, failed
    assert any(u.endswith("/static/vendor/plotly.min.js") for u in requests)


def test_first_paint_of_the_map_is_fast(page, server):
    """Navigation to the map drawn (every pipe in the DOM, painted): best of three < 1.5 s."""
    times = []
    for _ in range(3):
        page.goto("about:blank")
        t0 = time.perf_counter()
        page.goto(f"{server['base']}/#token={server['tokens']['viewer']}")
        page.wait_for_selector("#map[data-ready='1']", timeout=15_000)
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        times.append(time.perf_counter() - t0)
    assert min(times) < 1.5, times
