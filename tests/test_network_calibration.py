"""Pipe roughness calibrated on the daily pressure swing (tirtasu.network.calibration).

The truth is an extended-period EPANET run (WNTR's EpanetSimulator, independent of the
steady states the calibration solves) on a copy of the model whose pipe roughness was changed
by known factors; the calibration sees only the nominal model and the hourly pressures, tank
levels and link states of that run.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np
import pytest
import wntr

from tirtasu.network.calibration import calibrate_roughness, diameter_groups

from conftest import NETWORKS

NET3 = NETWORKS / "asce-tf-wdst" / "Net3.inp"
KY4 = NETWORKS / "asce-tf-wdst" / "ky4.inp"


def _day_of(true: wntr.network.WaterNetworkModel, sensors: list[str], links: list[str]):
    """Hourly pressures at ``sensors``, tank levels and the states of ``links`` over one day."""
    run = copy.deepcopy(true)
    run.options.time.duration = 23 * 3600
    run.options.time.hydraulic_timestep = 3600
    run.options.time.report_timestep = 3600
    # a run's files of its own: the suite runs in parallel, and WNTR's default prefix is ./temp
    with tempfile.TemporaryDirectory(prefix="tirtasu-test-") as tmp:
        res = wntr.sim.EpanetSimulator(run).run_sim(file_prefix=str(Path(tmp) / "day"))
    pressure = res.node["pressure"][sensors]
    pressure.index = pressure.index / 3600.0
    hours = list(pressure.index)
    levels = {h: {t: float(res.node["head"].loc[h * 3600, t] - true.get_node(t).elevation) for t in true.tank_name_list} for h in hours}
    status = {h: {lk: bool(res.link["status"].loc[h * 3600, lk] > 0) for lk in links} for h in hours}
    return pressure, levels, status


@pytest.fixture(scope="module")
def net3():
    return wntr.network.WaterNetworkModel(str(NET3))


def _aged(wn, factors: dict) -> wntr.network.WaterNetworkModel:
    true = copy.deepcopy(wn)
    for label, pipes in diameter_groups(wn).items():
        for name in pipes:
            true.get_link(name).roughness *= factors[label]
    return true


def test_diameter_groups_split_at_the_boundaries(net3):
    """Net3's pipes are 203 mm and up: none below 150 mm, those under 300 mm in the middle
    class, the rest (305 mm and up) in the top one; every pipe in exactly one class."""
    groups = diameter_groups(net3)
    assert list(groups) == ["150–300 mm", "D ≥ 300 mm"]
    diam = {name: p.diameter * 1000 for name, p in net3.pipes()}
    assert sorted(groups["150–300 mm"]) == sorted(n for n, d in diam.items() if d < 300)
    assert sorted(groups["150–300 mm"] + groups["D ≥ 300 mm"]) == sorted(diam)


def test_roughness_factors_are_recovered_from_the_daily_swing(net3):
    """Net3 with the C of its 150–300 mm pipes × 0.7 and of its large mains × 1.3: the fit on
    16 sensors' hourly pressures gives both factors back within 2 %, and the swing misfit drops
    to (near) nothing."""
    truth = {"150–300 mm": 0.7, "D ≥ 300 mm": 1.3}
    sensors = net3.junction_name_list[::6]
    # pump 10 runs on a clock, pump 335 and pipe 330 on tank 1's level: their states are given
    pressure, levels, status = _day_of(_aged(net3, truth), sensors, ["10", "335", "330"])
    cal = calibrate_roughness(net3, pressure, tank_levels=levels, link_status=status)
    for label, factor in truth.items():
        assert cal.multipliers[label] == pytest.approx(factor, rel=0.02)
    assert cal.rms_before_m > 0.1
    assert cal.rms_after_m < 0.1 * cal.rms_before_m
    assert cal.headloss == "H-W" and len(cal.sensors) == len(sensors) and len(cal.hours) == 24
    calibrated = cal.apply(net3)
    pipe = cal.groups["150–300 mm"][0]
    assert calibrated.get_link(pipe).roughness == pytest.approx(net3.get_link(pipe).roughness * cal.multipliers["150–300 mm"])
    assert net3.get_link(pipe).roughness == wntr.network.WaterNetworkModel(str(NET3)).get_link(pipe).roughness  # untouched
    assert "Hazen-Williams C" in cal.describe() and "150–300 mm ×0.70" in cal.describe()


def test_a_group_the_sensors_cannot_see_keeps_the_models_roughness(net3):
    """Pipe 330 held closed all day carries no water: nothing in the pressures depends on its
    roughness, and its prior keeps it at the model's (×1.00) while the others are fitted."""
    closed = copy.deepcopy(net3)
    closed.get_link("330").initial_status = wntr.network.LinkStatus.Closed
    closed.remove_control("control 5")  # the rules that would open it again
    closed.remove_control("control 6")
    pressure, levels, status = _day_of(_aged(closed, {"150–300 mm": 0.8, "D ≥ 300 mm": 1.0}), net3.junction_name_list[::6], ["10", "335"])
    for h in status:
        status[h]["330"] = False
    groups = {k: [p for p in v if p != "330"] for k, v in diameter_groups(net3).items()}
    groups["closed"] = ["330"]
    cal = calibrate_roughness(net3, pressure, tank_levels=levels, link_status=status, groups=groups)
    assert cal.multipliers["closed"] == pytest.approx(1.0, abs=1e-6)
    assert cal.multipliers["150–300 mm"] == pytest.approx(0.8, rel=0.03)


def test_a_full_tank_is_held_full_so_the_true_model_reproduces_its_own_swing():
    """KY4's tanks T-1 and T-2 are full around noon (the engine stops filling them). Given the
    levels the run had, the steady states of the true model itself reproduce its swing to a
    millimetre, and the calibration leaves it as it is."""
    ky4 = wntr.network.WaterNetworkModel(str(KY4))
    sensors = ky4.junction_name_list[::40]
    pressure, levels, status = _day_of(ky4, sensors, ky4.pump_name_list)
    assert any(levels[h]["T-1"] >= ky4.get_node("T-1").max_level - 0.01 for h in levels)
    cal = calibrate_roughness(ky4, pressure, tank_levels=levels, link_status=status)
    assert cal.rms_before_m < 1e-3
    assert all(m == pytest.approx(1.0, abs=0.01) for m in cal.multipliers.values())


def test_bad_profiles_are_refused_with_the_reason(net3):
    pressure, levels, status = _day_of(net3, net3.junction_name_list[:4], ["10", "335", "330"])
    with pytest.raises(ValueError, match="3 or more hours"):
        calibrate_roughness(net3, pressure.iloc[:2])
    gappy = pressure.copy()
    gappy.iloc[5, :] = np.nan
    with pytest.raises(ValueError, match="no pressure sensor has a reading at every hour"):
        calibrate_roughness(net3, gappy)
    with pytest.raises(ValueError, match="bounds must be 0 < low < high"):
        calibrate_roughness(net3, pressure, bounds=(2.0, 1.0))
    with pytest.raises(ValueError, match="not in the model: nowhere"):
        calibrate_roughness(net3, pressure.assign(nowhere=1.0))
    one_gap = pressure.copy()
    one_gap.iloc[3, 0] = np.nan  # that sensor is left out, the others are used
    cal = calibrate_roughness(net3, one_gap, tank_levels=levels, link_status=status)
    assert cal.sensors == list(pressure.columns[1:])


def test_an_hour_without_a_solution_keeps_the_models_demands(net3, monkeypatch, tmp_path):
    """Matching an hour's demand to the water measured solves a steady state without demand;
    where that has no hydraulic solution (EPANET error 110, seen on an L-Town scenario) the
    hour keeps the model's demands, the fit goes on, and the report says which hour."""
    from tirtasu.network import engine

    truth = {"150–300 mm": 0.7, "D ≥ 300 mm": 1.3}
    sensors = net3.junction_name_list[::6]
    aged = _aged(net3, truth)
    pressure, levels, status = _day_of(aged, sensors, ["10", "335", "330"])
    # what the meters would say: the truth's total demand at each hour [m³/h]
    run = copy.deepcopy(aged)
    run.options.time.duration = 23 * 3600
    run.options.time.hydraulic_timestep = run.options.time.report_timestep = 3600
    demand = wntr.sim.EpanetSimulator(run).run_sim(file_prefix=str(tmp_path / "aged")).node["demand"][net3.junction_name_list].sum(axis=1) * 3600.0
    measured = {t / 3600.0: float(q) for t, q in demand.items()}
    real = engine.Engine.junction_outflow
    probes = []

    def no_solution_without_demand_at_the_fourth_hour(self, junction_idx, multiplier):
        if multiplier == 0.0:
            probes.append(multiplier)
            if len(probes) == 4:
                raise engine.EngineError("EPANET error 110 while solving a steady state")
        return real(self, junction_idx, multiplier)

    monkeypatch.setattr(engine.Engine, "junction_outflow", no_solution_without_demand_at_the_fourth_hour)
    cal = calibrate_roughness(net3, pressure, total_demand_m3h=measured, tank_levels=levels, link_status=status)
    assert len(probes) == 24  # every hour's demand was scaled to what was measured, or tried
    assert cal.demand_unscaled_hours == (3.0,)
    assert "model's own demands kept at 3 h" in cal.describe()
    for label, factor in truth.items():  # the model's demands are the truth's here
        assert cal.multipliers[label] == pytest.approx(factor, rel=0.02)


def test_a_model_without_a_solution_is_refused_with_the_reason(net3, monkeypatch):
    from tirtasu.network import engine

    sensors = net3.junction_name_list[::6]
    pressure, levels, status = _day_of(net3, sensors, ["10", "335", "330"])

    def no_solution(self):
        raise engine.EngineError("EPANET error 110 while solving a steady state")

    monkeypatch.setattr(engine.Engine, "steady_state", no_solution)
    with pytest.raises(ValueError, match=r"no hydraulic solution.*\(EPANET error 110"):
        calibrate_roughness(net3, pressure, tank_levels=levels, link_status=status)
