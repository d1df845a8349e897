"""`tirtasu telemetry` commands: register sensors, import SCADA/AMR exports, look at readings."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tirtasu.cli.common import StoreOption, console, err_console, fail, store_url
from tirtasu.telemetry.importer import (
    ImportRejectedError,
    NetworkIds,
    TelemetryImportError,
    import_file,
)
from tirtasu.telemetry.sensors import SENSOR_COLUMNS, make_registry
from tirtasu.units import INTERNAL_UNIT, KINDS

app = typer.Typer(
    help="Sensors and their readings: register sensors, import SCADA and AMR exports (wide or long "
    "CSV, Parquet), list sensors, query readings. Readings are stored in internal units "
    "(pressure, head, level [m]; flow [m³/h]; demand [L/h]) with UTC times.",
    no_args_is_help=True,
)

_STAGES = ("read", "validate", "store")
_PROGRESS_BYTES = 20_000_000  # show progress for a single file above this size
_HOW = ("mean", "min", "max", "sum", "first", "last", "count")


def _open_store(store: str | None, must_exist: bool = False):
    from tirtasu.store import open_store

    url = store_url(store)
    if must_exist and "://" not in url and url != ":memory:" and not Path(url).exists():
        fail(f"no store at {url}; register sensors (tirtasu telemetry register) or import readings first")
    try:
        return open_store(url)
    except (RuntimeError, NotImplementedError, OSError) as exc:
        fail(str(exc))


def _network_ids(model: str, store) -> NetworkIds:
    """Node and link ids of an EPANET model file, or of a model kept in the store by name."""
    path = Path(model)
    try:
        from tirtasu.network import ModelError, load_model, load_model_text
    except ImportError:  # the network package is optional here: read the file with WNTR directly
        import wntr

        if not path.is_file():
            fail(f"--model: no such file {model}")
        try:
            return NetworkIds.of(wntr.network.WaterNetworkModel(str(path)))
        except Exception as exc:  # noqa: BLE001 - WNTR raises many types for bad input
            fail(f"--model {model}: cannot be read as an EPANET model ({exc})")
    try:
        if path.is_file():
            return NetworkIds.of(load_model(path))
        if model in store.models():
            return NetworkIds.of(load_model_text(store.model_text(model), name=model))
    except ModelError as exc:
        fail(str(exc))
    fail(f"--model: {model} is neither an EPANET .inp file nor a model kept in the store")


def _fmt_time(value) -> str:
    if value is None or pd.isna(value):
        return "–"
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")


@app.command("import")
def import_(
    files: list[Path] = typer.Argument(
        ...,
        help="Export files: wide CSV (timestamp column + one column per sensor, named by sensor id "
        "or by the node/link it sits on; kind from the name: pressures.csv, flows.csv, levels.csv, "
        "demands.csv) or long CSV/Parquet (sensor_id, timestamp, value[, unit]). .gz accepted.",
        show_default=False,
    ),
    kind: str = typer.Option(
        None, "--kind", "-k", help=f"Kind of the readings of wide files whose name does not say: {', '.join(KINDS)}."
    ),
    unit: str = typer.Option(
        None,
        "--unit",
        "-u",
        help="Unit of every value (e.g. psi, bar, kPa, L/s, GPM). A unit in a column header "
        "('n54 [bar]') or a unit column wins; default: the sensor's registered unit, else the "
        "internal unit.",
    ),
    tz: str = typer.Option(
        None,
        "--tz",
        help="Time zone of timestamps written without one (e.g. Asia/Jakarta, Europe/Istanbul, UTC+7). "
        "Timestamps with an offset are respected. Default: UTC.",
    ),
    time_format: str = typer.Option(
        None, "--time-format", help="strptime format of timestamps that are not ISO 8601, e.g. '%d/%m/%Y %H:%M'."
    ),
    model: str = typer.Option(
        None,
        "--model",
        "-m",
        help="EPANET .inp model (or the name of a model in the store): columns naming a model node "
        "(a link, for flows) that no registered sensor matches are registered as new sensors "
        "(P_<node>, Q_<link>, L_<node>, D_<node>).",
    ),
    strict: bool = typer.Option(False, "--strict", help="Refuse a whole file if any reading in it is rejected."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and compare with the store; store nothing."),
    rejections_out: Path = typer.Option(
        None, "--rejections-out", help="Write every rejection (file, line, column, value, reason) to this CSV."
    ),
    show: int = typer.Option(20, "--show", help="Rejections to print (the first N).", min=0),
    store: str = StoreOption,
):
    """Import SCADA/AMR exports: validated, converted to internal units and UTC, stored.

    Each file is imported whole or not at all; importing a file again adds nothing. Cells that are
    not numbers, NaN, implausible values, unreadable, future or repeated timestamps and values
    differing from stored ones are rejected and listed with their file line; empty cells are
    gaps. Exit status 1 if any file was refused.
    """
    if kind is not None:
        kind = kind.strip().lower()
        if kind not in KINDS:
            fail(f"--kind must be one of {', '.join(KINDS)}; got {kind!r}")
    st = _open_store(store)
    try:
        network = _network_ids(model, st) if model else None
        reports, failures = [], []
        big = len(files) > 1 or any(f.is_file() and f.stat().st_size > _PROGRESS_BYTES for f in files)
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[stage]}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=not big,
        )
        with progress:
            overall = progress.add_task("files", total=len(files) * len(_STAGES), stage="")
            for number, path in enumerate(files):

                def on_stage(name: str, _path=path):
                    progress.update(overall, description=escape(_path.name), stage=name)
                    progress.advance(overall)

                try:
                    report = import_file(
                        st,
                        path,
                        kind=kind,
                        unit=unit,
                        tz=tz,
                        network=network,
                        register=network is not None,
                        strict=strict,
                        dry_run=dry_run,
                        time_format=time_format,
                        on_stage=on_stage,
                    )
                    reports.append(report)
                except ImportRejectedError as exc:
                    reports.append(exc.report)
                    failures.append((path, str(exc)))
                except TelemetryImportError as exc:
                    failures.append((path, str(exc)))
                progress.update(overall, completed=(number + 1) * len(_STAGES))
        zone_set = _remember_time_zone(st, tz) if reports and not dry_run else None
    finally:
        st.close()
    if zone_set:
        err_console.print(
            f"the store's time zone is now {zone_set} (night hours, dashboard times and the model's clock for leak "
            "detection); the readings themselves are kept in UTC",
            highlight=False,
        )

    if reports:
        _print_reports(reports, dry_run)
        _print_rejections(reports, show, rejections_out)
    for _path, message in failures:
        err_console.print(f"[bold red]refused:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if failures:
        raise typer.Exit(1)


def _remember_time_zone(st, tz: str | None) -> str | None:
    """Keep an import's named time zone (Asia/Jakarta, not UTC+7) as the store's, if it has none."""
    from zoneinfo import ZoneInfo

    from tirtasu.telemetry.timestamps import resolve_tz

    # a fixed offset is fine for timestamps but is not a place's clock (no summer time)
    if not tz or st.meta("timezone") or not isinstance(resolve_tz(tz), ZoneInfo):
        return None
    st.set_meta("timezone", tz)
    return tz


def _print_reports(reports, dry_run: bool) -> None:
    title = "import, times in UTC" + (" (dry run: nothing stored)" if dry_run else "")
    table = Table(title=title, title_justify="left")
    table.add_column("file", overflow="fold", min_width=min(30, max(len(Path(r.file).name) for r in reports)))
    table.add_column("kind")
    for name in ("rows", "sensors", "added", "same", "rejected", "gaps"):
        table.add_column(name, justify="right")
    table.add_column("from")
    table.add_column("to")
    for r in reports:
        table.add_row(
            escape(Path(r.file).name),
            r.kind or "mixed",
            f"{r.rows_read:,}",
            f"{r.sensors:,}",
            f"{r.added:,}" if r.stored or dry_run else "[red]0[/]",
            f"{r.unchanged:,}",
            f"[yellow]{r.rejected:,}[/]" if r.rejected else "0",
            f"{r.gaps:,}",
            _fmt_time(r.first_time),
            _fmt_time(r.last_time),
        )
    console.print(table)
    for r in reports:
        if r.registered:
            console.print(
                f"{escape(Path(r.file).name)}: registered {len(r.registered)} new sensor(s): "
                + escape(", ".join(r.registered[:20]) + (" …" if len(r.registered) > 20 else "")),
                highlight=False,
            )
        for warning in r.warnings:
            console.print(
                f"[yellow]warning:[/] {escape(Path(r.file).name)}: {escape(warning)}", highlight=False, soft_wrap=True
            )


def _print_rejections(reports, show: int, rejections_out: Path | None) -> None:
    frames = [
        r.rejections.assign(file=r.file)[["file", "line", "column", "value", "reason"]]
        for r in reports
        if len(r.rejections)
    ]
    if not frames:
        return
    everything = pd.concat(frames, ignore_index=True)
    if show:
        table = Table(
            title=f"rejections (first {min(show, len(everything))} of {len(everything):,})", title_justify="left"
        )
        for name in ("file", "line", "column", "value", "reason"):
            table.add_column(name, justify="right" if name == "line" else "left", overflow="fold")
        for row in everything.head(show).itertuples(index=False):
            table.add_row(
                escape(Path(row.file).name),
                str(row.line),
                escape(str(row.column)),
                escape(str(row.value)[:40]),
                escape(str(row.reason)),
            )
        console.print(table)
    if rejections_out is not None:
        try:
            rejections_out.parent.mkdir(parents=True, exist_ok=True)
            everything.to_csv(rejections_out, index=False)
        except OSError as exc:
            fail(f"cannot write {rejections_out}: {exc.strerror or exc}")
        console.print(
            f"all {len(everything):,} rejections written to {escape(str(rejections_out))}",
            highlight=False,
            soft_wrap=True,
        )
    elif len(everything) > show:
        console.print(
            f"({len(everything) - show:,} more; --rejections-out FILE.csv writes them all)",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def sensors(
    kind: str = typer.Option(None, "--kind", "-k", help=f"Only sensors of this kind: {', '.join(KINDS)}."),
    dma: str = typer.Option(None, "--dma", help="Only sensors in this DMA."),
    store: str = StoreOption,
):
    """List registered sensors with how many readings each has and their time range."""
    st = _open_store(store, must_exist=True)
    try:
        registry = st.sensors(kind=kind, dma=dma)
        summary = st.readings_summary()
    finally:
        st.close()
    if registry.empty:
        what = " ".join(x for x in (f"kind {kind}" if kind else "", f"DMA {dma}" if dma else "") if x)
        console.print(
            f"no sensors{' with ' + what if what else ''}; register some with: tirtasu telemetry register REGISTRY.csv",
            soft_wrap=True,
        )
        return
    counts = (
        summary.set_index("sensor_id")[["n", "first", "last"]]
        if len(summary)
        else pd.DataFrame(columns=["n", "first", "last"])
    )
    table = Table(title=f"{len(registry)} sensor(s), times in UTC", title_justify="left")
    table.add_column("sensor_id", overflow="fold", min_width=9)
    for name in ("kind", "unit", "node/link", "dma", "readings", "first", "last"):
        table.add_column(name, justify="right" if name == "readings" else "left")
    for r in registry.itertuples(index=False):
        n, first, last = counts.loc[r.sensor_id] if r.sensor_id in counts.index else (0, None, None)
        table.add_row(
            escape(str(r.sensor_id)),
            r.kind,
            escape(str(r.unit or "")),
            escape(str(r.link_id or r.node_id or "")),
            escape(str(r.dma or "")),
            f"{int(n):,}" if n is not None and not pd.isna(n) else "0",
            _fmt_time(first),
            _fmt_time(last),
        )
    console.print(table)


@app.command()
def register(
    registry: Path = typer.Argument(
        ...,
        help=f"CSV with columns {', '.join(SENSOR_COLUMNS)} (sensor_id and kind required; unit is the "
        "unit the sensor reports, default the internal one).",
        show_default=False,
    ),
    model: str = typer.Option(
        None,
        "--model",
        "-m",
        help="Check that every node_id / link_id exists in this EPANET model (file or stored name).",
    ),
    store: str = StoreOption,
):
    """Register sensors, or update the attributes of registered ones, from a CSV registry."""
    try:
        table = pd.read_csv(registry, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        fail(f"{registry}: no such file")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, IsADirectoryError) as exc:
        fail(f"{registry}: cannot be read as CSV ({exc})")
    table.columns = [c.strip().lower() for c in table.columns]
    unknown = [c for c in table.columns if c not in SENSOR_COLUMNS]
    if unknown:
        fail(f"{registry}: unknown column(s) {', '.join(unknown)}; expected {', '.join(SENSOR_COLUMNS)}")
    table = table.map(lambda v: v.strip() if isinstance(v, str) else v)
    table = table.astype(object).where(table != "", None)
    try:
        reg = make_registry(table)
    except ValueError as exc:
        fail(f"{registry}: {exc}")
    st = _open_store(store)
    try:
        if model:
            ids = _network_ids(model, st)
            missing = [
                f"{r.sensor_id} ({'link' if r.link_id else 'node'} {r.link_id or r.node_id})"
                for r in reg.itertuples(index=False)
                if (r.link_id and r.link_id not in ids.links)
                or (not r.link_id and r.node_id and r.node_id not in ids.nodes)
            ]
            if missing:
                fail(
                    f"{registry}: {len(missing)} sensor(s) sit on nodes/links the model lacks: "
                    + ", ".join(missing[:20])
                )
        before = set(st.sensors()["sensor_id"])
        st.upsert_sensors(reg)
    finally:
        st.close()
    new = [s for s in reg["sensor_id"] if s not in before]
    console.print(
        f"{len(reg)} sensor(s) in {escape(str(registry))}: {len(new)} new, {len(reg) - len(new)} updated",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def query(
    sensor: list[str] = typer.Option(None, "--sensor", "-s", help="Sensor id; repeat or separate with commas."),
    kind: str = typer.Option(None, "--kind", "-k", help=f"Only sensors of this kind: {', '.join(KINDS)}."),
    dma: str = typer.Option(None, "--dma", help="Only sensors in this DMA."),
    start: str = typer.Option(None, "--from", help="Start time, inclusive (ISO; without a zone: UTC)."),
    end: str = typer.Option(None, "--to", help="End time, exclusive (ISO; without a zone: UTC)."),
    resample: str = typer.Option(None, "--resample", "-r", help="One value per interval, e.g. 15min, 1h, 1D."),
    how: str = typer.Option("mean", "--how", help=f"Aggregate with --resample: {', '.join(_HOW)}."),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="Write a wide table to this .csv or .parquet: timestamp (UTC) and one column per sensor, "
        "headed 'sensor_id [unit]' (importable again).",
    ),
    limit: int = typer.Option(50, "--limit", help="Rows to print when not writing --out.", min=1),
    store: str = StoreOption,
):
    """Readings in internal units and UTC: print them or write them as a wide CSV/Parquet."""
    if how not in _HOW:
        fail(f"--how must be one of {', '.join(_HOW)}; got {how!r}")
    if kind is not None and kind not in KINDS:
        fail(f"--kind must be one of {', '.join(KINDS)}; got {kind!r}")
    ids = [v.strip() for item in sensor or [] for v in item.split(",") if v.strip()] or None
    bounds = []
    for name, value in (("--from", start), ("--to", end)):
        try:
            bounds.append(pd.Timestamp(value) if value else None)
        except ValueError:
            fail(f"{name}: cannot read {value!r} as a time (use e.g. 2024-03-01 or 2024-03-01T06:00)")
    st = _open_store(store, must_exist=True)
    try:
        if ids:
            known = set(st.sensors()["sensor_id"])
            unknown = [s for s in ids if s not in known]
            if unknown:
                fail(f"unknown sensor(s): {', '.join(unknown)} (tirtasu telemetry sensors lists them)")
        units = {r.sensor_id: INTERNAL_UNIT.get(r.kind) or r.unit or "" for r in st.sensors().itertuples(index=False)}
        try:
            df = st.readings(
                sensor_ids=ids, kind=kind, dma=dma, start=bounds[0], end=bounds[1], resample=resample, how=how
            )
        except ValueError as exc:
            fail(str(exc))
    finally:
        st.close()
    if df.empty:
        console.print("no readings match", soft_wrap=True)
        return
    if out is not None:
        wide = df.pivot(index="time", columns="sensor_id", values="value")
        wide.columns.name = None
        if how != "count" or not resample:
            # the unit in each header makes the file safe to import again whatever the registry says
            wide.columns = [f"{c} [{units[c]}]" if units.get(c) else c for c in wide.columns]
        wide.index = wide.index.strftime("%Y-%m-%dT%H:%M:%SZ")
        wide.index.name = "timestamp"
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            if out.suffix.lower() in (".parquet", ".pq"):
                wide.reset_index().to_parquet(out, index=False)
            else:
                wide.to_csv(out)
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror or exc}")
        console.print(
            f"{len(df):,} readings of {wide.shape[1]} sensor(s), {len(wide):,} timestamps → {escape(str(out))}",
            highlight=False,
        )
        return
    label = f"{how} per {resample}" if resample else "readings"
    table = Table(title=f"{len(df):,} {label}" + (f" (first {limit})" if len(df) > limit else ""), title_justify="left")
    table.add_column("sensor_id")
    table.add_column("time (UTC)")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for r in df.head(limit).itertuples(index=False):
        table.add_row(
            escape(str(r.sensor_id)),
            pd.Timestamp(r.time).strftime("%Y-%m-%d %H:%M:%S"),
            f"{r.value:.6g}",
            units.get(r.sensor_id, ""),
        )
    console.print(table)
    if len(df) > limit:
        console.print(f"({len(df) - limit:,} more; --out FILE.csv writes them all)", highlight=False, soft_wrap=True)
