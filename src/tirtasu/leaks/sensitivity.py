"""How the sensors see a leak at each candidate node: sensitivities computed with EPANET.

A leak of ``q`` [m³/h] at node ``x`` lowers the pressure at sensor ``i`` by about
``-s_i(x)·q`` and raises the flow through each metered link by ``f_k(x)·q``. Both are computed
with the EPANET 2.2 engine on the nominal model: a steady state at a given hour of the day
(demands from the model's patterns, tanks at the levels given or at their initial levels),
solved once without a leak and once per candidate node with an emitter there.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wntr

from tirtasu.network.engine import (
    EN_DEMAND,
    EN_DEMANDMULT,
    EN_EMITTER,
    EN_FLOW,
    EN_PATTERNSTART,
    EN_PRESSURE,
    Engine,
)

__all__ = ["Sensitivity", "sensitivities"]


@dataclass
class Sensitivity:
    """Sensor responses to a unit leak at each candidate node.

    Attributes
    ----------
    nodes : list of str
        Candidate leak nodes (junctions).
    pressure_sensors : list of str
        Nodes whose pressure is measured.
    flow_sensors : list of str
        Links whose flow is measured.
    dp : numpy.ndarray, shape (len(nodes), len(pressure_sensors)) [m per m³/h]
        Change of each sensor's pressure per unit leak flow (negative: pressure falls).
    dq : numpy.ndarray, shape (len(nodes), len(flow_sensors)) [m³/h per m³/h]
        Change of each metered flow per unit leak flow, signed as the link's flow.
    tanks : list of str
        Tanks whose outflow is followed.
    dtank : numpy.ndarray, shape (len(nodes), len(tanks)) [m³/h per m³/h]
        Change of each tank's outflow per unit leak flow.
    base_pressure : numpy.ndarray [m]
        Pressure of each candidate node without a leak.
    base_flow : numpy.ndarray [m³/h]
        Flow through each metered link without a leak.
    hours : tuple of float
        Hours of the day the steady states were solved at (the arrays are their mean).
    demand_multiplier : tuple of float
        Multiplier applied to all the model's demands at each hour, so that they add up to
        the measured inflow (1.0 where none was given; NaN where the model's demands were kept
        because the state without demand that scaling probes has no hydraulic solution).
    """

    nodes: list
    pressure_sensors: list
    flow_sensors: list
    dp: np.ndarray
    dq: np.ndarray
    tanks: list
    dtank: np.ndarray
    base_pressure: np.ndarray
    base_flow: np.ndarray
    hours: tuple
    demand_multiplier: tuple = ()


def _cmh_copy(wn: wntr.network.WaterNetworkModel, path: Path) -> None:
    wntr.network.write_inpfile(wn, str(path), units="CMH")


def sensitivities(
    wn: wntr.network.WaterNetworkModel,
    pressure_sensors: list[str],
    flow_sensors: list[str],
    candidates: list[str] | None = None,
    hours=(3.0,),
    leak_m3h: float | None = None,
    tank_levels: dict[str, float] | None = None,
    tanks: list[str] | None = None,
    link_status: dict[str, bool] | None = None,
    total_demand_m3h: dict[float, float] | None = None,
    progress=None,
) -> Sensitivity:
    """Sensitivity of pressure and flow sensors to a leak at each candidate node.

    Parameters
    ----------
    wn : wntr.network.WaterNetworkModel
        The nominal model (any units; written in CMH for the engine). Left unchanged.
    pressure_sensors : list of str
        Node ids of the pressure sensors.
    flow_sensors : list of str
        Link ids of the flow meters.
    candidates : list of str, optional
        Junctions where a leak may be (default: every junction).
    hours : sequence of float [h]
        Times of day of the steady states; the result is their mean (night hours see leaks
        at high pressure and little demand noise).
    leak_m3h : float, optional [m³/h]
        Size of the test leak; default 2 % of the model's mean demand, at least 0.5 m³/h.
    tank_levels : dict, optional [m]
        Water level of tanks (id → level) for the steady states; default the model's initial.
    tanks : list of str, optional
        Tanks whose outflow change to report (``dtank``).
    link_status : dict, optional
        Pumps or valves to hold open (True) or closed (False) in the steady states, e.g. a
        pump's state at that hour of the day (a running pump draws more flow through the mains
        and makes the sensors more sensitive).
    total_demand_m3h : dict, optional [m³/h]
        Measured water demand of the network (inflow minus tank filling, background leakage
        included) at some of ``hours``: the model's demands at that hour are scaled to add up
        to it, so that the pipes carry the flows they really carry (head losses, and with them
        how far a leak is felt, grow with flow). A model whose demands are outdated is thus
        calibrated against the leak-free period.
    progress : callable, optional
        Called with the fraction done.
    """
    if candidates is None:
        candidates = list(wn.junction_name_list)
    if leak_m3h is None:
        from tirtasu.network.model import node_demands_m3h

        leak_m3h = max(0.5, 0.02 * float(node_demands_m3h(wn)["mean_m3h"].sum()))
    n, m, f = len(candidates), len(pressure_sensors), len(flow_sensors)
    dp = np.zeros((n, m))
    dq = np.zeros((n, f))
    tanks = list(tanks or [])
    dtank = np.zeros((n, len(tanks)))
    base_p = np.zeros(n)
    base_q = np.zeros(f)
    hours = tuple(float(h) for h in hours)
    with tempfile.TemporaryDirectory(prefix="tirtasu-sens-") as tmp:
        inp = Path(tmp) / "model.inp"
        _cmh_copy(wn, inp)
        with Engine(inp, Path(tmp) / "model.rpt") as en:
            en.for_steady_states(tank_levels, link_status)
            sensor_idx = [en.node_index(s) for s in pressure_sensors]
            link_idx = [en.link_index(l) for l in flow_sensors]
            cand_idx = [en.node_index(c) for c in candidates]
            tank_idx = [en.node_index(t) for t in tanks]
            read = en.reader(
                [(i, EN_PRESSURE) for i in sensor_idx] + [(i, EN_DEMAND) for i in tank_idx], [(i, EN_FLOW) for i in link_idx]
            )
            nt = len(tanks)
            buf = np.empty(m + nt + f)
            solve = en.steady_state

            total = len(hours) * (n + 1)
            done = 0
            junction_idx = [en.node_index(j) for j in wn.junction_name_list]
            model_mult = en.get_option(EN_DEMANDMULT) or 1.0

            multipliers = []
            for hour in hours:
                en.set_time(EN_PATTERNSTART, int(round(hour * 3600)))
                mult = en.demand_multiplier_for(junction_idx, (total_demand_m3h or {}).get(hour), model_mult)
                multipliers.append(float("nan") if mult is None else mult / model_mult)  # NaN: not scaled
                en.set_option(EN_DEMANDMULT, model_mult if mult is None else mult)
                with en.hydraulics():
                    solve()
                    read(buf)
                    p0 = buf.copy()
                    pc0 = np.array([en.node_value(i, EN_PRESSURE) for i in cand_idx])
                    d0 = np.array([en.node_value(i, EN_DEMAND) for i in cand_idx])
                    base_p += pc0 / len(hours)
                    base_q += p0[m + nt :] / len(hours)
                    for k, idx in enumerate(cand_idx):
                        p_node = max(pc0[k], 1.0)
                        own = en.node_value(idx, EN_EMITTER)  # the model's own emitter, if any
                        en.set_node_value(idx, EN_EMITTER, own + leak_m3h / np.sqrt(p_node))
                        solve()
                        read(buf)
                        q = en.node_value(idx, EN_DEMAND) - d0[k]
                        en.set_node_value(idx, EN_EMITTER, own)
                        if q > 1e-6:
                            dp[k] += (buf[:m] - p0[:m]) / q / len(hours)
                            # a tank's demand is its net inflow: its outflow is the opposite
                            dtank[k] -= (buf[m : m + nt] - p0[m : m + nt]) / q / len(hours)
                            dq[k] += (buf[m + nt :] - p0[m + nt :]) / q / len(hours)
                        done += 1
                        if progress is not None and done % 50 == 0:
                            progress(done / total)
    if progress is not None:
        progress(1.0)
    return Sensitivity(
        nodes=list(candidates),
        pressure_sensors=list(pressure_sensors),
        flow_sensors=list(flow_sensors),
        dp=dp,
        dq=dq,
        tanks=tanks,
        dtank=dtank,
        base_pressure=base_p,
        base_flow=base_q,
        hours=hours,
        demand_multiplier=tuple(multipliers),
    )
