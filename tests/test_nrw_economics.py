"""Indicators (UARL, ILI, WBI bands) and economics (value of losses, EIF, trajectory)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tirtasu.nrw.economics import economic_intervention_frequency, loss_values, nrw_trajectory
from tirtasu.nrw.indicators import ili, uarl_l_per_day, uarl_validity, wbi_band


def test_uarl_by_hand():
    # Lm 12,202 km, Nc 958,000, Lp 0, P 20 m (PAM Jaya's order of magnitude):
    # (18·12,202 + 0.8·958,000 + 25·0)·20 = (219,636 + 766,400)·20 = 19,720,720 L/day
    assert uarl_l_per_day(12_202, 958_000, 0.0, 20.0) == pytest.approx(19_720_720.0)
    # with private pipe: 25 L/km/day/m · 100 km · 20 m = 50,000 L/day more
    assert uarl_l_per_day(12_202, 958_000, 100.0, 20.0) == pytest.approx(19_770_720.0)
    assert ili(2_000.0, 500.0) == 4.0


@pytest.mark.parametrize(
    "value, developing, developed",
    [
        (0.9, "A", "A"),
        (1.0, "A", "A"),
        (1.99, "A", "A"),
        (2.0, "A", "B"),
        (3.99, "A", "B"),
        (4.0, "B", "C"),
        (7.99, "B", "C"),
        (8.0, "C", "D"),
        (15.99, "C", "D"),
        (16.0, "D", "D"),
        (40.0, "D", "D"),
    ],
)
def test_wbi_bands(value, developing, developed):
    # bands: developed A 1–2, B 2–4, C 4–8, D ≥ 8; developing A 1–4, B 4–8, C 8–16, D ≥ 16
    assert wbi_band(value, "developing").band == developing
    assert wbi_band(value, "developed").band == developed


def test_wbi_band_carries_its_source_and_range():
    b = wbi_band(9.7, "developing")  # Makaya (2017): Gweru, ILI 9.7 → category C
    assert b.band == "C" and b.ili_range == "8–16"
    assert "Liemberger" in b.source and "weakly sourced" in b.source
    assert wbi_band(20, "developed").ili_range == "≥ 8"
    with pytest.raises(ValueError, match="country group"):
        wbi_band(3, "emerging")


def test_uarl_validity_limits():
    assert uarl_validity(500, 20_000, 40) == []
    notes = uarl_validity(100, 1_500, 40)
    assert any("3,000" in n for n in notes) and any("density 15.0/km" in n for n in notes)
    assert any("5,000" in n for n in uarl_validity(100, 4_000, 40))
    assert any("outside the validated 25–100 m" in n for n in uarl_validity(100, 10_000, 15))


def test_loss_values():
    v = loss_values(1_000_000, 200_000, 3_500, 7_800)
    assert v == {"real": 3.5e9, "apparent": 1.56e9, "total": 5.06e9}


def test_eif_formula_by_hand():
    # CI 2,000 per km, CV 0.5 per m³, RR 0.5 m³/km/day per year:
    # EIF = √(0.789 · (2,000/0.5) / 0.5) = √6,312 = 79.45 months; 0.789 = 144·2/365
    r = economic_intervention_frequency(2_000, 0.5, 0.5, mains_km=100)
    assert r.eif_months == pytest.approx(math.sqrt(144 * 2 / 365 * 4_000 / 0.5))
    assert r.eif_months == pytest.approx(79.45, abs=0.01)
    assert r.survey_pct_per_year == pytest.approx(1200 / r.eif_months)
    assert r.unreported_leakage_m3_km_day == pytest.approx(0.5 * r.eif_months / 24)
    assert r.annual_budget == pytest.approx(2_000 * 100 * 12 / r.eif_months)


def test_eif_minimises_survey_plus_leakage_cost():
    """Independent check of the constant: the yearly cost of surveying every T years plus the
    unreported leakage that builds up meanwhile (RR·T/2 m³/km/day on average), minimised by
    brute force, is lowest at the EIF."""
    ci, cv, rr = 1_500.0, 0.8, 0.3
    t_years = np.linspace(0.05, 20, 400_000)
    cost = ci / t_years + cv * rr * t_years / 2 * 365
    best_months = 12 * t_years[np.argmin(cost)]
    assert economic_intervention_frequency(ci, cv, rr).eif_months == pytest.approx(best_months, rel=1e-3)


def test_eif_rejects_nonsense():
    with pytest.raises(ValueError, match="positive"):
        economic_intervention_frequency(0, 1, 1)


def test_linear_trajectory_46_to_30_by_2030():
    df = nrw_trajectory(46, 30, 2025, 2030)
    # 16 points over 5 years: 3.2 points a year
    assert list(df.index) == [2025, 2026, 2027, 2028, 2029, 2030]
    assert df["nrw_pct"].tolist() == pytest.approx([46.0, 42.8, 39.6, 36.4, 33.2, 30.0])
    assert df["reduction_pp"].tolist() == pytest.approx([0, 3.2, 3.2, 3.2, 3.2, 3.2])


def test_geometric_trajectory_and_volumes():
    df = nrw_trajectory(46, 30, 2025, 2030, method="geometric", billed_m3_per_year=300e6, billed_growth_pct=4, variable_production_cost=3_500)
    ratio = (30 / 46) ** (1 / 5)  # the same relative cut every year: 8.19 %
    assert df.loc[2026, "nrw_pct"] == pytest.approx(46 * ratio)
    # 2030: billed 300e6·1.04⁵ = 364.996e6; SIV = billed/(1 − 0.30); NRW = SIV − billed
    billed = 300e6 * 1.04**5
    assert df.loc[2030, "billed_m3"] == pytest.approx(billed)
    assert df.loc[2030, "system_input_m3"] == pytest.approx(billed / 0.70)
    assert df.loc[2030, "nrw_m3"] == pytest.approx(billed / 0.70 - billed)
    baseline = billed / 0.54 - billed  # staying at 46 %
    assert df.loc[2030, "saved_m3"] == pytest.approx(baseline - (billed / 0.70 - billed))
    assert df.loc[2030, "saved_value"] == pytest.approx(df.loc[2030, "saved_m3"] * 3_500)


def test_trajectory_rejects_nonsense():
    with pytest.raises(ValueError, match="after start year"):
        nrw_trajectory(46, 30, 2030, 2025)
    with pytest.raises(ValueError, match=r"\[0, 100\)"):
        nrw_trajectory(146, 30, 2025, 2030)
    with pytest.raises(ValueError, match="unknown method"):
        nrw_trajectory(46, 30, 2025, 2030, method="magic")
