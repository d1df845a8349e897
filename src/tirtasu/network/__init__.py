"""EPANET network models: load, summarise, district metered areas, hydraulics, GeoJSON."""

from tirtasu.network.dma import DMAs, dma_report, dmas_from_boundaries, dmas_from_table, read_dma_csv
from tirtasu.network.geojson import network_geojson
from tirtasu.network.hydraulics import HydraulicResults, run_hydraulics
from tirtasu.network.model import ModelError, ModelSummary, flow_units, load_model, load_model_text, node_demands_m3h, summarize

__all__ = [
    "DMAs",
    "HydraulicResults",
    "ModelError",
    "ModelSummary",
    "dma_report",
    "dmas_from_boundaries",
    "dmas_from_table",
    "flow_units",
    "load_model",
    "load_model_text",
    "network_geojson",
    "node_demands_m3h",
    "read_dma_csv",
    "run_hydraulics",
    "summarize",
]
