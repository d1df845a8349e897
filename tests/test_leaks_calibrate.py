"""The model calibrated against the leak-free period before leaks are placed
(tirtasu.leaks.calibrate, ``tirtasu leaks detect --calibrated-model``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import wntr
from typer.testing import CliRunner

from tirtasu.cli import app
from tirtasu.leaks.bench import inputs_of
from tirtasu.leaks.calibrate import calibrate_against_training, training_profile
from tirtasu.leaks.residuals import ResidualModel
from tirtasu.network import load_model
from tirtasu.simulator import Scenario, layout_from_model_tags, simulate, write_wide_csv


@pytest.fixture(scope="module")
def ltown_aged(ltown_path):
    """Four leak-free days of L-Town (BattLeDIM's sensors) whose pipes have a Hazen-Williams C
    0.7 times the model's, on top of the simulator's 5 % scatter per pipe."""
    layout = layout_from_model_tags(ltown_path)
    return simulate(Scenario(model=str(ltown_path), start="2025-01-01", days=4, seed=5, layout=layout, roughness_scale=0.7))


def _calibrate(sim, ltown_path):
    wn = load_model(ltown_path)
    data = inputs_of(sim).regular()
    train = np.ones(len(data.index), dtype=bool)
    end = data.index[-1] + pd.Timedelta(hours=1)
    rm = ResidualModel(balance_each_meter=False).fit(data, train, wn)
    return calibrate_against_training(wn, rm, data, train, end)


def test_aged_pipes_are_read_from_leak_free_telemetry(ltown_aged, ltown_path):
    cal, note = _calibrate(ltown_aged, ltown_path)
    assert cal is not None, note
    for label, factor in cal.multipliers.items():
        assert factor == pytest.approx(0.7, abs=0.07), (label, note)
    assert cal.rms_after_m < 0.5 * cal.rms_before_m
    assert note.startswith("pipe Hazen-Williams C calibrated") and "33 sensors" in note


def test_a_model_with_the_right_roughness_is_left_as_it_is(ltown_path):
    """Only the 5 % scatter per pipe: no factor explains much of the swing, none is applied."""
    layout = layout_from_model_tags(ltown_path)
    sim = simulate(Scenario(model=str(ltown_path), start="2025-01-01", days=4, seed=5, layout=layout))
    cal, note = _calibrate(sim, ltown_path)
    assert cal is None
    assert note.startswith("pipe roughness left as in the model")


def test_too_few_pressure_sensors_are_not_calibrated_on(ltown_aged, ltown_path):
    wn = load_model(ltown_path)
    data = inputs_of(ltown_aged).regular()
    data.pressure = data.pressure.iloc[:, :2]
    train = np.ones(len(data.index), dtype=bool)
    rm = ResidualModel(balance_each_meter=False).fit(data, train, wn)
    cal, note = calibrate_against_training(wn, rm, data, train, data.index[-1])
    assert cal is None and "fewer than 3 usable pressure sensors" in note


def test_training_profile_is_the_median_per_hour_of_the_models_clock():
    """Three days of 15-min readings whose value is the UTC hour (+ day × 0.1, and one wild
    value): the median per hour is the hour + 0.1 (day 1 of 0, 1, 2); on the clock of a UTC+7
    model, the readings of 00:00 UTC are its 07:00. An hour with under 3 days of readings is
    left out."""
    idx = pd.date_range("2025-01-01", periods=3 * 96, freq="15min", tz="UTC")
    values = idx.hour + 0.1 * (idx.day - 1)
    frame = pd.DataFrame({"a": values.astype(float)}, index=idx)
    frame.iloc[5, 0] = 999.0  # a spike does not move a median
    frame.loc[(frame.index.hour == 4) & (frame.index.day == 3), "a"] = np.nan
    train = np.ones(len(idx), dtype=bool)
    utc = training_profile(frame, train)
    assert list(utc.index) == [float(h) for h in range(24)]
    assert utc.loc[0.0, "a"] == pytest.approx(0.1)
    assert utc.loc[13.0, "a"] == pytest.approx(13.1)
    assert np.isnan(utc.loc[4.0, "a"])
    local = training_profile(frame, train, tz="UTC+7")
    assert local.loc[7.0, "a"] == pytest.approx(0.1)
    assert local.loc[6.0, "a"] == pytest.approx(23.1)


def test_cli_writes_the_calibrated_model_in_the_models_units(tmp_path, ltown_path):
    """``--calibrated-model``: the pipes' C in the file written are the model's × the factor of
    their diameter class; with ``--no-calibrate-roughness`` none is written."""
    layout = layout_from_model_tags(ltown_path)
    sim = simulate(Scenario(model=str(ltown_path), start="2025-01-01", days=4, seed=6, layout=layout, roughness_scale=0.7))
    files = {}
    for kind in ("pressure", "flow", "level"):
        files[kind] = tmp_path / f"{kind}.csv"
        write_wide_csv(sim.readings[kind], files[kind])
    args = [
        "leaks", "detect", "--model", str(ltown_path), "--pressures", str(files["pressure"]), "--flows", str(files["flow"]),
        "--levels", str(files["level"]), "--train-until", "2025-01-04 00:00", "--out", str(tmp_path / "leaks.csv"),
    ]
    out = tmp_path / "calibrated.inp"
    result = CliRunner().invoke(app, [*args, "--calibrated-model", str(out)])
    assert result.exit_code == 0, result.output
    assert "calibrated model written" in result.output
    model, calibrated = wntr.network.WaterNetworkModel(str(ltown_path)), wntr.network.WaterNetworkModel(str(out))
    assert calibrated.options.hydraulic.inpfile_units == model.options.hydraulic.inpfile_units
    ratios = np.array([calibrated.get_link(n).roughness / p.roughness for n, p in model.pipes()])
    assert 0.6 < ratios.min() and ratios.max() < 0.8  # three days of training: within 15 % of the truth
    assert len(np.unique(ratios.round(4))) == 2  # one factor per diameter class
    result = CliRunner().invoke(app, [*args, "--no-calibrate-roughness", "--calibrated-model", str(tmp_path / "none.inp")])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "none.inp").exists() and "not written" in result.output
