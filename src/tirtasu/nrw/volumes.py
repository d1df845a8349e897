"""Volumes and rates in water-audit units, converted at the edge to m³.

An audit is kept in m³ inside tirtasu. Audit files and forms may state a volume over the period
(``m3``, ``ML``, ``MG``…) or a rate (``m3/day``, ``ML/d``, ``L/s``, ``MGD``…), which is turned
into the volume over the audit period by multiplying by its length.

========================  =========================================================
unit (case-insensitive)    meaning
========================  =========================================================
m3, m³, kL                 cubic metre (kilolitre)
L                          litre (0.001 m³)
ML, Ml                     megalitre (1,000 m³). Never millilitres: no audit uses them
GL                         gigalitre (10⁶ m³)
Mm3, MCM                   million m³
gal, kgal, MG, MGal        US gallon, thousand, million US gallons (3.785411784 L)
AF, acre-ft                acre-foot (1233.48183754752 m³)
<volume>/<time>            a rate: time in s, min, h, d/day, wk/week, month, yr/year/a
MGD, GPM, CFS, CMD, …      the flow units of :mod:`tirtasu.units`
========================  =========================================================

A year is 365 days and a month 365/12 days, so that ``m3/yr`` over a 365-day audit year gives
back the stated value.
"""

from __future__ import annotations

import math

from tirtasu.units import UnknownUnitError, conversion_factor

__all__ = ["VOLUME_UNITS", "to_m3", "is_rate", "check_unit"]

_US_GAL = 3.785411784e-3  # m³

#: factors from a volume unit to m³ (keys lower-case, no spaces)
VOLUME_UNITS = {
    "m3": 1.0,
    "m³": 1.0,
    "cum": 1.0,
    "kl": 1.0,
    "l": 1e-3,
    "litre": 1e-3,
    "liter": 1e-3,
    "ml": 1e3,  # megalitre
    "megalitre": 1e3,
    "megaliter": 1e3,
    "gl": 1e6,
    "mm3": 1e6,  # million m³ (never mm³)
    "mcm": 1e6,
    "gal": _US_GAL,
    "kgal": 1e3 * _US_GAL,
    "mg": 1e6 * _US_GAL,
    "mgal": 1e6 * _US_GAL,
    "af": 1233.48183754752,
    "acre-ft": 1233.48183754752,
    "acreft": 1233.48183754752,
}

#: hours in a time unit used as the denominator of a rate
_TIME_UNITS = {
    "s": 1 / 3600,
    "sec": 1 / 3600,
    "min": 1 / 60,
    "h": 1.0,
    "hr": 1.0,
    "hour": 1.0,
    "d": 24.0,
    "day": 24.0,
    "wk": 168.0,
    "week": 168.0,
    "month": 365 * 24 / 12,
    "mo": 365 * 24 / 12,
    "yr": 365 * 24.0,
    "year": 365 * 24.0,
    "a": 365 * 24.0,
}


def _norm(unit: str) -> str:
    return str(unit).strip().lower().replace(" ", "").replace("³", "3").replace("per", "/")


def _rate_factor_m3h(unit: str) -> float | None:
    """m³/h per unit of a rate, or None when ``unit`` is a plain volume."""
    key = _norm(unit)
    if "/" in key:
        num, _, den = key.partition("/")
        if num in VOLUME_UNITS and den in _TIME_UNITS:
            return VOLUME_UNITS[num] / _TIME_UNITS[den]
    if key in VOLUME_UNITS:
        return None
    try:  # MGD, GPM, CFS, CMD, LPS … as tirtasu.units knows them
        return conversion_factor(unit, "flow")
    except UnknownUnitError:
        pass
    raise ValueError(
        f"unknown volume unit {unit!r}; use a volume (m3, ML, L, kL, GL, MG, gal, AF) "
        "or a rate (m3/day, ML/d, L/s, m3/h, MGD …)"
    )


def is_rate(unit: str) -> bool:
    """True when ``unit`` is a rate (to be multiplied by the period length)."""
    return _rate_factor_m3h(unit) is not None


def check_unit(unit: str) -> None:
    """Raise ValueError if ``unit`` is neither a known volume nor a known rate."""
    _rate_factor_m3h(unit)


def to_m3(value: float, unit: str = "m3", period_days: float | None = None) -> float:
    """Convert a volume, or a rate sustained over the period, to m³.

    Parameters
    ----------
    value : float
        In ``unit``.
    unit : str
        A volume unit (``m3``, ``ML``…) or a rate (``m3/day``, ``L/s``…); see the module table.
    period_days : float, optional [day]
        Length of the audit period; required for rates.

    Returns
    -------
    float [m³]

    Examples
    --------
    >>> to_m3(2.5, "ML")
    2500.0
    >>> to_m3(100, "m3/day", period_days=365)
    36500.0
    """
    rate = _rate_factor_m3h(unit)
    if rate is None:
        return float(value) * VOLUME_UNITS[_norm(unit)]
    if period_days is None or not math.isfinite(period_days) or period_days <= 0:
        raise ValueError(f"unit {unit!r} is a rate: the audit needs a period (start, end) to turn it into a volume")
    return float(value) * rate * 24.0 * float(period_days)
