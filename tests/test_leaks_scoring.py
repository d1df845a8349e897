"""BattLeDIM scoring: distances and euros computed by hand on a tiny network.

The network (lengths in m; V1 a valve, PU1 a pump, both points of length 0):

    R --P1 100-- J1 --P2 100-- J2 --P3 100-- J3 --P4 100-- J4 --P5 100-- J5 ==V1== J7 --P7 100-- J8
                  \\                           |                          /                       ‖
                   +-------------------- P8 250 (J1–J5) ----------------+                        PU1
                                              P6 102                                              ‖
                                              |                                                   J9 --P9 100-- J10
                                              J6

The distance between two pipes is the shortest path between their nearest end nodes plus half
of each pipe's length; a pipe is 0 m from itself. Leak flows are multiples of 12 m³/h, so that
one 5-min step holds a round volume (12 m³/h × 1/12 h = 1 m³).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import wntr

from tirtasu.leaks.scoring import LeakScore, pipe_distances, score
from tirtasu.network import load_model
from tirtasu.simulator import write_wide_csv

DAY = "2025-01-01"


@pytest.fixture(scope="module")
def wn():
    net = wntr.network.WaterNetworkModel()
    net.add_reservoir("R", base_head=50.0)
    for j in ("J1", "J2", "J3", "J4", "J5", "J6", "J7", "J8", "J9", "J10"):
        net.add_junction(j, base_demand=0.0, elevation=0.0)
    pipe = dict(diameter=0.2, roughness=100.0)
    net.add_pipe("P1", "R", "J1", length=100.0, **pipe)
    net.add_pipe("P2", "J1", "J2", length=100.0, **pipe)
    net.add_pipe("P3", "J2", "J3", length=100.0, **pipe)
    net.add_pipe("P4", "J3", "J4", length=100.0, **pipe)
    net.add_pipe("P5", "J4", "J5", length=100.0, **pipe)
    net.add_pipe("P6", "J3", "J6", length=102.0, **pipe)
    net.add_valve("V1", "J5", "J7", diameter=0.2, valve_type="TCV", initial_setting=0.0)
    net.add_pipe("P7", "J7", "J8", length=100.0, **pipe)
    net.add_pipe("P8", "J1", "J5", length=250.0, **pipe)
    net.add_pump("PU1", "J8", "J9", pump_type="POWER", pump_parameter=1.0)
    net.add_pipe("P9", "J9", "J10", length=100.0, **pipe)
    return net


def flows(spec: dict, start=DAY, hours: float = 24.0) -> pd.DataFrame:
    """Leak outflows at 5-min steps [m³/h]: {leak_id: (start, end, m³/h)}, running in [start, end)."""
    times = pd.date_range(start, periods=int(hours * 12), freq="5min", tz="UTC")
    return pd.DataFrame(
        {lid: np.where((times >= pd.Timestamp(a, tz="UTC")) & (times < pd.Timestamp(b, tz="UTC")), q, 0.0) for lid, (a, b, q) in spec.items()},
        index=times,
    )


def leaks_table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["leak_id", "link_id", "start", "end"])


def dets(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["link_id", "start_time"])


def t(hhmm: str, day: str = DAY) -> str:
    return f"{day} {hhmm}"


def outcomes(result: LeakScore) -> list[str]:
    return result.detections["outcome"].tolist()


# ---------------------------------------------------------------------------------- distances


def test_distance_adjacent_pipes_is_half_plus_half(wn):
    d = pipe_distances(wn, ["P1", "P2"], ["P2", "P8"])
    assert d.loc["P1", "P2"] == 0 + 100 / 2 + 100 / 2 == 100  # share J1
    assert d.loc["P2", "P8"] == 0 + 100 / 2 + 250 / 2 == 175  # share J1
    assert pipe_distances(wn, ["P8"], ["P2"]).loc["P8", "P2"] == 175  # symmetric


def test_distance_300_is_in_301_is_out(wn):
    d = pipe_distances(wn, ["P1"], ["P4", "P6"])
    # P1 (R–J1) to P4 (J3–J4): nearest end nodes J1–J3 = P2 + P3 = 200
    assert d.loc["P1", "P4"] == 200 + 100 / 2 + 100 / 2 == 300
    # P1 to P6 (J3–J6, 102 m): J1–J3 = 200
    assert d.loc["P1", "P6"] == 200 + 100 / 2 + 102 / 2 == 301


def test_distance_takes_the_shortest_path_and_nearest_end_nodes(wn):
    # P1 to P5 (J4–J5): J1–J5 along the chain is 400, through P8 250; J1–J4 is 300
    assert pipe_distances(wn, ["P1"], ["P5"]).loc["P1", "P5"] == 250 + 50 + 50 == 350


def test_distance_pipe_to_itself_is_zero(wn):
    # the official rule (scoring_function.m: same link → x = 0); the formula alone would give
    # 0 + 102/2 + 102/2 = 102
    assert pipe_distances(wn, ["P6"], ["P6"]).loc["P6", "P6"] == 0


def test_distance_through_pumps_and_valves(wn):
    d = pipe_distances(wn, ["P5"], ["P7", "P9", "V1"])
    assert d.loc["P5", "P7"] == 0 + 100 / 2 + 100 / 2 == 100  # J5 =V1 (0 m)= J7
    assert d.loc["P5", "P9"] == 100 + 100 / 2 + 100 / 2 == 200  # J5 = J7, P7 100, J8 =PU1= J9
    assert d.loc["P5", "V1"] == 0 + 100 / 2 + 0 / 2 == 50
    # the official distance matrix has no edge for a pump or valve: P7 and P9 are cut off
    cut = pipe_distances(wn, ["P5", "P7"], ["P7", "P9"], cut_at_pumps_valves=True)
    assert math.isinf(cut.loc["P5", "P7"]) and math.isinf(cut.loc["P5", "P9"]) and math.isinf(cut.loc["P7", "P9"])
    assert cut.loc["P7", "P7"] == 0


def test_pipe_distances_shape_and_unknown_links(wn):
    d = pipe_distances(wn, "P1")
    assert list(d.index) == ["P1"] and list(d.columns) == wn.link_name_list
    assert d.loc["P1", "P8"] == 0 + 50 + 125  # share J1
    with pytest.raises(KeyError, match="P99"):
        pipe_distances(wn, ["P1", "P99"])


def test_ltown_pipe_distances(ltown_path):
    wn = load_model(ltown_path)
    pipes = ["p653", "p257", "p1"]
    d = pipe_distances(wn, pipes, pipes)
    # a pipe is 0 m from itself (official: scoring_function.m sets x = 0 for the same link;
    # the PERFECT_TEAM report scores p653 at 0.8 €/m³ × its volume, no crew cost), not its own
    # length (the half + half of the formula: p653 is 56.3877 m long)
    assert np.diag(d.to_numpy()).tolist() == [0.0, 0.0, 0.0]
    assert wn.get_link("p653").length == pytest.approx(56.3877)
    # two pipes meeting at a node: half + half
    a = wn.get_link("p653")
    other = next(n for n, l in wn.links() if n != "p653" and l.link_type == "Pipe" and a.end_node_name in (l.start_node_name, l.end_node_name))
    expected = a.length / 2 + wn.get_link(other).length / 2
    assert pipe_distances(wn, ["p653"], [other]).iloc[0, 0] == pytest.approx(expected)
    # p632 → p653, from the official D_Mat_L-TOWN.mat: min over end-node pairs 192.8318 m
    # + 50.1828/2 + 56.3877/2 = 246.1170 m (the official report scores a detection there)
    assert pipe_distances(wn, ["p632"], ["p653"]).iloc[0, 0] == pytest.approx(246.11705, abs=1e-3)


# ------------------------------------------------------------------------------------ scoring


def test_300m_rule_in_the_score(wn):
    leaks = leaks_table([("A", "P1", t("06:00"), t("12:00"))])
    lf = flows({"A": (t("06:00"), t("12:00"), 1200.0)})  # 100 m³ per step
    r = score(dets(("P6", t("06:30")), ("P4", t("07:00"))), leaks, lf, wn)
    assert outcomes(r) == ["FP", "TP"]
    fp, tp = r.detections.iloc[0], r.detections.iloc[1]
    assert fp["eur"] == -500 and fp["distance_m"] == 301 and fp["leak_id"] is None
    # 07:00–12:00 = 60 steps × 100 m³ = 6000 m³; 6000 × 0.8 − 300/300 × 500
    assert tp["volume_m3"] == 6000 and tp["distance_m"] == 300
    assert tp["eur"] == pytest.approx(6000 * 0.8 - 300 / 300 * 500) == 4300
    assert r.score_eur == pytest.approx(4300 - 500)
    assert (r.tp, r.fp, r.fn) == (1, 1, 0)


def test_before_start_and_at_end_are_false_positives(wn):
    leaks = leaks_table([("A", "P2", t("06:00"), t("12:00"))])
    lf = flows({"A": (t("06:00"), t("12:00"), 1200.0)})  # 100 m³ per step
    r = score(dets(("P2", t("05:55")), ("P2", t("11:55")), ("P2", t("12:00"))), leaks, lf, wn)
    assert outcomes(r) == ["FP", "TP", "FP"]  # [start, end): 12:00 is after the repair
    # 11:55: one step left, 100 m³ × 0.8, on the leak's own pipe (0 m)
    assert r.detections["eur"].tolist() == pytest.approx([-500, 100 * 0.8, -500])
    assert r.detections["distance_m"].iloc[1] == 0
    assert r.score_eur == pytest.approx(-500 + 80 - 500)
    assert (r.tp, r.fp, r.fn) == (1, 2, 0)
    assert r.median_delay_h == pytest.approx(5 + 55 / 60)  # 06:00 → 11:55


def test_detection_at_leak_start_earns_the_whole_volume(wn):
    leaks = leaks_table([("A", "P2", t("06:00"), t("12:00"))])
    lf = flows({"A": (t("06:00"), t("12:00"), 120.0)})  # 10 m³ per step
    r = score(dets(("P2", t("06:00"))), leaks, lf, wn)
    # 72 steps × 10 m³ = 720 m³ → 576 €, the perfect score
    assert r.detections["volume_m3"].iloc[0] == 720
    assert r.score_eur == r.perfect_eur == pytest.approx(720 * 0.8)
    assert r.fraction == 1.0 and r.median_delay_h == 0 and r.median_distance_m == 0


def test_two_qualifying_leaks_go_to_the_closest_not_yet_found(wn):
    # B on P6 is listed first and is 101 m from P3 (J3 shared: 50 + 51); A on P2 is 100 m
    leaks = leaks_table([("B", "P6", t("06:00"), t("18:00")), ("A", "P2", t("06:00"), t("18:00"))])
    lf = flows({"A": (t("06:00"), t("18:00"), 120.0), "B": (t("06:00"), t("18:00"), 120.0)})
    r = score(dets(("P3", t("08:00")), ("P3", t("09:00")), ("P3", t("10:00"))), leaks, lf, wn)
    assert outcomes(r) == ["TP", "TP", "repeat"]
    assert r.detections["leak_id"].tolist() == ["A", "B", "A"]  # the repeat names the closest found leak
    assert r.detections["distance_m"].tolist() == [100, 101, 100]
    # A: 08:00–18:00 = 120 steps × 10 m³ = 1200 m³ → 960 − 100/300 × 500
    # B: 09:00–18:00 = 108 steps × 10 m³ = 1080 m³ → 864 − 101/300 × 500
    expected = [1200 * 0.8 - 100 / 300 * 500, 1080 * 0.8 - 101 / 300 * 500, 0.0]
    assert r.detections["eur"].tolist() == pytest.approx(expected)
    assert (r.tp, r.fp, r.fn, r.repeats) == (2, 0, 0, 1)
    assert r.median_distance_m == 100.5 and r.median_delay_h == 2.5  # (2 + 3) / 2


def test_equally_close_leaks_go_to_the_one_that_started_first(wn):
    # P8 is 175 m from P5 (J5 shared: 125 + 50) and from P7 (J5 =V1= J7: 125 + 50)
    leaks = leaks_table([("C", "P7", t("12:00"), t("14:00")), ("B", "P5", t("10:00"), t("22:00"))])
    lf = flows({"B": (t("10:00"), t("22:00"), 120.0), "C": (t("12:00"), t("14:00"), 120.0)})
    r = score(dets(("P8", t("12:30")), ("P8", t("12:35"))), leaks, lf, wn)
    assert r.detections["leak_id"].tolist() == ["B", "C"]
    assert r.detections["distance_m"].tolist() == [175, 175]


def test_repeat_detections_score_zero_and_are_not_false_positives(wn):
    leaks = leaks_table([("A", "P2", t("06:00"), t("12:00"))])
    lf = flows({"A": (t("06:00"), t("12:00"), 120.0)})
    r = score(
        dets(("P2", t("07:00")), ("P1", t("08:00")), ("P2", t("08:00")), ("P3", t("13:00"))),
        leaks, lf, wn,
    )
    assert outcomes(r) == ["TP", "repeat", "repeat", "FP"]
    assert r.detections["eur"].tolist() == pytest.approx([60 * 10 * 0.8, 0, 0, -500])  # 07:00–12:00
    assert (r.tp, r.fp, r.fn, r.repeats) == (1, 1, 0, 2)
    assert r.score_eur == pytest.approx(480 - 500)


def test_rows_naming_no_pipe_are_neither_found_nor_false(wn):
    # an area to survey (empty link_id) or a leak not placed (missing): no pipe to send a crew
    # to, so it neither finds the leak nor costs a visit in vain; the pipe named later finds it
    leaks = leaks_table([("A", "P2", t("06:00"), t("12:00"))])
    lf = flows({"A": (t("06:00"), t("12:00"), 120.0)})
    r = score(dets(("", t("07:00")), (None, t("08:00")), ("P2", t("09:00")), ("", t("13:00"))), leaks, lf, wn)
    assert outcomes(r) == ["ignored", "ignored", "TP", "ignored"]
    assert r.detections["eur"].tolist() == pytest.approx([0, 0, 120 * 3 * 0.8, 0])  # 120 m³/h, 09:00–12:00, on its pipe
    assert (r.tp, r.fp, r.fn, r.repeats, r.ignored) == (1, 0, 0, 0, 3)
    # only such rows: the leak is missed, nothing else
    r = score(dets(("", t("07:00"))), leaks, lf, wn)
    assert (r.tp, r.fp, r.fn, r.score_eur) == (0, 0, 1, 0.0)


def test_detections_are_scored_in_time_order(wn):
    leaks = leaks_table([("A", "P2", t("06:00"), t("12:00"))])
    lf = flows({"A": (t("06:00"), t("12:00"), 120.0)})
    r = score(dets(("P2", t("09:00")), ("P2", t("07:00"))), leaks, lf, wn)
    assert r.detections["detection"].tolist() == [1, 0]  # the input's row labels
    assert outcomes(r) == ["TP", "repeat"]
    assert r.leaks["detected_at"].iloc[0] == pd.Timestamp(t("07:00"), tz="UTC")


def test_carry_over_leak_still_counts(wn):
    # started the evening before the evaluation period; leak_flows covers only the period
    leaks = leaks_table([("A", "P2", t("18:00", "2024-12-31"), t("06:00"))])
    lf = flows({"A": (DAY, t("06:00"), 120.0)})  # 00:00–06:00: 72 steps × 10 m³ = 720 m³
    r = score(dets(("P2", t("23:00", "2024-12-31")), ("P2", t("02:00"))), leaks, lf, wn)
    # a detection before the period is not scored (the official code drops 2018 detections)
    assert outcomes(r) == ["ignored", "TP"]
    assert r.detections["eur"].iloc[0] == 0 and r.ignored == 1 and r.fp == 0
    # 02:00–06:00 = 48 steps × 10 m³ = 480 m³; the delay counts from the true start
    assert r.detections["volume_m3"].iloc[1] == 480
    assert r.score_eur == pytest.approx(480 * 0.8)
    assert r.median_delay_h == 8  # 18:00 → 02:00
    # the perfect detector flags it when the period starts: 720 m³ × 0.8
    assert r.perfect_eur == pytest.approx(720 * 0.8)
    assert r.leaks["volume_m3"].iloc[0] == 720


def test_leak_running_past_the_period_ends_with_it(wn):
    # repaired long after the data ends (or never: empty end)
    leaks = leaks_table([("A", "P2", t("20:00"), "2025-03-01 00:00"), ("B", "P5", t("20:00"), None)])
    lf = flows({"A": (t("20:00"), "2025-03-01", 120.0), "B": (t("20:00"), "2025-03-01", 120.0)})
    r = score(dets(("P2", t("23:55")), ("P5", "2025-01-02 00:00")), leaks, lf, wn)
    # the period is [00:00, 24:00): at 23:55 one step is left, 10 m³; 24:00 is outside
    assert outcomes(r) == ["TP", "ignored"]
    assert r.detections["eur"].iloc[0] == pytest.approx(10 * 0.8)
    assert (r.leaks["end"] == pd.Timestamp("2025-01-02", tz="UTC")).all()
    assert r.perfect_eur == pytest.approx(2 * 48 * 10 * 0.8)  # 20:00–24:00 each
    assert (r.tp, r.fn) == (1, 1)
    # an explicit, earlier end of the period: leaks end there, later detections are not scored
    r = score(dets(("P2", t("21:00")), ("P2", t("23:55"))), leaks, lf, wn, period_end=t("22:00"))
    assert outcomes(r) == ["TP", "ignored"]
    assert r.detections["volume_m3"].iloc[0] == 12 * 10  # 21:00–22:00
    assert r.perfect_eur == pytest.approx(2 * 24 * 10 * 0.8)  # 20:00–22:00 each


def test_leaks_outside_the_period_are_not_scored(wn):
    leaks = leaks_table(
        [("old", "P1", t("10:00", "2024-12-30"), t("12:00", "2024-12-30")), ("A", "P2", t("06:00"), t("12:00"))]
    )
    lf = flows({"old": (DAY, DAY, 0.0), "A": (t("06:00"), t("12:00"), 120.0)})
    r = score(dets(), leaks, lf, wn)
    assert r.leaks["leak_id"].tolist() == ["A"]
    assert (r.tp, r.fp, r.fn) == (0, 0, 1) and r.score_eur == 0 and r.fraction == 0
    assert math.isnan(r.median_delay_h) and math.isnan(r.median_distance_m)


def test_euros_perfect_score_fraction_and_medians(wn):
    leaks = leaks_table(
        [
            ("A", "P1", t("02:00"), t("08:00")),  # 72 steps × 10 m³ = 720 m³ → perfect 576 €
            ("B", "P5", t("10:00"), t("22:00")),  # 144 steps × 10 m³ = 1440 m³ → 1152 €
            ("C", "P7", t("12:00"), t("14:00")),  # 24 steps × 20 m³ = 480 m³ → 384 €
        ]
    )
    lf = flows({"A": (t("02:00"), t("08:00"), 120.0), "B": (t("10:00"), t("22:00"), 120.0), "C": (t("12:00"), t("14:00"), 240.0)})
    r = score(
        dets(
            ("P2", t("05:00")),  # A at 100 m: 05:00–08:00 = 360 m³ → 288 − 100/300 × 500
            ("P8", t("11:00")),  # B at 175 m (J5): 11:00–22:00 = 1320 m³ → 1056 − 175/300 × 500
            ("P3", t("15:00")),  # B again at 200 m (J3–J4 100 + 50 + 50): repeat
            ("P1", t("16:00")),  # 350 m from B, C repaired: false positive
        ),
        leaks, lf, wn,
    )
    assert outcomes(r) == ["TP", "TP", "repeat", "FP"]
    assert r.detections["distance_m"].tolist() == [100, 175, 200, 350]
    assert r.detections["eur"].tolist() == pytest.approx([288 - 500 / 3, 1056 - 875 / 3, 0, -500])
    assert (r.tp, r.fp, r.fn, r.repeats, r.ignored) == (2, 1, 1, 1, 0)
    assert r.score_eur == pytest.approx(288 + 1056 - 1375 / 3 - 500) == pytest.approx(1157 / 3)
    assert r.perfect_eur == pytest.approx(576 + 1152 + 384) == pytest.approx(2112)
    assert r.fraction == pytest.approx((1157 / 3) / 2112)
    assert r.median_delay_h == pytest.approx((3 + 1) / 2)
    assert r.median_distance_m == pytest.approx((100 + 175) / 2)
    per_leak = r.leaks.set_index("leak_id")
    assert per_leak["found"].tolist() == [True, True, False]
    assert per_leak.loc["B", "detected_link_id"] == "P8" and per_leak.loc["B", "delay_h"] == 1
    assert per_leak["perfect_eur"].tolist() == pytest.approx([576, 1152, 384])
    assert pd.isna(per_leak.loc["C", "detected_at"])
    # every leak flagged at its start on its own pipe: the perfect score
    perfect = score(dets(("P1", t("02:00")), ("P5", t("10:00")), ("P7", t("12:00"))), leaks, lf, wn)
    assert perfect.score_eur == pytest.approx(2112) and perfect.fraction == pytest.approx(1.0)
    # other prices
    cheap = score(dets(("P2", t("05:00"))), leaks, lf, wn, eur_per_m3=1.0, eur_per_300m=300.0, eur_per_fp=100.0)
    assert cheap.detections["eur"].iloc[0] == pytest.approx(360 * 1.0 - 100 / 300 * 300)


def test_files_as_the_simulator_writes_them(wn, tmp_path):
    lf = flows({"leak-01": (t("06:00"), t("12:00"), 120.0)})
    write_wide_csv(lf, tmp_path / "leak_flows.csv")
    leak_flows = pd.read_csv(tmp_path / "leak_flows.csv")  # timestamp column of strings (UTC)
    leaks = pd.DataFrame(
        [{"leak_id": "leak-01", "link_id": "P2", "node_id": "n", "position": 0.5, "kind": "abrupt", "start": t("06:00"), "peak": t("06:00"), "end": t("12:00"), "peak_flow_m3h": 120.0, "emitter_coefficient": 1.0, "volume_m3": 720.0}]
    )
    leaks.to_csv(tmp_path / "leaks.csv", index=False)
    detections = pd.DataFrame(
        {"link_id": ["P2"], "start_time": ["2025-01-01 15:00+07:00"], "dma": ["DMA-1"], "confidence": [0.9]}
    )  # 08:00 UTC; extra columns are ignored
    r = score(detections, pd.read_csv(tmp_path / "leaks.csv"), leak_flows, wn)
    assert outcomes(r) == ["TP"]
    assert r.detections["volume_m3"].iloc[0] == 48 * 10  # 08:00–12:00 UTC
    assert r.perfect_eur == pytest.approx(720 * 0.8)  # = volume_m3 of leaks.csv × 0.8
    assert r.summary()["tp"] == 1


def test_bad_input(wn):
    leaks = leaks_table([("A", "P2", t("06:00"), t("12:00"))])
    lf = flows({"A": (t("06:00"), t("12:00"), 120.0)})
    with pytest.raises(KeyError, match="P99"):
        score(dets(("P99", t("07:00"))), leaks, lf, wn)
    with pytest.raises(KeyError, match="A"):
        score(dets(("P2", t("07:00"))), leaks, lf.rename(columns={"A": "Z"}), wn)
    with pytest.raises(ValueError, match="start_time"):
        score(pd.DataFrame({"link_id": ["P2"]}), leaks, lf, wn)


def test_a_year_of_ltown(ltown_path):
    """A year of 5-min steps, 30 leaks, 500 random detections: scored in well under a second."""
    wn = load_model(ltown_path)
    rng = np.random.default_rng(1)
    times = pd.date_range("2019-01-01", periods=365 * 288, freq="5min", tz="UTC")
    pipes = rng.choice(wn.pipe_name_list, 30, replace=False)
    starts = pd.DatetimeIndex(rng.choice(times[: 300 * 288], 30))
    ends = starts + pd.Timedelta(days=40)
    leaks = pd.DataFrame({"leak_id": [f"L{i}" for i in range(30)], "link_id": pipes, "start": starts, "end": ends})
    lf = pd.DataFrame({f"L{i}": np.where((times >= starts[i]) & (times < ends[i]), 6.0, 0.0) for i in range(30)}, index=times)
    noise = pd.DataFrame({"link_id": rng.choice(wn.pipe_name_list, 500), "start_time": rng.choice(times, 500)})
    perfect = score(leaks.rename(columns={"start": "start_time"}), leaks, lf, wn)
    assert perfect.tp == 30 and perfect.fraction == pytest.approx(1.0)
    assert perfect.perfect_eur == pytest.approx(30 * 40 * 24 * 6.0 * 0.8)  # 40 days × 6 m³/h each
    r = score(pd.concat([noise, leaks.rename(columns={"start": "start_time"})[["link_id", "start_time"]]]), leaks, lf, wn)
    assert r.tp == 30 and r.fp + r.repeats == 500 and r.ignored == 0
    assert r.score_eur == pytest.approx(r.detections["eur"].sum())
