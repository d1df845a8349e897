"""`tirtasu leaks`: detect, localize and track leaks; benchmark the method on simulated data."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tirtasu.cli.common import StoreOption, console, err_console, fail, store_url

app = typer.Typer(
    help=(
        "Leaks: detect new leaks from pressure, flow, tank level and smart-meter data, place them "
        "on pipes with the hydraulic model, follow each from onset to repair; benchmark the method "
        "on simulated networks with known leaks. See docs/leaks.md."
    ),
    no_args_is_help=True,
)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<32}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


@contextmanager
def _staged_progress():
    """A progress bar per stage: yields ``progress(stage, fraction)``."""
    with _progress() as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, frac: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=1.0)
            bar.update(tasks[stage], completed=frac)

        yield progress


def _inputs_from_files(pressures, flows, levels, demands):
    from tirtasu.leaks.data import LeakInputs, read_wide

    tables = {"pressure": pressures, "flow": flows, "level": levels, "demand": demands}
    frames = {k: (read_wide(p, k) if p is not None else pd.DataFrame()) for k, p in tables.items()}
    sources = {k: str(p) for k, p in tables.items() if p is not None}
    return LeakInputs(**frames), sources


def _inputs_from_store(store: str | None, dma: str | None, start: str | None, end: str | None, model_name: str | None):
    """Readings and the model from the store, as wide tables named by node/link ids, and the
    store's time zone (its ``timezone`` meta, None if unset)."""
    from tirtasu.leaks.data import LeakInputs
    from tirtasu.network import load_model_text
    from tirtasu.store import open_store

    url = store_url(store)
    if not url.startswith(("postgres", ":memory:")) and not Path(url.removeprefix("duckdb://")).exists():
        fail(f"no store at {url}: import telemetry first (tirtasu telemetry import) or pass --store")
    with open_store(url, read_only=True) as st:
        registry = st.sensors()
        if dma is not None and not (registry["dma"] == dma).any():
            known = sorted({d for d in registry["dma"] if d})
            fail(f"no sensor of DMA {dma!r} in the store" + (f"; DMAs: {', '.join(known)}" if known else ""))
        frames = {}
        for kind in ("pressure", "flow", "level", "demand"):
            reg = registry[registry["kind"] == kind]
            if dma is not None and kind != "level":
                reg = reg[reg["dma"] == dma]
            if reg.empty:
                frames[kind] = pd.DataFrame()
                continue
            wide = st.readings(sensor_ids=list(reg["sensor_id"]), start=start, end=end, wide=True)
            where = "link_id" if kind == "flow" else "node_id"
            names = dict(zip(reg["sensor_id"], reg[where]))
            unplaced = [s for s in wide.columns if not names.get(s)]
            if unplaced:
                fail(f"{kind} sensor(s) without a {where} in the registry: {', '.join(unplaced[:8])}; "
                     "leak detection needs to know where each sensor sits")
            wide = wide.rename(columns=names)
            wide.index = pd.DatetimeIndex(pd.to_datetime(wide.index, utc=True))
            frames[kind] = wide
        models = st.models()
        if not models:
            fail("the store holds no network model: pass --model MODEL.inp")
        name = model_name or models[0]
        if name not in models:
            fail(f"no model {name!r} in the store; stored: {', '.join(models)}")
        wn = load_model_text(st.model_text(name), name=name)
        zone = st.meta("timezone")
    if all(df.empty for df in frames.values()):
        fail("no readings in the store for that selection (check --dma, --from and --to)")
    return LeakInputs(**frames), wn, zone


def _check_tz(name: str | None) -> str | None:
    from tirtasu.telemetry.timestamps import resolve_tz

    try:
        resolve_tz(name)
    except ValueError as exc:
        fail(f"--model-tz: {exc}")
    return name


@app.command("detect")
def detect(
    model: Path = typer.Option(None, "--model", "-m", help="EPANET model (.inp, any units). Default with the store: the stored model."),
    pressures: Path = typer.Option(None, help="Wide CSV of pressures [m]: time (UTC) then one column per node id."),
    flows: Path = typer.Option(None, help="Wide CSV of flows [m³/h]: one column per link id."),
    levels: Path = typer.Option(None, help="Wide CSV of tank levels [m]: one column per tank id."),
    demands: Path = typer.Option(None, help="Wide CSV of smart-meter consumption [L/h]: one column per node id."),
    train_until: str = typer.Option(
        None, "--train-until", help='End of a leak-free period to learn from, "YYYY-MM-DD HH:MM" (UTC). '
        "Default: the first 14 days (at most a quarter of the data), with a warning."
    ),
    out: Path = typer.Option(Path("leaks.csv"), "--out", "-o", help="Where to write the detected leaks (CSV)."),
    issues_out: Path = typer.Option(None, "--issues-out", help="Also write the sensor problems found (CSV)."),
    dma: str = typer.Option(None, "--dma", help="With the store: only the sensors of this DMA."),
    start: str = typer.Option(None, "--from", help="With the store: first time to read (UTC)."),
    end: str = typer.Option(None, "--to", help="With the store: time to read up to (UTC, excluded)."),
    model_name: str = typer.Option(None, "--model-name", help="With the store: name of the stored model to use."),
    threshold: float = typer.Option(None, help="Alarm threshold (default tuned on simulations; higher: fewer, later alarms)."),
    against_training: list[int] = typer.Option(
        [], "--against-training", min=1, metavar="HOURS",
        help="Also test the mean of the last HOURS hours against the whole training period, where a leak that grows "
        "over days or weeks shows whole (repeatable, e.g. 168). Off by default: it finds a few more slowly growing "
        "leaks, with more false alarms.",
    ),
    growth_alarm: float = typer.Option(
        1.5, "--growth-alarm", min=1.1, metavar="FACTOR",
        help="Report a leak again, at its pipe, each time its tracked flow reaches FACTOR times its flow when last "
        "reported (and 2 m³/h more): it grew, or another leak started close by. Only for leaks placed with at least "
        "60 % probability. 1.5: each time the flow grows by half.",
    ),
    no_growth_alarm: bool = typer.Option(
        False, "--no-growth-alarm",
        help="Never report a leak again for its growth (nor localize an unsure one again when it doubles).",
    ),
    growth_look: bool = typer.Option(
        True, "--growth-look/--no-growth-look",
        help="A leak placed with less than 60 % probability whose tracked flow doubles since it was last reported or "
        "localized again (and grows 2 m³/h) is localized again at once, and a row with the corrected pipe written if "
        "its best pipe moved (a track placed wrongly takes up the water of new leaks near it); if the pipe stays and is "
        "now at least 60 % likely, the leak is reported again there.",
    ),
    min_pipe_probability: float = typer.Option(
        0.4, "--min-pipe-probability", min=0.0, max=1.0, metavar="P",
        help="Name a pipe only when the leak is at least P likely to be within 300 m of it; below, the alarm names "
        "the area to survey (candidates, search_km) and a row with the pipe follows when the evidence places it. "
        "Default 0.4; 0: every alarm names a pipe, however unsure.",
    ),
    unplaced_alarm: bool = typer.Option(
        True, "--unplaced-alarm/--wait-for-a-place",
        help="A leak whose water over 14 days is worth more than a visit in vain (1.86 m³/h at the default prices; "
        "--water-price, --crew-cost) but whose place is too uncertain to be worth a crew at any one pipe is reported "
        "after 24 hours without a pipe, naming the area to survey (default); --wait-for-a-place: it waits, without "
        "a time limit, until it is worth a visit.",
    ),
    misfit_scale: bool = typer.Option(
        False, "--misfit-scale/--no-misfit-scale",
        help="--misfit-scale: widen a leak's place when even its best pipe fits the change worse than noise and model "
        "error explain (several leaks changing at once); the alarm then waits for its place, or names the area to "
        "survey. Fewer false alarms, most of all where pressure sensors are few, but fewer leaks named and corrected. "
        "Default: place it by the fit alone.",
    ),
    model_tz: str = typer.Option(
        None, "--model-tz",
        help="Time zone the model's patterns and controls run on: Asia/Jakarta, UTC+7 … (default: the store's 'timezone' meta, else UTC).",
    ),
    water_price: float = typer.Option(0.8, "--water-price", min=0.0, help="Value of a m³ of lost water (any currency; default BattLeDIM's 0.80 €)."),
    crew_cost: float = typer.Option(
        500.0, "--crew-cost", min=0.0, help="Cost of a crew visit where there is no leak (same currency; 0: alarm whatever the value)."
    ),
    weigh_search_distance: bool = typer.Option(
        False, "--weigh-search-distance",
        help="Report the pipe a crew is best sent to, counting how far it would search (with --water-price and "
        "--crew-cost): for a small leak, a pipe a little less likely to be within 300 m but nearer the leak on average. "
        "Default: the pipe most likely to be within 300 m.",
    ),
    calibrate_roughness: bool = typer.Option(
        True, "--calibrate-roughness/--no-calibrate-roughness",
        help="Fit pipe roughness per diameter class to the training period's daily pressure swing before placing leaks.",
    ),
    calibrated_model: Path = typer.Option(
        None, "--calibrated-model", help="Also write the model with the calibrated roughness (.inp, the model's units)."
    ),
    store: str = StoreOption,
):
    """Detect, localize and track leaks.

    Reads wide CSVs (--pressures, --flows, --levels, --demands; columns named by the model's node
    and link ids) or, without them, the readings in the store (--dma, --from, --to). Writes one
    row per leak (one more for a corrected place, and one more each time its flow grows by half): link_id (empty when
    the place is too uncertain to name a pipe), start_time (when it was detected), leak_flow_m3h (its flow then),
    estimated_start, candidates (next best pipes), node_id, p_within_300m, peak_flow_m3h,
    repair_time (empty while it runs), search_km (length of mains holding 90 % of the
    posterior: the area to survey).
    """
    from tirtasu.leaks.data import InputError
    from tirtasu.leaks.detect import DetectConfig, detect_leaks
    from tirtasu.network import ModelError, load_model

    model_tz = _check_tz(model_tz)
    use_files = any(p is not None for p in (pressures, flows, levels, demands))
    try:
        if use_files:
            if model is None:
                fail("--model is needed with data files")
            wn = load_model(model)
            inputs, _ = _inputs_from_files(pressures, flows, levels, demands)
        else:
            inputs, wn, zone = _inputs_from_store(store, dma, start, end, model_name)
            model_tz = model_tz or _check_tz(zone)
            if model is not None:
                wn = load_model(model)
        cfg = DetectConfig(
            model_timezone=model_tz, water_price_eur_m3=water_price, crew_cost_eur=crew_cost, calibrate_roughness=calibrate_roughness,
            training_windows_h=tuple(sorted(set(against_training))), growth_alarm=None if no_growth_alarm else growth_alarm,
            pipe_p_min=min_pipe_probability, rank_by_value=weigh_search_distance, unplaced_alarm=unplaced_alarm,
            misfit_scale=misfit_scale, growth_look=growth_look,
        )
        if threshold is not None:
            cfg.threshold = threshold
        with _staged_progress() as progress:
            report = detect_leaks(wn, inputs, train_until=train_until, config=cfg, progress=progress)
    except ModelError as exc:
        fail(str(exc))
    except (InputError, ValueError, KeyError) as exc:
        fail(str(exc).strip('"'))

    for note in report.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        report.write_csv(out)
        if issues_out is not None:
            pd.DataFrame([i.as_dict() for i in report.issues], columns=["kind", "location", "problem", "start", "end", "detail"]).to_csv(issues_out, index=False)
        if calibrated_model is not None:
            import wntr

            if report.roughness is None:
                why = "see the notes above" if calibrate_roughness else "--no-calibrate-roughness"
                err_console.print(
                    f"[yellow]note:[/] {escape(str(calibrated_model))} not written: pipe roughness was not calibrated ({why})",
                    highlight=False, soft_wrap=True,
                )
            else:
                units = str(wn.options.hydraulic.inpfile_units or "CMH")
                wntr.network.write_inpfile(report.roughness.apply(wn), str(calibrated_model), units=units)
                err_console.print(f"calibrated model written to {escape(str(calibrated_model))} ({units})", highlight=False, soft_wrap=True)
    except OSError as exc:
        fail(f"cannot write {exc.filename}: {exc.strerror}")

    if report.issues:
        t = Table(title="Sensor problems", title_justify="left")
        for col in ("sensor", "problem", "from", "to", "detail"):
            t.add_column(col)
        for i in report.issues[:30]:
            d = i.as_dict()
            t.add_row(f"{i.kind} {i.location}", i.problem, d["start"] or "", d["end"] or "", escape(i.detail))
        console.print(t)
        if len(report.issues) > 30:
            console.print(f"… and {len(report.issues) - 30} more" + (f" (all in {issues_out})" if issues_out else " (use --issues-out)"))
    det = report.detections
    t = Table(title=f"{len(det)} leak(s) detected after {report.train_until:%Y-%m-%d %H:%M}", title_justify="left")
    for col in ("pipe", "detected", escape("flow [m³/h]"), "started ~", "next candidates", "P(≤300 m)", "search [km]", "repaired"):
        t.add_column(col)
    for r in det.itertuples():
        t.add_row(
            r.link_id or ("(survey: see candidates)" if r.candidates else "(not localized)"),
            r.start_time,
            f"{r.leak_flow_m3h:.2f}",
            r.estimated_start,
            r.candidates.replace(";", ", "),
            "" if pd.isna(r.p_within_300m) else f"{r.p_within_300m:.2f}",
            "" if pd.isna(r.search_km) else f"{r.search_km:.1f}",
            r.repair_time or "",
        )
    console.print(t)
    console.print(f"written to {out}")


@app.command("place-sensors")
def place_sensors(
    model: Path = typer.Option(..., "--model", "-m", help="EPANET model (.inp, any units)."),
    add: int = typer.Option(..., "--add", "-n", min=0, help="How many pressure loggers to add."),
    existing: str = typer.Option(
        None, "--existing",
        help="Pressure sensors already in place: a wide pressure CSV (its columns after the time are node ids) or ids separated by commas.",
    ),
    radius: float = typer.Option(300.0, "--radius", min=1.0, help="How close a leak must be placed [m, along the pipes]."),
    leak_flow: float = typer.Option(None, "--leak-flow", min=0.01, help="Leak to plan for [m³/h] (default 2 % of the model's mean demand)."),
    noise: float = typer.Option(
        None, "--noise", min=1e-6,
        help=(
            "Noise of a logger's day-mean pressure beyond what demand, pumps and tanks explain [m]. Default: estimated from "
            "the --existing CSV's readings (3 days or more; with --flows and --levels as the leak detector sees it), else 0.01."
        ),
    ),
    flows: Path = typer.Option(None, help="Wide CSV of flows [m³/h] of the same period, to estimate the noise as leak detection sees it."),
    levels: Path = typer.Option(None, help="Wide CSV of tank levels [m] of the same period (with --flows)."),
    model_error: float = typer.Option(0.15, "--model-error", min=0.0, help="Relative error of the model's leak signatures."),
    candidates: int = typer.Option(200, "--candidates", min=1, help="Junctions considered for a logger (spread over the network)."),
    out: Path = typer.Option(Path("placement.csv"), "--out", "-o", help="Where to write the loggers chosen, in order (CSV)."),
) -> None:
    """Choose junctions for new pressure loggers so that leaks can be placed on a pipe.

    Computes with EPANET how a leak at every junction moves the pressure at every junction, then
    adds loggers one at a time where they most reduce the length of mains a leak could be
    confused with (places farther than --radius whose signatures differ by less than the
    model error and the noise allow). Writes one row per layout: the logger added, the share of
    the mains where a leak would be seen and where it would be placed within --radius, and the
    mean length of mains it could be confused with.
    """
    from tirtasu.leaks.data import InputError, LeakInputs, read_wide
    from tirtasu.leaks.placement import estimate_logger_noise, place_pressure_sensors, residual_logger_noise
    from tirtasu.network import ModelError, load_model

    try:
        wn = load_model(model)
    except ModelError as exc:
        fail(str(exc))
    ids: list[str] = []
    readings = None
    if existing:
        if Path(existing).is_file():
            try:
                readings = read_wide(Path(existing), "pressure")
            except (InputError, OSError, ValueError) as exc:
                fail(f"cannot read the sensors of {existing}: {exc}")
            ids = [str(c).strip() for c in readings.columns]
        elif existing.lower().endswith(".csv"):
            fail(f"{existing}: no such file (--existing takes a pressure CSV or ids separated by commas)")
        else:
            ids = [x.strip() for x in existing.split(",") if x.strip()]
    inputs = None
    if flows is not None or levels is not None:
        if readings is None or flows is None:
            fail("--flows and --levels estimate the noise with the pressures of --existing: give --existing as a CSV, and --flows")
        try:
            inputs = LeakInputs(
                pressure=readings, flow=read_wide(flows, "flow"),
                level=read_wide(levels, "level") if levels is not None else pd.DataFrame(), demand=pd.DataFrame(),
            )
        except InputError as exc:
            fail(str(exc))
    if noise is None:
        noise = 0.01
        if readings is not None:
            try:
                if inputs is not None:
                    noise = residual_logger_noise(inputs, wn)
                    how = "after the leak-free model of leak detection"
                else:
                    noise = estimate_logger_noise(readings)
                    how = "beyond the demand swing; pumps and tanks not explained without --flows"
                err_console.print(f"logger noise estimated from {escape(existing)}: {noise * 1000:.1f} mm ({how})", highlight=False, soft_wrap=True)
            except InputError as exc:  # a column that is not in the model
                fail(str(exc))
            except ValueError as exc:  # too few days or sensors to tell
                err_console.print(f"[yellow]note:[/] {escape(str(exc))}; --noise 0.01 m assumed", highlight=False, soft_wrap=True)
    try:
        with _staged_progress() as progress:
            result = place_pressure_sensors(
                wn, add, existing=ids, radius_m=radius, leak_m3h=leak_flow, noise_m=noise, model_error=model_error,
                max_candidates=candidates, progress=progress,
            )
    except ValueError as exc:
        fail(f"{exc} ({model})")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        result.steps.to_csv(out, index=False, float_format="%.4f")
    except OSError as exc:
        fail(f"cannot write {exc.filename}: {exc.strerror}")
    t = Table(title=f"Pressure loggers for {model.name}: {len(ids)} in place, {len(result.added)} added", title_justify="left")
    for col in ("loggers", "added at", "seen", f"placed ≤ {radius:g} m", "confusable [km]"):
        t.add_column(col)
    for r in result.steps.itertuples():
        t.add_row(str(r.sensors), r.added or "(in place)", f"{r.detectable_share:.0%}", f"{r.localizable_share:.0%}", f"{r.ambiguity_km:.1f}")
    console.print(t)
    console.print(f"written to {out}")


@app.command("bench")
def bench(
    full: bool = typer.Option(False, "--full", help="The full set (more seeds, sensor densities and noise levels; ~1 h) instead of the quick one."),
    docs: Path = typer.Option(Path("docs/benchmarks.md"), "--docs", help="Markdown file whose bench_leaks section receives the table."),
    no_docs: bool = typer.Option(False, "--no-docs", help="Print only; do not write the docs."),
    cache: Path = typer.Option(None, "--cache", help="Keep simulated scenarios here and reuse them (default: a temporary directory)."),
    speed: bool = typer.Option(True, "--speed/--no-speed", help="Also time a year of L-Town against EPANET simulating it."),
    speed_days: float = typer.Option(365.0, "--speed-days", help="Length of the speed run [days]."),
):
    """Benchmark leak detection on simulated scenarios with known leaks and print the scores.

    Scenarios: L-Town (BattLeDIM layout and a sparse one) and other networks in other units, 8
    weeks after 2 leak-free weeks, 6–8 leaks of 1–8 % of the mean inflow, several seeds and noise
    levels, outdated models (demands, pipe roughness), layouts half placed by place-sensors or
    at BattLeDIM's density by length of main. Held-out parts (other seeds, another network), one
    added with each change of the method and scored once for it, are not used to tune it (the
    first and the seventh each decided one choice) and are reported separately, each and all
    together per network; docs/leaks-history.md tells how each was added.
    Scores follow BattLeDIM (tirtasu.leaks.scoring).
    """
    from tirtasu.leaks.bench import run_bench

    with _progress() as bar:
        task = bar.add_task("scenarios", total=1.0)
        result = run_bench(
            full=full,
            cache=cache,
            speed=speed,
            speed_days=speed_days,
            progress=lambda f, what: bar.update(task, completed=f, description=what[:32]),
        )
    console.print(result.markdown, highlight=False, markup=False)
    if not no_docs:
        from tirtasu.leaks.bench import write_section

        write_section(docs, "bench_leaks", result.markdown)
        console.print(f"written to {docs}")
