"""The field-data simulator: physics (mass balance), units, leaks, faults, reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tirtasu.cli import app
from tirtasu.network import dmas_from_boundaries, load_model, node_demands_m3h, run_hydraulics
from tirtasu.simulator import Leak, Scenario, SensorFault, SensorLayout, layout_from_model_tags, simulate

QUIET = dict(
    roughness_cv=0.0,
    demand_bias_cv=0.0,
    demand_noise_common=0.0,
    demand_noise_group=0.0,
    noise_sd={},
    resolution={},
)


@pytest.fixture(scope="module")
def ltown_dma3(ltown_path):
    wn = load_model(ltown_path)
    dmas = dmas_from_boundaries(wn, ["p227", "p235", "PUMP_1", "PRV-3"])
    nodes = set(dmas.nodes.loc[dmas.nodes.dma == "DMA-3", "node_id"])
    pipes = sorted(n for n, p in wn.pipes() if p.start_node_name in nodes and p.end_node_name in nodes)
    base = node_demands_m3h(wn)["base_m3h"]
    demand_nodes = sorted(n for n in nodes if n in base.index and base[n] > 0)
    return wn, nodes, pipes, demand_nodes


def test_leak_shows_up_in_the_dma_inflow_meter(ltown_path, ltown_dma3):
    """DMA-3 has no storage: inflow = consumption + leak at every step (mass balance)."""
    wn, nodes, pipes, demand_nodes = ltown_dma3
    leak = Leak(pipes[len(pipes) // 2], "2025-03-01 06:00", "2025-03-03 00:00", peak_flow_m3h=3.0, position=0.3)
    sc = Scenario(
        model=str(ltown_path),
        start="2025-03-01",
        days=2,
        seed=3,
        layout=SensorLayout(flow=["PRV-3"], demand=demand_nodes),
        leaks=[leak],
        **{**QUIET, "roughness_cv": 0.05, "demand_bias_cv": 0.05, "demand_noise_group": 0.05},
    )
    sim = simulate(sc)
    inflow = sim.readings["flow"]["PRV-3"]  # m³/h into DMA-3 (PRV-3 points into it)
    consumption = sim.readings["demand"].sum(axis=1) / 1000.0  # L/h → m³/h
    leak_flow = sim.leak_flows[leak.leak_id]
    dt_h = 5 / 60
    leak_volume = leak_flow.sum() * dt_h
    assert leak_volume > 50  # the leak ran for 42 h at about 3 m³/h
    assert (inflow - consumption).sum() * dt_h == pytest.approx(leak_volume, rel=0.01)
    # step by step, within EPANET's convergence (ACCURACY 0.001 of ~300 m³/h through the system)
    np.testing.assert_allclose(inflow - consumption, leak_flow, atol=0.1)
    assert sim.leaks.volume_m3.iloc[0] == pytest.approx(leak_volume)


def test_system_mass_balance_with_tank(ltown_path):
    """Reservoir inflow − storage change − consumption = leak outflow over the whole network."""
    layout = layout_from_model_tags(ltown_path)
    leaks = [
        Leak("p257", "2025-03-01 05:00", "2025-03-04 00:00", 6.0),
        Leak("p600", "2025-03-01 00:00", "2025-03-05 00:00", 4.0, kind="incipient", peak="2025-03-02 12:00"),
    ]
    sim = simulate(Scenario(model=str(ltown_path), start="2025-03-01", days=3, seed=1, layout=layout, leaks=leaks, **QUIET))
    dt_h = 5 / 60
    inflow = sim.readings["flow"][["p227", "p235"]].sum(axis=1)
    area = np.pi / 4 * 16.0**2  # T1: 16 m diameter
    level = sim.readings["level"]["T1"]
    storage = (level.iloc[-1] - level.iloc[0]) * area
    consumption = sim.consumption["total"]
    leak_volume = sim.leak_flows.sum(axis=1)
    # sum over steps 0..n-2: each step's flow holds until the next sample
    balance = ((inflow - consumption - leak_volume).iloc[:-1].sum()) * dt_h - storage
    assert abs(balance) <= 0.01 * leak_volume.iloc[:-1].sum() * dt_h


def test_model_in_us_units_reproduces_epanet_in_our_units(net1_path):
    """Without model error or noise, the simulator gives what EPANET gives for the model."""
    wn = load_model(net1_path)
    layout = SensorLayout(pressure=["11", "22", "32"], flow=["9", "10"], level=["2"], demand=["11", "23"])
    sim = simulate(Scenario(model=str(net1_path), start="2025-01-01", days=1, layout=layout, **QUIET))
    wn.options.time.hydraulic_timestep = 300  # tank levels integrate at the simulator's step
    ref = run_hydraulics(wn, duration_h=24, start="2025-01-01")
    # Net1 reports every hour and its pattern steps every 2 h; compare on the hour
    hours = ref.pressure.index[ref.pressure.index < sim.times[-1]]
    got = sim.readings["pressure"].loc[hours]
    np.testing.assert_allclose(got.to_numpy(), ref.pressure.loc[hours, ["11", "22", "32"]].to_numpy(), atol=0.02)
    np.testing.assert_allclose(sim.readings["flow"].loc[hours].to_numpy(), ref.flow.loc[hours, ["9", "10"]].to_numpy(), rtol=1e-3, atol=0.05)
    np.testing.assert_allclose(sim.readings["demand"].loc[hours].to_numpy() / 1000, ref.demand.loc[hours, ["11", "23"]].to_numpy(), rtol=1e-6)
    # 150 GPM at node 11 × pattern multiplier 1.0 at 00:00, in L/h
    assert sim.readings["demand"]["11"].iloc[0] == pytest.approx(150 * 3.785411784 * 60, rel=1e-6)


def test_incipient_leak_grows_and_is_repaired(ltown_path):
    leak = Leak("p600", "2025-03-01 06:00", "2025-03-02 18:00", 5.0, kind="incipient", peak="2025-03-02 06:00")
    sim = simulate(Scenario(model=str(ltown_path), start="2025-03-01", days=2, layout=SensorLayout(flow=["p227"]), leaks=[leak], **QUIET))
    q = sim.leak_flows[leak.leak_id]
    assert (q[:"2025-03-01 05:55"] == 0).all() and (q["2025-03-02 18:05":] == 0).all()
    # half-way up the ramp the leak is about half its size (pressure varies by a few %)
    assert q["2025-03-01 18:00"] == pytest.approx(2.5, rel=0.15)
    assert q["2025-03-02 06:00":"2025-03-02 17:55"].mean() == pytest.approx(5.0, rel=0.15)


def test_sensor_faults_and_noise(ltown_path):
    layout = SensorLayout(pressure=["n54", "n105", "n114"], flow=["p227"])
    faults = [
        SensorFault("P_n54", "stuck", "2025-03-01 06:00", "2025-03-01 12:00"),
        SensorFault("P_n105", "gap", "2025-03-01 08:00", "2025-03-01 09:00"),
        SensorFault("P_n114", "drift", "2025-03-01 12:00", magnitude=1.0),
    ]
    sc = Scenario(model=str(ltown_path), start="2025-03-01", days=1, layout=layout, faults=faults, seed=4)
    sim = simulate(sc)
    p, truth = sim.readings["pressure"], sim.truth["pressure"]
    stuck = p.loc["2025-03-01 06:00":"2025-03-01 11:55", "n54"]
    assert stuck.nunique() == 1
    assert p.loc["2025-03-01 08:00":"2025-03-01 08:55", "n105"].isna().all() and p["n105"].isna().sum() == 12
    error = (p["n114"] - truth["n114"])["2025-03-01 23:55"]
    assert error == pytest.approx(1.0 * (11 + 55 / 60) / 24, abs=0.25)  # 1 m/day for ~12 h, plus noise
    noise = (p["n114"] - truth["n114"])[:"2025-03-01 11:55"]
    assert noise.std() == pytest.approx(0.05, rel=0.3)  # default pressure noise sd 0.05 m
    assert np.allclose(p["n114"].dropna() * 100, np.round(p["n114"].dropna() * 100))  # 0.01 m resolution


def test_same_seed_same_data(ltown_path, tmp_path):
    layout = SensorLayout(pressure=["n54", "n105"], flow=["p227"])
    kw = dict(model=str(ltown_path), start="2025-03-01", days=0.5, layout=layout, leaks=[Leak("p257", "2025-03-01 02:00", "2025-03-02", 5.0)])
    simulate(Scenario(seed=7, **kw), tmp_path / "a")
    simulate(Scenario(seed=7, **kw), tmp_path / "b")
    simulate(Scenario(seed=8, **kw), tmp_path / "c")
    a, b, c = (pd.read_csv(tmp_path / d / "pressures.csv") for d in "abc")
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_bad_scenarios_are_refused(ltown_path):
    with pytest.raises(KeyError, match="not a pipe"):
        simulate(Scenario(model=str(ltown_path), days=0.1, leaks=[Leak("PUMP_1", "2025-01-01", "2025-01-02", 1.0)]))
    with pytest.raises(KeyError, match="not in the model: nX"):
        simulate(Scenario(model=str(ltown_path), days=0.1, layout=SensorLayout(pressure=["nX"])))
    with pytest.raises(ValueError, match="not after start"):
        Leak("p1", "2025-01-02", "2025-01-01", 1.0)
    with pytest.raises(ValueError, match="peaks"):
        Leak("p1", "2025-01-01", "2025-01-02", 1.0, kind="incipient")
    with pytest.raises(ValueError, match="already has a leak"):
        simulate(Scenario(model=str(ltown_path), days=0.1, leaks=[Leak("p1", "2025-01-01", "2025-01-02", 1.0), Leak("p1", "2025-01-01", "2025-01-02", 2.0, leak_id="b")]))


def test_simulate_cli_writes_the_export_and_the_truth(ltown_path, tmp_path):
    (tmp_path / "leaks.csv").write_text("link_id,start,end,peak_flow_m3h,kind,peak\np257,2025-01-01 03:00,2025-01-03,4,abrupt,\np600,2025-01-01 00:00,2025-01-03,3,incipient,2025-01-01 12:00\n")
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["simulate", str(ltown_path), "-o", str(out), "--days", "1", "--leaks-file", str(tmp_path / "leaks.csv"), "--faults", "1"])
    assert r.exit_code == 0, r.output
    for name in ("pressures", "flows", "levels", "demands", "sensors", "leaks", "leak_flows"):
        assert (out / f"{name}.csv").is_file()
    assert (out / "model.inp").read_text() == ltown_path.read_text()
    pressures = pd.read_csv(out / "pressures.csv")
    assert pressures.columns[0] == "timestamp" and pressures.shape == (288, 34)
    truth = pd.read_csv(out / "leaks.csv")
    assert list(truth.link_id) == ["p257", "p600"]
    # the scenario file reproduces the run
    r = CliRunner().invoke(app, ["simulate", str(ltown_path), "-o", str(tmp_path / "again"), "--scenario", str(out / "scenario.json")])
    assert r.exit_code == 0, r.output
    pd.testing.assert_frame_equal(pressures, pd.read_csv(tmp_path / "again" / "pressures.csv"))
    (tmp_path / "bad.csv").write_text("link_id,start,end,peak_flow_m3h\np257,2025-01-02,2025-01-01,4\n")
    r = CliRunner().invoke(app, ["simulate", str(ltown_path), "-o", str(out), "--days", "1", "--leaks-file", str(tmp_path / "bad.csv")])
    assert r.exit_code == 1 and "bad.csv:2" in r.output


def test_a_model_that_stops_when_unbalanced_still_runs_to_the_end():
    """Richmond (LPS) asks EPANET to stop at an unconverged step; the truth must run on."""
    from tests.conftest import NETWORKS

    path = NETWORKS / "exeter-benchmarks" / "Richmond_standard.inp"
    wn = load_model(path)
    layout = SensorLayout(pressure=wn.junction_name_list[:5], flow=[wn.pipe_name_list[0]])
    sim = simulate(Scenario(model=str(path), days=2, layout=layout))
    assert sim.readings["pressure"].notna().all().all() and len(sim.times) == 576


def test_demand_scale_makes_the_true_demands_a_multiple_of_the_model(net1_path):
    """An outdated model: with ``demand_scale`` 1.3 every smart meter reads 1.3 times what the
    model's demand gives (150 GPM × 1.3 at node 11 at 00:00, in L/h), and so does the total."""
    layout = SensorLayout(demand=["11", "23"])
    plain = simulate(Scenario(model=str(net1_path), start="2025-01-01", days=0.5, layout=layout, **QUIET))
    grown = simulate(Scenario(model=str(net1_path), start="2025-01-01", days=0.5, layout=layout, demand_scale=1.3, **QUIET))
    assert grown.readings["demand"]["11"].iloc[0] == pytest.approx(1.3 * 150 * 3.785411784 * 60, rel=1e-6)
    np.testing.assert_allclose(grown.consumption["total"].to_numpy(), 1.3 * plain.consumption["total"].to_numpy(), rtol=1e-6)


ONE_PIPE_INP = """[TITLE]
one pipe from a reservoir
[JUNCTIONS]
J1  0  36
[RESERVOIRS]
R1  50
[PIPES]
P1  R1  J1  1000  100  100  0  Open
[OPTIONS]
Units CMH
Headloss H-W
[TIMES]
Duration 1:00
Hydraulic Timestep 0:05
[END]
"""


def test_roughness_scale_multiplies_the_true_networks_hazen_williams_c(tmp_path):
    """Aged pipes: with ``roughness_scale`` 0.7 the one pipe's C is 70, and the pressure at its
    end is the reservoir head minus the Hazen-Williams head loss of 36 m³/h through 1 km of
    100 mm pipe with C = 70, by hand: 10.667 L Q^1.852 / (C^1.852 D^4.871)."""
    inp = tmp_path / "one_pipe.inp"
    inp.write_text(ONE_PIPE_INP)
    layout = SensorLayout(pressure=["J1"])

    def pressure(c_factor: float) -> float:
        sim = simulate(Scenario(model=str(inp), start="2025-01-01", days=1 / 24, layout=layout, roughness_scale=c_factor, **QUIET))
        return float(sim.readings["pressure"]["J1"].iloc[0])

    q = 36.0 / 3600.0  # m³/s
    for c in (100.0, 70.0):
        headloss = 10.667 * 1000.0 * q**1.852 / (c**1.852 * 0.1**4.871)
        assert pressure(c / 100.0) == pytest.approx(50.0 - headloss, abs=0.02)


def test_sensors_are_spread_by_the_shorter_of_two_parallel_pipes():
    """A and B are joined by a 10 m pipe and, listed after it, a parallel 1000 m one; A–C is
    600 m. Along the network B is 10 m from A, so from A the farthest junction is C (600 m);
    from B, C (610 m); from C, B (610 m against A's 600). Had the later, longer pipe counted,
    B would be 1000 m from A and come second after it."""
    import wntr

    from tirtasu.simulator import spread_pressure_sensors

    wn = wntr.network.WaterNetworkModel()
    wn.add_reservoir("R", base_head=50.0)
    for j in ("A", "B", "C"):
        wn.add_junction(j, base_demand=0.001, elevation=0.0)
    wn.add_pipe("R-A", "R", "A", length=5.0, diameter=0.3, roughness=100)
    wn.add_pipe("A-B", "A", "B", length=10.0, diameter=0.3, roughness=100)
    wn.add_pipe("A-C", "A", "C", length=600.0, diameter=0.3, roughness=100)
    wn.add_pipe("A-B-long", "A", "B", length=1000.0, diameter=0.3, roughness=100)
    farthest = {"A": "C", "B": "C", "C": "B"}
    firsts = set()
    for seed in range(12):
        first, second = spread_pressure_sensors(wn, 2, np.random.default_rng(seed))
        firsts.add(first)
        assert second == farthest[first]
    assert "A" in firsts  # the start that tells the two apart was tried
