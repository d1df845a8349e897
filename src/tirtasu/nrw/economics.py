"""Economics of water losses: their value, how often to survey, the trajectory to a target.

Sources
-------
- Valuing losses: real losses at the variable production cost (water that has to be produced
  again), apparent losses at the customer retail unit cost (water that reached a customer and
  earned nothing): AWWA M36 / Free Water Audit Software convention; Thornton, Sturm & Kunkel,
  *Water Loss Control* (2nd ed. 2008).
- Economic intervention frequency (EIF) of active leakage control, Lambert & Lalonde (2005),
  "Using practical predictions of economic intervention frequency to calculate short-run
  economic leakage level, with or without pressure management", IWA Leakage 2005, Halifax:
  EIF [months] = √(0.789 · (CI/CV) / RR). The constant follows from minimising the yearly cost
  of surveys (CI per km every T) plus the unreported leakage that builds up between them
  (RR·T/2 on average): T² = 2·CI/(CV·RR·365) years², i.e. 144·2/365 = 0.789 in months².
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "loss_values",
    "EIFResult",
    "economic_intervention_frequency",
    "nrw_trajectory",
]

DAYS_PER_YEAR = 365.0
EIF_CONSTANT = 144.0 * 2.0 / DAYS_PER_YEAR  # 0.789: months² per (year·day), see the module notes


def loss_values(
    real_losses_m3_per_year: float,
    apparent_losses_m3_per_year: float,
    variable_production_cost: float,
    customer_retail_unit_cost: float,
) -> dict:
    """Yearly value of real and apparent losses.

    Parameters
    ----------
    real_losses_m3_per_year : float [m³/year]
    apparent_losses_m3_per_year : float [m³/year]
    variable_production_cost : float [currency/m³]
    customer_retail_unit_cost : float [currency/m³]

    Returns
    -------
    dict
        ``real`` [currency/year], ``apparent`` [currency/year], ``total`` [currency/year].
    """
    real = real_losses_m3_per_year * variable_production_cost
    apparent = apparent_losses_m3_per_year * customer_retail_unit_cost
    return {"real": real, "apparent": apparent, "total": real + apparent}


@dataclass(frozen=True)
class EIFResult:
    """Economic active leakage control policy.

    Attributes
    ----------
    eif_months : float [month]
        Economic intervention frequency: survey the whole system once every EIF months.
    survey_pct_per_year : float [%]
        Share of the mains to survey each year, 12/EIF·100 (EPIS).
    unreported_leakage_m3_km_day : float [m³/km/day]
        Average unreported leakage that builds up between surveys at that frequency, RR·EIF/24
        (RR·T/2 with T in years).
    annual_budget : float or None [currency/year]
        Survey budget for ``mains_km``: CI·Lm·12/EIF.
    unreported_leakage_m3_per_year : float or None [m³/year]
        For ``mains_km``.
    """

    eif_months: float
    survey_pct_per_year: float
    unreported_leakage_m3_km_day: float
    annual_budget: float | None = None
    unreported_leakage_m3_per_year: float | None = None


def economic_intervention_frequency(
    survey_cost_per_km: float,
    variable_cost_per_m3: float,
    rate_of_rise_m3_km_day_per_year: float,
    mains_km: float | None = None,
) -> EIFResult:
    """Economic intervention frequency of active leakage control (Lambert & Lalonde 2005).

    EIF = √(0.789 · (CI / CV) / RR)

    Parameters
    ----------
    survey_cost_per_km : float [currency/km]
        CI, cost of surveying one km of mains for leaks (and repairing what is found).
    variable_cost_per_m3 : float [currency/m³]
        CV, variable cost of the water lost.
    rate_of_rise_m3_km_day_per_year : float [m³/km/day per year]
        RR, how fast unreported leakage rises without intervention.
    mains_km : float, optional [km]
        To size the annual budget and the leakage volume.

    Returns
    -------
    EIFResult
    """
    for name, v in (
        ("survey cost per km", survey_cost_per_km),
        ("variable cost of water", variable_cost_per_m3),
        ("rate of rise of unreported leakage", rate_of_rise_m3_km_day_per_year),
    ):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number, got {v!r}")
    eif = math.sqrt(EIF_CONSTANT * (survey_cost_per_km / variable_cost_per_m3) / rate_of_rise_m3_km_day_per_year)
    uul = rate_of_rise_m3_km_day_per_year * eif / 24.0
    budget = vol = None
    if mains_km is not None:
        budget = survey_cost_per_km * mains_km * 12.0 / eif
        vol = uul * mains_km * DAYS_PER_YEAR
    return EIFResult(eif, 1200.0 / eif, uul, budget, vol)


def nrw_trajectory(
    from_pct: float,
    to_pct: float,
    start_year: int,
    target_year: int,
    method: str = "linear",
    billed_m3_per_year: float | None = None,
    billed_growth_pct: float = 0.0,
    variable_production_cost: float | None = None,
) -> pd.DataFrame:
    """Year-by-year path of NRW (% of system input) from today's level to a target.

    Parameters
    ----------
    from_pct, to_pct : float [%]
        NRW as % of system input in ``start_year`` and ``target_year``.
    start_year, target_year : int
    method : {"linear", "geometric"}
        ``linear``: equal steps in percentage points; ``geometric``: the same relative reduction
        every year (front-loads the effort less).
    billed_m3_per_year : float, optional [m³/year]
        Billed authorized consumption in ``start_year``. With it, the system input needed and
        the NRW volume follow from SIV = billed / (1 − NRW%), NRW = SIV − billed.
    billed_growth_pct : float [%/year]
        Growth of billed consumption (new connections), compounding.
    variable_production_cost : float, optional [currency/m³]
        To value the water saved compared with staying at ``from_pct``.

    Returns
    -------
    pandas.DataFrame
        Indexed by year: ``nrw_pct`` [%], ``reduction_pp`` [percentage points that year]; with
        billed volume also ``billed_m3``, ``system_input_m3``, ``nrw_m3``, ``saved_m3`` [m³/year]
        compared with NRW staying at ``from_pct``; and ``saved_value`` [currency/year].
    """
    if target_year <= start_year:
        raise ValueError(f"target year {target_year} must be after start year {start_year}")
    for name, v in (("from", from_pct), ("to", to_pct)):
        if not 0 <= v < 100:
            raise ValueError(f"NRW {name} percentage must be in [0, 100), got {v}")
    years = np.arange(start_year, target_year + 1)
    frac = (years - start_year) / (target_year - start_year)
    if method == "linear":
        pct = from_pct + (to_pct - from_pct) * frac
    elif method == "geometric":
        if from_pct <= 0 or to_pct <= 0:
            raise ValueError("a geometric path needs positive start and target percentages")
        pct = from_pct * (to_pct / from_pct) ** frac
    else:
        raise ValueError(f"unknown method {method!r}; expected 'linear' or 'geometric'")
    df = pd.DataFrame({"nrw_pct": pct}, index=pd.Index(years, name="year"))
    df["reduction_pp"] = (df["nrw_pct"].shift(1) - df["nrw_pct"]).fillna(0.0)
    if billed_m3_per_year is not None:
        billed = billed_m3_per_year * (1.0 + billed_growth_pct / 100.0) ** (years - start_year)
        siv = billed / (1.0 - pct / 100.0)
        df["billed_m3"] = billed
        df["system_input_m3"] = siv
        df["nrw_m3"] = siv - billed
        baseline_nrw = billed / (1.0 - from_pct / 100.0) - billed
        df["saved_m3"] = baseline_nrw - df["nrw_m3"]
        if variable_production_cost is not None:
            df["saved_value"] = df["saved_m3"] * variable_production_cost
    return df
