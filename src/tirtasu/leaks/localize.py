"""Where a leak is: match the change it made to the residuals against each candidate pipe.

A leak of ``q`` on pipe ``e`` moves the (whitened) residual vector by ``g(e)·q``, ``g(e)`` the
mean of the hydraulic signatures of its two end nodes (see :mod:`tirtasu.leaks.residuals` and
:mod:`tirtasu.leaks.sensitivity`). Given the observed change ``Δ``, each candidate gets the misfit
``χ²(e) = min_{q≥0} ‖Δ − g(e)·q‖²``. Model error (roughness, demands) makes the signatures only
approximately right, with an error that grows with the signal; the misfits are turned into a
posterior over candidates with a temperature ``1 + ε²·‖Δ‖²`` so that a strong signal does not
make the ranking overconfident. Optionally (``misfit_scale``) the temperature is also multiplied
by the best candidate's misfit over what noise and that error leave, ``χ²min / (c − 1 + ε²·‖Δ‖²)``,
where that exceeds 1: a change no single leak fits well places a leak less surely.

Pipes are then ranked by the posterior probability that the leak lies within ``radius_m``
(300 m, the BattLeDIM criterion: the distance between pipe midpoints along the network) of
them, which prefers a pipe in the middle of a cluster of plausible pipes to the single best
candidate at its edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import wntr

from tirtasu.leaks.graph import PipeGraph

__all__ = ["NetworkDistances", "node_posterior", "rank_pipes", "PipeRanking", "search_length_km"]


class NetworkDistances:
    """Shortest distances along pipes [m] between nodes, and from nodes to pipes.

    Measured on the graph the score measures on (:class:`tirtasu.leaks.graph.PipeGraph`: links
    of zero length join their end nodes, of parallel links the shortest counts).
    """

    def __init__(self, wn: wntr.network.WaterNetworkModel):
        self.nodes = list(wn.node_name_list)
        self.index = {n: i for i, n in enumerate(self.nodes)}
        self.pipe_graph = PipeGraph(wn)
        self.pipes, self.pipe_ends, self.pipe_len = [], [], []
        for name, link in wn.pipes():
            self.pipes.append(name)
            self.pipe_ends.append((self.index[link.start_node_name], self.index[link.end_node_name]))
            self.pipe_len.append(self.pipe_graph.link_length[name])
        n = len(self.nodes)
        self.pipe_ends = np.array(self.pipe_ends, dtype=int).reshape(-1, 2)
        self.pipe_len = np.array(self.pipe_len)
        self.pipe_index = {p: i for i, p in enumerate(self.pipes)}
        # mean half-length of the pipes at each node [m]
        tot = np.zeros(n)
        cnt = np.zeros(n)
        for (a, b), length in zip(self.pipe_ends, self.pipe_len):
            tot[[a, b]] += length / 2.0
            cnt[[a, b]] += 1
        self.adjacent_half = np.where(cnt > 0, tot / np.maximum(cnt, 1), 0.0)
        self.degree = cnt
        self.pipes_at: list[list[int]] = [[] for _ in range(n)]
        for j, (a, b) in enumerate(self.pipe_ends):
            self.pipes_at[a].append(j)
            self.pipes_at[b].append(j)
        self._cache: dict = {}

    def from_node(self, node: str | int, limit: float = np.inf) -> np.ndarray:
        """Distance [m] from ``node`` to every node (inf beyond ``limit``)."""
        i = self.index[node] if isinstance(node, str) else int(node)
        key = (i, limit)
        if key not in self._cache:
            self._cache[key] = self.pipe_graph.node_distances([i], limit)[0]
            if len(self._cache) > 4096:
                self._cache.pop(next(iter(self._cache)))
        return self._cache[key]

    def between(self, nodes) -> np.ndarray:
        """Distances [m] between every two of ``nodes`` (names or indices), shape (n, n)."""
        idx = [self.index[x] if isinstance(x, str) else int(x) for x in nodes]
        return self.pipe_graph.node_distances(idx)[:, idx]

    def node_to_pipes(self, node: str | int, limit: float = np.inf) -> np.ndarray:
        """Distance [m] from ``node`` to the nearest end of every pipe."""
        d = self.from_node(node, limit)
        return np.minimum(d[self.pipe_ends[:, 0]], d[self.pipe_ends[:, 1]])

    def pipe_to_pipe(self, a: str, b: str) -> float:
        """Distance [m] between the nearest ends of two pipes (0 for the same or touching pipes)."""
        ia, ib = self.pipe_index[a], self.pipe_index[b]
        if ia == ib:
            return 0.0
        da = self.node_to_pipes(int(self.pipe_ends[ia, 0]))
        db = self.node_to_pipes(int(self.pipe_ends[ia, 1]))
        return float(min(da[ib], db[ib]))

    def midpoint_to_pipes(self, pipe: str | int, limit: float = np.inf) -> np.ndarray:
        """Distance [m] from the middle of ``pipe`` to the middle of every pipe, BattLeDIM's rule.

        The shortest path between the nearest ends plus half of each pipe's length; a pipe is
        0 m from itself. Inf where the nearest ends lie farther apart than ``limit`` [m]. The
        score (:func:`tirtasu.leaks.scoring.score`) measures the same distance on its own graph.
        """
        t = self.pipe_index[pipe] if isinstance(pipe, str) else int(pipe)
        a, b = self.pipe_ends[t]
        d_end = np.minimum(self.node_to_pipes(int(a), limit), self.node_to_pipes(int(b), limit))
        d = d_end + self.pipe_len / 2.0 + self.pipe_len[t] / 2.0
        d[t] = 0.0
        return d


def node_posterior(delta: np.ndarray, G: np.ndarray, model_error: float = 0.15, prior: np.ndarray | None = None,
                   misfit_scale: bool = False):
    """Posterior over candidates (pipes or nodes) of a leak that changed the whitened residuals by ``delta``.

    Parameters
    ----------
    delta : numpy.ndarray (c,)
        Observed change, whitened (unit noise).
    G : numpy.ndarray (n, c)
        Whitened signature of a unit leak [per m³/h] at each candidate.
    model_error : float
        Relative error of the signatures (ε).
    prior : numpy.ndarray (n,), optional
        Prior weight of each candidate (default: all alike).
    misfit_scale : bool
        When even the best candidate leaves more misfit than noise and the model error explain
        (``r = min χ² / (c − 1 + ε²·‖Δ‖²)`` above 1), multiply the temperature by ``r``: the
        signatures, or a single leak, explain the change less well than assumed (other leaks
        changing in the same hours, model error beyond ε), and the evidence between candidates
        is worth that much less (the reduced-χ² scaling of least squares).

    Returns
    -------
    post : numpy.ndarray (n,)
        Posterior probability of each candidate.
    q : numpy.ndarray (n,)
        Best leak flow at each candidate (≥ 0) [m³/h].
    chi2 : numpy.ndarray (n,)
        Misfit at each candidate.
    """
    gg = np.einsum("ij,ij->i", G, G)
    gd = G @ delta
    q = np.where(gg > 1e-12, np.maximum(gd, 0.0) / np.maximum(gg, 1e-12), 0.0)
    dd = float(delta @ delta)
    chi2 = dd - 2 * q * gd + q * q * gg
    temp = 1.0 + model_error**2 * dd
    if misfit_scale and len(delta) > 1:
        # what noise and the model error leave at the right candidate: c − 1 + ε²‖Δ‖²
        temp *= max(1.0, float(chi2.min()) / (len(delta) - 1 + model_error**2 * dd))
    logp = -(chi2 - chi2.min()) / (2.0 * temp)
    if prior is not None:
        logp = logp + np.log(np.maximum(prior, 1e-300))
    logp -= logp.max()
    post = np.exp(logp)
    post /= post.sum()
    return post, q, chi2


@dataclass
class PipeRanking:
    """Pipes ranked for a leak.

    Attributes
    ----------
    pipes : list of str
        Best pipe first, then the next best candidates (each at least ``separation_m`` from the
        ones before it).
    probability : list of float
        Posterior probability that the leak lies within ``radius_m`` of each pipe.
    node : str
        The single most likely candidate (pipe).
    """

    pipes: list
    probability: list
    node: str


def rank_pipes(
    post: np.ndarray,
    candidates: list[str],
    dist: NetworkDistances,
    radius_m: float = 300.0,
    n_alternatives: int = 3,
    separation_m: float = 150.0,
    mass: float = 0.999,
    distance_weight: float = 0.0,
) -> PipeRanking:
    """Rank pipes by the posterior probability that the leak is within ``radius_m`` of them.

    With ``distance_weight`` κ > 0 a pipe's rank is ``P − κ·D``, ``P`` that probability and ``D``
    the expected distance to the leak in units of ``radius_m`` over the leaks within it: of two
    pipes about as likely to be within reach, the one a crew would search less far from.

    Parameters
    ----------
    post : numpy.ndarray
        Posterior probability that the leak is on each candidate pipe.
    candidates : list of str
        The candidate pipes (ids), in the order of ``post``.
    dist : NetworkDistances
    radius_m : float [m]
        Distance between pipes measured between their midpoints along the network
        (BattLeDIM's rule); a pipe is 0 m from itself.
    distance_weight : float
        κ above: the cost of a visit in vain over the value of finding the leak plus that cost
        (:func:`tirtasu.leaks.detect.distance_weight`); 0 ranks by ``P`` alone.
    """
    order = np.argsort(post)[::-1]
    cum = np.cumsum(post[order])
    keep = order[: int(np.searchsorted(cum, mass)) + 1][:400]
    score = np.zeros(len(dist.pipes))
    far = np.zeros(len(dist.pipes))  # expected distance [radius_m] over the leaks within reach
    for i in keep:
        d = dist.midpoint_to_pipes(candidates[i], limit=radius_m * 1.01)
        hit = d <= radius_m
        score += post[i] * hit
        if distance_weight > 0:
            far += post[i] * np.where(hit, d / radius_m, 0.0)
    best = candidates[int(order[0])]
    # ties: prefer the most likely pipe itself, then pipes near it
    near = dist.node_to_pipes(int(dist.pipe_ends[dist.pipe_index[best], 0]))
    key = score - distance_weight * far - 1e-9 * np.nan_to_num(near, posinf=1e9)
    key[dist.pipe_index[best]] += 1e-6
    chosen, probs = [], []
    for j in np.argsort(key)[::-1]:
        p = dist.pipes[j]
        if any(dist.pipe_to_pipe(c, p) < separation_m for c in chosen):
            continue
        chosen.append(p)
        probs.append(float(score[j]))
        if len(chosen) >= n_alternatives + 1:
            break
    return PipeRanking(pipes=chosen, probability=probs, node=best)


def search_length_km(post: np.ndarray, candidates: list[str], dist: NetworkDistances, mass: float = 0.9) -> float:
    """Length of mains [km] of the most likely pipes that together hold ``mass`` of the posterior.

    What a crew would have to survey (acoustically, say) to be that sure of passing the leak:
    tens of metres where the sensors pin it, kilometres along a branch no sensor watches.
    """
    order = np.argsort(post)[::-1]
    n = int(np.searchsorted(np.cumsum(post[order]), mass * float(post.sum()))) + 1
    return float(sum(dist.pipe_len[dist.pipe_index[candidates[i]]] for i in order[:n]) / 1000.0)
