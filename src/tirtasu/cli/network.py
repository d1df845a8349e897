"""`tirtasu network` commands: look at a model, define its DMAs, run it, export it."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from tirtasu.cli.common import StoreOption, console, fail, store_url
from tirtasu.network import (
    ModelError,
    dma_report,
    dmas_from_boundaries,
    dmas_from_table,
    load_model,
    network_geojson,
    read_dma_csv,
    run_hydraulics,
    summarize,
)

app = typer.Typer(help="EPANET network models and district metered areas (DMAs).", no_args_is_help=True)

ModelArg = typer.Argument(..., help="EPANET .inp model (any flow units).")
BoundaryOpt = typer.Option(
    None,
    "--boundary",
    "-b",
    help="Cut the network at these link ids (flow meters, boundary valves, PRVs, pumps) to "
    "form DMAs. Repeat or separate with commas. Closed pipes and valves are cut too.",
)
DmaCsvOpt = typer.Option(None, "--dma-csv", help="CSV with columns node_id,dma defining the DMAs.")


def _load(model: Path):
    try:
        return load_model(model)
    except ModelError as exc:
        fail(str(exc))


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _dmas(wn, boundary, dma_csv):
    if boundary and dma_csv:
        fail("give either --boundary or --dma-csv, not both")
    try:
        if dma_csv:
            return dmas_from_table(wn, read_dma_csv(dma_csv))
        if boundary:
            return dmas_from_boundaries(wn, _split(boundary))
    except (KeyError, ValueError) as exc:
        fail(str(exc).strip('"'))
    return None


@app.command()
def info(
    model: Path = ModelArg,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
):
    """Summarise a model: elements, km of mains, demand, units and times."""
    wn = _load(model)
    s = summarize(wn)
    if as_json:
        console.print_json(json.dumps(s.as_dict()))
        return
    table = Table(title=f"{model}", show_header=False, title_justify="left")
    rows = [
        ("flow units in file", s.flow_units),
        ("headloss formula", s.headloss),
        ("junctions", f"{s.junctions:,}"),
        ("demand nodes", f"{s.demand_nodes:,}"),
        ("pipes", f"{s.pipes:,}"),
        ("mains length", f"{s.mains_km:,.2f} km"),
        ("tanks", str(s.tanks)),
        ("reservoirs", str(s.reservoirs)),
        ("pumps", str(s.pumps)),
        ("valves", str(s.valves)),
        ("base demand", f"{s.base_demand_m3h:,.2f} m³/h"),
        ("mean demand (over patterns)", f"{s.mean_demand_m3h:,.2f} m³/h"),
        ("duration", f"{s.duration_h:g} h"),
        ("hydraulic / pattern step", f"{s.hydraulic_step_s} s / {s.pattern_step_s} s"),
        ("coordinates", "yes" if s.has_coordinates else "no"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)


@app.command()
def dmas(
    model: Path = ModelArg,
    boundary: list[str] = BoundaryOpt,
    dma_csv: Path = DmaCsvOpt,
    out: Path = typer.Option(None, "--out", help="Write the node → DMA table (node_id,dma) to this CSV."),
    hours: float = typer.Option(24.0, help="Hours of simulation used to tell inflow from outflow links [h]."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
):
    """Define DMAs and report each one's nodes, mains length and inflow/outflow links.

    Inflow and outflow are told apart by the mean flow direction over a run of the model.
    """
    wn = _load(model)
    parts = _dmas(wn, boundary, dma_csv)
    if parts is None:
        fail("give --boundary LINK[,LINK…] or --dma-csv FILE")
    flows = run_hydraulics(wn, duration_h=hours).flow
    report = dma_report(wn, parts, flows)
    if out:
        parts.nodes.to_csv(out, index=False)
    if as_json:
        console.print_json(report.to_json(orient="records"))
        return
    table = Table(title=f"DMAs of {model.name}", title_justify="left")
    for col, label in [
        ("dma", "DMA"),
        ("nodes", "nodes"),
        ("demand_nodes", "demand nodes"),
        ("mains_km", "mains [km]"),
        ("mean_demand_m3h", "demand [m³/h]"),
        ("tanks", "tanks"),
        ("inflow_links", "inflow links"),
        ("outflow_links", "outflow links"),
        ("closed_links", "closed links"),
    ]:
        table.add_column(escape(label), justify="right" if col in ("nodes", "demand_nodes", "mains_km", "mean_demand_m3h") else "left")
    for _, r in report.iterrows():
        table.add_row(
            r.dma, f"{r.nodes:,}", f"{r.demand_nodes:,}", f"{r.mains_km:,.2f}", f"{r.mean_demand_m3h:,.2f}",
            r.tanks, r.inflow_links, r.outflow_links, r.closed_links,
        )
    console.print(table)
    if out:
        console.print(f"node → DMA table written to {out}")


@app.command()
def run(
    model: Path = ModelArg,
    hours: float = typer.Option(None, help="Simulated duration [h]; default: the model's own."),
    out_dir: Path = typer.Option(Path("."), "--out-dir", help="Where pressures.csv [m] and flows.csv [m³/h] go."),
    start: str = typer.Option("2025-01-01 00:00", help="UTC time the simulation starts (timestamps of the CSVs)."),
):
    """Run the model with the EPANET engine and write node pressures and link flows."""
    wn = _load(model)
    with console.status("running EPANET…"):
        res = run_hydraulics(wn, duration_h=hours, start=start)
    out_dir.mkdir(parents=True, exist_ok=True)
    fmt = "%Y-%m-%d %H:%M:%S"
    res.pressure.to_csv(out_dir / "pressures.csv", index_label="timestamp", date_format=fmt, float_format="%.4f")
    res.flow.to_csv(out_dir / "flows.csv", index_label="timestamp", date_format=fmt, float_format="%.4f")
    console.print(
        f"{len(res.pressure)} time steps: {out_dir / 'pressures.csv'} [m], {out_dir / 'flows.csv'} [m³/h]"
    )


@app.command()
def geojson(
    model: Path = ModelArg,
    out: Path = typer.Option(..., "--out", help="GeoJSON file to write."),
    boundary: list[str] = BoundaryOpt,
    dma_csv: Path = DmaCsvOpt,
    crs: str = typer.Option(
        None, help="CRS of the model's coordinates, e.g. EPSG:32748 (UTM 48S, Jakarta). Default: inferred or 'unknown'."
    ),
):
    """Export nodes and links (with their DMA) as GeoJSON in the model's own coordinates."""
    wn = _load(model)
    parts = _dmas(wn, boundary, dma_csv)
    collection = network_geojson(wn, parts, crs=crs)
    out.write_text(json.dumps(collection))
    props = collection["properties"]
    console.print(f"{len(collection['features'])} features → {out}; CRS: {props['crs'] or 'unknown'} ({props['crs_source']})")


@app.command("import")
def import_model(
    model: Path = ModelArg,
    boundary: list[str] = BoundaryOpt,
    dma_csv: Path = DmaCsvOpt,
    name: str = typer.Option(None, help="Name to keep the model under; default: the file name."),
    store: str = StoreOption,
):
    """Keep a model (and its DMAs) in the store, for the analyses and the service."""
    from tirtasu.store import open_store

    wn = _load(model)
    parts = _dmas(wn, boundary, dma_csv)
    with open_store(store_url(store)) as st, st.transaction():
        st.put_model(name or model.stem, model.read_text(errors="replace"))
        if parts is not None:
            st.set_dmas(parts.nodes, parts.links[["dma", "link_id", "sign"]])
    console.print(
        f"model {name or model.stem!r} stored in {store_url(store)}"
        + (f" with {len(parts.names)} DMAs" if parts is not None else "")
    )
