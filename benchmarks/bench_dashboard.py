"""Benchmark: the dashboard's first meaningful paint of the map, and the API responses behind it.

On the demo's pilot (L-Town, 905 pipes, 3 DMAs, 120 sensors, 61 days of 5-min telemetry unless
``--days``), served by the real server (`tirtasu serve`) and opened in Debian's chromium driven
by Playwright:

1. first paint: from navigation to the map drawn (every pipe in the DOM, two animation frames
   later, so painted), cold (the server's first network request builds its GeoJSON) and warm
   (median of ``--runs``); target < 1.5 s;
2. the API responses the map needs (/dashboard/me, /network, /sensors, /alarms, /dmas), timed
   from this process over HTTP on loopback, median of ``--runs``; target < 200 ms each.

Writes the figures into ``docs/benchmarks.md`` between ``<!-- bench_dashboard -->`` markers.

Usage::

    python benchmarks/bench_dashboard.py [--days 61] [--runs 10] [--no-docs]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import Request, urlopen

sys.path.insert(0, str(Path(__file__).parent))
from _docs import machine_line, write_section  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ROUTES = ["/api/v1/dashboard/me", "/api/v1/network", "/api/v1/sensors", "/api/v1/alarms", "/api/v1/dmas"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=float, default=61.0)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()

    import pandas as pd
    from playwright.sync_api import sync_playwright

    from tirtasu.pilot import PilotConfig, build_pilot
    from tirtasu.service.auth import create_token
    from tirtasu.store import open_store

    tmp = Path(tempfile.mkdtemp(prefix="tirtasu-bench-dash-"))
    path = tmp / "pilot.duckdb"
    t = time.perf_counter()
    with open_store(str(path)) as st:
        build_pilot(st, tmp / "work", PilotConfig(days=args.days))
        st.put_alarm({"link_id": "p257", "candidates": ["p257", "p256", "p258"], "start_time": pd.Timestamp("2025-09-04 10:00"),
                      "detected_at": pd.Timestamp("2025-09-05 10:00"), "flow_m3h": 3.0, "dma": "DMA-1"})
        token = create_token(st, "bench", "viewer")[1]
        n_readings = int(st.readings_summary()["n"].sum())
    print(f"pilot built in {time.perf_counter() - t:.1f} s: {n_readings:,} readings")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(Path(sys.executable).with_name("tirtasu")), "serve", "--store", str(path), "--port", str(port),
                             "--detect-every", "0", "--log-level", "warning"])
    try:
        for _ in range(300):
            try:
                urlopen(base + "/api/v1/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        paints = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 800})
            for _ in range(args.runs + 1):  # the first is cold: the server builds the GeoJSON
                page.goto("about:blank")
                t0 = time.perf_counter()
                page.goto(f"{base}/#token={token}")
                page.wait_for_selector("#map[data-ready='1']", timeout=30_000)
                page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
                paints.append(time.perf_counter() - t0)
            pipes = page.locator("#map path.pipe[data-type='Pipe']").count()
            browser.close()
        api = {}
        for route in ROUTES:
            times, size = [], 0
            for _ in range(args.runs):
                t0 = time.perf_counter()
                body = urlopen(Request(base + route, headers={"Authorization": f"Bearer {token}"}), timeout=30).read()
                times.append(time.perf_counter() - t0)
                size = len(body)
            api[route] = (statistics.median(times), max(times), size)
    finally:
        proc.terminate()
        proc.wait(10)

    cold, warm = paints[0], statistics.median(paints[1:])
    print(f"first paint ({pipes} pipes): cold {cold * 1000:.0f} ms, warm median {warm * 1000:.0f} ms (target < 1500 ms)")
    for route, (med, worst, size) in api.items():
        print(f"  {route:28s} median {med * 1000:6.1f} ms, max {worst * 1000:6.1f} ms, {size / 1024:7.1f} KiB")
    ok = cold < 1.5 and warm < 1.5 and all(m < 0.2 for m, _, _ in api.values())
    print("targets met" if ok else "TARGET MISSED")
    if not args.no_docs:
        lines = [
            "## Dashboard: first paint of the map and the API behind it",
            "",
            f"`benchmarks/bench_dashboard.py`: the pilot ({args.days:g} days, {n_readings:,} readings, {pipes} pipes) behind "
            "`tirtasu serve`, the page opened in Debian's chromium (headless, Playwright); first paint = navigation to "
            "every pipe in the SVG and painted. API times over HTTP on loopback, median of "
            f"{args.runs}.",
            "",
            "| measure | time | target |",
            "|---|---|---|",
            f"| first paint, cold server (GeoJSON built on first request) | {cold * 1000:.0f} ms | < 1500 ms |",
            f"| first paint, warm (median of {args.runs}) | {warm * 1000:.0f} ms | < 1500 ms |",
        ]
        lines += [f"| `GET {r}` ({s / 1024:.0f} KiB) | {m * 1000:.1f} ms (max {w * 1000:.1f}) | < 200 ms |" for r, (m, w, s) in api.items()]
        lines += ["", machine_line("fastapi", "uvicorn", "duckdb", "playwright")]
        write_section("bench_dashboard", "\n".join(lines))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
