"""Load EPANET models and summarise them.

WNTR reads the ``.inp`` file (any of EPANET's flow units) and holds the network in SI units;
tirtasu reports flows in m³/h and lengths in m / km.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import wntr

__all__ = ["ModelError", "load_model", "load_model_text", "ModelSummary", "summarize", "flow_units", "node_demands_m3h"]


class ModelError(ValueError):
    """An EPANET model that cannot be read, with the file and line where it went wrong."""

    def __init__(self, path, message, line: int | None = None, text: str | None = None):
        where = f"{path}:{line}" if line else str(path)
        detail = f"\n    {text.strip()}" if text else ""
        super().__init__(f"{where}: {message}{detail}")
        self.path = str(path)
        self.line = line
        self.text = text


def _locate_inp_error(path: Path, exc: BaseException) -> tuple[str, int | None, str | None]:
    """Message, line number and line text of the error WNTR met while reading ``path``.

    WNTR wraps the error of a line (which knows its number) in a generic "errors in input
    file"; walk the chain of causes to the innermost one that names a line. Failing that, the
    innermost frame of WNTR's reader holding ``lnum`` (its loop variable) tells the line.
    """
    chain, e = [], exc
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    line, message = None, None
    for e in chain:  # outermost first: keep the deepest that knows its line
        if getattr(e, "line_num", None):
            line, message = int(e.line_num), str(e)
    if line is None:
        tb = chain[-1].__traceback__
        while tb is not None:
            if "wntr" in tb.tb_frame.f_code.co_filename and isinstance(tb.tb_frame.f_locals.get("lnum"), int):
                line = tb.tb_frame.f_locals["lnum"]
            tb = tb.tb_next
        message = str(chain[-1]) or type(chain[-1]).__name__
    key_errors = [e for e in chain if isinstance(e, KeyError)]
    if key_errors:
        missing = str(key_errors[-1].args[0]) if key_errors[-1].args else "?"
        message = f"refers to {missing!r}, which the model does not define"
        if line is None:
            line = _first_reference(path, missing)
    message = message.replace("(%s), ", "").split("\n")[0]
    message = message.split(", at line")[0]
    text = None
    if line:
        with open(path, errors="replace") as fh:
            for i, row in enumerate(fh, 1):
                if i == line:
                    text = row.rstrip("\n")
                    break
    return message, line, text


def _first_reference(path: Path, name: str) -> int | None:
    """Line of the first element that names ``name`` in a field other than its own id."""
    with open(path, errors="replace") as fh:
        for i, row in enumerate(fh, 1):
            fields = row.split(";")[0].split()
            if name in fields[1:]:
                return i
    return None


def load_model(path: str | os.PathLike) -> wntr.network.WaterNetworkModel:
    """Read an EPANET ``.inp`` file.

    Parameters
    ----------
    path : path-like
        The model, in any EPANET flow unit (CFS, GPM, MGD, IMGD, AFD, LPS, LPM, MLD, CMH, CMD).

    Returns
    -------
    wntr.network.WaterNetworkModel
        Held in SI units by WNTR; ``flow_units(wn)`` tells the file's own flow unit.

    Raises
    ------
    ModelError
        The file is missing or malformed; the message names the line when it can.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(path, "no such model file")
    try:
        wn = wntr.network.WaterNetworkModel(str(path))
    except Exception as exc:  # WNTR raises many kinds; all mean "bad model file"
        message, line, text = _locate_inp_error(path, exc)
        raise ModelError(path, message, line, text) from exc
    wn.name = path.stem
    return wn


def load_model_text(text: str, name: str = "model") -> wntr.network.WaterNetworkModel:
    """Read a model from ``.inp`` text (e.g. as kept in the store)."""
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / f"{name}.inp"
        p.write_text(text)
        wn = load_model(p)
    wn.name = name
    return wn


def flow_units(wn: wntr.network.WaterNetworkModel) -> str:
    """The EPANET flow unit the model file was written in (e.g. ``"CMH"``, ``"GPM"``)."""
    units = wn.options.hydraulic.inpfile_units
    return str(getattr(units, "name", units)).upper()


@dataclass
class ModelSummary:
    """What is in a network model, in tirtasu's units."""

    name: str
    flow_units: str
    headloss: str
    junctions: int
    tanks: int
    reservoirs: int
    pipes: int
    pumps: int
    valves: int
    mains_km: float
    base_demand_m3h: float
    mean_demand_m3h: float
    demand_nodes: int
    duration_h: float
    hydraulic_step_s: int
    pattern_step_s: int
    has_coordinates: bool

    def as_dict(self) -> dict:
        return asdict(self)


def node_demands_m3h(wn: wntr.network.WaterNetworkModel) -> pd.DataFrame:
    """Per junction: base demand and demand averaged over its patterns' cycles [m³/h].

    Includes the model's demand multiplier; a demand without a pattern uses the default
    pattern if the model names one, else a constant 1.
    """
    default = wn.options.hydraulic.pattern
    default = wn.get_pattern(default) if default and default in wn.pattern_name_list else None
    factor = 3600.0 * wn.options.hydraulic.demand_multiplier
    rows = []
    for name, junction in wn.junctions():
        base = mean = 0.0
        for d in junction.demand_timeseries_list:
            pattern = d.pattern if d.pattern is not None else default
            multipliers = pattern.multipliers if pattern is not None else []
            base += d.base_value
            mean += d.base_value * (float(np.mean(multipliers)) if len(multipliers) else 1.0)
        rows.append((name, base * factor, mean * factor))
    return pd.DataFrame(rows, columns=["node_id", "base_m3h", "mean_m3h"]).set_index("node_id")


def summarize(wn: wntr.network.WaterNetworkModel) -> ModelSummary:
    """Counts, length of mains and demand of a model.

    ``mains_km`` is the total length of pipes [km]; demands are in m³/h, the mean taken over
    each demand pattern's cycle and including the demand multiplier.
    """
    demands = node_demands_m3h(wn)
    coords = [n.coordinates for _, n in wn.nodes()]
    return ModelSummary(
        name=wn.name or "",
        flow_units=flow_units(wn),
        headloss=wn.options.hydraulic.headloss,
        junctions=wn.num_junctions,
        tanks=wn.num_tanks,
        reservoirs=wn.num_reservoirs,
        pipes=wn.num_pipes,
        pumps=wn.num_pumps,
        valves=wn.num_valves,
        mains_km=float(sum(p.length for _, p in wn.pipes()) / 1000.0),
        base_demand_m3h=float(demands["base_m3h"].sum()),
        mean_demand_m3h=float(demands["mean_m3h"].sum()),
        demand_nodes=int((demands["base_m3h"] > 0).sum()),
        duration_h=wn.options.time.duration / 3600.0,
        hydraulic_step_s=int(wn.options.time.hydraulic_timestep),
        pattern_step_s=int(wn.options.time.pattern_timestep),
        has_coordinates=any(c is not None and tuple(c) != (0, 0) for c in coords),
    )
