"""`tirtasu demo`: the simulated pilot utility, built into the embedded store."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from tirtasu.cli.common import DEFAULT_STORE, StoreOption, console, fail, progress_bar, store_url


def demo(
    store: str = StoreOption,
    workdir: Path = typer.Option(Path(".tirtasu/pilot"), help="Where the pilot's simulated exports and ground truth go."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build the pilot again even if the store already holds it (deletes the DuckDB file first)."),
    days: float = typer.Option(61.0, help="Days of telemetry to simulate, from 2025-09-01."),
    seed: int = typer.Option(2025, help="Random seed of the pilot's leaks, faults, noise and customers."),
    serve: bool = typer.Option(
        None,
        "--serve/--no-serve",
        help="Then serve the pilot's dashboard and API (tirtasu serve) until Ctrl-C. "
        "Default: serve when run in a terminal, not when run by a script or CI.",
        show_default=False,
    ),
    port: int = typer.Option(8000, "--port", help="With --serve: the API's port (on 127.0.0.1)."),
):
    """Build the pilot utility (L-Town, 3 DMAs, 2 months of 5-min telemetry with leaks, customers
    and monthly billing) into the store, then summarise what is there and where.

    The first run simulates and imports (under a minute); later runs with the same settings
    reuse the store. Another --days or --seed needs --rebuild.
    """
    from tirtasu.pilot import PilotConfig, build_pilot, pilot_is_current
    from tirtasu.store import open_store

    if serve is None:  # a person at a terminal wants the dashboard; a pipeline wants the command to end
        serve = sys.stdin.isatty() and sys.stdout.isatty()

    url = store_url(store)
    config = PilotConfig(days=days, seed=seed)
    if rebuild and not url.startswith(("postgres", ":memory:")) and Path(url).exists():
        Path(url).unlink()
    try:
        st = open_store(url)
    except RuntimeError as exc:
        fail(str(exc))
    with st:
        if st.meta("pilot") and not pilot_is_current(st, config):
            fail(f"{url} holds a pilot built with other settings; add --rebuild to replace it")
        if pilot_is_current(st, config):
            console.print(f"The pilot is already in [bold]{escape(url)}[/] (use --rebuild to make it again).")
        else:
            with progress_bar() as bar:
                tasks = {}

                def progress(stage: str, fraction: float):
                    if stage not in tasks:
                        tasks[stage] = bar.add_task(stage, total=1.0)
                    bar.update(tasks[stage], completed=fraction)

                build_pilot(st, workdir, config, progress=progress)
        _summary(st, url)
        _water_balance(st, url)
        link = _dashboard_link(st, port) if serve else None
    if not serve:
        console.print("Dashboard and API: [bold]tirtasu demo --serve[/] (then open the printed link).", highlight=False)
    if serve:  # after the store is closed: the server opens it itself
        from tirtasu.cli.serve import run_server

        console.print(f"\n[bold]Dashboard[/] (signed in as an operator of the demo): {escape(link)}", soft_wrap=True, highlight=False)
        run_server(url, port=port)


def _dashboard_link(st, port: int) -> str:
    """A fresh operator token for the demo's dashboard (older demo tokens revoked) in a link.

    The token rides in the address's fragment, which the browser never sends to the server; the
    page moves it into the tab's sessionStorage and takes it out of the address at once.
    """
    from tirtasu.service.auth import create_token

    tokens = st.tokens()
    for tid in tokens[(tokens["name"] == "dashboard-demo") & tokens["revoked_at"].isna()]["token_id"]:
        st.revoke_token(tid)
    _, secret = create_token(st, "dashboard-demo", "operator")
    return f"http://127.0.0.1:{port}/#token={secret}"


def _summary(st, url: str) -> None:
    info = st.meta("pilot") or {}
    sensors = st.sensors()
    readings = st.readings_summary()
    console.print(
        f"\n[bold]Pilot utility[/] — model {info.get('model')}, {info.get('start', '')[:10]} → "
        f"{info.get('end', '')[:10]} (UTC), store [bold]{escape(url)}[/]"
    )
    dma_links = st.dma_links()
    table = Table(title="District metered areas", title_justify="left")
    for col in ("DMA", "nodes", "inlet meters", "pressure", "smart meters", "level", "customers"):
        table.add_column(col)
    nodes = st.dma_nodes().groupby("dma").size()
    customers = st.customers().groupby("dma").size()
    for dma in sorted(nodes.index):
        inlets = dma_links[(dma_links.dma == dma) & (dma_links.sign > 0)].link_id
        meters = sensors[(sensors.kind == "flow") & sensors.link_id.isin(inlets)].sensor_id
        here = sensors[sensors.dma == dma]
        table.add_row(
            dma,
            f"{nodes[dma]:,}",
            ", ".join(meters) or "—",
            str((here.kind == "pressure").sum()),
            str((here.kind == "demand").sum()),
            str((here.kind == "level").sum()),
            f"{customers.get(dma, 0):,}",
        )
    console.print(table)
    by_kind = readings.groupby("kind").agg(sensors=("sensor_id", "size"), readings=("n", "sum"), first=("first", "min"), last=("last", "max"))
    table = Table(title="Telemetry", title_justify="left")
    for col in ("kind", "sensors", "readings", "from", "to"):
        table.add_column(col)
    for kind, r in by_kind.iterrows():
        table.add_row(kind, str(r.sensors), f"{int(r.readings):,}", f"{r['first']:%Y-%m-%d %H:%M}", f"{r['last']:%Y-%m-%d %H:%M}")
    console.print(table)
    bills = st.billing()
    if len(bills):
        monthly = bills.groupby("period_start")["billed_m3"].sum()
        console.print(
            "Billed consumption: "
            + ", ".join(f"{pd.Timestamp(m):%b %Y} {v:,.0f} m³" for m, v in monthly.items())
        )
    workdir = info.get("workdir", "")
    store_flag = "" if url == DEFAULT_STORE else f" --store {url}"
    console.print(
        f"Simulated exports (wide CSVs) and the ground truth of {info.get('leaks', 0)} leaks: {escape(workdir)}/\n"
        f"Next: [bold]tirtasu telemetry sensors{escape(store_flag)}[/], "
        f"[bold]tirtasu telemetry query --kind flow --resample 1h{escape(store_flag)}[/], "
        "[bold]tirtasu network info " + escape(f"{workdir}/model.inp") + "[/]",
        soft_wrap=True,
    )


def _water_balance(st, url: str) -> None:
    """The pilot's IWA water balance from its meters and bills (tirtasu nrw balance)."""
    from tirtasu.nrw.audit import load_audit
    from tirtasu.nrw.balance import water_balance
    from tirtasu.pilot import write_pilot_audit

    info = st.meta("pilot") or {}
    audit = write_pilot_audit(st, Path(info.get("workdir", ".")) / "audit.yaml")
    wb = water_balance(load_audit(audit, store=st))

    def pm(key: str, fmt: str) -> str:
        c = wb[key]
        limit = f" ± {format(c.cl95_abs, fmt)}" if c.cl95_abs is not None else ""
        return f"{format(c.value, fmt)}{limit}"

    band = wb.bands.get("developing")
    console.print(
        f"\n[bold]Water balance[/] {info.get('start', '')[:10]} → {info.get('end', '')[:10]}: "
        f"system input {pm('system_input_volume', ',.0f')} m³, NRW {pm('nrw_pct_siv', '.1f')} % of it, "
        f"real losses {pm('real_losses', ',.0f')} m³, ILI {pm('ili', '.1f')}"
        + (f" (WBI band {band.band}, developing countries)" if band is not None else ""),
        soft_wrap=True,
    )
    console.print(f"Full balance: [bold]tirtasu nrw balance {escape(str(audit))} --store {escape(url)}[/]", soft_wrap=True)
