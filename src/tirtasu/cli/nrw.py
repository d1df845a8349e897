"""`tirtasu nrw` commands: water balance, DMA night-flow analysis, economics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from tirtasu.cli.common import StoreOption, console, fail, store_url

app = typer.Typer(
    help=(
        "Non-revenue water: the IWA/AWWA water balance with 95 % confidence limits and data "
        "validity grades, loss indicators (UARL, ILI, WBI bands), DMA night-flow analysis with "
        "FAVAD, and the economics of losses. See docs/nrw.md."
    ),
    no_args_is_help=True,
)


def _open_store(store: str | None):
    from tirtasu.store import open_store

    url = store_url(store)
    if not url.startswith(("postgres", ":memory:")) and not Path(url.removeprefix("duckdb://")).exists():
        fail(f"no store at {url}: run [bold]tirtasu demo[/] or import data first, or pass --store")
    try:
        return open_store(url, read_only=True)
    except (RuntimeError, NotImplementedError) as exc:
        fail(str(exc))


@app.command("balance")
def balance(
    audit: Path = typer.Argument(..., help="The audit YAML file (see docs/nrw.md for its keys).", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: every component with value, ±CL95 and unit (m³)."),
    html: Path = typer.Option(None, "--html", help="Also write a one-page, self-contained HTML report here.", show_default=False),
    monte_carlo: int = typer.Option(0, "--monte-carlo", min=0, help="Check the propagation with N Monte Carlo draws (e.g. 20000)."),
    seed: int = typer.Option(0, help="Seed of the Monte Carlo draws."),
    unit: str = typer.Option("m3", "--unit", help="Volume unit of the table and the HTML report: m3, ML, kL, MG …"),
    store: str = StoreOption,
):
    """Compute the water balance of an audit file: system input to real losses, NRW, indicators.

    Every input may carry a 95 % confidence limit (cl95, ± %) and a validity grade (1–10); the
    limits are propagated to every component, ratios included. Volumes given as 'value: store'
    are computed from the store (DMA inflow meters, billing; unbilled days of smart-metered
    customers from their smart meters) for the audit's period.
    """
    from tirtasu.nrw.audit import AuditError, load_audit
    from tirtasu.nrw.balance import water_balance
    from tirtasu.nrw.report import balance_html, balance_json, print_balance, volume_factor

    try:
        volume_factor(unit)
    except ValueError as exc:
        fail(str(exc))
    opened = []

    def factory():
        st = _open_store(store)
        opened.append(st)
        return st

    try:
        inputs = load_audit(audit, store=factory)
        wb = water_balance(inputs, monte_carlo=monte_carlo, seed=seed)
    except (AuditError, ValueError, KeyError) as exc:
        fail(escape(str(exc).strip('"')))
    finally:
        for st in opened:
            st.close()
    if html is not None:
        try:
            html.write_text(balance_html(wb, unit=unit), encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {html}: {exc.strerror or exc}")
    if as_json:
        typer.echo(balance_json(wb))
        return
    print_balance(wb, console, unit=unit)
    if html is not None:
        console.print(f"HTML report: [bold]{escape(str(html))}[/]")


def _date(value: str | None, name: str):
    import pandas as pd

    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except ValueError:
        fail(f"{name}: not a date or time: {value!r} (use YYYY-MM-DD)")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _night_hours(value: str) -> tuple[float, float]:
    try:
        a, b = value.split("-")
        return float(a), float(b)
    except ValueError:
        fail(f"--night: expected two hours like 2-4, got {value!r}")


@app.command("dma")
def dma(
    store: str = StoreOption,
    start: str = typer.Option(None, "--from", help="Start (UTC date or time). Default: 28 days before the last inflow reading.", show_default=False),
    end: str = typer.Option(None, "--to", help="End, exclusive. Default: the last inflow reading.", show_default=False),
    n1: float = typer.Option(1.0, "--n1", min=0.5, max=1.5, help="FAVAD exponent N1 of leak flow vs pressure (0.5 rigid pipes … 1.5 plastic)."),
    only: str = typer.Option(None, "--dma", help="Analyse this DMA only.", show_default=False),
    reference_from: str = typer.Option(
        None, "--reference-from", help="Calibrate night use on reference nights from this date (e.g. right after a leak sweep).", show_default=False
    ),
    reference_to: str = typer.Option(None, "--reference-to", help="End of the reference nights (exclusive).", show_default=False),
    night: str = typer.Option("2-4", "--night", help="Hours (local) within which the minimum night flow is sought."),
    tz: str = typer.Option(None, "--tz", help="Time zone of the night hours. Default: the store's 'timezone' meta, else UTC.", show_default=False),
    smart_meters: bool = typer.Option(
        True, "--smart-meters/--no-smart-meters",
        help="Measure night use with the DMA's smart meters (demand sensors) where it has two or more on customer nodes.",
    ),
    household: float = typer.Option(1.7, "--household-night-use", help="Assumed night use per household [L/h] (without reference nights or smart meters)."),
    non_household: float = typer.Option(8.0, "--non-household-night-use", help="Assumed night use per non-household property [L/h]."),
    background_mains: float = typer.Option(40.0, "--background-mains", help="Background leakage of mains at 50 m [L/km/h] (SANFLOW default 40)."),
    background_connections: float = typer.Option(3.0, "--background-connections", help="Background leakage of connections at 50 m [L/conn/h]."),
    model: str = typer.Option(None, "--model", help="Network model in the store (for mains length and tanks). Default: the first.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: per DMA night flow, real losses with ±CL95, ranking."),
):
    """Night-flow analysis of every DMA from the store: minimum night flow, legitimate night use,
    night-day factor from pressure (FAVAD), daily real losses with ±95 % limits, background vs
    bursts, UARL and ILI, and DMAs ranked by recoverable leakage.

    Legitimate night use, by precedence: with --reference-from/--reference-to it is
    calibrated on nights when unreported leakage was nil (after a sweep, or a step test), by
    weekday; else, in a DMA with smart meters, it is measured by them in each night's hour of
    least use and scaled up to all its customers by billed volume, ±95 % from the sample; else
    it comes from per-property allowances, which are assumptions (±50 %).
    """
    import pandas as pd

    from tirtasu.nrw.nightflow import NightFlowSettings, rank_dmas
    from tirtasu.nrw.store_io import analyse_dmas_from_store

    a, b = _night_hours(night)
    with _open_store(store) as st:
        zone = tz or st.meta("timezone") or "UTC"
        t0, t1 = _date(start, "--from"), _date(end, "--to")
        if t0 is None or t1 is None:
            summary = st.readings_summary()
            flows = summary[summary["kind"] == "flow"].dropna(subset=["last"])
            if flows.empty:
                fail("the store has no flow readings: nothing to analyse")
            last = pd.Timestamp(flows["last"].max()).ceil("1D")
            t1 = t1 or last
            t0 = t0 or (t1 - pd.Timedelta(days=28))
        if t1 <= t0:
            fail("--to must be after --from")
        ref = None
        if reference_from or reference_to:
            if not (reference_from and reference_to):
                fail("give both --reference-from and --reference-to")
            ref = (pd.Timestamp(reference_from), pd.Timestamp(reference_to))
        try:
            settings = NightFlowSettings(
                night_start_h=a,
                night_end_h=b,
                tz=zone,
                n1=n1,
                household_night_use_lh=household,
                non_household_night_use_lh=non_household,
                background_mains_lkmh=background_mains,
                background_connections_lch=background_connections,
            )
            results, notes = analyse_dmas_from_store(
                st, t0, t1, settings, reference=ref, model=model, dma=only, smart_meters=smart_meters
            )
        except (ValueError, KeyError) as exc:
            fail(escape(str(exc).strip('"')))
    ranking = rank_dmas(results)
    if as_json:
        out = {
            "period": {"start": t0.isoformat(), "end": t1.isoformat()},
            "settings": {k: getattr(settings, k) for k in settings.__dataclass_fields__},
            "units": {"flow": "m3/h", "volume": "m3/day", "pressure": "m"},
            "dmas": [r.summary() for r in results],
            "ranking": [
                {"dma": d, **{k: (None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v) for k, v in row.items()}}
                for d, row in ranking.to_dict("index").items()
            ],
            "notes": notes,
        }
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    t = Table(title=f"DMA night-flow analysis, {t0:%Y-%m-%d} to {t1:%Y-%m-%d} (excl.), N1 = {n1:g}", title_justify="left")
    cols = ("rank", "DMA", "nights", "MNF m³/h", "night use m³/h", "NDF h", "real losses m³/d", "± 95 %", "bursts m³/d",
            "UARL m³/d", "ILI", "recoverable m³/d", "L/conn/d")
    for c in cols:
        t.add_column(c, justify="left" if c == "DMA" else "right")
    by_name = {r.dma: r for r in results}

    def f(v, d=1):
        return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:,.{d}f}"

    for name, row in ranking.iterrows():
        s = by_name[name].summary()
        t.add_row(
            str(int(row["rank"])), name, str(s["nights"]), f(s["mnf_m3h"]), f(s["legit_night_use_m3h"]), f(s["ndf_h"]),
            f(s["real_losses_m3d"]), f(s["real_losses_cl95_m3d"]), f(s["bursts_m3d"]), f(s["uarl_m3d"]), f(s["ili"], 2),
            f(s["recoverable_m3d"]), f(s["real_losses_l_conn_day"], 0),
        )
    console.print(t)
    for r in results:
        if r.night_use is not None:
            console.print(f"[dim]{escape(r.dma)} night use: {escape(r.night_use.method)}[/]")
        for w in r.warnings:
            console.print(f"[yellow]{escape(r.dma)}:[/] {escape(w)}")
    for n in notes:
        console.print(f"[dim]{escape(n)}[/]")


@app.command("template")
def template(
    start: str = typer.Option(..., "--from", help="First day of the audit period (UTC)."),
    end: str = typer.Option(..., "--to", help="Day after the audit period (exclusive, UTC)."),
    dma: str = typer.Option(None, help="Audit this DMA; default: the whole utility."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the audit file here; default: print it."),
    country_group: str = typer.Option("developing", help="WBI band table: developing or developed."),
    store: str = StoreOption,
):
    """Draft an audit file from the store for any period, DMA or the whole utility.

    System input and billed volumes are taken from the store when the balance runs ('value:
    store'; days not yet billed are filled from the customers' smart meters, where they have
    one); where bills and smart meters measure the same customers, their comparison is added as
    a comment (customer meter under-registration, 'pct: store'); mains length, connections and average pressure are filled in from the stored model,
    customers and pressure loggers; apparent losses and costs are marked ESTIMATE for you to set.
    Then: tirtasu nrw balance FILE --store STORE.
    """
    from tirtasu.nrw.template import audit_template

    st = _open_store(store)
    try:
        text = audit_template(st, start, end, dma=dma, country_group=country_group)
    except (KeyError, ValueError) as exc:
        fail(str(exc).strip('"'))
    finally:
        st.close()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        console.print(f"audit drafted: {escape(str(out))}; next: tirtasu nrw balance {escape(str(out))} --store {escape(store_url(store))}", soft_wrap=True)


@app.command("trajectory")
def trajectory(
    from_pct: float = typer.Option(..., "--from-pct", help="NRW today, % of system input (e.g. 46).", show_default=False),
    to_pct: float = typer.Option(..., "--to-pct", help="Target NRW, % of system input (e.g. 30).", show_default=False),
    start_year: int = typer.Option(..., "--start-year", help="Year of today's NRW.", show_default=False),
    target_year: int = typer.Option(..., "--target-year", help="Year the target is due.", show_default=False),
    method: str = typer.Option("linear", "--method", help="linear (equal steps in points) or geometric (equal relative steps)."),
    billed_m3: float = typer.Option(None, "--billed-m3", help="Billed consumption in the start year [m³/yr]: adds volumes.", show_default=False),
    growth_pct: float = typer.Option(0.0, "--growth-pct", help="Yearly growth of billed consumption [%] (new connections)."),
    cost: float = typer.Option(None, "--cost", help="Variable production cost [currency/m³]: values the water saved.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """Year-by-year path of NRW from today's level to a target (e.g. 46 % → 30 % by 2030)."""
    from tirtasu.nrw.economics import nrw_trajectory

    try:
        df = nrw_trajectory(from_pct, to_pct, start_year, target_year, method, billed_m3, growth_pct, cost)
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps({"units": {"volume": "m3/year", "nrw": "%"}, "years": df.reset_index().to_dict("records")}, indent=2))
        return
    t = Table(title=f"NRW trajectory {from_pct:g} % → {to_pct:g} % ({method})", title_justify="left")
    t.add_column("year")
    labels = {"nrw_pct": "NRW %", "reduction_pp": "− points", "billed_m3": "billed m³", "system_input_m3": "system input m³",
              "nrw_m3": "NRW m³", "saved_m3": "saved m³", "saved_value": "saved value"}
    for c in df.columns:
        t.add_column(labels[c], justify="right")
    for year, row in df.iterrows():
        t.add_row(str(year), *[f"{row[c]:.2f}" if c in ("nrw_pct", "reduction_pp") else f"{row[c]:,.0f}" for c in df.columns])
    console.print(t)


@app.command("eif")
def eif(
    survey_cost: float = typer.Option(..., "--survey-cost", help="Cost of a leak survey per km of mains [currency/km].", show_default=False),
    variable_cost: float = typer.Option(..., "--variable-cost", help="Variable cost of water [currency/m³].", show_default=False),
    rate_of_rise: float = typer.Option(..., "--rate-of-rise", help="Rate of rise of unreported leakage [m³/km/day per year].", show_default=False),
    mains_km: float = typer.Option(None, "--mains-km", help="Length of mains [km], for the annual budget.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """Economic intervention frequency of active leakage control (Lambert & Lalonde 2005):
    EIF [months] = √(0.789 · (survey cost per km / variable cost) / rate of rise)."""
    from dataclasses import asdict

    from tirtasu.nrw.economics import economic_intervention_frequency

    try:
        r = economic_intervention_frequency(survey_cost, variable_cost, rate_of_rise, mains_km)
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(asdict(r), indent=2))
        return
    console.print(f"Economic intervention frequency: [bold]{r.eif_months:.1f} months[/] "
                  f"(survey {r.survey_pct_per_year:.0f} % of the mains a year)")
    console.print(f"Average unreported leakage at that frequency: {r.unreported_leakage_m3_km_day:.3f} m³/km/day")
    if r.annual_budget is not None:
        console.print(f"Annual survey budget: {r.annual_budget:,.0f}; unreported leakage {r.unreported_leakage_m3_per_year:,.0f} m³/year")
