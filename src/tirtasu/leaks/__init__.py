"""tirtasu.leaks"""

from tirtasu.leaks.data import InputError, LeakInputs, SensorIssue, read_wide
from tirtasu.leaks.detect import DETECTION_COLUMNS, DetectConfig, LeakReport, detect_leaks
from tirtasu.leaks.localize import NetworkDistances, node_posterior, rank_pipes
from tirtasu.leaks.residuals import ResidualModel
from tirtasu.leaks.scoring import score
from tirtasu.leaks.sensitivity import Sensitivity, sensitivities

__all__ = [
    "DETECTION_COLUMNS",
    "DetectConfig",
    "InputError",
    "LeakInputs",
    "LeakReport",
    "NetworkDistances",
    "ResidualModel",
    "SensorIssue",
    "Sensitivity",
    "detect_leaks",
    "node_posterior",
    "rank_pipes",
    "read_wide",
    "score",
    "sensitivities",
]
