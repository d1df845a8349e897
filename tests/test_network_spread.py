import numpy as np

from tirtasu.network.spread import farthest_point_sample


def test_farthest_point_sample_on_a_line_by_hand():
    x = np.array([0.0, 1.0, 3.0, 10.0])  # points along one pipe [m]

    def along(i):
        return np.abs(x - x[i])

    # from 0: 10 is farthest; then 3 (3 from 0, 7 from 10) beats 1 (1 from 0)
    assert farthest_point_sample(0, 3, along) == [0, 3, 2]
    assert farthest_point_sample(0, 10, along) == [0, 3, 2, 1]  # no more than there are
    # from 3: 0 and 10 are 3 and 7 away; with 0 and 2 both 1 from point 1 the lower index wins
    assert farthest_point_sample(2, 2, along) == [2, 3]
    assert farthest_point_sample(1, 3, lambda i: np.abs(np.array([0.0, 1.0, 2.0]) - [0.0, 1.0, 2.0][i])) == [1, 0, 2]


def test_farthest_point_sample_reaches_a_disconnected_part_first():
    # points 0–1 and 2–3 are two parts with no pipe between them
    D = np.array([[0.0, 5.0, np.inf, np.inf], [5.0, 0.0, np.inf, np.inf], [np.inf, np.inf, 0.0, 2.0], [np.inf, np.inf, 2.0, 0.0]])
    assert farthest_point_sample(0, 2, lambda i: D[i]) == [0, 2]
    assert farthest_point_sample(0, 3, lambda i: D[i]) == [0, 2, 1]
