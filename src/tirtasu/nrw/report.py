"""Output of a water balance: terminal tables, JSON, and a one-page HTML report.

The HTML report is self-contained (inline CSS and SVG, no script, nothing fetched) and carries
the classic IWA water-balance diagram with every box's volume and ±95 % limit.
"""

from __future__ import annotations

import html
import json
import math

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tirtasu import __version__
from tirtasu.nrw.balance import Component, Percent, WaterBalance
from tirtasu.nrw.volumes import VOLUME_UNITS

__all__ = ["balance_json", "print_balance", "balance_html", "water_balance_svg", "volume_factor"]

#: the rows of the terminal table, in water-balance order (indent level, key)
_TABLE_ROWS = (
    (0, "system_input_volume"),
    (1, "own_sources"),
    (1, "water_imported"),
    (1, "water_exported"),
    (0, "water_supplied"),
    (1, "authorized_consumption"),
    (2, "billed_authorized"),
    (3, "billed_metered"),
    (3, "billed_unmetered"),
    (2, "unbilled_authorized"),
    (3, "unbilled_metered"),
    (3, "unbilled_unmetered"),
    (1, "water_losses"),
    (2, "apparent_losses"),
    (3, "unauthorized_consumption"),
    (3, "customer_meter_inaccuracies"),
    (3, "systematic_data_handling_errors"),
    (2, "real_losses"),
    (0, "revenue_water"),
    (0, "non_revenue_water"),
)


def volume_factor(unit: str) -> float:
    """m³ per display unit (``m3``, ``ML``, ``MG`` …)."""
    key = unit.strip().lower().replace("³", "3")
    if key not in VOLUME_UNITS:
        raise ValueError(f"unknown volume unit {unit!r} for display; use m3, ML, kL, GL, MG …")
    return VOLUME_UNITS[key]


def balance_json(wb: WaterBalance, indent: int | None = 2) -> str:
    """The balance as JSON: every component with value, ±CL95 (absolute and %) and unit."""
    d = wb.to_dict()
    d["generator"] = f"tirtasu {__version__}"
    return json.dumps(d, indent=indent, ensure_ascii=False, allow_nan=False)


def _smart(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "–"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:,.1f}"
    if a >= 1:
        return f"{v:,.2f}"
    return f"{v:.3g}"


def _pct(c: Component) -> str:
    return "–" if c.cl95 is None else f"±{100 * c.cl95:.1f} %"


def _period(wb: WaterBalance) -> str:
    inp = wb.inputs
    if inp.start is None:
        return "no period"
    return f"{inp.start.date()} to {inp.end.date()} (end excl., {inp.days:g} days)"


def print_balance(wb: WaterBalance, console: Console | None = None, unit: str = "m3") -> None:
    """Print the balance, indicators, bands and remarks as terminal tables."""
    console = console or Console()
    f = volume_factor(unit)
    inp = wb.inputs
    title = "Water balance" + (f" — {inp.name}" if inp.name else "") + (f" — DMA {inp.dma}" if inp.dma else "")
    t = Table(title=f"{title}\n{_period(wb)}", title_justify="left")
    t.add_column("Component")
    t.add_column(f"Volume [{unit}]", justify="right")
    t.add_column(f"± 95 % [{unit}]", justify="right")
    t.add_column("± %", justify="right")
    t.add_column("Grade", justify="right")
    for level, key in _TABLE_ROWS:
        c = wb.components.get(key)
        if c is None:
            continue
        style = "bold" if key in ("system_input_volume", "non_revenue_water", "real_losses", "apparent_losses") else None
        t.add_row(
            "  " * level + c.label + (f"  [dim]({escape(c.note)})[/]" if c.note and isinstance(getattr(inp, key, None), Percent) else ""),
            _smart(c.value / f),
            "–" if c.cl95_abs is None else _smart(c.cl95_abs / f),
            _pct(c),
            "" if c.grade is None else str(c.grade),
            style=style,
        )
    console.print(t)

    it = Table(title="Indicators", title_justify="left")
    it.add_column("Indicator")
    it.add_column("Value", justify="right")
    it.add_column("± 95 %", justify="right")
    it.add_column("Unit")
    for c in wb.indicators.values():
        it.add_row(c.label, _smart(c.value), "–" if c.cl95_abs is None else _smart(c.cl95_abs), c.unit)
    console.print(it)

    if wb.bands:
        ili = wb.indicators["ili"]
        for g in ("developing", "developed"):
            b = wb.bands[g]
            mark = " (this utility's group)" if g == inp.country_group else ""
            console.print(
                f"WBI band, {g} countries{mark}: [bold]{b.band}[/] (ILI {b.ili_range}; ILI here "
                f"{ili.value:.2f} {_pct(ili)}) — {b.meaning}.\n  [dim]Source: {b.source}[/]"
            )
    if wb.validity_score is not None:
        console.print(f"Data validity score: [bold]{wb.validity_score:.0f}[/] / 100 (volume-weighted mean grade × 10)")
    drivers = wb.contributions.loc["non_revenue_water"] if "non_revenue_water" in wb.contributions.index else None
    if drivers is not None and drivers.sum() > 0:
        top = drivers[drivers > 0.005].sort_values(ascending=False).head(4)
        console.print(
            "Uncertainty of NRW comes from: " + ", ".join(f"{k} {100 * v:.0f} %" for k, v in top.items())
        )
    if wb.monte_carlo is not None:
        mc = wb.monte_carlo.table
        rows = [k for k in ("non_revenue_water", "real_losses", "apparent_losses", "nrw_pct_siv", "ili") if k in mc.index]
        mt = Table(title=f"Monte Carlo check ({wb.monte_carlo.n:,} draws, seed {wb.monte_carlo.seed})", title_justify="left")
        for col in ("Figure", "Analytic value", "MC mean", "Analytic ± %", "MC ± %", "MC 2.5–97.5 %"):
            mt.add_column(col, justify="left" if col == "Figure" else "right")
        for k in rows:
            c = wb[k]
            r = mc.loc[k]
            scale = f if c.unit == "m3" else 1.0
            mt.add_row(
                c.label,
                _smart(c.value / scale),
                _smart(r["mean"] / scale),
                _pct(c),
                "–" if not math.isfinite(r["cl95_pct"]) else f"±{r['cl95_pct']:.1f} %",
                f"{_smart(r['p2_5'] / scale)} – {_smart(r['p97_5'] / scale)}",
            )
        console.print(mt)
    for note in wb.uarl_notes:
        console.print(f"[yellow]UARL:[/] {note}")
    for w in wb.warnings:
        console.print(f"[yellow]warning:[/] {w}")


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.2rem auto;max-width:1100px;color:#1d2733;font-size:13px}
h1{font-size:1.35rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.1rem 0 .4rem;border-bottom:1px solid #ccd5de}
.sub{color:#5a6877;margin-bottom:.6rem}
table{border-collapse:collapse;width:100%}td,th{padding:2px 6px;border-bottom:1px solid #e4e9ee;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f1f4f7}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:1.2rem}
.kpi{display:flex;gap:.8rem;flex-wrap:wrap;margin:.5rem 0}.kpi div{background:#f1f4f7;border-radius:6px;padding:.4rem .7rem}
.kpi b{display:block;font-size:1.2rem}.warn{color:#8a4b00}.small{color:#5a6877;font-size:11px}
@media print{body{margin:0;font-size:10px}.cols{gap:.6rem}}
"""

_COLORS = {"neutral": "#e8eef4", "revenue": "#cfe8d4", "nrw": "#f6d3cc", "real": "#eeb3a6", "apparent": "#f8dfb8"}


def _box(x, y, w, h, comp: Component | None, label: str, fill: str, f: float, unit: str) -> str:
    val = "" if comp is None else _smart(comp.value / f) + f" {unit}"
    cl = "" if comp is None or comp.cl95 is None else f"±{100 * comp.cl95:.1f} %"
    lines = [html.escape(label)]
    if val:
        lines.append(html.escape(val))
    if cl:
        lines.append(cl)
    lh = 13
    y0 = y + h / 2 - (len(lines) - 1) * lh / 2 + 4
    text = "".join(
        f'<text x="{x + w / 2:.1f}" y="{y0 + i * lh:.1f}" text-anchor="middle" '
        f'font-size="{11 if i == 0 else 10.5}" font-weight="{600 if i == 0 else 400}">{t}</text>'
        for i, t in enumerate(lines)
    )
    tip = html.escape(f"{label}: {val} {cl}".strip())
    return (
        f'<g><title>{tip}</title><rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
        f'fill="{fill}" stroke="#5a6877" stroke-width="0.8"/>{text}</g>'
    )


def water_balance_svg(wb: WaterBalance, unit: str = "m3") -> str:
    """The classic IWA water-balance diagram as an SVG string."""
    f = volume_factor(unit)
    c = wb.components
    rows = 9
    rh, top = 46, 30
    widths = [150, 150, 160, 160, 200, 150]
    xs = [10]
    for w in widths[:-1]:
        xs.append(xs[-1] + w)
    total_h = top + rows * rh + 10
    parts = []

    def box(col, r0, r1, key, label, color):
        comp = c.get(key) if key else None
        parts.append(_box(xs[col], top + r0 * rh, widths[col], (r1 - r0) * rh, comp, label, _COLORS[color], f, unit))

    box(0, 0, 9, "system_input_volume", "System input volume", "neutral")
    box(1, 0, 1, "water_exported", "Water exported", "revenue")
    box(1, 1, 9, "water_supplied", "Water supplied", "neutral")
    box(2, 0, 1, None, "", "revenue")
    box(2, 1, 5, "authorized_consumption", "Authorized consumption", "neutral")
    box(2, 5, 9, "water_losses", "Water losses", "nrw")
    box(3, 0, 1, None, "", "revenue")
    box(3, 1, 3, "billed_authorized", "Billed authorized", "revenue")
    box(3, 3, 5, "unbilled_authorized", "Unbilled authorized", "nrw")
    box(3, 5, 8, "apparent_losses", "Apparent losses", "apparent")
    box(3, 8, 9, "real_losses", "Real losses (CARL)", "real")
    leaves = (
        ("water_exported", "Billed water exported", "revenue"),
        ("billed_metered", "Billed metered", "revenue"),
        ("billed_unmetered", "Billed unmetered", "revenue"),
        ("unbilled_metered", "Unbilled metered", "nrw"),
        ("unbilled_unmetered", "Unbilled unmetered", "nrw"),
        ("unauthorized_consumption", "Unauthorized consumption", "apparent"),
        ("customer_meter_inaccuracies", "Customer meter inaccuracies", "apparent"),
        ("systematic_data_handling_errors", "Data handling errors", "apparent"),
        ("real_losses", "Leaks, bursts, overflows", "real"),
    )
    for i, (key, label, color) in enumerate(leaves):
        box(4, i, i + 1, key, label, color)
    box(5, 0, 3, "revenue_water", "Revenue water", "revenue")
    box(5, 3, 9, "non_revenue_water", "Non-revenue water", "nrw")
    width = xs[-1] + widths[-1] + 10
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {total_h}" width="100%" '
        f'role="img" aria-label="IWA water balance">'
        f'<text x="10" y="18" font-size="11" fill="#5a6877">volumes in {html.escape(unit)} over the period, ±95 % confidence limits</text>'
        + "".join(parts)
        + "</svg>"
    )


def _row(cells, head=False) -> str:
    tag = "th" if head else "td"
    return "<tr>" + "".join(f"<{tag}>{html.escape(str(x))}</{tag}>" for x in cells) + "</tr>"


def balance_html(wb: WaterBalance, unit: str = "m3") -> str:
    """A one-page, self-contained HTML report of the balance."""
    f = volume_factor(unit)
    inp = wb.inputs
    title = "Water balance" + (f" — {inp.name}" if inp.name else "") + (f" — DMA {inp.dma}" if inp.dma else "")
    ind = wb.indicators
    kpis = []
    for key, fmt in (
        ("nrw_pct_siv", lambda c: f"{c.value:.1f} % {_pct_abs(c)}"),
        ("real_losses_l_conn_day", lambda c: f"{c.value:,.0f} L/conn/d"),
        ("ili", lambda c: f"{c.value:.2f} {_pct_abs(c)}"),
        ("value_nrw", lambda c: f"{c.value:,.0f} {html.escape(c.unit)}"),
    ):
        if key in ind:
            kpis.append(f"<div>{html.escape(ind[key].label)}<b>{fmt(ind[key])}</b></div>")
    if wb.bands:
        b = wb.bands[inp.country_group]
        kpis.append(f"<div>WBI band ({inp.country_group})<b>{b.band}</b></div>")
    if wb.validity_score is not None:
        kpis.append(f"<div>Data validity score<b>{wb.validity_score:.0f} / 100</b></div>")

    comp_rows = [_row(["Component", f"Volume [{unit}]", f"± 95 % [{unit}]", "± %", "Grade"], head=True)]
    for level, key in _TABLE_ROWS:
        c = wb.components.get(key)
        if c is None:
            continue
        comp_rows.append(
            _row(
                [
                    "\u2003" * level + c.label,
                    _smart(c.value / f),
                    "–" if c.cl95_abs is None else _smart(c.cl95_abs / f),
                    _pct(c),
                    "" if c.grade is None else c.grade,
                ]
            )
        )
    ind_rows = [_row(["Indicator", "Value", "± 95 %", "Unit"], head=True)]
    for c in ind.values():
        ind_rows.append(_row([c.label, _smart(c.value), "–" if c.cl95_abs is None else _smart(c.cl95_abs), c.unit]))

    band_html = ""
    if wb.bands:
        rows = [_row(["Country group", "Band", "ILI range", "Meaning"], head=True)]
        for g, b in wb.bands.items():
            rows.append(_row([g, b.band, b.ili_range, b.meaning]))
        srcs = "".join(f"<li>{html.escape(g)}: {html.escape(b.source)}</li>" for g, b in wb.bands.items())
        band_html = f"<h2>World Bank Institute bands</h2><table>{''.join(rows)}</table><ul class=small>{srcs}</ul>"

    mc_html = ""
    if wb.monte_carlo is not None:
        mc = wb.monte_carlo.table
        rows = [_row(["Figure", "Analytic ± %", "Monte Carlo ± %", "MC 2.5–97.5 %"], head=True)]
        for k in ("non_revenue_water", "real_losses", "apparent_losses", "nrw_pct_siv", "ili"):
            if k in mc.index:
                c = wb[k]
                r = mc.loc[k]
                s = f if c.unit == "m3" else 1.0
                rows.append(
                    _row([c.label, _pct(c), "–" if not math.isfinite(r["cl95_pct"]) else f"±{r['cl95_pct']:.1f} %",
                          f"{_smart(r['p2_5'] / s)} – {_smart(r['p97_5'] / s)}"])
                )
        mc_html = f"<h2>Monte Carlo check ({wb.monte_carlo.n:,} draws)</h2><table>{''.join(rows)}</table>"

    drivers_html = ""
    if "non_revenue_water" in wb.contributions.index:
        d = wb.contributions.loc["non_revenue_water"]
        d = d[d > 0.005].sort_values(ascending=False)
        if len(d):
            rows = [_row(["Input", "Share of NRW variance"], head=True)]
            rows += [_row([k, f"{100 * v:.0f} %"]) for k, v in d.items()]
            drivers_html = f"<h2>What drives the uncertainty of NRW</h2><table>{''.join(rows)}</table>"

    notes = [f"UARL: {n}" for n in wb.uarl_notes] + list(wb.warnings)
    notes_html = (
        "<h2>Remarks</h2><ul>" + "".join(f'<li class=warn>{html.escape(n)}</li>' for n in notes) + "</ul>" if notes else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<div class=sub>{html.escape(_period(wb))} · volumes in {html.escape(unit)} · IWA/AWWA water balance with 95 % confidence limits</div>
<div class=kpi>{''.join(kpis)}</div>
{water_balance_svg(wb, unit)}
<div class=cols>
<div><h2>Components</h2><table>{''.join(comp_rows)}</table>{drivers_html}</div>
<div><h2>Indicators</h2><table>{''.join(ind_rows)}</table>{band_html}{mc_html}</div>
</div>
{notes_html}
<p class=small>Confidence limits: variance = (V·CL95/1.96)², propagated to first order over independent inputs
(WB-EasyCalc; Thornton, Sturm &amp; Kunkel, <i>Water Loss Control</i>, 2nd ed., §7.8). UARL = (18·Lm + 0.8·Nc + 25·Lp)·P
(Lambert et al. 1999). Generated by tirtasu {__version__}.</p>
</body></html>
"""


def _pct_abs(c: Component) -> str:
    return "" if c.cl95_abs is None else f"± {_smart(c.cl95_abs)}"
