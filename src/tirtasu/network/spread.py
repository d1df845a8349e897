"""Spreading points over a network: greedy farthest-point sampling along the pipes."""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["farthest_point_sample"]


def farthest_point_sample(first: int, n: int, distances_from: Callable[[int], np.ndarray]) -> list[int]:
    """``n`` points, each the farthest from those chosen before.

    Parameters
    ----------
    first : int
        Index of the first point.
    n : int
        How many points (at most the number of points there are).
    distances_from : callable
        ``distances_from(i)`` gives the distance [m] from point ``i`` to every point (``inf``
        where it cannot be reached: such points are taken first, one per unreached part).

    Returns
    -------
    list of int
        Indices in the order chosen; ties go to the lowest index.
    """
    chosen = [int(first)]
    best = np.asarray(distances_from(first), dtype=float).copy()
    n = min(n, len(best))
    while len(chosen) < n:
        nxt = int(np.argmax(np.where(np.isnan(best), -np.inf, best)))
        chosen.append(nxt)
        best = np.minimum(best, distances_from(nxt))
    return chosen
