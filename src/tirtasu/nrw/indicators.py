"""Performance indicators of water losses: UARL, ILI, the World Bank Institute bands.

Sources
-------
- UARL formula and its range of validity: Lambert, Brown, Takizawa & Weimer (1999), "A review of
  performance indicators for real losses from water supply systems", J. Water SRT – Aqua 48(6);
  restated in Thornton, Sturm & Kunkel, *Water Loss Control* (2nd ed., McGraw-Hill 2008), ch. 7.
  The original validity (> 5,000 connections, > 20 connections/km, P 25–100 m) was later relaxed
  to about 3,000 connections (as tirtasu's reference notes record it; we believe the relaxation
  is Lambert & McKenzie 2002, "Practical experience in using the Infrastructure Leakage Index",
  but could not check it here).
- WBI bands, developed countries (A 1–2, B 2–4, C 4–8, D ≥ 8) and developing countries (A 1–4,
  B 4–8, C 8–16, D ≥ 16): the World Bank Institute banding system of Liemberger & McKenzie (2005),
  "Accuracy limitations of the ILI – is it an appropriate indicator for developing countries?",
  IWA Leakage 2005, Halifax; reproduced in Kingdom, Liemberger & Marin (2006), *The challenge of
  reducing non-revenue water in developing countries*, World Bank PPIAF Water Supply and
  Sanitation Sector Board Discussion Paper 8. The developing-country row is only weakly sourced in
  tirtasu's reference notes: we could not read either original here. It is corroborated
  indirectly: LEAKSSuite's "Global ILIs" page states that the band boundaries of one group of
  countries are twice those of the other, and Makaya (2017, Am. J. Water Resources 5(4), Gweru,
  Zimbabwe) places an ILI of 9.7 in category C, which only the developing-country row gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "UARL_MAINS",
    "UARL_CONNECTIONS",
    "UARL_PRIVATE",
    "WBI_BANDS",
    "WBI_SOURCES",
    "WBI_MEANING",
    "uarl_l_per_day",
    "uarl_validity",
    "ili",
    "wbi_band",
]

#: UARL coefficients [L/day per m of pressure]: per km of mains, per service connection, per km of
#: private pipe between property line and customer meter (Lambert et al. 1999)
UARL_MAINS = 18.0
UARL_CONNECTIONS = 0.8
UARL_PRIVATE = 25.0

#: lower ILI bound of bands A, B, C, D
WBI_BANDS = {
    "developed": (("A", 0.0), ("B", 2.0), ("C", 4.0), ("D", 8.0)),
    "developing": (("A", 0.0), ("B", 4.0), ("C", 8.0), ("D", 16.0)),
}

WBI_SOURCES = {
    "developed": (
        "World Bank Institute banding, Liemberger & McKenzie (2005); Kingdom, Liemberger & Marin "
        "(2006), World Bank PPIAF Discussion Paper 8"
    ),
    "developing": (
        "World Bank Institute banding, Liemberger & McKenzie (2005); Kingdom, Liemberger & Marin "
        "(2006), World Bank PPIAF Discussion Paper 8 (boundaries twice the developed ones; "
        "weakly sourced here, see tirtasu.nrw.indicators)"
    ),
}

#: what each band means for leakage management (after Liemberger & McKenzie 2005)
WBI_MEANING = {
    "A": "further loss reduction may be uneconomic unless water is short; look for cost-effective improvements",
    "B": "potential for marked improvement: pressure management, better active leakage control, maintenance",
    "C": "poor leakage record, tolerable only if water is plentiful and cheap; intensify leakage reduction",
    "D": "very inefficient use of resources; leakage reduction is imperative and a high priority",
}


def uarl_l_per_day(mains_km, connections, private_km, pressure_m):
    """Unavoidable annual real losses, as a daily rate.

    UARL = (18·Lm + 0.8·Nc + 25·Lp)·P

    Parameters
    ----------
    mains_km : float [km]
        Length of mains (Lm).
    connections : float [-]
        Number of service connections (Nc).
    private_km : float [km]
        Total length of private pipe from the property boundary to the customer meter (Lp);
        0 when meters sit at the property line.
    pressure_m : float [m]
        Average operating pressure when the system is pressurised (P).

    Returns
    -------
    float [L/day]
    """
    return (UARL_MAINS * mains_km + UARL_CONNECTIONS * connections + UARL_PRIVATE * private_km) * pressure_m


def uarl_validity(mains_km: float, connections: float, pressure_m: float) -> list[str]:
    """Reasons why the UARL formula may not apply to this system (empty list: within range).

    Checks the conditions of Lambert et al. (1999) as later relaxed (see the module notes):
    at least 3,000 service connections (5,000 originally), a density of at least 20 connections
    per km of mains, and an average pressure of 25–100 m.
    """
    notes = []
    if connections < 3000:
        notes.append(
            f"{connections:,.0f} service connections: UARL is validated for systems of at least "
            "3,000 (originally 5,000); the ILI of a small system is unreliable"
        )
    elif connections < 5000:
        notes.append(
            f"{connections:,.0f} service connections: below the original 5,000 of Lambert et al. "
            "(1999), within the relaxed limit of 3,000"
        )
    if mains_km > 0 and connections / mains_km < 20:
        notes.append(
            f"connection density {connections / mains_km:.1f}/km < 20/km: UARL is not validated; "
            "compare real losses per km of mains instead"
        )
    if not 25 <= pressure_m <= 100:
        notes.append(f"average pressure {pressure_m:.1f} m outside the validated 25–100 m")
    return notes


def ili(carl_m3, uarl_m3):
    """Infrastructure Leakage Index, ILI = CARL / UARL (both over the same period) [-]."""
    return np.divide(carl_m3, uarl_m3)


@dataclass(frozen=True)
class Band:
    """A WBI band for an ILI value."""

    band: str
    group: str  # "developed" or "developing"
    ili_range: str
    meaning: str
    source: str


def wbi_band(ili_value: float, group: str = "developing") -> Band:
    """The World Bank Institute band (A–D) of an ILI for developed or developing countries.

    Parameters
    ----------
    ili_value : float [-]
    group : {"developing", "developed"}
        ``developing``: low- and middle-income countries.
    """
    if group not in WBI_BANDS:
        raise ValueError(f"unknown country group {group!r}; expected 'developing' or 'developed'")
    bands = WBI_BANDS[group]
    chosen = bands[0]
    for name, lower in bands:
        if ili_value >= lower:
            chosen = (name, lower)
    idx = [b[0] for b in bands].index(chosen[0])
    upper = bands[idx + 1][1] if idx + 1 < len(bands) else None
    rng = f"{max(chosen[1], 1):g}–{upper:g}" if upper is not None else f"≥ {chosen[1]:g}"
    return Band(chosen[0], group, rng, WBI_MEANING[chosen[0]], WBI_SOURCES[group])
