"""Choosing the pipe to report from a posterior, checked by hand on a chain of pipes.

Nine pipes P1…P9 of 100 m in a line: by BattLeDIM's rule (shortest path between the nearest
ends plus half of each pipe's length) pipes Pi and Pj are 100·|i − j| m apart.
"""

from __future__ import annotations

import numpy as np
import pytest
import wntr

from tirtasu.leaks import DetectConfig
from tirtasu.leaks.detect import distance_weight
from tirtasu.leaks.localize import NetworkDistances, rank_pipes


@pytest.fixture(scope="module")
def chain():
    wn = wntr.network.WaterNetworkModel()
    wn.add_reservoir("R", base_head=50.0)
    wn.add_junction("J0", elevation=0.0)
    wn.add_pipe("P0", "R", "J0", length=100.0, diameter=0.2, roughness=100)
    for i in range(1, 10):
        wn.add_junction(f"J{i}", base_demand=0.001, elevation=0.0)
        wn.add_pipe(f"P{i}", f"J{i - 1}", f"J{i}", length=100.0, diameter=0.2, roughness=100)
    candidates = [f"P{i}" for i in range(1, 10)]
    return NetworkDistances(wn), candidates


def _post(candidates, mass):
    post = np.array([mass.get(c, 0.0) for c in candidates])
    return post / post.sum()


def test_pipe_distances_follow_battledim(chain):
    dist, _ = chain
    # nearest ends 200 m apart (J1 to J3) + 50 m + 50 m
    assert dist.pipe_to_pipe("P1", "P4") + 100.0 == pytest.approx(300.0)


def test_the_crews_search_moves_the_pipe_off_the_edge_of_the_evidence(chain):
    """Posterior P1 0.4, P3 0.3, P4 0.3: P1…P4 are each within 300 m of all three, so by the
    probability alone the most likely pipe, P1, is reported; the leak is then 0.3·200 + 0.3·300
    = 150 m from it on average, and from P3 0.4·200 + 0.3·100 = 110 m, the least of the four."""
    dist, cand = chain
    post = _post(cand, {"P1": 0.4, "P3": 0.3, "P4": 0.3})
    alone = rank_pipes(post, cand, dist)
    assert alone.pipes[0] == "P1" and alone.probability[0] == pytest.approx(1.0)
    searched = rank_pipes(post, cand, dist, distance_weight=0.1)
    assert searched.pipes[0] == "P3" and searched.probability[0] == pytest.approx(1.0)


def test_a_small_leak_goes_to_the_likely_pipe_a_large_one_to_the_sure_one(chain):
    """Posterior P1 0.1, P5 0.9. P4 is within 300 m of both (P = 1, expected distance
    0.1·300 + 0.9·100 = 120 m, D = 0.4); P5 of the second only (P = 0.9, D = 0).
    By BattLeDIM's €, with V the water saved and a crew cost of 500 €: P4 earns V − 500·0.4,
    P5 0.9·V − 0.1·500, so P5 is better when V < 1500 €.
    3 m³/h over 14 days at 0.80 €/m³ is V = 806.4 € (κ = 500 / 1306.4 = 0.383 > 0.25: P5);
    10 m³/h is 2688 € (κ = 0.157 < 0.25: P4)."""
    dist, cand = chain
    post = _post(cand, {"P1": 0.1, "P5": 0.9})
    cfg = DetectConfig(rank_by_value=True)
    small, large = distance_weight(3.0, cfg), distance_weight(10.0, cfg)
    assert small == pytest.approx(500.0 / (3.0 * 24 * 14 * 0.8 + 500.0))
    assert large == pytest.approx(500.0 / (10.0 * 24 * 14 * 0.8 + 500.0))
    assert rank_pipes(post, cand, dist).pipes[0] == "P4"
    assert rank_pipes(post, cand, dist, distance_weight=small).pipes[0] == "P5"
    assert rank_pipes(post, cand, dist, distance_weight=small).probability[0] == pytest.approx(0.9)
    assert rank_pipes(post, cand, dist, distance_weight=large).pipes[0] == "P4"


def test_distance_weight_limits():
    on = DetectConfig(rank_by_value=True)
    assert distance_weight(0.0, on) == pytest.approx(1.0)  # nothing to save: the search alone
    assert distance_weight(float("nan"), on) == pytest.approx(1.0)
    assert distance_weight(5.0, DetectConfig(rank_by_value=True, crew_cost_eur=0.0)) == 0.0
    assert distance_weight(5.0, DetectConfig()) == 0.0  # off by default: the likeliest pipe


@pytest.mark.parametrize("network", ["L-TOWN.inp", "asce-tf-wdst/ky2.inp"])
def test_detector_and_score_measure_the_same_distance(network):
    """The detector ranks pipes by the distance the score counts (BattLeDIM's midpoint rule).

    Both use one graph (zero-length links merged, the shorter of parallel pipes), but reach
    the midpoint distance apart (the detector per node with a radius limit, on the hot path;
    the score pair by pair): they must agree wherever the detector looks, across pumps and
    valves (KY2 has both) and in other units (GPM)."""
    from tirtasu.leaks.scoring import pipe_distances
    from tirtasu.network import load_model

    from conftest import NETWORKS

    wn = load_model(NETWORKS / network)
    dist = NetworkDistances(wn)
    rng = np.random.default_rng(7)
    sample = [dist.pipes[i] for i in rng.choice(len(dist.pipes), size=12, replace=False)]
    scored = pipe_distances(wn, sample, dist.pipes)
    for pipe in sample:
        mine = dist.midpoint_to_pipes(pipe, limit=1000.0)
        near = np.isfinite(mine)
        assert near.sum() > 1
        np.testing.assert_allclose(mine[near], scored.loc[pipe].to_numpy()[near], rtol=1e-12, atol=1e-9)
        # nothing the score puts within 300 m lies beyond the detector's limit
        assert not (~near & (scored.loc[pipe].to_numpy() <= 300.0)).any()


def test_midpoint_distance_matches_the_official_matrix(ltown_path):
    from tirtasu.network import load_model

    dist = NetworkDistances(load_model(ltown_path))
    # p632 → p653, from BattLeDIM's D_Mat_L-TOWN.mat: 192.8318 m between the nearest ends
    # + 50.1828/2 + 56.3877/2
    d = dist.midpoint_to_pipes("p632")
    assert d[dist.pipe_index["p653"]] == pytest.approx(246.11705, abs=1e-2)
    assert d[dist.pipe_index["p632"]] == 0.0


def test_a_poor_fit_flattens_the_posterior_by_its_excess_misfit():
    """Two candidates in five whitened channels, no model error: the log-odds between them is
    half their misfit difference; when even the best leaves more misfit than noise (and the
    model error) explains, r = χ² / (c − 1 + ε²‖Δ‖²) > 1, the temperature is multiplied by r
    (hand calculation)."""
    from tirtasu.leaks.localize import node_posterior

    G = np.array([[1.0, 0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0, 0.0]])
    # Δ = 3·e1 (+4 on each of three channels no candidate explains)
    delta = np.array([3.0, 0.0, 4.0, 4.0, 4.0])
    # χ²₁ = 48 (q = 3); χ²₂ = 57 − 3²/2 = 52.5 (q = 1.5); log-odds (52.5 − 48) / 2 = 2.25
    post, q, chi2 = node_posterior(delta, G, model_error=0.0)
    assert chi2 == pytest.approx([48.0, 52.5])
    assert q == pytest.approx([3.0, 1.5])
    assert np.log(post[0] / post[1]) == pytest.approx(2.25)
    # r = 48 / (5 − 1) = 12
    post_s, _, _ = node_posterior(delta, G, model_error=0.0, misfit_scale=True)
    assert np.log(post_s[0] / post_s[1]) == pytest.approx(2.25 / 12)
    # with model error ε = 0.1 (‖Δ‖² = 57): temperature 1 + 0.57 = 1.57, and the misfit is
    # measured against what noise and that error leave, 4 + 0.57: r = 48 / 4.57
    post_e, _, _ = node_posterior(delta, G, model_error=0.1, misfit_scale=True)
    assert np.log(post_e[0] / post_e[1]) == pytest.approx(2.25 / (1.57 * 48 / 4.57))
    # a fit within the noise (r ≤ 1) is left alone
    clean = np.array([3.0, 0.0, 1.0, 0.5, 0.0])
    a, _, _ = node_posterior(clean, G, model_error=0.15)
    b, _, _ = node_posterior(clean, G, model_error=0.15, misfit_scale=True)
    assert b == pytest.approx(a)
