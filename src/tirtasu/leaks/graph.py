"""The network as a graph for distances along the pipes [m].

One graph serves the score (BattLeDIM's distance between pipe midpoints,
:mod:`tirtasu.leaks.scoring`) and the detector (:class:`tirtasu.leaks.localize.NetworkDistances`),
so that the pipe a leak is placed at and the score of that pipe measure distance alike.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import wntr
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

__all__ = ["PipeGraph", "link_length"]


def link_length(link) -> float:
    """Length of a link [m]: a pipe's length; pumps and valves are points (0 m)."""
    return float(link.length) if link.link_type == "Pipe" else 0.0


class PipeGraph:
    """The network as an undirected graph of nodes joined by links weighing their length [m].

    Links of zero length (pumps, valves, zero-length pipes) merge their two end nodes, so that
    every edge left has a positive weight (scipy's sparse graphs cannot hold a 0-weight edge);
    of several links between the same two nodes the shortest counts.
    """

    def __init__(self, wn: wntr.network.WaterNetworkModel, cut_at_pumps_valves: bool = False):
        nodes = list(wn.node_name_list)
        index = {n: i for i, n in enumerate(nodes)}
        parent = np.arange(len(nodes))

        def find(i: int) -> int:
            root = i
            while parent[root] != root:
                root = parent[root]
            while parent[i] != root:
                parent[i], i = root, parent[i]
            return root

        self.link_nodes: dict[str, tuple[int, int]] = {}
        self.link_length: dict[str, float] = {}
        edges = []
        for name, link in wn.links():
            a, b = index[link.start_node_name], index[link.end_node_name]
            length = link_length(link)
            self.link_nodes[name] = (a, b)
            self.link_length[name] = length
            if cut_at_pumps_valves and link.link_type != "Pipe":
                continue
            if length > 0.0:
                edges.append((a, b, length))
            else:
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[ra] = rb
        roots = np.array([find(i) for i in range(len(nodes))], dtype=np.int64)
        _, self.component = np.unique(roots, return_inverse=True)
        n = int(self.component.max()) + 1 if len(nodes) else 0
        if edges:
            e = pd.DataFrame(edges, columns=["a", "b", "w"])
            e["a"], e["b"] = self.component[e["a"].to_numpy()], self.component[e["b"].to_numpy()]
            e = e[e["a"] != e["b"]]
            lo, hi = np.minimum(e["a"], e["b"]), np.maximum(e["a"], e["b"])
            e = pd.DataFrame({"a": lo, "b": hi, "w": e["w"]}).groupby(["a", "b"], as_index=False)["w"].min()
            self.matrix = coo_matrix((e["w"].to_numpy(), (e["a"].to_numpy(), e["b"].to_numpy())), shape=(n, n)).tocsr()
        else:
            self.matrix = coo_matrix((n, n)).tocsr()

    def ends(self, links: list[str]) -> np.ndarray:
        """Graph vertices of the two end nodes of each link, shape (len(links), 2)."""
        pairs = np.array([self.link_nodes[l] for l in links], dtype=np.int64).reshape(-1, 2)
        return self.component[pairs]

    def distances(self, links_a: list[str], links_b: list[str], chunk: int = 64) -> np.ndarray:
        """Midpoint-to-midpoint distances [m], shape (len(links_a), len(links_b)).

        One Dijkstra per distinct end node of ``links_a``.
        """
        ends_a, ends_b = self.ends(links_a), self.ends(links_b)
        sources, where = np.unique(ends_a, return_inverse=True)
        where = where.reshape(ends_a.shape)
        node_dist = np.empty((len(sources), len(links_b), 2))
        for i in range(0, len(sources), chunk):
            rows = dijkstra(self.matrix, directed=False, indices=sources[i : i + chunk])
            node_dist[i : i + chunk] = rows[:, ends_b]
        # nearest of the four (end of a, end of b) pairs
        nearest = np.minimum(node_dist[where[:, 0]], node_dist[where[:, 1]]).min(axis=2)
        half_a = np.array([self.link_length[l] for l in links_a]) / 2.0
        half_b = np.array([self.link_length[l] for l in links_b]) / 2.0
        out = nearest + half_a[:, None] + half_b[None, :]
        # a pipe is 0 m from itself (the official rule; the formula alone would give its length)
        same = np.asarray(links_a, dtype=object)[:, None] == np.asarray(links_b, dtype=object)[None, :]
        out[same] = 0.0
        return out

    def node_distances(self, nodes, limit: float = np.inf) -> np.ndarray:
        """Distance [m] from each of ``nodes`` (indices in the model's node list) to every node,
        shape (len(nodes), number of nodes); ``inf`` beyond ``limit`` or where no path joins."""
        comps = self.component[np.asarray(nodes, dtype=np.int64)]
        d = dijkstra(self.matrix, directed=False, indices=comps, limit=limit)
        return np.atleast_2d(d)[:, self.component]

