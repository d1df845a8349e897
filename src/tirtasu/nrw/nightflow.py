"""Real losses of a DMA from its minimum night flow (MNF), with FAVAD pressure scaling.

For each night of the record:

1. **Minimum night flow** [m³/h]: the lowest mean inflow over a ``window`` (1 h) starting within
   the night hours (02:00–04:00 local by default), from the DMA's net inflow (Σ sign·flow over
   its boundary meters).
2. **Legitimate night use** [m³/h], either
   - from per-property allowances: households × household night use + non-households ×
     non-household night use + exceptional night users. tirtasu's defaults (1.7 L/h per
     household, 8 L/h per non-household, ±50 %) are *assumptions* to be replaced by local
     measurement; they are not sourced figures; or
   - calibrated on reference nights when unreported leakage was nil (right after a leak sweep
     with repairs, or a step test): the reference MNF of the same weekday, less background
     leakage. Night use follows the week (weekend nights differ), hence by weekday; or
   - measured by smart meters (AMR) on a sample of the DMA's customers, in each night's own MNF
     window, scaled up to all customers by their billed volume (a ratio estimator,
     :func:`night_use_from_sample`).
3. **Night leakage** = MNF − legitimate night use [m³/h]. A night below the night use gives a
   negative value, kept: clipping would bias the period's mean upwards.
4. **Night-day factor** NDF [h/day] from the pressure series with FAVAD: leak flow varies as
   (P/P₀)^N1, so NDF = Σ_t (P_t / P_night)^N1 · Δt over the day, and
   daily real losses = night leakage × NDF [m³/day]. N1 is 0.5 (fixed-area leaks, rigid pipes) to
   1.5 (variable-area leaks, plastic pipes), about 1.0 for large mixed systems (Thornton, Sturm &
   Kunkel, *Water Loss Control*, 2nd ed., ch. 16; May 1994 "Leakage, pressure and control" for
   FAVAD). Without a pressure series NDF = 24 h (pressure taken as constant), flagged.
5. **Background vs bursts** (BABE, Lambert 1994; SANFLOW, McKenzie 1999 WRC TT 109/99):
   background leakage at night = (mains·b_m + connections·b_c + private pipe·b_p) ×
   (P_night/50)^1.5, with SANFLOW's default b_m = 40 L/km/h at 50 m; b_c = 3 L/conn/h and b_p are
   assumptions (SANFLOW's other defaults could not be checked here). Over the day background
   leakage scales with exponent 1.5; bursts are the rest of the daily real losses.
6. **UARL and ILI** per DMA with the average pressure over the day, and **recoverable leakage** =
   real losses − UARL [m³/day], by which DMAs are ranked.

Uncertainty of the period's mean daily real losses (95 %): the night-to-night scatter of the
daily estimates (standard error of the mean), the inflow meters' CL95 on MNF·NDF, and the CL95
of legitimate night use, combined in quadrature (independent). This is deliberately
conservative: the scatter term also holds real changes of leakage over the period.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from tirtasu.nrw.indicators import uarl_l_per_day

__all__ = [
    "DMAAttributes",
    "NightFlowSettings",
    "DMANightFlow",
    "minimum_night_flow",
    "legitimate_night_use",
    "night_day_factor",
    "background_leakage",
    "NightUse",
    "night_use_from_allowances",
    "night_use_from_reference",
    "night_use_from_sample",
    "analyse_dma",
    "rank_dmas",
]

Z95 = 1.96


@dataclass(frozen=True)
class DMAAttributes:
    """What the night-flow analysis needs to know of a DMA.

    Attributes
    ----------
    mains_km : float, optional [km]
    connections : float, optional [-]
        Service connections.
    households, non_households : float [-]
        Properties, for legitimate night use.
    private_pipe_km : float [km]
        Private pipe between property line and meter (UARL's Lp).
    exceptional_night_use_m3h : float [m³/h]
        Known night users (factories, hospitals …), metered or estimated.
    """

    name: str
    mains_km: float | None = None
    connections: float | None = None
    households: float = 0.0
    non_households: float = 0.0
    private_pipe_km: float = 0.0
    exceptional_night_use_m3h: float = 0.0


@dataclass(frozen=True)
class NightFlowSettings:
    """Parameters of the night-flow analysis (see the module notes for what is sourced).

    Attributes
    ----------
    night_start_h, night_end_h : float [h, local time]
        The MNF window must lie within these hours.
    window : str
        Averaging window of the MNF (pandas offset).
    step : str
        Resolution the series are brought to (pandas offset); ``window`` must be a multiple.
    tz : str
        Time zone of the night hours.
    n1 : float [-]
        FAVAD exponent of total leakage, 0.5–1.5.
    household_night_use_lh, non_household_night_use_lh : float [L/h per property]
        Assumed legitimate night use; replace with measured values.
    night_use_cl95 : float [-]
        Relative 95 % limit of legitimate night use from allowances.
    smart_meter_cl95 : float [-]
        Relative 95 % limit of smart-meter readings at night flows (systematic): ISO 4064 /
        OIML R 49 allow new meters ±5 % in their lower flow zone, taken here as the limit.
    inflow_cl95 : float [-]
        Relative 95 % limit of the DMA inflow meters.
    background_mains_lkmh : float [L/km/h at 50 m]
        SANFLOW default 40.
    background_connections_lch, background_private_lkmh : float [L/conn/h, L/km/h at 50 m]
    background_n : float [-]
        Pressure exponent of background leakage (1.5, SANFLOW).
    """

    night_start_h: float = 2.0
    night_end_h: float = 4.0
    window: str = "1h"
    step: str = "15min"
    tz: str = "UTC"
    n1: float = 1.0
    household_night_use_lh: float = 1.7
    non_household_night_use_lh: float = 8.0
    night_use_cl95: float = 0.5
    smart_meter_cl95: float = 0.05
    inflow_cl95: float = 0.02
    background_mains_lkmh: float = 40.0
    background_connections_lch: float = 3.0
    background_private_lkmh: float = 40.0
    background_n: float = 1.5
    reference_pressure_m: float = 50.0

    def __post_init__(self):
        if not 0.5 <= self.n1 <= 1.5:
            raise ValueError(f"N1 must be within 0.5–1.5 (FAVAD range); got {self.n1}")
        if not 0 <= self.night_start_h < self.night_end_h <= 24:
            raise ValueError("night hours must satisfy 0 ≤ start < end ≤ 24")
        w, s = pd.Timedelta(self.window), pd.Timedelta(self.step)
        if w < s or (w / s) != int(w / s):
            raise ValueError(f"window {self.window} must be a whole multiple of step {self.step}")
        if w > pd.Timedelta(hours=self.night_end_h - self.night_start_h):
            raise ValueError(f"window {self.window} does not fit in the night hours")


def _local_regular(series: pd.Series, step: str, tz: str) -> pd.Series:
    s = pd.Series(series, dtype=float).dropna()
    idx = pd.DatetimeIndex(s.index)
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    s.index = idx.tz_convert(tz)
    return s.sort_index().resample(step).mean()


def _window_mean(s: pd.Series, n: int) -> pd.Series:
    """Mean over n steps, labelled by the window's first step; NaN if any step is missing."""
    return s.rolling(n, min_periods=n).mean().shift(-(n - 1))


def minimum_night_flow(inflow: pd.Series, settings: NightFlowSettings = NightFlowSettings()) -> pd.DataFrame:
    """Minimum night flow of each night.

    Parameters
    ----------
    inflow : pandas.Series [m³/h]
        Net inflow of the DMA, indexed by time (tz-aware, or naive UTC).

    Returns
    -------
    pandas.DataFrame
        Indexed by local date; columns ``mnf_m3h`` [m³/h] and ``mnf_start`` (local start of the
        window where it occurred).
    """
    q = _local_regular(inflow, settings.step, settings.tz)
    n = int(pd.Timedelta(settings.window) / pd.Timedelta(settings.step))
    qw = _window_mean(q, n)
    return _night_minimum(qw, settings)


def _in_night(index: pd.DatetimeIndex, settings: NightFlowSettings) -> np.ndarray:
    """Whether a window starting at each (local) time lies within the night hours."""
    tod = (index.hour + index.minute / 60 + index.second / 3600).to_numpy()
    win_h = pd.Timedelta(settings.window) / pd.Timedelta(hours=1)
    return (tod >= settings.night_start_h - 1e-9) & (tod + win_h <= settings.night_end_h + 1e-9)


def _night_minimum(qw: pd.Series, settings: NightFlowSettings) -> pd.DataFrame:
    cand = qw[_in_night(qw.index, settings)].dropna()
    if cand.empty:
        return pd.DataFrame({"mnf_m3h": pd.Series(dtype=float), "mnf_start": pd.Series(dtype=object)})
    dates = cand.index.normalize()
    pos = cand.groupby(dates).idxmin()
    starts = pd.DatetimeIndex(pos.tolist())
    out = pd.DataFrame({"mnf_m3h": cand.loc[starts].to_numpy(), "mnf_start": starts}, index=pos.index)
    out.index.name = "night"
    return out


def legitimate_night_use(attrs: DMAAttributes, settings: NightFlowSettings = NightFlowSettings()) -> float:
    """Legitimate night use of a DMA [m³/h].

    households·household rate + non-households·non-household rate + exceptional night use.
    """
    return (
        attrs.households * settings.household_night_use_lh / 1000.0
        + attrs.non_households * settings.non_household_night_use_lh / 1000.0
        + attrs.exceptional_night_use_m3h
    )


def night_day_factor(pressure: pd.Series, night_pressure: float, n1: float) -> float:
    """Night-day factor of one day with FAVAD [h/day].

    Parameters
    ----------
    pressure : pandas.Series [m]
        The day's pressure at a regular step (NaN where missing).
    night_pressure : float [m]
        Pressure during the minimum night flow window.
    n1 : float [-]
        FAVAD exponent.

    Returns
    -------
    float [h]
        Σ (P_t/P_night)^N1 · Δt over a regular day = 24 h · mean((P_t/P_night)^N1), which also
        scales a day with missing steps to 24 h; NaN with no pressure.
    """
    p = np.asarray(pressure, dtype=float)
    p = p[np.isfinite(p)]
    if len(p) == 0 or not night_pressure or not math.isfinite(night_pressure) or night_pressure <= 0:
        return float("nan")
    ratio = np.clip(p, 0.0, None) / night_pressure
    return float(np.mean(ratio**n1) * 24.0)


def background_leakage(attrs: DMAAttributes, pressure_m: float, settings: NightFlowSettings = NightFlowSettings()) -> float:
    """Background leakage of a DMA at a pressure (BABE) [m³/h].

    (b_m·Lm + b_c·Nc + b_p·Lp)/1000 · (P/P_ref)^N_bg, rates in L/h at P_ref = 50 m.
    """
    rate_lh = (
        settings.background_mains_lkmh * (attrs.mains_km or 0.0)
        + settings.background_connections_lch * (attrs.connections or 0.0)
        + settings.background_private_lkmh * (attrs.private_pipe_km or 0.0)
    )
    return rate_lh / 1000.0 * (pressure_m / settings.reference_pressure_m) ** settings.background_n


@dataclass
class DMANightFlow:
    """Night-flow analysis of one DMA over a period.

    Attributes
    ----------
    nights : pandas.DataFrame
        One row per night (local date): mnf_m3h, mnf_start, night_pressure_m,
        legit_night_use_m3h, night_leakage_m3h, ndf_h, real_losses_m3d, background_m3d,
        bursts_m3d.
    real_losses_m3d : float [m³/day]
        Mean daily real losses over the nights analysed, with ``cl95_m3d`` its ± 95 % limit.
    """

    dma: str
    attributes: DMAAttributes
    settings: NightFlowSettings
    nights: pd.DataFrame
    real_losses_m3d: float
    cl95_m3d: float
    background_m3d: float
    bursts_m3d: float
    average_pressure_m: float | None
    uarl_m3d: float | None
    night_use: NightUse | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def n_nights(self) -> int:
        return int(self.nights["real_losses_m3d"].notna().sum())

    @property
    def ili(self) -> float | None:
        if not self.uarl_m3d:
            return None
        return self.real_losses_m3d / self.uarl_m3d

    @property
    def recoverable_m3d(self) -> float | None:
        """Real losses above the unavoidable level [m³/day]; None without UARL."""
        if self.uarl_m3d is None:
            return None
        return max(0.0, self.real_losses_m3d - self.uarl_m3d)

    @property
    def real_losses_l_conn_day(self) -> float | None:
        c = self.attributes.connections
        return self.real_losses_m3d * 1000.0 / c if c else None

    @property
    def real_losses_m3_km_day(self) -> float | None:
        m = self.attributes.mains_km
        return self.real_losses_m3d / m if m else None

    def total_m3(self, days: float | None = None) -> float:
        """Real losses over ``days`` (default: the nights analysed) [m³]."""
        return self.real_losses_m3d * (self.n_nights if days is None else days)

    def summary(self) -> dict:
        """Key figures (JSON-ready; volumes m³/day, flows m³/h, pressures m)."""
        n = self.nights

        def f(v):
            return None if v is None or not math.isfinite(v) else float(v)

        return {
            "dma": self.dma,
            "nights": self.n_nights,
            "mnf_m3h": f(n["mnf_m3h"].mean()) if len(n) else None,
            "legit_night_use_m3h": f(n["legit_night_use_m3h"].mean()) if len(n) else None,
            "night_leakage_m3h": f(n["night_leakage_m3h"].mean()) if len(n) else None,
            "night_pressure_m": f(n["night_pressure_m"].mean()) if len(n) else None,
            "ndf_h": f(n["ndf_h"].mean()) if len(n) else None,
            "real_losses_m3d": f(self.real_losses_m3d),
            "real_losses_cl95_m3d": f(self.cl95_m3d),
            "real_losses_cl95_pct": f(100 * self.cl95_m3d / self.real_losses_m3d) if self.real_losses_m3d else None,
            "background_m3d": f(self.background_m3d),
            "bursts_m3d": f(self.bursts_m3d),
            "average_pressure_m": f(self.average_pressure_m) if self.average_pressure_m is not None else None,
            "uarl_m3d": f(self.uarl_m3d) if self.uarl_m3d is not None else None,
            "ili": f(self.ili) if self.ili is not None else None,
            "recoverable_m3d": f(self.recoverable_m3d) if self.recoverable_m3d is not None else None,
            "real_losses_l_conn_day": f(self.real_losses_l_conn_day) if self.real_losses_l_conn_day is not None else None,
            "real_losses_m3_km_day": f(self.real_losses_m3_km_day) if self.real_losses_m3_km_day is not None else None,
            "n1": self.settings.n1,
            "night_use_method": self.night_use.method if self.night_use else None,
            "attributes": asdict(self.attributes),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class NightUse:
    """Legitimate night use of a DMA [m³/h] and how well it is known.

    Attributes
    ----------
    per_night : float or pandas.Series [m³/h]
        One value for every night, or a Series indexed by night (local date).
    sigma_m3h : float [m³/h]
        Standard deviation of its mean over the period (systematic: it does not average out).
    method : str
        How it was obtained, for the report.
    windows : pandas.Series, optional
        Per night, the local start of the window the night use was measured in: the night flow
        is then taken in that window instead of at the inflow's minimum.
    """

    per_night: float | pd.Series
    sigma_m3h: float
    method: str
    windows: pd.Series | None = None


def night_use_from_allowances(attrs: DMAAttributes, settings: NightFlowSettings = NightFlowSettings()) -> NightUse:
    """Night use from per-property allowances (see :func:`legitimate_night_use`), ±``night_use_cl95``."""
    value = legitimate_night_use(attrs, settings)
    return NightUse(
        value,
        value * settings.night_use_cl95 / Z95,
        f"allowances: {attrs.households:,.0f} households × {settings.household_night_use_lh:g} L/h + "
        f"{attrs.non_households:,.0f} non-households × {settings.non_household_night_use_lh:g} L/h + "
        f"{attrs.exceptional_night_use_m3h:g} m³/h exceptional (±{100 * settings.night_use_cl95:.0f} %)",
    )


def night_use_from_reference(
    nights: pd.DataFrame, start, end, background_m3h: float | pd.Series = 0.0
) -> NightUse:
    """Night use calibrated on reference nights: MNF when unreported leakage was (near) nil.

    Reference nights are those right after a leak-detection sweep with all found leaks repaired,
    or of a step test: their MNF is legitimate night use plus background leakage. Night use
    follows a weekly cycle, so every night gets the mean reference MNF of the same weekday
    (all reference nights if that weekday has none), less background leakage.

    Parameters
    ----------
    nights : pandas.DataFrame
        From :func:`minimum_night_flow` (index: local night date; column ``mnf_m3h`` [m³/h]).
    start, end : date-like
        Reference nights are those in [start, end) (local dates).
    background_m3h : float or pandas.Series [m³/h]
        Background leakage on the reference nights (BABE), taken out of their MNF.

    Returns
    -------
    NightUse
        σ of the period mean: the within-weekday scatter of reference MNF (pooled, if a weekday
        has two or more reference nights; else the scatter of all) divided by √(number of nights).
    """
    idx = nights.index
    tz = idx.tz
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    lo = lo.tz_localize(tz) if lo.tzinfo is None else lo.tz_convert(tz)
    hi = hi.tz_localize(tz) if hi.tzinfo is None else hi.tz_convert(tz)
    ref_mask = (idx >= lo) & (idx < hi)
    bg = background_m3h if isinstance(background_m3h, pd.Series) else pd.Series(background_m3h, index=idx)
    ref = (nights.loc[ref_mask, "mnf_m3h"] - bg[ref_mask]).dropna()
    if len(ref) == 0:
        raise ValueError(f"no night with a complete MNF window between {lo.date()} and {hi.date()}: no reference")
    dow = ref.groupby(ref.index.day_of_week)
    means = dow.mean()
    per_night = pd.Series(idx.day_of_week.map(lambda d: means.get(d, np.nan)), index=idx, dtype=float).fillna(ref.mean())
    replicated = dow.size()[dow.size() > 1]
    if len(replicated):
        resid = ref[ref.index.day_of_week.isin(replicated.index)] - ref.index.day_of_week.map(means).to_numpy()[
            ref.index.day_of_week.isin(replicated.index)
        ]
        dof = int(replicated.sum() - len(replicated))
        sd = math.sqrt(float((resid**2).sum()) / dof)
    else:
        sd = float(ref.std(ddof=1)) if len(ref) > 1 else float(ref.mean()) * 0.5
    sigma = sd / math.sqrt(len(ref))
    return NightUse(
        per_night,
        sigma,
        f"reference nights {lo.date()} to {hi.date()} (excl.): {len(ref)} night(s), MNF by weekday "
        f"{ref.mean():.2f} m³/h on average, less background",
    )


def night_use_from_sample(
    sample: pd.DataFrame,
    weights: pd.Series,
    total_weight: float,
    population: float | None = None,
    unscaled: pd.Series | float = 0.0,
    meter_cl95: float = 0.05,
    what: str = "smart meters",
) -> NightUse:
    """Night use of a DMA from metered sample units (smart meters), scaled up by a ratio estimator.

    For every night k, R_k = Σ_i y_ik / Σ_i x_i over the units i with a reading that night, and
    night use = R_k · X + u_k: y_ik the unit's mean flow in night k's MNF window, x_i its weight
    (the billed volume of its customers), X the weight of the whole DMA, u_k flows counted as
    they are (metered units without customers: their use is not leakage).

    σ of the period mean (systematic, it does not average over nights): the ratio estimator's
    sampling error on the units' period means ȳ_i (Cochran, *Sampling Techniques*, 3rd ed., §6.4),
    var(R) = (1 − f) / (n · x̄²) · Σ (ȳ_i − R·x_i)² / (n − 1), f = n / population; and the meters'
    systematic error, ``meter_cl95``/1.96 of the whole, in quadrature.

    Parameters
    ----------
    sample : pandas.DataFrame [m³/h]
        Nights (index) × units (columns); NaN where a unit has no complete window that night.
    weights : pandas.Series
        Weight x_i of each unit (column), > 0.
    total_weight : float
        X, the weight of all the DMA's customers (the units included).
    population : float, optional
        Number of units the DMA has (for the finite-population correction); default: none.
    unscaled : float or pandas.Series [m³/h]
        Per night, added as measured.
    meter_cl95 : float [-]
    what : str
        Named in the method text.
    """
    cols = [c for c in sample.columns if c in weights.index and weights[c] > 0]
    y = sample[cols].astype(float)
    x = weights[cols].astype(float)
    n = len(cols)
    if n < 2:
        raise ValueError(f"night use from a sample needs two or more units with a weight; got {n}")
    if not total_weight or total_weight <= 0:
        raise ValueError("night use from a sample needs the DMA's total weight > 0")
    have = y.notna()
    ratio = y.sum(axis=1, min_count=2) / have.mul(x, axis=1).sum(axis=1).where(have.sum(axis=1) >= 2)
    extra = unscaled if isinstance(unscaled, pd.Series) else pd.Series(float(unscaled), index=y.index)
    per_night = ratio * total_weight + extra.reindex(y.index).fillna(0.0)
    ybar = y.mean()
    ok = ybar.notna()
    ybar, xs = ybar[ok], x[ok]
    m = len(ybar)
    if m < 2:
        raise ValueError("night use from a sample needs two or more units with readings")
    r = float(ybar.sum() / xs.sum())
    f = min(1.0, m / population) if population else 0.0
    var_r = (1.0 - f) / (m * float(xs.mean()) ** 2) * float(((ybar - r * xs) ** 2).sum()) / (m - 1)
    mean_use = float(per_night.mean())
    sigma = math.sqrt(var_r * total_weight**2 + (mean_use * meter_cl95 / Z95) ** 2)
    share = float(xs.sum() / total_weight)
    u = float(extra.mean())
    text = (
        f"{what}: {m} unit(s) measured in each night's MNF window, scaled by billed volume "
        f"(sample {100 * share:.0f} % of it): {mean_use - u:.2f} m³/h on average"
    )
    if u:
        text += f", + {u:.2f} m³/h measured where no customer is registered"
    text += f"; ±{100 * Z95 * sigma / mean_use:.0f} % (sample and meters)" if mean_use > 0 else ""
    return NightUse(per_night, sigma, text)


def analyse_dma(
    inflow: pd.Series,
    pressure: pd.Series | None,
    attrs: DMAAttributes,
    settings: NightFlowSettings = NightFlowSettings(),
    reference: tuple | None = None,
    night_use: NightUse | None = None,
) -> DMANightFlow:
    """Night-flow analysis of one DMA.

    Parameters
    ----------
    inflow : pandas.Series [m³/h]
        Net inflow of the DMA (time-indexed, tz-aware or naive UTC), storage changes inside the
        DMA already taken out.
    pressure : pandas.Series [m], optional
        Average-zone-night-point pressure (or the mean of the DMA's pressure sensors).
    attrs : DMAAttributes
    settings : NightFlowSettings
    reference : (start, end), optional
        Calibrate legitimate night use on these reference nights (local dates, end exclusive),
        see :func:`night_use_from_reference`. Default: per-property allowances.
    night_use : NightUse, optional
        Legitimate night use given directly (e.g. from smart meters); overrides both.

    Returns
    -------
    DMANightFlow
    """
    warnings: list[str] = []
    n = int(pd.Timedelta(settings.window) / pd.Timedelta(settings.step))
    q = _local_regular(inflow, settings.step, settings.tz)
    qw = _window_mean(q, n)
    nights = _night_minimum(qw, settings)
    if night_use is not None and night_use.windows is not None:
        # night use measured in its own windows (smart meters: the hour of least customer use):
        # the night flow is the inflow in that window, not the minimum of a noisy inflow, which
        # would be biased low against a night use measured independently
        w = night_use.windows.dropna()
        starts = pd.DatetimeIndex(w.to_numpy()).tz_convert(q.index.tz) if len(w) else pd.DatetimeIndex([], tz=q.index.tz)
        nights = pd.DataFrame({"mnf_m3h": qw.reindex(starts).to_numpy(), "mnf_start": starts}, index=w.index)
        nights.index.name = "night"

    p = None
    if pressure is not None and len(pd.Series(pressure).dropna()):
        p = _local_regular(pressure, settings.step, settings.tz)
    if p is None:
        warnings.append("no pressure series: night-day factor taken as 24 h (constant pressure)")
        nights["night_pressure_m"] = np.nan
        nights["ndf_h"] = 24.0
        ndf_bg = pd.Series(24.0, index=nights.index)
        avg_p = None
    else:
        pw = _window_mean(p, n)
        nights["night_pressure_m"] = pw.reindex(pd.DatetimeIndex(nights["mnf_start"])).to_numpy() if len(nights) else []
        by_day = p.groupby(p.index.normalize())
        ndf, ndfb = [], []
        for day, row in nights.iterrows():
            day_p = by_day.get_group(day) if day in by_day.groups else pd.Series(dtype=float)
            ndf.append(night_day_factor(day_p, row["night_pressure_m"], settings.n1))
            ndfb.append(night_day_factor(day_p, row["night_pressure_m"], settings.background_n))
        nights["ndf_h"] = ndf
        ndf_bg = pd.Series(ndfb, index=nights.index, dtype=float)
        missing = nights["ndf_h"].isna()
        if missing.any():
            warnings.append(f"{int(missing.sum())} night(s) without pressure: NDF taken as 24 h for them")
            nights.loc[missing, "ndf_h"] = 24.0
            ndf_bg[missing] = 24.0
        avg_p = float(p.mean())

    pn = nights["night_pressure_m"].fillna(settings.reference_pressure_m)
    bg_night = pd.Series([background_leakage(attrs, float(x), settings) for x in pn], index=nights.index, dtype=float)
    if night_use is None:
        if reference is not None and len(nights):
            night_use = night_use_from_reference(nights, reference[0], reference[1], bg_night)
        else:
            night_use = night_use_from_allowances(attrs, settings)
    if night_use.method.startswith("allowances"):
        warnings.append(
            "legitimate night use from assumed per-property allowances: check it against reference "
            "nights (after a leak sweep, or a step test) or smart meters before trusting the result"
        )
    lnu = night_use.per_night
    nights["legit_night_use_m3h"] = lnu.reindex(nights.index) if isinstance(lnu, pd.Series) else lnu
    nights["night_leakage_m3h"] = nights["mnf_m3h"] - nights["legit_night_use_m3h"]
    neg = nights["night_leakage_m3h"] < 0
    if neg.any() and night_use.method.startswith("allowances"):
        warnings.append(
            f"{int(neg.sum())} night(s) with MNF below the legitimate night use: night use "
            "over-estimated or an inflow meter under-reads"
        )
    # negative nights are kept: clipping them at 0 would bias the period mean upwards
    nights["real_losses_m3d"] = nights["night_leakage_m3h"] * nights["ndf_h"]

    bg_night = np.minimum(bg_night, nights["night_leakage_m3h"].clip(lower=0.0))
    nights["background_m3d"] = bg_night * ndf_bg
    nights["bursts_m3d"] = nights["real_losses_m3d"] - nights["background_m3d"]

    d = nights["real_losses_m3d"].dropna()
    if len(d) == 0:
        warnings.append("no complete night window in the record: nothing to analyse")
        mean = cl = bg = bu = float("nan")
    else:
        mean = float(d.mean())
        se2 = float(d.var(ddof=1)) / len(d) if len(d) > 1 else 0.0
        ndf_mean = float(nights["ndf_h"].mean())
        meter = float((nights["mnf_m3h"] * nights["ndf_h"]).mean()) * settings.inflow_cl95 / Z95
        use = night_use.sigma_m3h * ndf_mean
        cl = Z95 * math.sqrt(se2 + meter**2 + use**2)
        bg = float(nights["background_m3d"].mean())
        bu = float(nights["bursts_m3d"].mean())
        if len(d) < 7:
            warnings.append(f"only {len(d)} night(s): the estimate is fragile; a week or more is usual")
        if mean < 0 and mean + cl >= 0:
            warnings.append("mean night leakage is negative but within its limits of zero: no leakage measurable")
        elif mean < 0:
            warnings.append("mean night leakage is negative: legitimate night use is over-estimated")

    uarl = None
    if attrs.mains_km is not None and attrs.connections and avg_p is not None:
        uarl = uarl_l_per_day(attrs.mains_km, attrs.connections, attrs.private_pipe_km, avg_p) / 1000.0
    return DMANightFlow(
        dma=attrs.name,
        attributes=attrs,
        settings=settings,
        nights=nights,
        real_losses_m3d=mean,
        cl95_m3d=cl,
        background_m3d=bg,
        bursts_m3d=bu,
        average_pressure_m=avg_p,
        uarl_m3d=uarl,
        night_use=night_use,
        warnings=warnings,
    )


def rank_dmas(results: list[DMANightFlow]) -> pd.DataFrame:
    """DMAs ranked by recoverable leakage (real losses − UARL), largest first.

    Ties (e.g. several DMAs at or below their UARL) are broken by real losses; DMAs without UARL
    (attributes unknown) are ranked after, by their real losses.

    Returns
    -------
    pandas.DataFrame
        One row per DMA: rank, real_losses_m3d, cl95_m3d, bursts_m3d, background_m3d, uarl_m3d,
        ili, recoverable_m3d, real_losses_l_conn_day, real_losses_m3_km_day, nights.
    """
    rows = []
    for r in results:
        rows.append(
            {
                "dma": r.dma,
                "real_losses_m3d": r.real_losses_m3d,
                "cl95_m3d": r.cl95_m3d,
                "bursts_m3d": r.bursts_m3d,
                "background_m3d": r.background_m3d,
                "uarl_m3d": r.uarl_m3d,
                "ili": r.ili,
                "recoverable_m3d": r.recoverable_m3d,
                "real_losses_l_conn_day": r.real_losses_l_conn_day,
                "real_losses_m3_km_day": r.real_losses_m3_km_day,
                "nights": r.n_nights,
            }
        )
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["_has"] = df["recoverable_m3d"].notna()
    df["_key"] = df["recoverable_m3d"].fillna(df["real_losses_m3d"])
    df = df.sort_values(["_has", "_key", "real_losses_m3d"], ascending=False).drop(columns=["_has", "_key"])
    df.insert(0, "rank", range(1, len(df) + 1))
    return df.set_index("dma")
