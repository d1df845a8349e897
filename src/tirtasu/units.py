"""Units of measure and their conversion to tirtasu's internal units.

Inside tirtasu there is one set of units, and conversion happens only at the edges (model files,
uploads, sensor payloads):

============  ==================  ===================================================
quantity      internal unit       accepted on input (case-insensitive aliases)
============  ==================  ===================================================
pressure      m (of water)        m, mH2O, mwc, ft, ftH2O, psi, bar, mbar, kPa, Pa, MPa
head / level  m                   m, cm, mm, ft, in
flow          m3/h                m3/h, m3/s, m3/d, L/s, L/min, L/h, ML/d, GPM, MGD,
                                  IMGD, CFS, AFD (and EPANET's CMH, CMD, LPS, LPM, MLD)
demand        L/h                 the flow units above
quality       as reported         mg/L, NTU, uS/cm, degC, pH (stored as given)
============  ==================  ===================================================

Pressure is converted to metres of fresh water at 4 °C (ρ = 1000 kg/m³, g = 9.80665 m/s²),
the convention of EPANET and of most SCADA systems. US gallons are used for GPM and MGD,
imperial gallons for IMGD, as in EPANET.
"""

from __future__ import annotations

import numpy as np

from wntr.epanet.util import FlowUnits

__all__ = [
    "KINDS",
    "INTERNAL_UNIT",
    "UnknownUnitError",
    "canonical_unit",
    "conversion_factor",
    "to_internal",
    "flow_factor_to_m3h",
]

G = 9.80665  # m/s²
RHO_WATER = 1000.0  # kg/m³
PA_PER_M = RHO_WATER * G  # Pa per metre of water column

#: sensor kinds and the unit their readings are stored in
INTERNAL_UNIT = {
    "pressure": "m",
    "head": "m",
    "level": "m",
    "flow": "m3/h",
    "demand": "L/h",
    "quality": None,  # stored in the unit the sensor reports
}
KINDS = tuple(INTERNAL_UNIT)

_FT = 0.3048
_US_GAL = 3.785411784e-3  # m³
_IMP_GAL = 4.54609e-3  # m³

# factors to metres
_LENGTH = {
    "m": 1.0,
    "cm": 0.01,
    "mm": 0.001,
    "ft": _FT,
    "in": 0.0254,
}
_PRESSURE = {
    "m": 1.0,
    "mh2o": 1.0,
    "mwc": 1.0,
    "ft": _FT,
    "fth2o": _FT,
    "psi": 6894.757293168 / PA_PER_M,
    "bar": 1e5 / PA_PER_M,
    "mbar": 1e2 / PA_PER_M,
    "kpa": 1e3 / PA_PER_M,
    "pa": 1.0 / PA_PER_M,
    "mpa": 1e6 / PA_PER_M,
}
# factors to m³/h
_FLOW = {
    "m3/h": 1.0,
    "m3/s": 3600.0,
    "m3/d": 1 / 24,
    "l/s": 3.6,
    "l/min": 0.06,
    "l/h": 1e-3,
    "ml/d": 1000 / 24,
    "gpm": _US_GAL * 60,
    "mgd": 1e6 * _US_GAL / 24,
    "imgd": 1e6 * _IMP_GAL / 24,
    "cfs": _FT**3 * 3600,
    "afd": 1233.48183754752 / 24,
}
# EPANET's own flow-unit names
for _name in ("cmh", "cmd", "lps", "lpm", "mld"):
    _FLOW[_name] = FlowUnits[_name.upper()].factor * 3600
_FLOW.update({"m³/h": 1.0, "m³/s": 3600.0, "m³/d": 1 / 24, "lph": 1e-3})

_QUALITY = {"mg/l", "ntu", "us/cm", "µs/cm", "degc", "°c", "ph", "ppm", "-"}

_TABLES = {
    "pressure": _PRESSURE,
    "head": _LENGTH,
    "level": _LENGTH,
    "flow": _FLOW,
    "demand": {k: v * 1000.0 for k, v in _FLOW.items()},  # to L/h
}


class UnknownUnitError(ValueError):
    """A unit that tirtasu cannot convert for the given kind of measurement."""

    def __init__(self, unit: str, kind: str):
        accepted = ", ".join(sorted(_TABLES.get(kind, {}) or _QUALITY))
        super().__init__(f"unknown {kind} unit {unit!r}; accepted: {accepted}")
        self.unit = unit
        self.kind = kind


def _normalise(unit: str) -> str:
    return unit.strip().lower().replace(" ", "").replace("³", "3").replace("per", "/")


def _check_kind(kind: str) -> None:
    if kind not in INTERNAL_UNIT:
        raise ValueError(f"unknown sensor kind {kind!r}; expected one of {', '.join(KINDS)}")


def canonical_unit(kind: str) -> str | None:
    """The unit readings of this kind are stored in (None: as reported)."""
    _check_kind(kind)
    return INTERNAL_UNIT[kind]


def conversion_factor(unit: str | None, kind: str) -> float:
    """Multiplier that turns a value in ``unit`` into tirtasu's internal unit for ``kind``.

    Parameters
    ----------
    unit : str or None
        Unit as written in a file header, payload or registry; None or "" means already internal.
    kind : str
        One of :data:`KINDS`.

    Raises
    ------
    UnknownUnitError
        If the unit is not known for that kind.
    """
    _check_kind(kind)
    if unit is None or str(unit).strip() == "":
        return 1.0
    key = _normalise(str(unit))
    if kind == "quality":
        if key in _QUALITY:
            return 1.0
        raise UnknownUnitError(unit, kind)
    try:
        return _TABLES[kind][key]
    except KeyError:
        raise UnknownUnitError(unit, kind) from None


def to_internal(values, unit: str | None, kind: str):
    """Convert ``values`` (scalar or array) from ``unit`` to the internal unit of ``kind``."""
    factor = conversion_factor(unit, kind)
    if factor == 1.0:
        return values
    return np.asarray(values, dtype=float) * factor if not np.isscalar(values) else values * factor


def flow_factor_to_m3h(flow_units: FlowUnits | str) -> float:
    """Factor from an EPANET flow unit (e.g. ``GPM`` or ``FlowUnits.LPS``) to m³/h."""
    fu = FlowUnits[flow_units.upper()] if isinstance(flow_units, str) else flow_units
    return fu.factor * 3600.0
