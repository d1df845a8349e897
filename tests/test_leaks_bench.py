"""The benchmark's years of L-Town: the speed run's year and the held-out ones."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tirtasu.leaks import bench


def test_each_year_is_its_own_scenario_and_the_speed_year_keeps_its_cache(tmp_path):
    """A held-out year is simulated from its own seed (other leaks, its own calendar year), and
    the speed run's year is still cached under the name it had, so a kept cache stays valid."""
    days = 16.0  # two training weeks and two days: enough to tell the scenarios apart
    speed = bench.simulate_year(bench.SPEED_YEAR, days, tmp_path)
    other = bench.simulate_year(bench.HELD_OUT_YEARS[0], days, tmp_path)
    assert (tmp_path / f"v{bench.SCENARIO_VERSION}-speed-{days:g}.pkl").is_file()
    assert (tmp_path / f"v{bench.SCENARIO_VERSION}-year-{bench.HELD_OUT_YEARS[0]}-{days:g}.pkl").is_file()
    assert pd.Timestamp(speed.scenario.start) == pd.Timestamp(f"{bench.SPEED_YEAR}-01-01")
    assert pd.Timestamp(other.scenario.start) == pd.Timestamp(f"{bench.HELD_OUT_YEARS[0]}-01-01")
    # 23 leaks each, all after the training weeks, on other pipes or at other times
    for sim in (speed, other):
        assert len(sim.leaks) == 23
        t0 = pd.Timestamp(sim.scenario.start) + pd.Timedelta(days=bench.TRAIN_DAYS)
        assert (pd.to_datetime(sim.leaks["start"]) >= t0).all()
    a = speed.leaks[["link_id", "peak_flow_m3h"]].to_numpy()
    b = other.leaks[["link_id", "peak_flow_m3h"]].to_numpy()
    assert not np.array_equal(a, b)
    # read back from the cache, not simulated again
    again = bench.simulate_year(bench.SPEED_YEAR, days, tmp_path)
    pd.testing.assert_frame_equal(again.leaks, speed.leaks)


def test_the_years_table_gives_each_years_figures():
    row = {"year": 2020, "days": 365.0, "leaks": 23, "tp": 11, "fp": 7, "repeats": 9, "fraction": 106_432 / 217_211,
           "score_eur": 106_432.0, "perfect_eur": 217_211.0, "median_abrupt_delay_h": 8.0, "median_distance_m": 151.0,
           "detect_s": 57.5}
    md = bench.render_years([row])
    line = next(x for x in md.splitlines() if x.startswith("| 2020 "))
    assert line == "| 2020 | decided | 23 | 11 | 7 | 9 | 106,432 / 217,211 (49%) | 8 | 151 | 57.5 |"
    # each year marked by what it decided; a seed the project has no record of, by neither
    for year, role in ((bench.SPEED_YEAR, "tuning"), (bench.HELD_OUT_YEARS[0], "held out"), (1999, "–")):
        assert f"| {year} | {role} | 23 |" in bench.render_years([{**row, "year": year}])


def test_abrupt_delays_are_those_of_the_abrupt_leaks_found():
    """The abrupt-delay figures of a scenario and of a year come from the abrupt leaks that were
    found; an incipient leak, or an abrupt one missed (no delay), does not count."""
    leaks = pd.DataFrame({
        "kind": ["abrupt", "incipient", "abrupt", "abrupt"],
        "found": [True, True, False, True],
        "delay_h": [5.0, 2.0, np.nan, 30.0],
    })
    assert bench.abrupt_delays_h(leaks) == [5.0, 30.0]
    assert bench.abrupt_delays_h(leaks.iloc[1:3]) == []


def test_held_out_scenarios_are_never_tuning_scenarios():
    """A scenario is its network and seed: no held-out one is also a tuning or study scenario
    (nor one of the further study seeds), none is held out twice, and each has the six or more
    leaks the targets are stated for."""
    tuning = {(c.network, c.seed) for c in bench.CASES + bench.STUDY_CASES if c.part == "tuning"}
    held = [(c.network, c.seed) for c in bench.CASES if c.part.startswith("held-out")]
    assert held and not tuning & set(held)
    assert not {("L-Town", seed) for seed in bench.STUDY_SEEDS} & set(held)
    assert len(held) == len(set(held))
    assert all(c.leaks >= 6 for c in bench.CASES if c.part.startswith("held-out"))
