"""Leak detection on small simulated cases whose truth is known.

Net3 (EPANET's example 3, in GPM and psi: a model in US units, 92 junctions, two sources, three
tanks, two pumps) is simulated for 12 days: 7 leak-free training days, then a leak. Each test
asserts against the simulator's ground truth, scored with the BattLeDIM rules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tirtasu.cli import app
from tirtasu.leaks import DetectConfig, detect_leaks, score
from tirtasu.leaks.data import InputError, LeakInputs
from tirtasu.network import load_model
from tirtasu.simulator import Leak, Scenario, SensorFault, default_layout, simulate, write_wide_csv

from conftest import NETWORKS

NET3 = NETWORKS / "asce-tf-wdst" / "Net3.inp"
TRAIN_UNTIL = "2025-01-08 00:00"
LEAK_START = "2025-01-09 10:00"


def _inputs(sim) -> LeakInputs:
    r = sim.readings
    return LeakInputs(pressure=r["pressure"], flow=r["flow"], level=r["level"], demand=r["demand"])


def _run(leaks=(), faults=(), days=12.0, seed=3, n_pressure=10, layout=None):
    wn = load_model(NET3)
    layout = layout or default_layout(wn, np.random.default_rng(0), n_pressure=n_pressure)
    sc = Scenario(model=str(NET3), start="2025-01-01", days=days, seed=seed, layout=layout, leaks=list(leaks), faults=list(faults))
    return wn, simulate(sc)


@pytest.fixture(scope="module")
def net3():
    return load_model(NET3)


@pytest.fixture(scope="module")
def abrupt_case():
    leak = Leak("101", LEAK_START, "2025-01-20 00:00", peak_flow_m3h=60.0, kind="abrupt", leak_id="L1")
    wn, sim = _run([leak])
    return wn, sim, detect_leaks(wn, _inputs(sim), train_until=TRAIN_UNTIL)


_NAMED = DetectConfig(pipe_p_min=0.0)  # every alarm names a pipe, however unsure


@pytest.fixture(scope="module")
def abrupt_named(abrupt_case):
    """The same case with every alarm naming a pipe, however unsure (``pipe_p_min`` 0)."""
    wn, sim, _ = abrupt_case
    return wn, sim, detect_leaks(wn, _inputs(sim), train_until=TRAIN_UNTIL, config=_NAMED)


def test_abrupt_leak_found_once_on_its_pipe(abrupt_case, abrupt_named):
    wn, sim, report = abrupt_named
    det = report.detections
    assert len(det) == 1, det  # one alarm per leak, not one per day
    # Net3's pipes are long and its sensors few: the pipe is named with less than 40 %, so by
    # default the same alarm names the area to survey, with that pipe first among its candidates
    zone = abrupt_case[2].detections
    assert len(zone) == 1 and zone["link_id"].iloc[0] == "" and det["p_within_300m"].iloc[0] < 0.4
    assert zone["candidates"].iloc[0].split(";")[0] == det["link_id"].iloc[0]
    assert zone["start_time"].iloc[0] == det["start_time"].iloc[0]
    assert score(zone, sim.leaks, sim.leak_flows, wn, period_start=TRAIN_UNTIL).ignored == 1
    result = score(det, sim.leaks, sim.leak_flows, wn, period_start=TRAIN_UNTIL)
    assert result.tp == 1 and result.fp == 0
    assert result.median_distance_m <= 300.0
    assert 0 < result.median_delay_h <= 72.0
    # the flow estimate and the start time are close to the truth
    true_flow = sim.leak_flows["L1"][sim.leak_flows.index >= pd.Timestamp(LEAK_START, tz="UTC")].mean()
    assert det["leak_flow_m3h"].iloc[0] == pytest.approx(true_flow, rel=0.5)
    est = pd.Timestamp(det["estimated_start"].iloc[0])
    assert abs(est - pd.Timestamp(LEAK_START)) <= pd.Timedelta(hours=12)
    assert pd.Timestamp(det["start_time"].iloc[0]) > pd.Timestamp(LEAK_START)


def test_weighing_the_search_still_finds_the_abrupt_leak(abrupt_case, abrupt_named):
    """With the crew's search counted (rank_by_value), still one alarm, raised at the same hour
    (from the same evidence), on a pipe within 300 m of the leak, named with no more
    probability than the likeliest pipe's (the choice gives up probability only for a shorter
    search)."""
    wn, sim, named = abrupt_named
    report = detect_leaks(wn, _inputs(sim), train_until=TRAIN_UNTIL, config=DetectConfig(pipe_p_min=0.0, rank_by_value=True))
    det = report.detections
    assert len(det) == 1 and det["start_time"].iloc[0] == named.detections["start_time"].iloc[0]
    assert det["p_within_300m"].iloc[0] <= named.detections["p_within_300m"].iloc[0] + 1e-9
    result = score(det, sim.leaks, sim.leak_flows, wn, period_start=TRAIN_UNTIL)
    assert result.tp == 1 and result.fp == 0 and result.median_distance_m <= 300.0


def test_output_columns_and_candidates(abrupt_named):
    wn, _, report = abrupt_named
    det = report.detections
    assert list(det.columns[:5]) == ["link_id", "start_time", "leak_flow_m3h", "estimated_start", "candidates"]
    cands = det["candidates"].iloc[0].split(";")
    assert len(cands) >= 2 and det["link_id"].iloc[0] not in cands
    assert 0.0 < det["p_within_300m"].iloc[0] <= 1.0
    # the area to survey holds at least the pipe reported, and not the whole network
    total_km = sum(p.length for _, p in wn.pipes()) / 1000
    assert wn.get_link(det["link_id"].iloc[0]).length / 1000 <= det["search_km"].iloc[0] < 0.5 * total_km


def test_search_length_by_hand():
    from tirtasu.leaks.localize import NetworkDistances, search_length_km
    import wntr

    wn = wntr.network.WaterNetworkModel()
    wn.add_reservoir("R", base_head=50.0)
    prev = "R"
    for k, length in enumerate((100.0, 200.0, 300.0, 400.0)):
        wn.add_junction(f"J{k}", base_demand=0.001)
        wn.add_pipe(f"P{k}", prev, f"J{k}", length=length, diameter=0.2, roughness=100)
        prev = f"J{k}"
    dist = NetworkDistances(wn)
    post = np.array([0.05, 0.5, 0.15, 0.3])  # P1 0.5, P3 0.3 (0.8 < 0.9), then P2 0.15 → 0.95
    assert search_length_km(post, ["P0", "P1", "P2", "P3"], dist) == pytest.approx((200 + 400 + 300) / 1000)
    assert search_length_km(post, ["P0", "P1", "P2", "P3"], dist, mass=0.5) == pytest.approx(0.2)


def test_no_leak_no_alarm():
    wn, sim = _run([])
    report = detect_leaks(wn, _inputs(sim), train_until=TRAIN_UNTIL)
    assert report.detections.empty, report.detections


def test_incipient_leak_is_tracked_to_its_repair():
    leak = Leak("101", "2025-01-08 12:00", "2025-01-13 00:00", peak_flow_m3h=80.0, kind="incipient", peak="2025-01-10 12:00", leak_id="L1")
    wn, sim = _run([leak], days=16)
    # Net3's few sensors name the pipe with less than 40 %: named anyway, to be scored
    report = detect_leaks(wn, _inputs(sim), train_until=TRAIN_UNTIL, config=_NAMED)
    det = report.detections
    result = score(det, sim.leaks, sim.leak_flows, wn, period_start=TRAIN_UNTIL)
    assert result.tp == 1 and result.fp == 0, result.detections
    repaired = [t for t in det["repair_time"] if t]
    assert repaired, "the repair was not seen"
    assert abs(pd.Timestamp(repaired[0]) - pd.Timestamp("2025-01-13 00:00")) <= pd.Timedelta(hours=36)
    # after the repair the tracked leak flow is back near zero
    tracked = report.hourly["tracked_leak_flow_m3h"]
    late = tracked[tracked.index >= pd.Timestamp("2025-01-15", tz="UTC")]
    assert late.isna().all() or late.abs().max() < 20.0


def test_drifting_pressure_sensor_is_a_fault_not_a_leak(net3):
    layout = default_layout(net3, np.random.default_rng(0), n_pressure=10)
    sensor = layout.pressure[2]
    fault = SensorFault(f"P_{sensor}", "drift", "2025-01-09 00:00", magnitude=1.0)
    wn, sim = _run([], faults=[fault], layout=layout)
    report = detect_leaks(wn, _inputs(sim), train_until=TRAIN_UNTIL)
    assert report.detections.empty, report.detections
    drifts = [i for i in report.issues if i.problem == "drift"]
    assert [i.location for i in drifts] == [sensor]
    assert pd.Timestamp("2025-01-08 12:00", tz="UTC") <= drifts[0].start <= pd.Timestamp("2025-01-10 00:00", tz="UTC")


def test_stuck_sensor_and_gap_are_reported_and_the_leak_still_found(net3):
    layout = default_layout(net3, np.random.default_rng(0), n_pressure=10)
    faults = [
        SensorFault(f"P_{layout.pressure[1]}", "stuck", "2025-01-09 02:00", "2025-01-09 14:00"),
        SensorFault(f"P_{layout.pressure[4]}", "gap", "2025-01-10 00:00", "2025-01-10 06:00"),
    ]
    leak = Leak("101", LEAK_START, "2025-01-20 00:00", peak_flow_m3h=60.0, kind="abrupt", leak_id="L1")
    wn, sim = _run([leak], faults=faults, layout=layout)
    report = detect_leaks(wn, _inputs(sim), train_until=TRAIN_UNTIL, config=_NAMED)  # as above
    problems = {(i.location, i.problem) for i in report.issues}
    assert (layout.pressure[1], "stuck") in problems
    assert (layout.pressure[4], "gap") in problems
    gap = next(i for i in report.issues if i.problem == "gap")
    assert gap.start == pd.Timestamp("2025-01-10 00:00", tz="UTC")
    result = score(report.detections, sim.leaks, sim.leak_flows, wn, period_start=TRAIN_UNTIL)
    assert result.tp == 1 and result.fp == 0


def test_unknown_sensor_ids_are_named(abrupt_case):
    wn, sim, _ = abrupt_case
    inputs = _inputs(sim)
    inputs.pressure = inputs.pressure.rename(columns={inputs.pressure.columns[0]: "NOPE-1"})
    with pytest.raises(InputError, match="NOPE-1"):
        detect_leaks(wn, inputs, train_until=TRAIN_UNTIL)
    inputs = _inputs(sim)
    inputs.level = inputs.level.rename(columns={inputs.level.columns[0]: inputs.pressure.columns[0]})
    with pytest.raises(InputError, match="tanks"):
        detect_leaks(wn, inputs, train_until=TRAIN_UNTIL)


def test_too_few_sensors_detects_without_localizing(net3):
    # a large leak (6 % of the demand): the demand balance alone must see it
    leak = Leak("101", LEAK_START, "2025-01-20 00:00", peak_flow_m3h=150.0, kind="abrupt", leak_id="L1")
    layout = default_layout(net3, np.random.default_rng(0), n_pressure=2)
    wn, sim = _run([leak], layout=layout)
    report = detect_leaks(wn, _inputs(sim), train_until=TRAIN_UNTIL)
    assert any("too few to localize" in n for n in report.notes)
    assert len(report.detections) == 1
    assert report.detections["link_id"].iloc[0] == ""
    t = pd.Timestamp(report.detections["start_time"].iloc[0])
    assert pd.Timestamp(LEAK_START) < t < pd.Timestamp(LEAK_START) + pd.Timedelta(days=3)


def test_without_training_end_learns_from_first_days_and_says_so(abrupt_case):
    wn, sim, _ = abrupt_case
    report = detect_leaks(wn, _inputs(sim))
    assert any("first 3 days" in n for n in report.notes), report.notes
    with pytest.raises(InputError, match="shorter than"):
        detect_leaks(wn, _inputs(sim), train_until="2025-01-02 00:00")


def test_cli_detect_from_files(tmp_path, abrupt_case, monkeypatch):
    wn, sim, report = abrupt_case
    files = {}
    for kind, name in (("pressure", "pressures"), ("flow", "flows"), ("level", "levels"), ("demand", "demands")):
        files[name] = tmp_path / f"{name}.csv"
        write_wide_csv(sim.readings[kind], files[name])
    out = tmp_path / "leaks.csv"
    args = ["leaks", "detect", "--model", str(NET3), "--train-until", TRAIN_UNTIL, "--out", str(out)]
    for name, path in files.items():
        args += [f"--{name}", str(path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out, keep_default_na=False, dtype=str)
    assert list(written.columns[:2]) == ["link_id", "start_time"]
    assert list(written["link_id"]) == list(report.detections["link_id"])
    # --against-training reaches the detection's settings (sorted, once each); without it no
    # window is tested against training. --growth-alarm likewise (1.5 by default, None when turned off)
    import tirtasu.leaks.detect as detect_module

    seen = []
    monkeypatch.setattr(detect_module, "detect_leaks", lambda *a, config=None, **k: seen.append(config) or report)
    runs = (["--against-training", "168", "--against-training", "72", "--against-training", "168", "--growth-alarm", "3"],
            [], ["--no-growth-alarm", "--min-pipe-probability", "0", "--weigh-search-distance", "--misfit-scale", "--no-growth-look"])
    for extra in runs:
        result = CliRunner().invoke(app, args + extra)
        assert result.exit_code == 0, result.output
    assert [(c.training_windows_h, c.growth_alarm, c.pipe_p_min, c.rank_by_value, c.misfit_scale, c.growth_look) for c in seen] == [
        ((72, 168), 3.0, 0.4, False, False, True), ((), 1.5, 0.4, False, False, True), ((), None, 0.0, True, True, False)
    ]
    monkeypatch.undo()
    # a column that is not in the model: a clear message, no traceback
    bad = pd.read_csv(files["pressures"])
    bad = bad.rename(columns={bad.columns[1]: "J-UNKNOWN"})
    bad.to_csv(files["pressures"], index=False)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "J-UNKNOWN" in result.output and "Traceback" not in result.output
    # a time zone that does not exist: named, before any work
    result = CliRunner().invoke(app, args + ["--model-tz", "Asia/Jakrta"])
    assert result.exit_code == 1
    assert "Asia/Jakrta" in result.output and "unknown time zone" in result.output
    # a negative price of water or crew visit, a window of no hours, a growth factor below 1.1:
    # refused by the option itself
    for option in ("--water-price", "--crew-cost", "--against-training", "--growth-alarm", "--min-pipe-probability"):
        result = CliRunner().invoke(app, args + [option, "-1"])
        assert result.exit_code == 2 and option in result.output
    # a probability above 1
    result = CliRunner().invoke(app, args + ["--min-pipe-probability", "1.5"])
    assert result.exit_code == 2 and "--min-pipe-probability" in result.output


def test_cli_detect_from_the_store(tmp_path, abrupt_case):
    """Readings imported into the store (sensor registry with node/link ids) and the stored model."""
    from tirtasu.store import open_store

    wn, sim, report = abrupt_case
    url = tmp_path / "store.duckdb"
    with open_store(url) as st:
        st.upsert_sensors(sim.registry)
        node_or_link = {r.sensor_id: (r.kind, r.node_id if r.kind != "flow" else r.link_id) for r in sim.registry.itertuples()}
        for sid, (kind, where) in node_or_link.items():
            series = sim.readings[kind][where].dropna()
            st.add_readings(pd.DataFrame({"sensor_id": sid, "time": series.index, "value": series.to_numpy()}))
        st.put_model("net3", NET3.read_text())
    out = tmp_path / "leaks.csv"
    result = CliRunner().invoke(app, ["leaks", "detect", "--store", str(url), "--train-until", TRAIN_UNTIL, "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out, keep_default_na=False, dtype=str)
    assert list(written["link_id"]) == list(report.detections["link_id"])
    result = CliRunner().invoke(app, ["leaks", "detect", "--store", str(url), "--dma", "NOWHERE", "--out", str(out)])
    assert result.exit_code == 1 and "NOWHERE" in result.output


def test_a_leak_not_worth_a_crew_waits(abrupt_case):
    """The same leak, when a crew visit costs more than the water it could save in the horizon,
    waits for more evidence: with ``unplaced_alarm`` off it is never reported; by default, when
    it is worth a survey (its water worth more than a visit in vain), it is reported without a
    pipe once it has waited ``max_wait_h``, and its pipe is never named (never worth a crew)."""
    from tirtasu.leaks import DetectConfig

    wn, sim, report = abrupt_case
    assert len(report.detections) == 1
    p = report.detections["p_within_300m"].iloc[0]
    q = report.detections["leak_flow_m3h"].iloc[0]
    # a crew cost far above what the water of the horizon is worth at that certainty (far, so
    # that the evidence growing in later hours does not make it worth it either; the rule's
    # arithmetic is checked by hand in test_worth_a_crew_by_hand)
    worth = p * q * 24.0 * 14.0 * 0.8 / (1.0 - p) if p < 1 else np.inf
    costly = DetectConfig(crew_cost_eur=min(1e12, 1e3 * worth), unplaced_alarm=False)
    quiet = detect_leaks(wn, _inputs(sim), train_until=TRAIN_UNTIL, config=costly, sensitivity=report.sensitivities)
    assert quiet.detections.empty, quiet.detections

    # a visit in vain of 10,000 €: the 60 m³/h leak is worth a survey (its water over 14 days at
    # 0.80 €/m³ is 16,128 €), but at its best pipe, about 35 % likely within 300 m, not a crew
    from tirtasu.leaks.detect import worth_a_crew, worth_a_survey

    costly = DetectConfig(crew_cost_eur=10_000.0)
    told = detect_leaks(wn, _inputs(sim), train_until=TRAIN_UNTIL, config=costly, sensitivity=report.sensitivities)
    zone = told.detections
    assert len(zone) == 1 and zone["link_id"].iloc[0] == "", zone
    p_zone, q_zone = zone["p_within_300m"].iloc[0], zone["leak_flow_m3h"].iloc[0]
    assert not worth_a_crew(p_zone, q_zone, costly) and worth_a_survey(q_zone, costly)
    # it waited max_wait_h (24 h) of evidence over the threshold after the persist_h (3 h) an
    # alarm needs (hours when the demand balance does not agree do not count)
    over = told.hourly.index[told.hourly["glr_leak"] > costly.threshold]
    waited = pd.Timestamp(zone["start_time"].iloc[0], tz="UTC") - over[0]
    assert waited >= pd.Timedelta(hours=costly.max_wait_h + costly.persist_h)
    assert pd.Timestamp(zone["start_time"].iloc[0]) < pd.Timestamp("2025-01-20 00:00")
    # the leak is told with its flow (60 m³/h) and its onset, and the area to survey
    assert zone["leak_flow_m3h"].iloc[0] == pytest.approx(60.0, rel=0.3)
    assert abs(pd.Timestamp(zone["estimated_start"].iloc[0]) - pd.Timestamp(LEAK_START)) <= pd.Timedelta(hours=3)
    assert zone["candidates"].iloc[0] and zone["search_km"].iloc[0] > 0


def test_the_row_naming_a_zone_alarms_pipe_gives_the_leaks_flow_then():
    """A leak growing over four days to 40 m³/h on a Net3 pipe is first reported without a
    pipe (its best pipe under 40 % likely) while it is small; days later the evidence names a
    pipe. That row gives the leak's flow when it is sent, the flow tracked then, which the
    simulator's truth says is about 40 m³/h, not the flow of the first report. (With Net3's
    long pipes and ten sensors the pipe named is kilometres from the leak's: this is about
    the flow only. Without the misfit scaling: with it no pipe is named within the 18 days,
    and the leak is only reported as an area to survey.)"""
    leak = Leak("251", LEAK_START, "2025-01-20 00:00", peak_flow_m3h=40.0, kind="incipient", peak="2025-01-13 10:00", leak_id="L1")
    wn, sim = _run([leak], days=18.0)
    report = detect_leaks(wn, _inputs(sim), train_until=TRAIN_UNTIL, config=DetectConfig(misfit_scale=False))
    det = report.detections
    assert len(det) == 2, det
    zone, named = det.iloc[0], det.iloc[1]
    assert zone["link_id"] == "" and named["link_id"] != ""
    assert named["estimated_start"] == zone["estimated_start"]  # the same leak
    sent = pd.Timestamp(named["start_time"], tz="UTC")
    truth = float(sim.leak_flows.loc[sent - pd.Timedelta(hours=24) : sent, "L1"].mean())
    assert truth == pytest.approx(40.0, rel=0.05)
    assert named["leak_flow_m3h"] == pytest.approx(truth, rel=0.3)
    assert named["leak_flow_m3h"] > 2.0 * zone["leak_flow_m3h"]
    # the flow tracked when the row was decided: with the data up to the hour before it, the
    # hourly table's value for that hour
    tracked = report.hourly["tracked_leak_flow_m3h"]
    assert named["leak_flow_m3h"] == pytest.approx(float(tracked.loc[sent - pd.Timedelta(hours=2)]), abs=0.01)


def test_shrinkage_follows_how_much_noise_the_sensors_share():
    """Cross-validated shrinkage: sensors that share most of their noise (one demand factor,
    a little sensor noise of their own) need their correlation kept; independent sensors can
    lean on the diagonal. With the chosen shrinkage, whitened means of fresh residuals have
    the variance the model claims (mean ‖Δ‖² within 25 % of the number of channels)."""
    from tirtasu.leaks.detect import _Noise, choose_shrinkage

    rng = np.random.default_rng(7)
    hours, c = 24 * 14, 30
    day = np.arange(hours) // 24
    loads = rng.uniform(0.5, 1.5, c)

    def shared(n):
        return np.outer(rng.standard_normal(n), loads) + 0.2 * rng.standard_normal((n, c))

    lam = choose_shrinkage(shared(hours), day)
    assert lam <= 0.03
    assert choose_shrinkage(rng.standard_normal((hours, c)), day) >= 0.1

    noise = _Noise(shared(hours), [24], None, day=day)
    W = noise.whitener((1,), np.ones(c, dtype=bool))
    fresh = shared(4000)
    assert np.mean(np.sum((fresh @ W.T) ** 2, axis=1)) == pytest.approx(c, rel=0.25)
    # the fixed shrinkage of before overstates the noise between sensors several times over
    W30 = _Noise(shared(hours), [24], 0.3).whitener((1,), np.ones(c, dtype=bool))
    assert np.mean(np.sum((fresh @ W30.T) ** 2, axis=1)) < 0.5 * c


def test_signatures_of_a_model_with_outdated_demands_are_calibrated_to_the_measured_inflow(net3, tmp_path):
    """A model whose demands are 40 % low (an outdated model), scaled to the demand measured at
    that hour, gives the signatures of the model with the right demands; uncalibrated, its
    signatures are far off (flows in the pipes and the pumps' working points differ)."""
    import copy

    import wntr

    from tirtasu.leaks.sensitivity import sensitivities

    low = copy.deepcopy(net3)
    for _, junction in low.junctions():
        for d in junction.demand_timeseries_list:
            d.base_value *= 0.6
    sensors = ["101", "123", "149", "185", "211", "253"]
    candidates = ["107", "119", "141", "163", "189", "219", "247", "275"]
    hour = 7.0
    right = sensitivities(net3, sensors, [], candidates, hours=(hour,), leak_m3h=5.0)
    # what the meters would say at that hour: the right model's total demand then [m³/h]
    at_hour = copy.deepcopy(net3)
    at_hour.options.time.duration = 0
    at_hour.options.time.pattern_start = int(hour * 3600)
    results = wntr.sim.EpanetSimulator(at_hour).run_sim(file_prefix=str(tmp_path / "net3"))
    demand = results.node["demand"][at_hour.junction_name_list]
    total = float(demand.iloc[0].sum()) * 3600.0  # m³/s → m³/h
    uncalibrated = sensitivities(low, sensors, [], candidates, hours=(hour,), leak_m3h=5.0)
    calibrated = sensitivities(low, sensors, [], candidates, hours=(hour,), leak_m3h=5.0, total_demand_m3h={hour: total})

    def rel(a, b):
        return np.linalg.norm(a.dp - b.dp) / np.linalg.norm(b.dp)

    assert calibrated.demand_multiplier[0] == pytest.approx(1 / 0.6, rel=0.02)
    assert rel(calibrated, right) < 0.02
    assert rel(uncalibrated, right) > 0.3


def test_signatures_keep_the_models_demands_where_scaling_has_no_solution(net3, monkeypatch):
    """Scaling an hour's demands solves a steady state without demand; where EPANET finds no
    solution for it (error 110) the hour's signatures are those of the model's own demands,
    NaN marks the hour, and nothing else changes."""
    from tirtasu.leaks.sensitivity import sensitivities
    from tirtasu.network import engine

    sensors = ["101", "123", "149", "185"]
    candidates = ["107", "119", "141"]
    own = sensitivities(net3, sensors, [], candidates, hours=(7.0,), leak_m3h=5.0)

    real = engine.Engine.junction_outflow

    def no_solution_without_demand(self, junction_idx, multiplier):
        if multiplier == 0.0:
            raise engine.EngineError("EPANET error 110 while solving a steady state")
        return real(self, junction_idx, multiplier)

    monkeypatch.setattr(engine.Engine, "junction_outflow", no_solution_without_demand)
    kept = sensitivities(net3, sensors, [], candidates, hours=(7.0,), leak_m3h=5.0, total_demand_m3h={7.0: 1000.0})
    assert np.isnan(kept.demand_multiplier[0])
    np.testing.assert_allclose(kept.dp, own.dp)


def test_demand_scaling_note_names_each_hour_and_why_it_was_not_scaled():
    """The note lists each signature hour's factor; an hour without inflow data is "not
    scaled", one whose probe had no hydraulic solution (NaN) says so, and only a factor of
    finite size more than 25 % from 1 asks for the model's demands to be checked."""
    from tirtasu.leaks.detect import demand_scaling_note

    note = demand_scaling_note((1.0, 7.0, 13.0, 19.0), [1.05, None, float("nan"), 0.9])
    assert "(01:00 ×1.05, 07:00 not scaled, 13:00 not scaled (no hydraulic solution without demand), 19:00 ×0.90)" in note
    assert "far from what the meters say" not in note
    assert "far from what the meters say" in demand_scaling_note((1.0, 7.0), [1.3, float("nan")])


@pytest.mark.parametrize("scale", [1.0, 0.8])
def test_demand_calibration_reads_how_outdated_the_model_is(net3, scale):
    """The multipliers the signatures are computed with are the ratio of the true demands to the
    model's: 0.8 when the city uses 20 % less water than the model says (within 5 %)."""
    import re

    layout = default_layout(net3, np.random.default_rng(0), n_pressure=10)
    sc = Scenario(model=str(NET3), start="2025-01-01", days=10, seed=3, layout=layout, demand_scale=scale)
    report = detect_leaks(net3, _inputs(simulate(sc)), train_until=TRAIN_UNTIL)
    note = next(n for n in report.notes if "scaled to the water measured" in n)
    multipliers = [float(m) for m in re.findall(r"×([0-9.]+)", note)]
    assert len(multipliers) == 4
    assert multipliers == pytest.approx([scale] * 4, rel=0.05)


def test_worth_a_survey_by_hand():
    """flow × 24 h × 14 d × 0.80 €/m³ against a 500 € visit in vain: 1.9 m³/h loses 510.72 € over
    the horizon (worth a survey wherever it is), 1.8 m³/h 483.84 € (not)."""
    from tirtasu.leaks import DetectConfig
    from tirtasu.leaks.detect import worth_a_survey

    cfg = DetectConfig()
    assert worth_a_survey(1.9, cfg) and not worth_a_survey(1.8, cfg)
    assert not worth_a_survey(float("nan"), cfg)
    assert worth_a_survey(0.0, DetectConfig(crew_cost_eur=0.0))
    assert not worth_a_survey(3.0, DetectConfig(water_price_eur_m3=0.2))  # 201.60 € against 500 €


def test_worth_a_crew_by_hand():
    """p × flow × 24 h × 14 d × 0.80 €/m³ against (1 − p) × 500 €: at p = 0.5 a leak of 2 m³/h
    saves 268.80 € against 250 € (raise); 1.8 m³/h saves 241.92 € (wait)."""
    from tirtasu.leaks import DetectConfig
    from tirtasu.leaks.detect import worth_a_crew

    cfg = DetectConfig()
    assert worth_a_crew(0.5, 2.0, cfg)
    assert not worth_a_crew(0.5, 1.8, cfg)
    assert worth_a_crew(0.1, 20.0, cfg)  # 537.6 € against 450 €: a large leak, roughly placed
    assert not worth_a_crew(0.1, 15.0, cfg)  # 403.2 € against 450 €
    assert not worth_a_crew(float("nan"), 5.0, cfg) and not worth_a_crew(0.9, float("nan"), cfg)
    assert worth_a_crew(0.01, 0.1, DetectConfig(crew_cost_eur=0.0))


def test_shrinkage_with_a_constant_channel_and_gaps():
    """A sensor that never moved in training and scattered gaps in the others do not push the
    choice to the diagonal: shared noise still gets a small shrinkage."""
    from tirtasu.leaks.detect import choose_shrinkage

    rng = np.random.default_rng(3)
    hours, c = 24 * 14, 20
    day = np.arange(hours) // 24
    Z = np.outer(rng.standard_normal(hours), rng.uniform(0.5, 1.5, c)) + 0.2 * rng.standard_normal((hours, c))
    Z[:, 0] = 1.0  # stuck in training
    Z[rng.random((hours, c)) < 0.05] = np.nan  # 5 % of the readings missing, scattered
    assert choose_shrinkage(Z, day) <= 0.03


def test_model_time_zone_matches_the_model_hours_with_utc_readings(net3):
    """Readings in UTC from a city on UTC+7 whose model runs on local time: with the time zone
    given, the demand calibration reads the model's 20 % excess (×0.8) as when model and
    readings share a clock; without it, the hours are 7 h apart and the multipliers are off."""
    import re

    from tirtasu.leaks import DetectConfig

    layout = default_layout(net3, np.random.default_rng(0), n_pressure=10)
    sim = simulate(Scenario(model=str(NET3), start="2025-01-01", days=10, seed=3, layout=layout, demand_scale=0.8))
    inputs = _inputs(sim)
    shift = pd.Timedelta(hours=7)  # local (model) time → UTC
    utc = LeakInputs(**{k: getattr(inputs, k).set_axis(getattr(inputs, k).index - shift) for k in ("pressure", "flow", "level", "demand")})
    train_utc = pd.Timestamp(TRAIN_UNTIL) - shift

    def multipliers(tz):
        report = detect_leaks(net3, utc, train_until=train_utc, config=DetectConfig(model_timezone=tz))
        note = next(n for n in report.notes if "scaled to the water measured" in n)
        return [float(m) for m in re.findall(r"×([0-9.]+)", note)]

    assert multipliers("Asia/Jakarta") == pytest.approx([0.8] * 4, rel=0.05)
    assert max(abs(m - 0.8) for m in multipliers(None)) > 0.1


def test_posterior_signature_by_hand():
    from tirtasu.leaks.detect import _merge_spread, posterior_signature

    # two candidates, 0.75 and 0.25 likely, signatures e1 and e2 (one snapshot, two channels):
    # mean (0.75, 0.25); covariance w1·w2·(e1 − e2)(e1 − e2)ᵀ = 0.1875·[[1, −1], [−1, 1]]
    bases = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    mean, spread = posterior_signature(np.array([0.75, 0.25]), bases, rank=3)
    assert mean == pytest.approx(np.array([[0.75, 0.25]]))
    assert spread.shape == (1, 1, 2)  # one direction is all two candidates can spread along
    cov = np.einsum("ri,rj->ij", spread[:, 0], spread[:, 0])
    assert cov == pytest.approx(0.1875 * np.array([[1.0, -1.0], [-1.0, 1.0]]))
    # rank 0: the mean only
    assert posterior_signature(np.array([0.75, 0.25]), bases, rank=0)[1].shape[0] == 0
    # three candidates on three channels, rank 1: the largest part of the covariance
    post = np.array([0.5, 0.3, 0.2])
    bases = np.eye(3)[None] * np.array([1.0, 2.0, 3.0])[None, :, None]
    mean, spread = posterior_signature(post, bases, rank=1)
    X = bases[0]
    full = (post[:, None] * (X - post @ X)).T @ (X - post @ X)
    vals = np.linalg.eigvalsh(full)
    assert float(spread[0, 0] @ spread[0, 0]) == pytest.approx(vals[-1])
    # two estimates of one leak merged: the spread of each, halved, and their difference
    a, b = np.array([[[1.0, 0.0]]]), np.array([[[0.0, 1.0]]])
    merged = _merge_spread(a, b, np.array([[0.5, 0.5]]), rank=3)
    cov = np.einsum("ri,rj->ij", merged[:, 0], merged[:, 0])
    assert cov == pytest.approx(0.5 * np.eye(2) + 0.25 * np.ones((2, 2)))


WEEK_WINDOWS = (6, 12, 24, 48, 96, 168)  # the windows before the two-week one [h]
# the relocalization before the default became four looks, corrected whenever the pipe moved:
# one look two days after the report, a correction only for a move of 150 m and odds of 3
ONE_RELOCATION = dict(relocate_h=(48,), relocate_m=150.0, relocate_odds=3.0)


def _bench_case_scored(name: str, switch: str, on=True, off=False, **base):
    """A benchmark case simulated, and its leaks scored with the setting ``switch`` on and off
    (``found[True]``: with ``switch=on``; ``found[False]``: with ``switch=off``; the reports
    likewise in ``reports``), the other settings default or as in ``base``."""
    from tirtasu.leaks import DetectConfig
    from tirtasu.leaks.bench import CASES, START, STUDY_CASES, TRAIN_DAYS, inputs_of, simulate_case

    sim = simulate_case(next(c for c in CASES + STUDY_CASES if c.name == name))
    wn = load_model(sim.scenario.model)
    train_until = START + pd.Timedelta(days=TRAIN_DAYS)
    found, reports = {}, {}
    for key, value in ((True, on), (False, off)):
        report = detect_leaks(wn, inputs_of(sim), train_until=train_until, config=DetectConfig(**{**base, switch: value}))
        det = report.detections[report.detections["link_id"] != ""]
        found[key] = score(det, sim.leaks, sim.leak_flows, wn, period_start=train_until).leaks.set_index("leak_id")
        reports[key] = report
    return sim, found, reports


def _found_only_with_the_setting(sim, found, leak_id: str, link_id: str, kind: str) -> None:
    """``leak_id`` is the leak a test describes (on ``link_id``, of ``kind``), and it is found
    within 300 m with the setting on, not with it off."""
    leak = sim.leaks.set_index("leak_id").loc[leak_id]
    assert leak["link_id"] == link_id and leak["kind"] == kind
    assert found[True].loc[leak_id, "found"] and found[True].loc[leak_id, "distance_m"] <= 300.0
    assert not found[False].loc[leak_id, "found"]


def _row_that_found(reports, found, leak_id: str):
    """The detections with the setting on (``t``: their time) and the row that found ``leak_id``."""
    det = reports[True].detections
    det = det.assign(t=pd.to_datetime(det["start_time"], utc=True))
    return det, det[det["t"] == found[True].loc[leak_id, "detected_at"]].iloc[0]


def _corrected_report(sim, reports, found, leak_id: str):
    """The report that the row finding ``leak_id`` corrected (same onset, earlier): it named
    another pipe, beyond reach of the leak (BattLeDIM's distance between pipe midpoints), one
    of the relocalization looks before. Returns that report."""
    from tirtasu.leaks.localize import NetworkDistances

    det, hit = _row_that_found(reports, found, leak_id)
    first = det[(det["estimated_start"] == hit["estimated_start"]) & (det["t"] < hit["t"])].iloc[0]
    assert first["link_id"] != hit["link_id"]
    dist = NetworkDistances(load_model(sim.scenario.model))
    leak_link = sim.leaks.set_index("leak_id").loc[leak_id, "link_id"]
    assert dist.midpoint_to_pipes(leak_link)[dist.pipe_index[first["link_id"]]] > 300.0
    assert (hit["t"] - first["t"]) / pd.Timedelta(hours=1) in (24, 48, 96, 168)
    return first


def test_a_leak_that_starts_the_day_after_a_repair_nearby_is_found():
    """L-Town, the benchmark's tuning scenario #210: a 7.9 m³/h leak is repaired and a day later
    a 10.8 m³/h one starts 330 m away, while an incipient leak grows elsewhere. Letting the known
    leak explain the demand balance first took the new leak's water for its growth: no alarm."""
    sim, found, _ = _bench_case_scored("L-Town #210", "balance_joint")
    _found_only_with_the_setting(sim, found, "leak-03", "p573", "abrupt")


def test_a_leak_first_placed_too_far_is_found_when_localized_again_a_week_later():
    """L-Town, the benchmark's tuning scenario #217: a 3.4 m³/h abrupt leak at p655 raises its
    alarm 11 h after its onset, placed 479 m away. Localized again with all the data since its
    onset, a day, two, four and seven days after that report (the default), it is placed
    191 m away after a week, and that corrected row finds it; with the single look after two
    days it is never found."""
    sim, found, reports = _bench_case_scored("L-Town #217", "relocate_h", on=(24, 48, 96, 168), off=(48,))
    _found_only_with_the_setting(sim, found, "leak-03", "p655", "abrupt")
    # the row that found it corrects an earlier report of the same leak, placed beyond reach
    _corrected_report(sim, reports, found, "leak-03")


def test_a_leak_whose_water_the_tracking_lends_to_another_is_found_only_while_kept_open():
    """L-Town, the study scenario #506 (tuning; demands 1.3 times the model's): a 9.7 m³/h
    abrupt leak at p350 raises its alarm 10 h after its onset, placed 342 m away. The tracking
    then gives most of its water to an older leak with a like signature. Closed once its flow
    stays below 35 % of its peak for a day (the former default), it is closed the morning after
    its alarm and never localized again; closed only below a fifth (the default), it stays open,
    and its relocalization four days after the report finds it."""
    sim, found, reports = _bench_case_scored("L-Town #506, demand×1.3", "repair_fraction", on=0.2, off=0.35)
    _found_only_with_the_setting(sim, found, "leak-05", "p350", "abrupt")
    first = _corrected_report(sim, reports, found, "leak-05")
    # with 35 % the same first report was closed within two days, while the leak ran on to the end
    old = reports[False].detections.set_index("start_time").loc[first["start_time"]]
    assert old["link_id"] == first["link_id"]
    closed = pd.Timestamp(old["repair_time"], tz="UTC")
    assert closed - first["t"] < pd.Timedelta(days=2)
    assert pd.to_datetime(sim.leaks.set_index("leak_id").loc["leak-05", "end"], utc=True) - closed > pd.Timedelta(days=20)


def test_a_track_placed_too_uncertainly_for_a_growth_report_is_localized_again_when_it_grows():
    """L-Town, the study scenario #504 (tuning; half of BattLeDIM's pressure sensors): a track
    reported at p240, less than 60 % likely to be within 300 m, stays open while an incipient
    leak grows to 6.7 m³/h at p43, and its tracked flow doubles. Too uncertain for a growth
    report, it is, with ``growth_look`` (the default), localized again when its flow has doubled:
    the corrected row, made at no scheduled look, finds the new leak; without, it is never found."""
    sim, found, reports = _bench_case_scored("L-Town #504, sparse", "growth_look")
    _found_only_with_the_setting(sim, found, "leak-02", "p43", "incipient")
    det, hit = _row_that_found(reports, found, "leak-02")
    track = det[(det["estimated_start"] == hit["estimated_start"]) & (det["t"] < hit["t"])]
    before = track.iloc[-1]
    assert before["link_id"] != hit["link_id"] and before["p_within_300m"] < DetectConfig().growth_p_min
    assert hit["leak_flow_m3h"] >= 2.0 * before["leak_flow_m3h"]
    # not one of the looks one, two, four and seven days after the leak's first report
    assert (hit["t"] - track["t"].iloc[0]) / pd.Timedelta(hours=1) not in DetectConfig().relocate_h


def test_a_track_whose_look_keeps_its_pipe_is_reported_again_there():
    """L-Town, the study scenario #505 (tuning; doubled noise): a 2.6 m³/h abrupt leak at p767
    is reported at p752 (73 m off), 52 % likely to be within 300 m: too uncertain for a growth
    report. An incipient leak at p730, 277 m from p752, grows to 12 m³/h and the track takes up
    its water. Each time its flow doubles the track is localized again, and the best pipe stays
    at p752. With ``growth_look_report`` (the default), once the data since the onset place it
    there with at least 60 %, that is reported as a growth report, which finds the new leak;
    without, a look that keeps the pipe writes nothing and the leak is never found."""
    sim, found, reports = _bench_case_scored("L-Town #505, noise×2", "growth_look_report")
    _found_only_with_the_setting(sim, found, "leak-03", "p730", "incipient")
    det, hit = _row_that_found(reports, found, "leak-03")
    first = det[(det["estimated_start"] == hit["estimated_start"]) & (det["t"] < hit["t"])].iloc[0]
    assert hit["link_id"] == first["link_id"] == "p752"
    assert first["p_within_300m"] < DetectConfig().growth_p_min <= hit["p_within_300m"]
    assert hit["leak_flow_m3h"] >= DetectConfig().growth_look_factor * first["leak_flow_m3h"]
    # the same track without the setting: never reported again at p752
    old = reports[False].detections
    assert list(old.loc[old["estimated_start"] == first["estimated_start"], "link_id"]) == ["p752"]
    # the look's report is a growth report: with none allowed (growth_max_reports 0) it is not written
    from tirtasu.leaks.bench import START, TRAIN_DAYS, inputs_of

    wn = load_model(sim.scenario.model)
    train_until = START + pd.Timedelta(days=TRAIN_DAYS)
    capped = detect_leaks(wn, inputs_of(sim), train_until=train_until, config=DetectConfig(growth_max_reports=0)).detections
    assert list(capped.loc[capped["estimated_start"] == first["estimated_start"], "link_id"]) == ["p752"]


def test_growth_report_due_by_hand():
    from tirtasu.leaks import DetectConfig
    from tirtasu.leaks.detect import growth_report_due

    cfg = DetectConfig(growth_alarm=2.0, growth_min_m3h=2.0, growth_p_min=0.6)
    # reported at 3 m³/h: 6 is twice that and 3 more; 5.9 is not twice
    assert growth_report_due(6.0, 3.0, 0.8, 0, cfg)
    assert not growth_report_due(5.9, 3.0, 0.8, 0, cfg)
    # reported at 1 m³/h: 2.9 is more than twice but only 1.9 more; 3 is 2 more
    assert not growth_report_due(2.9, 1.0, 0.8, 0, cfg)
    assert growth_report_due(3.0, 1.0, 0.8, 0, cfg)
    # placed with less than 60 %, or not placed at all (NaN): never
    assert not growth_report_due(20.0, 3.0, 0.59, 0, cfg)
    assert not growth_report_due(20.0, 3.0, float("nan"), 0, cfg)
    # at most growth_max_reports reports; without the option, never
    capped = DetectConfig(growth_alarm=2.0, growth_max_reports=1)
    assert growth_report_due(20.0, 3.0, 0.8, 0, capped) and not growth_report_due(20.0, 3.0, 0.8, 1, capped)
    assert not growth_report_due(20.0, 3.0, 0.8, 0, DetectConfig(growth_alarm=None))
    # by default: a factor of 1.5 (and 2 m³/h), each time again, however often already
    default = DetectConfig()
    assert growth_report_due(6.0, 4.0, 0.8, 0, default)
    # reported at 10 m³/h: 14.9 is 4.9 m³/h more but short of 1.5 times; 15 is not
    assert not growth_report_due(14.9, 10.0, 0.8, 0, default) and growth_report_due(15.0, 10.0, 0.8, 0, default)
    # reported at 3 m³/h: 4.5 is half as much again but only 1.5 m³/h more
    assert not growth_report_due(4.5, 3.0, 0.8, 0, default)
    assert growth_report_due(18.0, 12.0, 0.8, 3, default)


def test_growth_look_due_by_hand():
    from tirtasu.leaks import DetectConfig
    from tirtasu.leaks.detect import growth_look_due, growth_report_due

    cfg = DetectConfig(growth_look=True, growth_alarm=2.0, growth_min_m3h=2.0, growth_p_min=0.6)
    # placed with 55 % (or not placed): a look once the flow is twice the reference and 2 m³/h more
    assert growth_look_due(6.0, 3.0, 0.55, cfg) and growth_look_due(6.0, 3.0, float("nan"), cfg)
    assert not growth_look_due(5.9, 3.0, 0.55, cfg) and not growth_look_due(2.9, 1.0, 0.55, cfg)
    # placed surely enough for a growth report: no look; without the option or the growth alarm: never
    assert not growth_look_due(20.0, 3.0, 0.6, cfg)
    assert not growth_look_due(20.0, 3.0, 0.55, DetectConfig(growth_look=False))
    assert not growth_look_due(20.0, 3.0, 0.55, DetectConfig(growth_look=True, growth_alarm=None))
    # by default: on, when the flow doubles, with the growth report's least growth
    assert growth_look_due(6.0, 3.0, 0.55, DetectConfig()) and not growth_look_due(5.9, 3.0, 0.55, DetectConfig())
    # the look's factor is its own: growth reports at 1.5 times, looks still at twice
    apart = DetectConfig(growth_alarm=1.5, growth_look_factor=2.0)
    assert growth_report_due(6.0, 4.0, 0.8, 0, apart) and not growth_look_due(6.0, 4.0, 0.55, apart)
    assert growth_look_due(8.0, 4.0, 0.55, apart) and not growth_look_due(7.9, 4.0, 0.55, apart)


def test_known_change_estimate_by_hand():
    from tirtasu.leaks.detect import known_change_estimate

    # one known leak, whitened signature (3, 4) (‖k‖² = 25), change observed 2·k, prior sd 1:
    # posterior mean (1 + 25)⁻¹ · kᵀΔ = 50/26, shrunk from the least-squares 2 by the prior
    k = np.array([[3.0], [4.0]])
    assert known_change_estimate(k, np.array([6.0, 8.0]), np.array([1.0])) == pytest.approx([50.0 / 26.0])
    # a prior much wider than the evidence: least squares
    assert known_change_estimate(k, np.array([6.0, 8.0]), np.array([1e4])) == pytest.approx([2.0], rel=1e-6)
    # two leaks seen by separate sensors are estimated separately; a steady one (no change
    # along its signature) gets none
    K = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    c = known_change_estimate(K, np.array([4.0, 0.0, 5.0]), np.array([1.0, 3.0]))
    assert c == pytest.approx([8.0 / 5.0, 0.0])


def test_a_leak_among_four_known_ones_is_found_when_their_deviations_follow_their_change():
    """L-Town, the benchmark's tuning scenario #12: a 7.0 m³/h leak starts while four leaks
    found earlier run (one is repaired the next day). With each known leak allowed to deviate
    from its mean signature by its full allowance, their deviations together take up the new
    leak's change: never found. Sized by each leak's change in the window (steady ones have
    none), it is found."""
    sim, found, _ = _bench_case_scored("L-Town #12", "known_spread_window")
    new = sim.leaks.set_index("leak_id").loc["leak-04"]
    assert new["link_id"] == "p855" and new["kind"] == "abrupt"  # the scenario is the one described
    running = sim.leaks[(sim.leaks["start"] < new["start"]) & (sim.leaks["end"] > new["start"])]
    assert len(running) == 4
    assert found[True].loc["leak-04", "found"] and found[True].loc["leak-04", "distance_m"] <= 300.0
    assert not found[False].loc["leak-04", "found"]


def test_a_slowly_growing_leak_shows_against_the_training_period():
    """L-Town, the benchmark's tuning scenario #14 (half of BattLeDIM's pressure sensors): an
    incipient leak that grows to 2.8 m³/h over nine days changes no window against the days
    before it enough for an alarm; the last week's mean against the training period shows it.
    (The growth re-report, on by default, finds it too, at a known leak's pipe: turned off here.)"""
    # windows up to a week, as when this was found (the two-week window, a default since,
    # changes which alarms come first here)
    sim, found, reports = _bench_case_scored("L-Town #14, sparse", "training_windows_h", on=(168,), off=(), growth_alarm=None,
                                             windows_h=WEEK_WINDOWS)
    leak = sim.leaks.set_index("leak_id").loc["leak-01"]
    assert leak["link_id"] == "p590" and leak["kind"] == "incipient"  # the scenario is the one described
    assert found[True].loc["leak-01", "found"] and found[True].loc["leak-01", "distance_m"] <= 300.0
    assert not found[False].loc["leak-01", "found"]
    # the alarm came from the test against training: the hour that raised it says so (the
    # alarm's time is the end of that hour), and without the test no hour does
    hourly = reports[True].hourly
    alarm_hour = found[True].loc["leak-01", "detected_at"] - pd.Timedelta(hours=1)
    assert bool(hourly.loc[alarm_hour, "against_training"])
    assert not reports[False].hourly["against_training"].fillna(False).any()


def test_every_row_of_a_repaired_leak_carries_its_repair_time():
    """L-Town, the benchmark's tuning scenario #11: a leak reported twice (its place corrected,
    or its growth) and then repaired gets the repair time on both rows, not only on the
    latest, and that time is within a day of when the leak truly stopped."""
    from tirtasu.leaks.bench import CASES, START, TRAIN_DAYS, inputs_of, simulate_case

    sim = simulate_case(next(c for c in CASES if c.name == "L-Town #11"))
    wn = load_model(sim.scenario.model)
    train_until = START + pd.Timedelta(days=TRAIN_DAYS)
    det = detect_leaks(wn, inputs_of(sim), train_until=train_until).detections
    found = score(det[det["link_id"] != ""], sim.leaks, sim.leak_flows, wn, period_start=train_until).leaks
    truth = sim.leaks.set_index("leak_id")
    checked = 0
    for onset, rows in det.groupby("estimated_start"):
        if len(rows) < 2 or (rows["repair_time"] == "").all():
            continue
        assert rows["repair_time"].nunique() == 1 and rows["peak_flow_m3h"].nunique() == 1
        # the leak its first row found, and when it truly stopped
        first = pd.Timestamp(rows["start_time"].iloc[0], tz="UTC")
        hit = found[found["detected_at"] == first]
        if len(hit) == 1:
            end = pd.Timestamp(truth.loc[hit["leak_id"].iloc[0], "end"])
            end = end.tz_localize("UTC") if end.tzinfo is None else end
            assert abs(pd.Timestamp(rows["repair_time"].iloc[0], tz="UTC") - end) <= pd.Timedelta(days=1)
            checked += 1
    assert checked >= 1


def test_a_leak_beside_a_known_one_is_reported_again_when_its_tracked_flow_doubles():
    """L-Town, the benchmark's tuning scenario #217: a 3.4 m³/h leak is found at p645; days later
    an incipient leak grows to 9.3 m³/h at p666, 230 m away, and the tracking gives its water
    to the known leak (their signatures are alike). With ``growth_alarm`` the known leak is
    reported again when its tracked flow has doubled: that second report, at the same pipe,
    finds the new leak. (With the relocalizations of today the new leak is also found without
    it; the growth report is tested on its own, with the single relocalization, the single
    growth report and the closing below 35 % of the peak of its day: closed only below a fifth,
    as now, an earlier track placed wrongly, less than 60 % likely, stays open while both new
    leaks run, and with one look after two days neither is found.)"""
    sim, found, reports = _bench_case_scored("L-Town #217", "growth_alarm", on=2.0, off=None, windows_h=WEEK_WINDOWS,
                                             growth_max_reports=1, repair_fraction=0.35, **ONE_RELOCATION)
    _found_only_with_the_setting(sim, found, "leak-01", "p666", "incipient")
    # the report that found it: an earlier leak's pipe again, at twice the flow it had then
    det, hit = _row_that_found(reports, found, "leak-01")
    before = det[(det["link_id"] == hit["link_id"]) & (det["t"] < hit["t"])]
    assert len(before) >= 1
    assert hit["leak_flow_m3h"] >= 2.0 * before["leak_flow_m3h"].iloc[-1]
    assert hit["estimated_start"] == before["estimated_start"].iloc[-1]
    # every row of a leak carries its largest flow tracked, not only its latest (the repair
    # time likewise: no leak reported twice here is repaired; see the test on #11)
    assert (det.groupby(["link_id", "estimated_start"])["peak_flow_m3h"].nunique() == 1).all()
    assert (det["peak_flow_m3h"] >= det["leak_flow_m3h"]).all()
    # no second report without the option: each pipe and onset once (relocations aside)
    plain = reports[False].detections
    assert not plain.duplicated(["link_id", "estimated_start"]).any()
    # at most one report for growth per leak (growth_max_reports=1): each pipe and onset at most
    # twice; without that limit (the default), a leak whose flow doubled twice is reported a third time
    from tirtasu.leaks import DetectConfig
    from tirtasu.leaks.bench import START, TRAIN_DAYS, inputs_of

    assert det.groupby(["link_id", "estimated_start"]).size().max() <= 2
    wn = load_model(sim.scenario.model)
    unlimited = detect_leaks(wn, inputs_of(sim), train_until=START + pd.Timedelta(days=TRAIN_DAYS),
                             config=DetectConfig(growth_alarm=2.0, growth_max_reports=None, windows_h=WEEK_WINDOWS,
                                                 repair_fraction=0.35, **ONE_RELOCATION)).detections
    assert len(unlimited) > len(det)


def test_bench_totals_of_each_part_and_of_the_held_out_parts_per_network():
    from tirtasu.leaks.bench import part_totals

    def row(part, network, leaks, tp, fp, eur, perfect, delays):
        return {"part": part, "network": network, "leaks": leaks, "tp": tp, "fp": fp, "score_eur": eur,
                "perfect_eur": perfect, "abrupt_delays_h": delays, "median_distance_m": 100.0}

    rows = [
        row("tuning", "L-Town", 6, 5, 1, 700.0, 1000.0, [4.0]),
        row("held-out", "L-Town", 6, 3, 2, 300.0, 1000.0, [10.0]),
        row("held-out", "ky4", 6, 0, 4, -2000.0, 1000.0, []),
        row("held-out 2", "L-Town", 8, 8, 0, 900.0, 1000.0, [2.0, 30.0]),
        {**row("held-out 2", "ky4", 6, 3, 2, 500.0, 1000.0, [7.0]), "layout": "dense"},
    ]
    parts = part_totals(rows)
    assert list(parts) == [
        "tuning", "held-out", "held-out 2", "held-out, all parts, L-Town", "held-out, all parts, ky4", "held-out, all parts, ky4, dense",
    ]
    dense = parts["held-out, all parts, ky4, dense"]
    assert (dense["scenarios"], dense["tp"], dense["fraction"]) == (1, 3, pytest.approx(0.5))
    assert parts["held-out, all parts, ky4"]["tp"] == 0  # the few-sensor KY4 row alone
    ltown = parts["held-out, all parts, L-Town"]
    assert (ltown["scenarios"], ltown["leaks"], ltown["tp"]) == (2, 14, 11)
    assert ltown["fp_per_scenario"] == pytest.approx(1.0) and ltown["max_fp"] == 2
    assert ltown["fraction"] == pytest.approx(1200.0 / 2000.0)
    assert ltown["median_abrupt_delay_h"] == pytest.approx(10.0)  # of 10, 2, 30
    assert parts["held-out"]["fp_per_scenario"] == pytest.approx(3.0)
    # a single held-out part needs no total of its own
    assert list(part_totals(rows[:3])) == ["tuning", "held-out"]


def test_an_alarm_too_uncertain_to_name_a_pipe_gives_the_area_to_survey():
    """KY4, the benchmark's tuning scenario #24 (one pressure sensor per 7 km of main): with
    ``pipe_p_min`` 0.4 an alarm whose best pipe has less than 40 % of being within 300 m of the
    leak names no pipe but its candidates and search length; everything else about it (when,
    how much, the pipe it would have named) is as without the option, and of the alarms that
    named a pipe with less than 40 % here, none was within 300 m of a leak. While a leak is not
    placed, the two-week window is not tested (``long_window_h``): without that guard it would
    have had the strongest evidence at some of those hours."""
    from tirtasu.leaks import DetectConfig
    from tirtasu.leaks.bench import CASES, START, TRAIN_DAYS, inputs_of, simulate_case

    sim = simulate_case(next(c for c in CASES if c.name == "ky4 #24"))
    wn = load_model(sim.scenario.model)
    train_until = START + pd.Timedelta(days=TRAIN_DAYS)
    # the first four weeks after training hold three such alarms: enough, and half the time
    inputs = inputs_of(sim)
    until = train_until + pd.Timedelta(days=28)
    for kind in ("pressure", "flow", "level", "demand"):
        frame = getattr(inputs, kind)
        cut = until.tz_localize(frame.index.tz) if frame.index.tz is not None and until.tzinfo is None else until
        setattr(inputs, kind, frame[frame.index < cut])
    # (the alarms of large leaks not worth a crew at any pipe, which go out without a pipe
    # whatever pipe_p_min, kept waiting in both: this is pipe_p_min's test; so is the misfit
    # scaling left off, under which none of the month's zone alarms gets a pipe named later)
    plain, zoned = (
        detect_leaks(wn, inputs, train_until=train_until,
                     config=DetectConfig(pipe_p_min=p, long_window_h=w, unplaced_alarm=False, misfit_scale=False))
        for p, w in ((0.0, None), (0.4, 168))
    )
    plain_hourly, zoned_hourly = plain.hourly, zoned.hourly
    plain, zoned = plain.detections, zoned.detections
    assert (plain["link_id"] != "").all()
    zone = zoned[zoned["link_id"] == ""]
    assert len(zone) >= 1
    assert (zone["p_within_300m"] < 0.4).all() and (zone["node_id"] == "").all()
    assert (zone["candidates"] != "").all() and (zone["search_km"] > 0).all()
    # a pipe named later for the same leak (its onset), with at least max(p_min, 0.4), after
    # the zone alarm and within its week of daily tries
    named = zoned[(zoned["link_id"] != "") & zoned["estimated_start"].isin(zone["estimated_start"])]
    assert len(named) >= 1
    assert (named["p_within_300m"] >= 0.55).all()
    zone_time = pd.to_datetime(zone.set_index("estimated_start")["start_time"])
    delay = pd.to_datetime(named["start_time"]).to_numpy() - zone_time.loc[named["estimated_start"]].to_numpy()
    assert (delay >= pd.Timedelta(hours=24)).all() and (delay <= pd.Timedelta(days=7, hours=1)).all()
    # the first zone alarm is the alarm the plain run raised then, its would-be pipe first
    first = zone.iloc[0]
    same = plain[plain["start_time"] == first["start_time"]]
    assert len(same) == 1
    assert first["candidates"].split(";")[0] == same["link_id"].iloc[0]
    assert first["leak_flow_m3h"] == same["leak_flow_m3h"].iloc[0]
    assert first["estimated_start"] == same["estimated_start"].iloc[0]
    # the plain run's alarms named with less than 40 %: scored against the truth, none was
    # within 300 m of a leak (a leak found by one of them would show as found at its time)
    low = plain[plain["p_within_300m"] < 0.4]
    assert len(low) >= 2
    sc = score(low, sim.leaks, sim.leak_flows, wn, period_start=train_until)
    assert sc.tp == 0 and sc.fp == len(low)
    # from the first zone alarm to the row naming its pipe, no window longer than a week was
    # tested; without the guard, the two-week one had the strongest evidence at some of those hours
    t0, t1 = pd.Timestamp(first["start_time"]), pd.Timestamp(named["start_time"].iloc[0])

    def windows(hourly):
        index = hourly.index.tz_localize(None) if hourly.index.tz is not None else hourly.index
        return hourly["window_h"][(index >= t0) & (index < t1 - pd.Timedelta(hours=1))]

    assert windows(zoned_hourly).max() <= 168
    assert (windows(plain_hourly) == 336).any()
