"""Pressure logger placement for leak localization (tirtasu.leaks.placement)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import wntr
from typer.testing import CliRunner

from tirtasu.cli import app
from tirtasu.leaks.data import InputError
from tirtasu.leaks.placement import _Scorer, estimate_logger_noise, place_pressure_sensors, residual_logger_noise


def star_network() -> wntr.network.WaterNetworkModel:
    """A reservoir feeding a hub J0 with three dead-end branches A, B, C of four 400 m pipes."""
    wn = wntr.network.WaterNetworkModel()
    wn.add_reservoir("R", base_head=60.0)
    wn.add_junction("J0", base_demand=0.0005, elevation=10.0)
    wn.add_pipe("T", "R", "J0", length=200.0, diameter=0.3, roughness=100)
    for b in "ABC":
        prev = "J0"
        for k in range(1, 5):
            j = f"{b}{k}"
            wn.add_junction(j, base_demand=0.0005, elevation=10.0)
            wn.add_pipe(f"P{b}{k}", prev, j, length=400.0, diameter=0.15, roughness=100)
            prev = j
    return wn


def test_confusability_by_hand():
    # three leak places, three sensors; centred signatures (minus their mean over the sensors):
    # place 0 → (1, 0, -1)·c, place 1 → (2, 0, -2)·c (parallel: same direction, other size),
    # place 2 → (1, -2, 1)·c (orthogonal to both)
    S = np.array([[3.0, 2.0, 1.0], [6.0, 4.0, 2.0], [2.0, -1.0, 2.0]])
    far = np.array([[False, True, True], [True, False, True], [True, True, False]])
    w = np.array([100.0, 200.0, 300.0])
    sc = _Scorer(S, far, w, q=1.0, sigma=0.01, eps=0.15, chi=9.0, seen=40.0)
    for k in range(3):
        sc.add(k)
    amb, localizable, detectable = sc.evaluate(sc.gram())
    # 0 and 1 are confusable (sin θ = 0), each with the other's length; 2 with neither
    assert detectable == 1.0
    assert localizable == pytest.approx(300.0 / 600.0)
    # mean over the mains (600 m) of the far length each place is confusable with
    assert amb == pytest.approx((100.0 * 200.0 + 200.0 * 100.0) / 600.0)
    # a leak too small to be seen (q²‖g‖²/σ² < 40) could be anywhere: confusable with all far places
    weak = _Scorer(S, far, w, q=1e-4, sigma=0.01, eps=0.15, chi=9.0, seen=40.0)
    for k in range(3):
        weak.add(k)
    amb, localizable, detectable = weak.evaluate(weak.gram())
    assert detectable == 0.0 and localizable == 0.0
    assert amb == pytest.approx((100.0 * 500.0 + 200.0 * 400.0 + 300.0 * 300.0) / 600.0)


def test_a_logger_goes_to_the_branch_without_one():
    wn = star_network()
    # loggers at the ends of branches A and C and at the hub: a leak anywhere on B moves all
    # three alike (the dead ends follow the hub), so it cannot be told from noise
    existing = ["A4", "C4", "J0"]
    r = place_pressure_sensors(wn, 1, existing=existing, leak_m3h=2.0)
    assert r.added[0] in {"B1", "B2", "B3", "B4"}
    before, after = r.steps.iloc[0], r.steps.iloc[1]
    assert after["detectable_share"] > before["detectable_share"]
    assert after["ambiguity_km"] < before["ambiguity_km"]
    # B (1.6 km) is a quarter of the mains beside the trunk: before, its leaks were not seen
    total = 200.0 + 12 * 400.0
    assert before["detectable_share"] <= 1 - 1600.0 / total + 1e-9
    assert list(r.steps["sensors"]) == [3, 4]


def test_loggers_are_distinct_and_new():
    wn = star_network()
    r = place_pressure_sensors(wn, 4, existing=["A4"], leak_m3h=2.0)
    assert len(r.added) == 4 and len(set(r.added)) == 4
    assert "A4" not in r.added
    assert set(r.added) <= set(wn.junction_name_list)


def test_logger_noise_from_readings():
    # 20 loggers, 60 days hourly: a large shared demand swing that each logger follows with its
    # own gain (near the source or far from it), a common level each day, and each logger's own
    # day level, independent, sd 4 mm, plus hourly noise of 1 cm
    rng = np.random.default_rng(3)
    idx = pd.date_range("2025-01-01", periods=60 * 24, freq="h", tz="UTC")
    hours = np.arange(len(idx))
    swing = np.sin(2 * np.pi * hours / 24) + np.repeat(rng.normal(0, 0.25, 60), 24)
    gain = np.linspace(0.5, 3.0, 20)
    own_day = np.repeat(rng.normal(0, 0.004, (60, 20)), 24, axis=0)
    hourly = rng.normal(0, 0.01, (len(idx), 20))
    df = pd.DataFrame(50 + swing[:, None] * gain[None, :] + own_day + hourly, index=idx, columns=[f"n{i}" for i in range(20)])
    # what is left of a day mean beyond the swing: the own level and the hourly noise averaged
    # over 24 hours, √(0.004² + 0.01²/24) = 4.52 mm (the common mean carries 1/20 of it)
    expected = np.sqrt(0.004**2 + 0.01**2 / 24)
    assert estimate_logger_noise(df) == pytest.approx(expected, rel=0.12)
    # removing only what all loggers share, without each one's gain, would leave the swing
    assert estimate_logger_noise(df) < 0.2 * (df.resample("1D").mean().sub(df.resample("1D").mean().mean(axis=1), axis=0).diff().std() / np.sqrt(2)).median()
    with pytest.raises(ValueError, match="at least 3"):
        estimate_logger_noise(df.iloc[:48])
    with pytest.raises(ValueError, match="two pressure sensors"):
        estimate_logger_noise(df[["n0"]])


def test_noise_after_the_leak_free_model_is_smaller():
    # Net3: pumps switch and tanks fill and empty, which moves every pressure in its own way;
    # explained by the flows and levels as leak detection explains them, less noise is left
    from conftest import NETWORKS
    from tirtasu.leaks.data import LeakInputs
    from tirtasu.network import load_model
    from tirtasu.simulator import Scenario, default_layout, simulate

    net3 = NETWORKS / "asce-tf-wdst" / "Net3.inp"
    wn = load_model(net3)
    layout = default_layout(wn, np.random.default_rng(0), n_pressure=10)
    sim = simulate(Scenario(model=str(net3), start="2025-01-01", days=8.0, seed=5, layout=layout, leaks=[], faults=[]))
    r = sim.readings
    inputs = LeakInputs(pressure=r["pressure"], flow=r["flow"], level=r["level"], demand=r["demand"])
    after = residual_logger_noise(inputs, wn)
    raw = estimate_logger_noise(r["pressure"])
    assert 0 < after < 0.8 * raw, (after, raw)
    bad = LeakInputs(pressure=r["pressure"], flow=r["flow"].rename(columns={r["flow"].columns[0]: "no-such-link"}),
                     level=r["level"], demand=r["demand"])
    with pytest.raises(InputError, match="no-such-link"):
        residual_logger_noise(bad, wn)


def test_cli_estimates_the_noise_with_flows(tmp_path):
    from conftest import NETWORKS
    from tirtasu.network import load_model
    from tirtasu.simulator import Scenario, default_layout, simulate, write_wide_csv

    net3 = NETWORKS / "asce-tf-wdst" / "Net3.inp"
    wn = load_model(net3)
    layout = default_layout(wn, np.random.default_rng(0), n_pressure=10)
    sim = simulate(Scenario(model=str(net3), start="2025-01-01", days=5.0, seed=5, layout=layout, leaks=[], faults=[]))
    files = {}
    for kind in ("pressure", "flow", "level"):
        files[kind] = tmp_path / f"{kind}.csv"
        write_wide_csv(sim.readings[kind], files[kind])
    out = tmp_path / "placement.csv"
    res = CliRunner().invoke(app, [
        "leaks", "place-sensors", "--model", str(net3), "--add", "1", "--existing", str(files["pressure"]),
        "--flows", str(files["flow"]), "--levels", str(files["level"]), "--out", str(out), "--candidates", "20",
    ])
    assert res.exit_code == 0, res.output
    assert "after the leak-free model" in res.output
    steps = pd.read_csv(out)
    assert list(steps["sensors"]) == [10, 11] and steps["added"].iloc[1] not in layout.pressure
    # a flow column that is not a link of the model is bad input, not a reason to guess the noise
    flows = pd.read_csv(files["flow"])
    flows.rename(columns={flows.columns[1]: "no-such-link"}).to_csv(tmp_path / "bad_flow.csv", index=False)
    res = CliRunner().invoke(app, [
        "leaks", "place-sensors", "--model", str(net3), "--add", "1", "--existing", str(files["pressure"]),
        "--flows", str(tmp_path / "bad_flow.csv"), "--out", str(out),
    ])
    assert res.exit_code != 0 and "no-such-link" in res.output


def test_bad_input():
    wn = star_network()
    with pytest.raises(ValueError, match="X9 .*not junctions"):
        place_pressure_sensors(wn, 1, existing=["A4", "X9"])
    with pytest.raises(ValueError, match="negative"):
        place_pressure_sensors(wn, -1)


def test_cli(tmp_path):
    wn = star_network()
    inp = tmp_path / "star.inp"
    wntr.network.write_inpfile(wn, str(inp), units="LPS")
    pressures = tmp_path / "p.csv"
    pressures.write_text("time,A4,C4,J0\n2025-01-01 00:00,50,50,50\n2025-01-01 01:00,50.1,50.1,50.1\n")
    out = tmp_path / "placement.csv"
    res = CliRunner().invoke(app, ["leaks", "place-sensors", "--model", str(inp), "--add", "2", "--existing", str(pressures), "--out", str(out)])
    assert res.exit_code == 0, res.output
    # one day of readings is too short to estimate the noise: said, and the default used
    assert "1 day(s) of pressures" in res.output and "0.01 m assumed" in res.output
    steps = pd.read_csv(out)
    assert list(steps["sensors"]) == [3, 4, 5]
    assert steps["added"].iloc[1] in {"B1", "B2", "B3", "B4"}
    res = CliRunner().invoke(app, ["leaks", "place-sensors", "--model", str(inp), "--add", "1", "--existing", "A4,Q7"])
    assert res.exit_code != 0
    assert "Q7" in res.output and "star.inp" in res.output
    # a file name that is not there is not taken for a sensor id
    res = CliRunner().invoke(app, ["leaks", "place-sensors", "--model", str(inp), "--add", "1", "--existing", str(tmp_path / "typo.csv")])
    assert res.exit_code != 0 and "typo.csv: no such file" in res.output
    # flows need the pressures they go with
    res = CliRunner().invoke(app, ["leaks", "place-sensors", "--model", str(inp), "--add", "1", "--existing", "A4", "--flows", str(pressures)])
    assert res.exit_code != 0 and "--existing as a CSV" in res.output
