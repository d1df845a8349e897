"""Where to put pressure loggers so that leaks can be placed: greedy sensor placement.

A leak can be placed within ``radius_m`` only if no place farther away moves the sensors in
(almost) the same way. With the hydraulic signatures of a leak at every junction (EPANET, see
:mod:`tirtasu.leaks.sensitivity`), a leak at ``i`` and one at ``j`` are *confusable* for a set of
sensors ``S`` when

    sin²θ_ij ≤ ε² + χ·σ² / (q²·‖g_i‖²)

where ``θ_ij`` is the angle between their signatures on ``S``, ``ε`` the relative error of the
signatures (model error), ``σ`` the noise of a sensor's day-mean change [m], ``q`` the leak flow
[m³/h] and ``χ`` the evidence a difference needs. A leak whose signal ``q²‖g_i‖²/σ²`` is under
the alarm threshold is not seen at all. A junction is *localizable* when it is seen and nothing
farther than ``radius_m`` along the pipes is confusable with it; the share of the mains so
covered (each junction stands for half the length of its pipes) is what a layout is worth.

Loggers are added one at a time, each where it most reduces the length of mains confusable with
each leak (weighted by the length the leak's junction stands for), the usual greedy heuristic of
sensor placement for leak isolation (e.g. Pérez et al. 2011, Casillas et al. 2013).

Memory grows with the square of the number of junctions (signatures, distances and pairs of
places are junction × junction arrays): a few thousand junctions, a DMA or a pressure zone at a
time, not a whole city's skeleton-free model at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import wntr

from tirtasu.leaks.localize import NetworkDistances
from tirtasu.leaks.sensitivity import sensitivities
from tirtasu.network.spread import farthest_point_sample

__all__ = [
    "PlacementResult", "estimate_logger_noise", "junction_signatures", "place_pressure_sensors", "residual_logger_noise",
]


@dataclass
class PlacementResult:
    """Loggers chosen, in order, and what each adds.

    Attributes
    ----------
    existing : list of str
        Pressure sensors already in place (junction ids).
    added : list of str
        Junctions chosen for new loggers, best first.
    steps : pandas.DataFrame
        One row per layout: ``sensors`` (how many), ``added`` (the junction added, empty for
        the existing layout), ``localizable_share`` (share of the mains [0–1] where a leak would
        be placed within ``radius_m``), ``detectable_share`` (share where it would be seen at
        all) and ``ambiguity_km`` (mean length of mains farther than ``radius_m`` that a leak
        could be confused with [km], weighted by length).
    """

    existing: list
    added: list
    steps: pd.DataFrame


def junction_signatures(wn: wntr.network.WaterNetworkModel, junctions: list[str], hours=(3.0,), progress=None) -> np.ndarray:
    """Pressure change at every junction for a unit leak at every junction [m per m³/h].

    Returns an array (leak junction, sensor junction), from EPANET steady states at ``hours``
    (their mean), the model's tanks at their initial levels.
    """
    s = sensitivities(wn, junctions, [], candidates=junctions, hours=hours, progress=progress)
    return -s.dp  # pressure falls: a positive signature


def estimate_logger_noise(pressure: pd.DataFrame, min_days: int = 3) -> float:
    """Noise of a logger's day-mean pressure beyond what the city's demand explains [m], from readings.

    Each sensor's hourly pressure is regressed on the mean of all sensors and its square (the
    demand swing moves every pressure, each with its own gain: head loss grows with the
    square of the flow); the day means of what is left change from one day to the next, and
    the standard deviation of that change over √2 is one day's noise. The median over the
    sensors is returned. Leaks and repairs in the period add to it, so a quiet period gives the
    best figure.

    Parameters
    ----------
    pressure : pandas.DataFrame
        Pressures [m], UTC time index, one column per sensor.
    min_days : int
        Whole days of data needed.

    Raises
    ------
    ValueError
        Fewer than two sensors or ``min_days`` days.
    """
    if pressure.shape[1] < 2:
        raise ValueError("at least two pressure sensors are needed to estimate their noise")
    hourly = pressure.resample("1h").mean().dropna(how="any")
    days = hourly.index.floor("1D")
    if days.nunique() < min_days:
        raise ValueError(f"{days.nunique()} day(s) of pressures: at least {min_days} are needed to estimate their noise")
    common = hourly.mean(axis=1).to_numpy()
    common = common - common.mean()
    X = np.column_stack([np.ones_like(common), common, common**2])
    Y = hourly.to_numpy()
    coef, *_ = np.linalg.lstsq(X, Y, rcond=None)
    own = pd.DataFrame(Y - X @ coef, index=hourly.index).groupby(days).mean()
    sd = own.diff().std(axis=0) / np.sqrt(2.0)
    return float(sd.median())


def residual_logger_noise(inputs, wn: wntr.network.WaterNetworkModel, min_days: int = 3) -> float:
    """:func:`estimate_logger_noise` of what the leak-free model leaves of the pressures [m].

    With the flows (and tank levels, smart meters) the utility also has, pumps switching and
    tanks filling are explained as in leak detection (:class:`tirtasu.leaks.residuals.ResidualModel`
    fitted on the whole period), so the figure is the noise the detector works against;
    from pressures alone, networks with pumps and tanks show several times more.

    Parameters
    ----------
    inputs : tirtasu.leaks.data.LeakInputs
        Pressure [m], flow [m³/h], level [m] and demand [L/h] tables.
    wn : wntr.network.WaterNetworkModel
    """
    from tirtasu.leaks.data import check_against_model
    from tirtasu.leaks.residuals import ResidualModel

    check_against_model(inputs, wn)
    data = inputs.regular()
    rm = ResidualModel().fit(data, np.ones(len(data.pressure), dtype=bool), wn)
    residuals = rm.hourly_residuals(data)[rm.pressure_sensors]
    return estimate_logger_noise(residuals, min_days=min_days)


def _weights(dist: NetworkDistances, junctions: list[str]) -> np.ndarray:
    """Length of mains each junction stands for [m]: half of each pipe at it."""
    return np.array([dist.adjacent_half[dist.index[j]] * dist.degree[dist.index[j]] for j in junctions])


class _Scorer:
    """Confusability of leak junctions for a growing set of sensors (incremental Gram matrix).

    Signatures are compared after removing their mean over the sensors: what every sensor
    sees alike (the city's demand swinging all pressures together) carries no place, so the
    leak-free model cannot separate it from noise either.
    """

    def __init__(self, S: np.ndarray, far: np.ndarray, w: np.ndarray, q: float, sigma: float, eps: float, chi: float, seen: float):
        self.S = S.astype(np.float64)
        n = S.shape[0]
        self.P = np.zeros((n, n))  # Σ g gᵀ over the sensors
        self.u = np.zeros(n)  # Σ g
        self.count = 0
        self.w = w
        self.farw = (far * w[None, :]).astype(np.float32)  # length of far mains per pair [m]
        self.q2, self.s2, self.eps2, self.chi, self.seen = q * q, sigma * sigma, eps * eps, chi, seen

    def gram(self, k: int | None = None) -> np.ndarray:
        """Centred Gram matrix of the current sensors (plus sensor ``k``)."""
        P, u, n = self.P, self.u, self.count
        if k is not None:
            g = self.S[:, k]
            P, u, n = P + np.outer(g, g), u + g, n + 1
        return P - np.outer(u, u) / n if n else P

    def evaluate(self, P: np.ndarray) -> tuple[float, float, float]:
        """(mean ambiguity [m], localizable share, detectable share) of a Gram matrix.

        The ambiguity of a leak place is the length of mains farther than the radius that it
        could be confused with; its mean is weighted by the length each place stands for.
        """
        d = np.maximum(np.diag(P), 0.0)
        energy = self.q2 * d / self.s2  # evidence of a typical leak at each junction
        detectable = energy >= self.seen
        # confusable: sin²θ ≤ tol, i.e. P_ij² ≥ (1 − tol_i)·P_ii·P_jj
        keep = 1.0 - (self.eps2 + self.chi / np.maximum(energy, 1e-300))
        conf = (P * P).astype(np.float32) >= np.outer(np.maximum(keep, 0.0) * d, d).astype(np.float32)
        conf[~detectable, :] = True  # a leak not seen could be anywhere
        amb = np.sum(self.farw, axis=1, where=conf, dtype=np.float64)  # [m]
        wsum = self.w.sum()
        localizable = detectable & (amb <= 0.0)
        return float(self.w @ amb / wsum), float(self.w[localizable].sum() / wsum), float(self.w[detectable].sum() / wsum)

    def add(self, k: int) -> None:
        g = self.S[:, k]
        self.P += np.outer(g, g)
        self.u += g
        self.count += 1


def place_pressure_sensors(
    wn: wntr.network.WaterNetworkModel,
    n_new: int,
    existing: list[str] = (),
    radius_m: float = 300.0,
    leak_m3h: float | None = None,
    noise_m: float = 0.01,
    model_error: float = 0.15,
    chi: float = 9.0,
    seen: float = 40.0,
    max_candidates: int = 200,
    hours=(3.0,),
    signatures: np.ndarray | None = None,
    progress=None,
) -> PlacementResult:
    """Choose junctions for ``n_new`` pressure loggers so that leaks can be placed.

    Parameters
    ----------
    wn : wntr.network.WaterNetworkModel
        The network model (any units).
    n_new : int
        Loggers to add.
    existing : list of str
        Junctions that already have a pressure sensor (kept).
    radius_m : float [m]
        How close a leak must be placed (BattLeDIM: 300 m along the network).
    leak_m3h : float, optional [m³/h]
        Size of leak to plan for; default 2 % of the model's mean demand (at least 0.5).
    noise_m : float [m]
        Noise of a sensor's day-mean pressure beyond what demand, pumps and tanks explain
        (:func:`residual_logger_noise`; in simulations 3 mm on L-Town, 5 mm on KY4).
    model_error : float
        Relative error of the signatures (ε): two places whose signatures differ by less
        cannot be told apart however strong the leak.
    chi : float
        Evidence (whitened χ²) a difference between two places needs.
    seen : float
        Evidence a leak needs to be detected at all (the alarm threshold).
    max_candidates : int
        Junctions considered for a logger: at most this many, spread over the network (all
        when there are fewer).
    hours : sequence of float [h]
        Hours of the day of the steady states (3 h: the night, when pressures are high and
        demand noise low).
    signatures : numpy.ndarray, optional
        Precomputed :func:`junction_signatures` for ``wn.junction_name_list``.
    progress : callable, optional
        Called with (stage description, fraction done).

    Returns
    -------
    PlacementResult
    """
    if n_new < 0:
        raise ValueError(f"the number of loggers to add must not be negative, got {n_new}")
    say = progress or (lambda stage, frac: None)
    junctions = list(wn.junction_name_list)
    index = {j: i for i, j in enumerate(junctions)}
    existing = list(dict.fromkeys(existing))  # a sensor listed twice is one sensor
    unknown = [e for e in existing if e not in index]
    if unknown:
        raise ValueError(f"existing sensor(s) {', '.join(map(str, unknown[:5]))} are not junctions of the model")
    if leak_m3h is None:
        from tirtasu.network.model import node_demands_m3h

        leak_m3h = max(0.5, 0.02 * float(node_demands_m3h(wn)["mean_m3h"].sum()))
    if signatures is None:
        say("computing leak signatures", 0.0)
        signatures = junction_signatures(wn, junctions, hours=hours, progress=lambda f: say("computing leak signatures", f))
    dist = NetworkDistances(wn)
    jidx = [dist.index[j] for j in junctions]
    between = dist.between(jidx)  # along the pipes [m]
    far = between > radius_m
    w = _weights(dist, junctions)
    scorer = _Scorer(signatures, far, w, leak_m3h, noise_m, model_error, chi, seen)
    for e in existing:
        scorer.add(index[e])

    # candidate logger sites: spread by distance along the pipes (farthest-point sampling)
    chosen_set = {index[e] for e in existing}
    pool = [i for i in range(len(junctions)) if i not in chosen_set]
    if len(pool) > max_candidates:
        picked = farthest_point_sample(int(np.argmax(w[pool])), max_candidates, lambda k: between[pool[k], pool])
        pool = [pool[k] for k in picked]

    added: list[str] = []

    def layout_row() -> dict:
        amb, loc, det = scorer.evaluate(scorer.gram())
        return {"sensors": len(existing) + len(added), "added": added[-1] if added else "", "localizable_share": loc,
                "detectable_share": det, "ambiguity_km": amb / 1000}

    steps = [layout_row()]
    energy = (signatures**2).sum(axis=0)  # ties (e.g. the first logger): the most sensitive site
    for step in range(n_new):
        say("placing loggers", step / max(n_new, 1))
        best_k, best_key = None, None
        for k in pool:
            amb, *_ = scorer.evaluate(scorer.gram(k))
            key = (amb, -energy[k])
            if best_key is None or key < best_key:
                best_k, best_key = k, key
        if best_k is None:
            break
        scorer.add(best_k)
        pool.remove(best_k)
        added.append(junctions[best_k])
        steps.append(layout_row())
    say("placing loggers", 1.0)
    return PlacementResult(existing=list(existing), added=added, steps=pd.DataFrame(steps))

