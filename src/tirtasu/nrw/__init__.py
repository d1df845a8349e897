"""Non-revenue water: the IWA/AWWA water balance with 95 % confidence limits, loss indicators
(UARL, ILI, WBI bands), DMA night-flow analysis with FAVAD, and the economics of losses.

Plain functions on numbers, pandas and numpy; small dataclasses carry the results. Volumes are
m³ inside (converted at the edge, :mod:`tirtasu.nrw.volumes`), flows m³/h, pressures m.

- :mod:`tirtasu.nrw.balance` – the water balance and its uncertainty propagation
- :mod:`tirtasu.nrw.indicators` – UARL, ILI, World Bank Institute bands
- :mod:`tirtasu.nrw.audit` – reading an audit YAML file
- :mod:`tirtasu.nrw.store_io` – balance volumes and DMA series from a data store
- :mod:`tirtasu.nrw.nightflow` – minimum night flow, night-day factor, BABE split, DMA ranking
- :mod:`tirtasu.nrw.economics` – value of losses, economic intervention frequency, NRW trajectory
- :mod:`tirtasu.nrw.report` – terminal tables, JSON, one-page HTML with the water-balance diagram
"""

from tirtasu.nrw.audit import AuditError, load_audit, parse_audit
from tirtasu.nrw.balance import AuditInputs, Percent, Source, Volume, WaterBalance, water_balance
from tirtasu.nrw.economics import economic_intervention_frequency, loss_values, nrw_trajectory
from tirtasu.nrw.indicators import ili, uarl_l_per_day, uarl_validity, wbi_band
from tirtasu.nrw.nightflow import DMAAttributes, NightFlowSettings, analyse_dma, rank_dmas
from tirtasu.nrw.volumes import to_m3

__all__ = [
    "AuditError",
    "AuditInputs",
    "DMAAttributes",
    "NightFlowSettings",
    "Percent",
    "Source",
    "Volume",
    "WaterBalance",
    "analyse_dma",
    "economic_intervention_frequency",
    "ili",
    "load_audit",
    "loss_values",
    "nrw_trajectory",
    "parse_audit",
    "rank_dmas",
    "to_m3",
    "uarl_l_per_day",
    "uarl_validity",
    "water_balance",
    "wbi_band",
]
