"""The IWA/AWWA water balance with 95 % confidence limits on every component.

Structure (IWA Water Loss Task Force; AWWA M36; Thornton, Sturm & Kunkel, *Water Loss Control*,
2nd ed. 2008, ch. 7)::

    system input volume ─┬─ water exported
                         └─ water supplied ─┬─ authorized consumption ─┬─ billed  (metered, unmetered)
                                            │                          └─ unbilled (metered, unmetered)
                                            └─ water losses ─┬─ apparent (unauthorized consumption,
                                                             │   customer meter inaccuracies,
                                                             │   systematic data handling errors)
                                                             └─ real losses (CARL) = the remainder
    non-revenue water = water supplied − billed authorized
                      = unbilled authorized + apparent losses + real losses

Uncertainty
-----------
Every input may carry a 95 % confidence limit (CL95, ± relative) and is then taken as normally
distributed with standard deviation σ = V·CL95/1.96, as in WB-EasyCalc and *Water Loss Control*
(section 7.8, p. 111): variance = (V·CL95/1.96)², variances add for sums and differences, and
CL95 of a derived volume = 1.96·√(Σ variances)/V.

tirtasu propagates by first-order (linear) error propagation over the independent inputs:
σ_k² = Σ_i (∂f_k/∂x_i · σ_i)². For the sums and differences of the balance this *is* the
variance-addition rule above, exactly; it also carries the limits through to ratios (NRW %, ILI)
and handles apparent losses given as a percentage of a consumption that is itself uncertain
(the two are then correlated, which plain variance addition would ignore). The derivatives are
taken numerically on the same function that computes the balance, so the two cannot drift apart.
A Monte Carlo draw of the same inputs (:func:`water_balance` with ``monte_carlo=N``) checks the
propagation.

Data validity
-------------
Each input may carry an AWWA-style data validity grade (1–10). The audit's validity score is
tirtasu's aggregate of those grades: the mean grade of the volume inputs weighted by their volume,
times 10 (0–100). It follows the idea of the AWWA Free Water Audit Software score (grades weighted
by how much each input matters) but is *not* the AWWA spreadsheet's exact weighting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tirtasu.nrw.indicators import Band, uarl_l_per_day, uarl_validity, wbi_band

__all__ = [
    "Volume",
    "Percent",
    "Source",
    "AuditInputs",
    "Component",
    "WaterBalance",
    "water_balance",
    "cl95_from_variance",
    "variance_from_cl95",
    "PERCENT_BASES",
    "UNBILLED_PERCENT_BASES",
    "LABELS",
]

Z95 = 1.96  # two-sided 95 % quantile of the normal distribution, as the sources use it
DAYS_PER_YEAR = 365.0


def variance_from_cl95(volume, cl95):
    """Variance of a volume from its 95 % confidence limit.

    Parameters
    ----------
    volume : float [m³]
    cl95 : float [-]
        Relative limit, 0.02 for ±2 %.

    Returns
    -------
    float [m⁶]
        (V·CL95/1.96)²
    """
    return (np.asarray(volume) * np.asarray(cl95) / Z95) ** 2


def cl95_from_variance(volume, variance):
    """Relative 95 % confidence limit of a volume with the given variance, 1.96·√var / V [-]."""
    return Z95 * np.sqrt(variance) / np.abs(volume)


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Volume:
    """A volume entered in the audit.

    Attributes
    ----------
    value : float [m³]
        Over the audit period.
    cl95 : float, optional [-]
        95 % confidence limit, relative (0.02 for ±2 %). None: taken as exact.
    grade : int, optional [1–10]
        AWWA-style data validity grade.
    note : str, optional
        Where the value came from.
    """

    value: float
    cl95: float | None = None
    grade: int | None = None
    note: str | None = None


#: the consumptions an apparent-loss percentage may apply to
PERCENT_BASES = (
    "system_input_volume",
    "water_supplied",
    "billed_metered",
    "metered_consumption",
    "billed_authorized",
    "authorized_consumption",
)
#: … and those unbilled unmetered consumption may be a percentage of (not depending on itself)
UNBILLED_PERCENT_BASES = ("system_input_volume", "water_supplied", "billed_metered", "billed_authorized")


@dataclass(frozen=True)
class Percent:
    """An apparent-loss item given as a percentage of the consumption it applies to.

    Attributes
    ----------
    pct : float [%]
    of : str
        One of :data:`PERCENT_BASES`.
    cl95 : float, optional [-]
        Relative 95 % limit of the percentage (hence of the volume it gives).
    grade : int, optional [1–10]
    under_registration : bool
        For customer meter inaccuracies: ``pct`` is the meters' under-registration, so the
        volume not registered is base·p/(1−p) (the base being what the meters did register),
        as in the AWWA Free Water Audit Software. Otherwise the volume is base·p.
    """

    pct: float
    of: str
    cl95: float | None = None
    grade: int | None = None
    under_registration: bool = False
    note: str | None = None

    def __post_init__(self):
        if self.of not in PERCENT_BASES:
            raise ValueError(f"a percentage must apply to one of {', '.join(PERCENT_BASES)}; got {self.of!r}")
        if self.under_registration and not 0 <= self.pct < 100:
            raise ValueError(f"meter under-registration must be in [0, 100) %; got {self.pct}")


@dataclass(frozen=True)
class Source:
    """One metered source of system input (own source or imported water).

    Attributes
    ----------
    measured : float [m³]
        As the bulk meter recorded it.
    meter_error_pct : float [%]
        Known systematic error of the bulk meter: positive if it reads high, negative if it reads
        low. The corrected volume is measured / (1 + error/100).
    cl95 : float, optional [-]
        Relative 95 % limit of the corrected volume.
    """

    name: str
    measured: float
    meter_error_pct: float = 0.0
    cl95: float | None = None
    grade: int | None = None
    imported: bool = False
    note: str | None = None

    @property
    def value(self) -> float:
        """Volume corrected for the known bulk-meter error [m³]."""
        return self.measured / (1.0 + self.meter_error_pct / 100.0)


_VOLUME_KEYS = ("water_exported", "billed_metered", "billed_unmetered", "unbilled_metered", "unbilled_unmetered")
_APPARENT_KEYS = ("unauthorized_consumption", "customer_meter_inaccuracies", "systematic_data_handling_errors")


@dataclass
class AuditInputs:
    """Everything a water balance needs, in internal units (volumes in m³ over the period).

    Attributes
    ----------
    sources : list of Source
        System input: own sources and imported water, each corrected for bulk-meter error.
    mains_length_km : float, optional [km]
    service_connections : float, optional [-]
    private_pipe_length_km : float [km]
        Total private pipe between property boundary and customer meters (0: meters at the line).
    average_pressure_m : float, optional [m]
    variable_production_cost : float, optional [currency/m³]
        Marginal cost of producing (or buying) water: values real losses.
    customer_retail_unit_cost : float, optional [currency/m³]
        Retail tariff: values apparent losses (water that reached a customer without revenue).
    annual_operating_cost : float, optional [currency/year]
        For NRW as a percentage of the cost of running the system.
    country_group : {"developing", "developed"}
        Which WBI band row is headlined (both are reported).
    """

    sources: list[Source]
    billed_metered: Volume
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    water_exported: Volume = field(default_factory=lambda: Volume(0.0))
    billed_unmetered: Volume = field(default_factory=lambda: Volume(0.0))
    unbilled_metered: Volume = field(default_factory=lambda: Volume(0.0))
    unbilled_unmetered: Volume = field(default_factory=lambda: Volume(0.0))
    unauthorized_consumption: Volume | Percent = field(default_factory=lambda: Volume(0.0))
    customer_meter_inaccuracies: Volume | Percent = field(default_factory=lambda: Volume(0.0))
    systematic_data_handling_errors: Volume | Percent = field(default_factory=lambda: Volume(0.0))
    mains_length_km: float | None = None
    service_connections: float | None = None
    private_pipe_length_km: float = 0.0
    average_pressure_m: float | None = None
    variable_production_cost: float | None = None
    customer_retail_unit_cost: float | None = None
    annual_operating_cost: float | None = None
    currency: str = ""
    country_group: str = "developing"
    name: str = ""
    dma: str | None = None
    grades: dict = field(default_factory=dict)  # grades of non-volume inputs (system data, costs)
    notes: list = field(default_factory=list)  # remarks of whoever built the inputs (e.g. the file reader)

    @property
    def days(self) -> float | None:
        """Length of the audit period [day] (end exclusive)."""
        if self.start is None or self.end is None:
            return None
        return (pd.Timestamp(self.end) - pd.Timestamp(self.start)) / pd.Timedelta(days=1)

    def primitives(self) -> list[tuple[str, float, float]]:
        """The independent uncertain inputs: (key, nominal value, σ)."""
        out = []
        for i, s in enumerate(self.sources):
            out.append((f"source:{i}", s.value, _sigma(s.value, s.cl95)))
        for key in _VOLUME_KEYS + _APPARENT_KEYS:
            v = getattr(self, key)
            if isinstance(v, Percent):
                p = v.pct / 100.0
                out.append((f"{key}.pct", p, _sigma(p, v.cl95)))
            else:
                out.append((key, v.value, _sigma(v.value, v.cl95)))
        return out


def _sigma(value: float, cl95: float | None) -> float:
    return 0.0 if not cl95 else abs(value) * cl95 / Z95


# ---------------------------------------------------------------------------------------------
# the balance itself: one function on (possibly vector-valued) inputs
# ---------------------------------------------------------------------------------------------
#: label, unit, formula of every output
LABELS = {
    "system_input_volume": ("System input volume", "m3", "Σ sources, each measured/(1+meter error)"),
    "own_sources": ("Volume from own sources", "m3", "Σ own sources (corrected)"),
    "water_imported": ("Water imported", "m3", "Σ imported (corrected)"),
    "water_exported": ("Water exported", "m3", "input"),
    "water_supplied": ("Water supplied", "m3", "system input − exported"),
    "billed_metered": ("Billed metered consumption", "m3", "input"),
    "billed_unmetered": ("Billed unmetered consumption", "m3", "input"),
    "billed_authorized": ("Billed authorized consumption", "m3", "billed metered + billed unmetered"),
    "unbilled_metered": ("Unbilled metered consumption", "m3", "input"),
    "unbilled_unmetered": ("Unbilled unmetered consumption", "m3", "input"),
    "unbilled_authorized": ("Unbilled authorized consumption", "m3", "unbilled metered + unbilled unmetered"),
    "authorized_consumption": ("Authorized consumption", "m3", "billed + unbilled authorized"),
    "water_losses": ("Water losses", "m3", "water supplied − authorized consumption"),
    "unauthorized_consumption": ("Unauthorized consumption", "m3", "input or % of a consumption"),
    "customer_meter_inaccuracies": ("Customer meter inaccuracies", "m3", "input or metered·p/(1−p)"),
    "systematic_data_handling_errors": ("Systematic data handling errors", "m3", "input or % of a consumption"),
    "apparent_losses": ("Apparent losses", "m3", "unauthorized + meter inaccuracies + data handling errors"),
    "real_losses": ("Real losses (CARL)", "m3", "water losses − apparent losses"),
    "revenue_water": ("Revenue water", "m3", "billed authorized + water exported (billed)"),
    "non_revenue_water": ("Non-revenue water", "m3", "water supplied − billed authorized"),
    # indicators
    "nrw_pct_siv": ("NRW, % of system input", "%", "NRW / system input · 100"),
    "nrw_pct_supplied": ("NRW, % of water supplied", "%", "NRW / water supplied · 100"),
    "real_losses_pct_supplied": ("Real losses, % of water supplied", "%", "CARL / water supplied · 100"),
    "apparent_losses_pct_supplied": ("Apparent losses, % of water supplied", "%", "apparent / water supplied · 100"),
    "real_losses_l_conn_day": ("Real losses per connection", "L/conn/day", "CARL·1000 / Nc / days"),
    "real_losses_m3_km_day": ("Real losses per km of mains", "m3/km/day", "CARL / Lm / days"),
    "apparent_losses_l_conn_day": ("Apparent losses per connection", "L/conn/day", "apparent·1000 / Nc / days"),
    "uarl": ("Unavoidable annual real losses (UARL), over the period", "m3", "(18·Lm + 0.8·Nc + 25·Lp)·P · days / 1000"),
    "uarl_l_conn_day": ("UARL per connection", "L/conn/day", "(18·Lm + 0.8·Nc + 25·Lp)·P / Nc"),
    "ili": ("Infrastructure Leakage Index (ILI)", "-", "CARL / UARL"),
    "value_real_losses": ("Value of real losses, per year", "currency/yr", "CARL · variable production cost · 365/days"),
    "value_apparent_losses": ("Value of apparent losses, per year", "currency/yr", "apparent · retail unit cost · 365/days"),
    "value_unbilled_authorized": ("Value of unbilled authorized, per year", "currency/yr", "unbilled authorized · variable production cost · 365/days"),
    "value_nrw": ("Value of non-revenue water, per year", "currency/yr", "sum of the three values above"),
    "nrw_pct_cost": ("NRW, % of annual operating cost", "%", "value of NRW / annual operating cost · 100"),
}


def _item(inp: AuditInputs, key: str, x: dict, bases: dict):
    """An input volume, or the volume its percentage gives."""
    item = getattr(inp, key)
    if not isinstance(item, Percent):
        return x[key]
    p = x[f"{key}.pct"]
    base = bases[item.of]
    return base * p / (1.0 - p) if item.under_registration else base * p


def _evaluate(inp: AuditInputs, x: dict) -> dict:
    """Every component and indicator from the primitive values ``x`` (floats or equal-shape arrays)."""
    out = {}
    own = 0.0
    imp = 0.0
    for i, s in enumerate(inp.sources):
        if s.imported:
            imp = imp + x[f"source:{i}"]
        else:
            own = own + x[f"source:{i}"]
    out["own_sources"] = own
    out["water_imported"] = imp
    out["system_input_volume"] = siv = own + imp
    for key in ("water_exported", "billed_metered", "billed_unmetered", "unbilled_metered"):
        out[key] = x[key]
    out["water_supplied"] = ws = siv - out["water_exported"]
    out["billed_authorized"] = bac = out["billed_metered"] + out["billed_unmetered"]
    bases = {
        "system_input_volume": siv,
        "water_supplied": ws,
        "billed_metered": out["billed_metered"],
        "metered_consumption": out["billed_metered"] + out["unbilled_metered"],
        "billed_authorized": bac,
    }
    out["unbilled_unmetered"] = _item(inp, "unbilled_unmetered", x, bases)
    out["unbilled_authorized"] = uac = out["unbilled_metered"] + out["unbilled_unmetered"]
    out["authorized_consumption"] = bases["authorized_consumption"] = ac = bac + uac
    out["water_losses"] = wl = ws - ac
    for key in _APPARENT_KEYS:
        out[key] = _item(inp, key, x, bases)
    out["apparent_losses"] = al = sum(out[k] for k in _APPARENT_KEYS)
    out["real_losses"] = rl = wl - al
    out["revenue_water"] = bac + out["water_exported"]
    out["non_revenue_water"] = nrw = ws - bac

    # indicators
    with np.errstate(divide="ignore", invalid="ignore"):
        out["nrw_pct_siv"] = 100.0 * nrw / siv
        out["nrw_pct_supplied"] = 100.0 * nrw / ws
        out["real_losses_pct_supplied"] = 100.0 * rl / ws
        out["apparent_losses_pct_supplied"] = 100.0 * al / ws
        days = inp.days
        nc, lm, lp, p = inp.service_connections, inp.mains_length_km, inp.private_pipe_length_km, inp.average_pressure_m
        if days:
            if nc:
                out["real_losses_l_conn_day"] = rl * 1000.0 / nc / days
                out["apparent_losses_l_conn_day"] = al * 1000.0 / nc / days
            if lm:
                out["real_losses_m3_km_day"] = rl / lm / days
            if nc and lm is not None and p:
                uarl_day = uarl_l_per_day(lm, nc, lp or 0.0, p)
                out["uarl"] = uarl_day * days / 1000.0
                out["uarl_l_conn_day"] = uarl_day / nc
                out["ili"] = rl / out["uarl"]
            per_year = DAYS_PER_YEAR / days
            vpc, cruc = inp.variable_production_cost, inp.customer_retail_unit_cost
            if vpc is not None:
                out["value_real_losses"] = rl * vpc * per_year
                out["value_unbilled_authorized"] = uac * vpc * per_year
            if cruc is not None:
                out["value_apparent_losses"] = al * cruc * per_year
            if vpc is not None and cruc is not None:
                out["value_nrw"] = out["value_real_losses"] + out["value_apparent_losses"] + out["value_unbilled_authorized"]
                if inp.annual_operating_cost:
                    out["nrw_pct_cost"] = 100.0 * out["value_nrw"] / inp.annual_operating_cost
    return out


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------
@dataclass
class Component:
    """One figure of the balance with its 95 % confidence limit.

    Attributes
    ----------
    value : float [unit]
    cl95_abs : float or None [unit]
        Half-width of the 95 % interval (value ± cl95_abs); None where nothing is uncertain.
    kind : {"input", "derived", "indicator"}
    """

    key: str
    label: str
    value: float
    unit: str
    cl95_abs: float | None = None
    grade: int | None = None
    kind: str = "derived"
    formula: str = ""
    note: str | None = None

    @property
    def cl95(self) -> float | None:
        """Relative 95 % limit [-] (0.02 = ±2 %); None if undefined (no uncertainty or value 0)."""
        if self.cl95_abs is None or self.value == 0 or not math.isfinite(self.value):
            return None
        return self.cl95_abs / abs(self.value)

    def to_dict(self) -> dict:
        d = {
            "label": self.label,
            "value": _num(self.value),
            "unit": self.unit,
            "cl95_pct": _num(None if self.cl95 is None else 100.0 * self.cl95),
            "cl95_abs": _num(self.cl95_abs),
            "kind": self.kind,
            "formula": self.formula,
        }
        if self.grade is not None:
            d["grade"] = self.grade
        if self.note:
            d["note"] = self.note
        return d


def _num(v):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


@dataclass
class MonteCarlo:
    """Monte Carlo check of the propagation: per output, mean, std and the 2.5/97.5 % quantiles."""

    n: int
    seed: int
    table: pd.DataFrame  # index = key; columns mean, std, p2_5, p97_5, cl95_pct

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "seed": self.seed,
            "components": {
                k: {c: _num(v) for c, v in row.items()} for k, row in self.table.to_dict("index").items()
            },
        }


@dataclass
class WaterBalance:
    """The water balance of one audit: components, indicators, bands, validity, warnings."""

    inputs: AuditInputs
    components: dict[str, Component]
    indicators: dict[str, Component]
    bands: dict[str, Band]
    validity_score: float | None
    uarl_notes: list[str]
    warnings: list[str]
    contributions: pd.DataFrame  # variance shares [-]: rows = outputs, columns = primitives
    monte_carlo: MonteCarlo | None = None

    def __getitem__(self, key: str) -> Component:
        return self.components[key] if key in self.components else self.indicators[key]

    def to_dict(self) -> dict:
        """A JSON-ready dict: every figure with value, ±CL95 and unit."""
        inp = self.inputs
        d = {
            "name": inp.name,
            "dma": inp.dma,
            "period": {
                "start": None if inp.start is None else pd.Timestamp(inp.start).isoformat(),
                "end": None if inp.end is None else pd.Timestamp(inp.end).isoformat(),
                "days": inp.days,
            },
            "volume_unit": "m3",
            "currency": inp.currency,
            "components": {k: c.to_dict() for k, c in self.components.items()},
            "indicators": {k: c.to_dict() for k, c in self.indicators.items()},
            "wbi_bands": {
                g: {"band": b.band, "ili_range": b.ili_range, "meaning": b.meaning, "source": b.source}
                for g, b in self.bands.items()
            },
            "country_group": inp.country_group,
            "validity_score": _num(self.validity_score),
            "uarl_validity": self.uarl_notes,
            "warnings": self.warnings,
            "uncertainty_drivers": {
                k: {p: _num(v) for p, v in row.items() if v > 0}
                for k, row in self.contributions.loc[
                    [r for r in ("non_revenue_water", "real_losses") if r in self.contributions.index]
                ].to_dict("index").items()
            },
            "system": {
                "mains_length_km": inp.mains_length_km,
                "service_connections": inp.service_connections,
                "private_pipe_length_km": inp.private_pipe_length_km,
                "average_pressure_m": inp.average_pressure_m,
            },
        }
        if self.monte_carlo is not None:
            d["monte_carlo"] = self.monte_carlo.to_dict()
        return d


def primitive_label(inp: AuditInputs, key: str) -> str:
    """Human name of a primitive input key."""
    if key.startswith("source:"):
        return f"source {inp.sources[int(key.split(':')[1])].name}"
    if key.endswith(".pct"):
        return LABELS[key[:-4]][0].lower() + " (%)"
    return LABELS[key][0].lower()


def water_balance(inputs: AuditInputs, monte_carlo: int = 0, seed: int = 0) -> WaterBalance:
    """Compute the water balance, its indicators and their 95 % confidence limits.

    Parameters
    ----------
    inputs : AuditInputs
        Volumes in m³ over the period.
    monte_carlo : int
        Number of Monte Carlo draws for a check of the propagation (0: none).
    seed : int
        Seed of the Monte Carlo draws.

    Returns
    -------
    WaterBalance
    """
    if not inputs.sources:
        raise ValueError("the audit needs at least one source of system input")
    uu = inputs.unbilled_unmetered
    if isinstance(uu, Percent) and uu.of not in UNBILLED_PERCENT_BASES:
        raise ValueError(
            f"unbilled unmetered consumption cannot be a percentage of {uu.of} (it is part of it); "
            f"use one of {', '.join(UNBILLED_PERCENT_BASES)}"
        )
    prims = inputs.primitives()
    keys = [k for k, _, _ in prims]
    nominal = np.array([v for _, v, _ in prims], dtype=float)
    sigma = np.array([s for _, _, s in prims], dtype=float)
    n = len(prims)

    # nominal and ± perturbations, evaluated in one vectorised call
    steps = np.where(sigma > 0, sigma * 1e-4, 0.0)
    grid = np.tile(nominal, (2 * n + 1, 1))
    for i in range(n):
        grid[1 + 2 * i, i] += steps[i]
        grid[2 + 2 * i, i] -= steps[i]
    res = _evaluate(inputs, {k: grid[:, i] for i, k in enumerate(keys)})
    values = {k: float(np.broadcast_to(v, (2 * n + 1,))[0]) for k, v in res.items()}
    contrib = {}
    for k, v in res.items():
        v = np.broadcast_to(np.asarray(v, dtype=float), (2 * n + 1,))
        d = np.zeros(n)
        for i in range(n):
            if steps[i] > 0:
                d[i] = (v[1 + 2 * i] - v[2 + 2 * i]) / (2 * steps[i]) * sigma[i]
        contrib[k] = d
    var = {k: float(np.sum(d**2)) for k, d in contrib.items()}
    shares = pd.DataFrame(
        {k: (d**2 / var[k] if var[k] > 0 else np.zeros(n)) for k, d in contrib.items()}, index=keys
    ).T
    shares.columns = [primitive_label(inputs, k) for k in keys]

    # assemble components
    grades = _input_grades(inputs)
    has_kind = {"own_sources": any(not s.imported for s in inputs.sources), "water_imported": any(s.imported for s in inputs.sources)}
    components, indicators = {}, {}
    for k, v in values.items():
        if not has_kind.get(k, True):
            continue  # no imported water (or no own source): no row for it
        label, unit, formula = LABELS[k]
        if unit == "currency/yr" and inputs.currency:
            unit = f"{inputs.currency}/yr"
        kind = "indicator" if k not in _VOLUME_COMPONENTS else ("input" if k in _INPUT_KEYS else "derived")
        comp = Component(
            key=k,
            label=label,
            value=v,
            unit=unit,
            cl95_abs=Z95 * math.sqrt(var[k]) if var[k] > 0 else None,
            grade=grades.get(k),
            kind=kind,
            formula=formula,
            note=_note(inputs, k),
        )
        (indicators if kind == "indicator" else components)[k] = comp

    bands = {}
    if "ili" in values and math.isfinite(values["ili"]):
        for g in ("developing", "developed"):
            bands[g] = wbi_band(values["ili"], g)
    uarl_notes = []
    if "uarl" in values:
        uarl_notes = uarl_validity(inputs.mains_length_km, inputs.service_connections, inputs.average_pressure_m)

    mc = _monte_carlo(inputs, keys, nominal, sigma, monte_carlo, seed) if monte_carlo else None
    return WaterBalance(
        inputs=inputs,
        components=components,
        indicators=indicators,
        bands=bands,
        validity_score=validity_score(inputs),
        uarl_notes=uarl_notes,
        warnings=list(inputs.notes) + _warnings(inputs, values, components),
        contributions=shares,
        monte_carlo=mc,
    )


_INPUT_KEYS = set(_VOLUME_KEYS) | set(_APPARENT_KEYS) | {"own_sources", "water_imported", "system_input_volume"}
_VOLUME_COMPONENTS = [k for k, (_, unit, _) in LABELS.items() if unit == "m3" and k != "uarl"]


def _note(inp: AuditInputs, key: str) -> str | None:
    item = getattr(inp, key, None)
    if isinstance(item, Percent):
        how = "under-registration of" if item.under_registration else "of"
        return f"{item.pct:g} % {how} {item.of.replace('_', ' ')}"
    if isinstance(item, Volume):
        return item.note
    if key == "system_input_volume":
        parts = []
        for s in inp.sources:
            if s.meter_error_pct:
                parts.append(f"{s.name}: {s.measured:,.0f} m³ measured, meter error {s.meter_error_pct:+g} %")
            if s.note:
                parts.append(f"{s.name}: {s.note}")
        return "; ".join(parts) or None
    return None


def _input_grades(inp: AuditInputs) -> dict:
    g = {}
    src_grades = [(s.value, s.grade) for s in inp.sources if s.grade is not None]
    if src_grades and len(src_grades) == len(inp.sources):
        tot = sum(v for v, _ in src_grades)
        g["system_input_volume"] = round(sum(v * gr for v, gr in src_grades) / tot) if tot else src_grades[0][1]
    for key in _VOLUME_KEYS + _APPARENT_KEYS:
        item = getattr(inp, key)
        if item.grade is not None:
            g[key] = item.grade
    return g


def validity_score(inp: AuditInputs) -> float | None:
    """Volume-weighted mean validity grade of the volume inputs, × 10 (0–100); None if ungraded.

    Each graded input weighs by its volume (sources by their corrected volume, percentage items by
    the volume they give at nominal values). See the module notes: tirtasu's aggregate, not the
    exact AWWA spreadsheet weighting.
    """
    nominal = {k: v for k, v, _ in inp.primitives()}
    vals = _evaluate(inp, nominal)
    pairs = [(s.value, s.grade) for s in inp.sources if s.grade is not None]
    for key in _VOLUME_KEYS + _APPARENT_KEYS:
        item = getattr(inp, key)
        if item.grade is not None:
            pairs.append((abs(float(vals[key])), item.grade))
    total = sum(w for w, _ in pairs)
    if not pairs or total <= 0:
        return None
    return 10.0 * sum(w * g for w, g in pairs) / total


def _warnings(inp: AuditInputs, values: dict, components: dict) -> list[str]:
    w = []
    if values["real_losses"] < 0:
        w.append(
            "real losses come out negative: authorized consumption plus apparent losses exceed water "
            "supplied; check the system input (bulk meter error?) and the billing period alignment"
        )
    rl = components.get("real_losses")
    if rl is not None and rl.cl95 is not None and rl.cl95 > 1.0:
        w.append(
            f"real losses are uncertain by ±{100 * rl.cl95:.0f} %: the balance cannot tell them from zero; "
            "improve the inputs that drive the uncertainty first"
        )
    ili = values.get("ili")
    if ili is not None and math.isfinite(ili) and ili < 1.0:
        w.append(f"ILI {ili:.2f} < 1 is implausible: real losses below the unavoidable level; check the inputs")
    for key in _VOLUME_KEYS + _APPARENT_KEYS:
        item = getattr(inp, key)
        if isinstance(item, Volume) and item.value < 0:
            w.append(f"{key} is negative ({item.value:g} m³)")
    missing = [
        name
        for name, v in (
            ("mains_length_km", inp.mains_length_km),
            ("service_connections", inp.service_connections),
            ("average_pressure_m", inp.average_pressure_m),
        )
        if v is None
    ]
    if missing:
        w.append("no " + ", ".join(missing) + ": UARL and ILI not computed")
    if inp.days is None:
        w.append("no period: per-day and per-year indicators not computed")
    return w


def _monte_carlo(inp, keys, nominal, sigma, n, seed) -> MonteCarlo:
    rng = np.random.default_rng(seed)
    draws = {k: nominal[i] + sigma[i] * rng.standard_normal(n) for i, k in enumerate(keys)}
    res = _evaluate(inp, draws)
    rows = {}
    for k, v in res.items():
        v = np.broadcast_to(np.asarray(v, dtype=float), (n,))
        mean, std = float(np.mean(v)), float(np.std(v, ddof=1))
        rows[k] = {
            "mean": mean,
            "std": std,
            "p2_5": float(np.quantile(v, 0.025)),
            "p97_5": float(np.quantile(v, 0.975)),
            "cl95_pct": 100.0 * Z95 * std / abs(mean) if mean else float("nan"),
        }
    return MonteCarlo(n=n, seed=seed, table=pd.DataFrame.from_dict(rows, orient="index"))
