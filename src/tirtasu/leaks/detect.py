"""Leak detection, localization and tracking from pressure, flow, level and smart-meter data.

How it works (see docs/leaks.md for the full story):

1. **Learn the leak-free network** from a training period (:mod:`tirtasu.leaks.residuals`):
   each pressure sensor regressed on the metered flows, tank levels, smart-meter total and the
   hour of day; the demand balance (water in minus tank filling) regressed on the smart-meter
   total and the hour of day. Hourly means of the residuals form a vector ``z(t)``.
2. **Hydraulic signatures** (:mod:`tirtasu.leaks.sensitivity`): for every junction ``x``, the
   EPANET engine gives how a unit leak there changes the sensors at four times of day; after
   the regression's share is removed this is the leak's signature ``g(x)`` in ``z``
   (the demand balance component is 1: all leak water enters through the meters).
3. **Detection** every hour: for windows of 6 h to 7 days ending now, the change of the mean
   residual against the 2 days (or more) before the window, whitened with the residual
   covariance learnt in training. Changes explained by the leaks already known (their growth
   or repair, along their signature or, as their place is uncertain, its spread over their
   candidate pipes) are allowed for; the generalised likelihood ratio of a new leak is the best
   match ``max_x (g(x)·Δ)²/‖g(x)‖²`` with a positive flow. An alarm needs that ratio over a
   threshold, the demand balance to rise (beyond the known leaks' change, estimated together
   with the new leak's), and a leak to explain the change better than a fault
   of any single sensor (a drifting pressure sensor, flow meter or level sensor).
4. **Localization** (:mod:`tirtasu.leaks.localize`) turns the misfit of each node into a
   posterior that allows for model error, and picks the pipe most likely to be within 300 m of
   the leak, with the next best candidates.
5. **Tracking**: each known leak's flow is re-estimated every hour from the last day; a leak
   whose flow falls back (a repair) is closed. A new alarm close to a leak detected in the last
   days refines that leak instead of raising a second alarm: one alarm per leak.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import wntr
from scipy.optimize import nnls
from scipy.stats import chi2 as chi2_dist

from tirtasu.leaks.calibrate import calibrate_against_training, measured_demand, pump_on_share
from tirtasu.leaks.data import InputError, LeakInputs, SensorIssue, check_against_model, screen_sensors
from tirtasu.leaks.localize import NetworkDistances, node_posterior, rank_pipes, search_length_km
from tirtasu.leaks.residuals import ResidualModel, model_hour
from tirtasu.leaks.sensitivity import Sensitivity, sensitivities
from tirtasu.network.calibration import RoughnessCalibration

__all__ = ["DetectConfig", "LeakReport", "detect_leaks", "worth_a_crew", "DETECTION_COLUMNS"]

BALANCE = "__balance__"
DEBUG = False
TIME_FORMAT = "%Y-%m-%d %H:%M"
DETECTION_COLUMNS = [
    "link_id",
    "start_time",
    "leak_flow_m3h",
    "estimated_start",
    "candidates",
    "node_id",
    "p_within_300m",
    "peak_flow_m3h",
    "repair_time",
    "search_km",
]


@dataclass
class DetectConfig:
    """Settings of :func:`detect_leaks` (defaults tuned on simulated L-Town and KL scenarios).

    Attributes
    ----------
    windows_h : tuple of int [h]
        Lengths of the windows tested for a change, ending at the current hour.
    long_window_h : int or None [h]
        Windows longer than this are tested only while every known leak is reported at a pipe
        with at least ``p_min`` probability of being within ``radius_m`` of it: a leak placed
        poorly misfits its own change, and over weeks that misfit is what the longest window
        sees. None: every window is always tested.
    ref_h : int [h]
        Minimum length of the reference period before a window.
    threshold : float
        Alarm threshold on the generalised likelihood ratio (whitened units).
    balance_z : float
        The demand balance must rise by this many standard deviations (when available), or by
        half of what the leak flow suggested by the pressures would make it rise, if less.
    balance_strong_z : float
        A rise of the demand balance this large over a day or more raises an alarm whatever the
        pressures say (the leak is then placed as well as they allow).
    known_change : float
        How much a known leak may change within a test window, as a fraction of its flow when
        it was found (standard deviation of the prior on its change): growth is expected, but a
        jump much larger than the leak was is a new leak. A repaired leak may change by all of it.
    known_floor_m3h : float [m³/h]
        Added to that allowance.
    known_spread_rank : int
        A known leak's place is only known to its posterior: its change may move the residuals
        along its mean signature or along this many principal deviations of its candidates'
        signatures. 0: along the mean signature only, so that a leak growing a few hundred
        metres from where it was placed looked like a new leak beside it (tuning: false
        positives 1.2 → 0.6 per scenario on 14 L-Town scenarios).
    training_windows_h : tuple of int [h]
        Lengths of windows, ending at the current hour, also tested against the whole training
        period rather than the days before them: a leak that grows over weeks changes a week's
        window against the week before by a fraction of its size, but shows whole against the
        training period. The known leaks may then be anywhere between nothing and their whole
        flow, and the demand balance alone raises no alarm (demand drifts over weeks). Empty: no
        such test (the default: with the last week, (168,), the benchmark's held-out scenarios
        had more false alarms and less of the perfect €; see ``docs/leaks-history.md``).
    training_model_error : float
        Against the training period the error of the known leaks' signatures (the model's, and
        their place) shows whole too: the alarm threshold of those windows is raised by the
        energy of this fraction of each known leak's whole signature (whitened).
    pipe_p_min : float
        An alarm whose best pipe has less than this probability of being within ``radius_m``
        of the leak names no pipe: ``link_id`` is empty and ``candidates`` lists the pipes to
        survey around, with ``search_km`` (a zone alarm: the leak, its flow and its onset are
        reported and tracked). It is localized again every day for a week with all the
        evidence since its onset, and a row naming its pipe is written as soon as that pipe
        has ``max(p_min, pipe_p_min)``. 0: every alarm names a pipe. Where sensors are sparse
        a pipe named with less than 40 % is usually wrong (on the benchmark's tuning scenarios:
        3 of 7 within 300 m of a leak on KY2, none of 7 on KY4); see ``docs/leaks-history.md``.
    rank_by_value : bool
        Report the pipe that maximises the expected worth of a visit (the water saved, less
        the crew's search, which grows with the distance to the leak, and a visit in vain; see
        :func:`distance_weight`) rather than the probability of being within ``radius_m`` alone.
        Off by default: on a year of L-Town the leaks found were nearer the pipes reported
        (median 95 m instead of 162 m), but with 3 false positives instead of 1 and 81 % of the
        perfect € instead of 82 % (tuning: 108 of 174 leaks instead of 107, 0.89 false
        positives per scenario instead of 0.86, 47.8 % instead of 47.3 %).
    unplaced_alarm : bool
        An alarm whose best pipe is not worth a crew's visit (``worth_a_crew``: its place too
        uncertain for its flow), but whose leak is worth a survey (``worth_a_survey``: its water
        over ``value_horizon_days`` worth more than a visit in vain), is reported without a
        pipe once it has waited ``max_wait_h``, as a zone alarm (``link_id`` empty;
        ``candidates`` and ``search_km`` say where to survey), rather than never: a large leak
        is told even where the sensors cannot place it. Its pipe is named later only when that
        is worth a crew. False: such an alarm waits, without a time limit, until it is worth a
        crew.
    known_spread_window : bool
        Size a known leak's deviations by how much it changes in the window tested (estimated
        along the mean signatures alone, plus ``known_floor_m3h``, at most its allowance)
        rather than by the allowance itself: a deviation of the signature only shows in
        proportion to the leak's change, and a steady leak has none. With the allowance, the
        deviations of the seven leaks open on a median day of a year of L-Town together took
        up much of a new leak's change (14 of 23 leaks found, 3 false positives; sized by the
        window: 17, 2).
    balance_joint : bool
        Judge the demand balance of a new leak after the known leaks' change estimated together
        with it (True) rather than before it (False: a known leak could take all of a new
        leak's water as its own growth, and a leak starting a day after another was repaired
        went unseen: 45 of 88 leaks found on those 14 scenarios with the spread alone, 55
        with this too). Applies when the pressures alone pass the threshold; an alarm from the
        balance alone lets the known leaks explain what they can first (on the KY networks,
        judging those jointly too raised 4.9 false positives per scenario instead of 2.6).
    localize_with_balance : bool
        Let the demand balance (the leak's size) weigh in the localization (False: only the
        pattern of the pressure changes places the leak; tuning: 97 of 174 leaks found
        instead of 107).
    localize_since_onset : bool
        Localize with all the data since the estimated onset (True) rather than the window that
        raised the alarm.
    balance_each_meter : bool
        Regress the demand balance on each smart meter (True) or on their total (False, the
        default: on the simulated scenarios each meter cut the balance's noise about tenfold, yet
        found fewer leaks with more false positives, the early alarms of small leaks placed
        wrongly; docs/leaks-history.md, the trials).
    p_min : float
        An alarm whose best pipe has less than this posterior probability of being within
        ``radius_m`` of the leak waits for more evidence …
    max_wait_h : int [h]
        … at most this long, then is raised with the best pipe then (if it is worth a crew:
        that rule has no time limit).
    stable_h : int or None [h]
        An alarm whose best pipe stays within ``radius_m`` of itself this many hours in a row is
        raised whatever its probability (in networks of long pipes no pipe gets a high one).
        None: no such shortcut (tuning: 37 of 56 leaks found instead of 36, € 51 % instead of
        48 %; held-out: 24 instead of 26, 38 % instead of 43 %: not kept).
    persist_h : int [h]
        The evidence must hold this many consecutive hours before an alarm (transients of
        pumps, valves and repairs do not last; with 2, L-Town's tuning scenarios found as many
        leaks, abrupt ones a median hour sooner, with 1.05 false positives per scenario instead
        of 0.71).
    model_error : float
        Relative error of the hydraulic signatures (localization temperature).
    misfit_scale : bool
        Multiply the localization temperature by the best pipe's excess misfit, where it
        leaves more than noise and the model error explain
        (:func:`~tirtasu.leaks.localize.node_posterior`): where several leaks change at once
        no single leak fits the change, and the pipe it points to is less sure than the fit
        alone says. Off by default. Tuning (L-Town's 21 scenarios): 96 of 132 leaks, 0.57 false
        positives per scenario, 67.1 % of the perfect €, against 95, 0.71, 63.4 % without; seven
        years of L-Town: 100 of 161 leaks with 27 false positives and 63.1 % of the perfect €,
        against 103 with 35 and 67.0 % without; on KY4 (few sensors) a fifth of the false
        positives (see ``docs/leaks-history.md``).
    shrinkage : float or None
        Shrinkage of the residual correlation towards the identity. None: chosen from the
        training period (the one under which residuals of half of its days are most likely
        given the correlation learnt on the other half; between 0 and 0.3). Where the sensors share most of their
        noise (demand swings seen by all), even a little shrinkage hides the differences
        between sensors that place a leak.
    repair_fraction : float
        A leak is closed when its flow stays below this fraction of its peak for ``repair_hours``.
        A leak closed while it still runs is no longer localized again (``relocate_h``); one
        kept open takes up, in the tracking, the water of new leaks beside it, which only its
        growth reports then find (hence ``growth_max_reports`` None beside it). With 0.35 and
        one growth report: 99 of L-Town's 132 tuning leaks, 65.7 % of the perfect €, and 112 of
        161 leaks, 71.5 % over the years 2019–2025; with these defaults 100, 66.7 % and 114,
        72.4 % (docs/leaks-history.md). 0.2 alone lost a leak in five of those seven years.
    repair_hours : int [h]
    merge_m : float [m]
        A new alarm this close to a leak found less than ``merge_days`` earlier refines it.
    merge_days : float [d]
    relocate_h : tuple of int [h]
        This long after a leak was reported it is localized again with all the evidence since
        its onset; if its best pipe has moved more than ``relocate_m`` a new row is written for it
        (a corrected location, sent at that time) and it is tracked at its new place. Empty: never.
        The evidence of a day or more places a leak better than the hours that raised the alarm
        (on L-Town's tuning scenarios the pipe ranked first was within 300 m of a running leak
        in 90 % of the relocalizations and 78 % of the rankings made for alarms); a correction
        near a leak already found costs nothing, one that reaches a leak placed wrongly finds it.
        With one look at 48 h, a move of 150 m and odds of 3: 95 of 132 leaks, 0.71 false
        positives per scenario, 63.4 % of the perfect €; with these looks (and the closing at
        35 % and the single growth report of their day): 99, 0.76, 65.7 % (seven years of
        L-Town: 112 of 161 leaks instead of 103, 41 false positives instead of 35, 71.5 % instead
        of 67.0 %).
    relocate_m : float [m]
        How far the best pipe must have moved for a corrected location …
    relocate_odds : float
        … and how much more likely the leak must now be within ``radius_m`` of the new pipe than
        of the one reported (and at least ``p_min``). 1: whenever the new pipe is the more likely.
    growth_alarm : float or None
        When an open leak's tracked flow reaches this multiple of its flow when last reported
        (and at least ``growth_min_m3h`` more), report it again, at its pipe, with the flow it
        has now: it grew, or a second leak started close by (their signatures are alike and the
        tracking gives the known leak both flows). None: never. Default 1.5, each time the flow
        grows by half (docs/leaks-history.md, the trials: chosen on 55 L-Town tuning scenarios, 274 of
        344 leaks, 63 false positives, 66.4 % of the perfect € against 268, 61 and 65.4 % with
        2, and the years 2019–2025, 115 of 161, 51, 73.8 % against 114, 43, 73.6 %; held-out
        17 scored once: the same leaks and €; on held-out 1–16 the same € with 6 % more false
        positives).
    growth_min_m3h : float [m³/h]
        The least growth since the last report that is reported again.
    growth_p_min : float
        Only for a leak whose place was reported with at least this probability of being
        within ``radius_m``: of a leak placed wrongly, a second report is a second visit in vain.
    growth_max_reports : int or None
        At most this many such reports per leak. None: one each time its flow reaches
        ``growth_alarm`` times its flow when last reported, however often (the second and third
        leaks beside a known one are each found so).
    growth_look : bool
        A leak placed with less than ``growth_p_min`` whose tracked flow grows
        ``growth_look_factor``-fold is, instead of reported again, localized again at once as for
        ``relocate_h`` (a corrected row if its best pipe moved): a track placed wrongly and kept
        open takes up the water of new leaks near the place it stands for, and the change since
        its onset then points to them. Default True (docs/leaks-history.md, the trials: chosen on
        tuning, the study scenarios and the years 2019–2025; held-out 16 scored once).
    growth_look_factor : float
        When ``growth_look`` looks again: once the tracked flow reaches this multiple of its
        flow when last reported or localized again (and at least ``growth_min_m3h`` more).
        Apart from ``growth_alarm``'s factor (a growth report only repeats a pipe, while a look
        places the change anew and may move the track; docs/leaks-history.md, the trials), though with
        ``growth_alarm`` None there are no looks either.
    growth_look_report : bool
        When such a look keeps the leak's pipe (its best pipe within ``relocate_m``) and the
        data since its onset now place it there with at least ``growth_p_min``, the leak is
        reported again at that pipe, as a growth report: the growth is evidence that a second
        leak runs near the place the track stands for, and a place the evidence confirmed is
        worth a visit. It counts as one for ``growth_max_reports``. Without, a look that keeps
        the pipe writes nothing. Default True (docs/leaks-history.md, the trials: chosen on 55 L-Town
        tuning scenarios, 281 of 344 leaks, 62 false positives, 69.0 % of the perfect € against
        274, 63 and 66.4 % without; held-out 18 scored once: L-Town a leak more, 60.7 % against
        60.0 %; on held-out L-Town 1–17 six leaks and six false positives more, the same €).
    water_price_eur_m3 : float [€/m³]
        What a cubic metre of lost water costs the utility (production, or the tariff it could
        have been sold at) …
    crew_cost_eur : float [€]
        … and what sending a crew to a place where there is no leak costs. An alarm is raised
        only when the water it would save (``p_within_300m`` × flow × ``value_horizon_days``)
        is worth more than the expected cost of a visit in vain; until then it waits for more
        evidence. 0: no such rule. The defaults are BattLeDIM's (0.80 €/m³, 500 €).
    value_horizon_days : float [d]
        How long a leak left unreported would run on (until it surfaces or is found by a
        survey).
    sens_hours : tuple of float [h]
        Times of day of the hydraulic signatures.
    model_timezone : str or None
        Time zone the model's demand patterns and controls run on (the utility's local time,
        e.g. ``"Asia/Jakarta"`` or ``"UTC+7"``); the readings are in UTC. None: the model runs on UTC. Used
        to match each hour of data with the model's hour (signature snapshots, pump duty,
        demand calibration).
    calibrate_demand : bool
        Scale the model's demands at each of ``sens_hours`` to the water measured into the
        network then in training (source meters minus tank filling; needs every source
        metered), so that the signatures see the flows the pipes really carry.
    calibrate_roughness : bool
        Fit a roughness factor per diameter class of pipes to the daily pressure swing of the
        training period before the signatures are computed (see
        :mod:`tirtasu.network.calibration`): aged pipes lose more head, and a leak is felt
        further along them.
    default_train_days : float [d]
        Training length when no training end is given.
    min_train_days : float [d]
    radius_m : float [m]
        Localization radius that pipes are ranked for.
    min_pressure_sensors : int
        Fewer pressure sensors than this: detect from the demand balance only, do not localize.
    """

    windows_h: tuple = (6, 12, 24, 48, 96, 168, 336)
    long_window_h: int | None = 168
    ref_h: int = 48
    threshold: float = 40.0
    balance_z: float = 2.0
    balance_strong_z: float = 6.0
    persist_h: int = 3
    p_min: float = 0.55
    localize_with_balance: bool = True
    localize_since_onset: bool = False
    balance_each_meter: bool = False
    max_wait_h: int = 24
    stable_h: int | None = 6
    known_change: float = 0.5
    known_floor_m3h: float = 0.5
    model_error: float = 0.15
    shrinkage: float | None = None
    repair_fraction: float = 0.2
    repair_hours: int = 24
    merge_m: float = 400.0
    merge_days: float = 5.0
    relocate_h: tuple = (24, 48, 96, 168)
    water_price_eur_m3: float = 0.8
    crew_cost_eur: float = 500.0
    value_horizon_days: float = 14.0
    relocate_m: float = 50.0
    relocate_odds: float = 1.0
    growth_alarm: float | None = 1.5
    growth_min_m3h: float = 2.0
    growth_p_min: float = 0.6
    growth_max_reports: int | None = None
    growth_look: bool = True
    growth_look_factor: float = 2.0
    growth_look_report: bool = True
    sens_hours: tuple = (1.0, 7.0, 13.0, 19.0)
    model_timezone: str | None = None
    calibrate_demand: bool = True
    calibrate_roughness: bool = True
    balance_joint: bool = True
    known_spread_rank: int = 3
    known_spread_window: bool = True
    training_windows_h: tuple = ()
    training_model_error: float = 0.15
    pipe_p_min: float = 0.4
    misfit_scale: bool = False
    rank_by_value: bool = False
    unplaced_alarm: bool = True
    default_train_days: float = 14.0
    min_train_days: float = 3.0
    radius_m: float = 300.0
    min_pressure_sensors: int = 3


@dataclass
class _Known:
    """A direction in residual space that is already explained: a leak or a sensor fault."""

    kind: str  # "leak" or "fault"
    basis: np.ndarray  # (n_snapshots, channels), raw units per m³/h (leak) or per unit (fault)
    since: int  # hour index it was found
    # (r, n_snapshots, channels): principal deviations of the candidates' signatures from
    # ``basis`` (their outer products sum to the posterior covariance of the signature)
    spread: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    # leak bookkeeping
    node: str = ""
    nodes: list = field(default_factory=list)
    post: np.ndarray | None = None
    flow: float = 0.0
    peak: float = 0.0
    q0: float = 0.0  # flow when found
    q_reported: float = 0.0  # flow when last reported
    growth_reports: int = 0  # times reported again for its growth
    q_looked: float = 0.0  # flow when last localized again for its growth (``growth_look``)
    look_due: bool = False
    low_hours: int = 0
    closed: int | None = None
    rows: list = field(default_factory=list)  # its rows: first report, corrections, growth reports
    onset: int = 0  # estimated onset (hour index)
    link: str = ""  # pipe last reported for it (for a leak reported without one: its best pipe)

    @property
    def row(self) -> int | None:
        """Its latest row (the one reporting its current pipe); None for a fault."""
        return self.rows[-1] if self.rows else None


@dataclass
class LeakReport:
    """What :func:`detect_leaks` found.

    Attributes
    ----------
    detections : pandas.DataFrame
        One row per leak (and one more for each corrected place, ``relocate_h``, or report of
        its growth, ``growth_alarm``): ``link_id`` (most likely pipe; empty when localization is not
        possible), ``start_time`` (UTC time of the alarm), ``leak_flow_m3h`` (estimated flow at the
        alarm [m³/h]), ``estimated_start`` (UTC time the leak most likely began),
        ``candidates`` (next best pipes, ``;``-separated), ``node_id`` (most likely node),
        ``p_within_300m`` (posterior probability that the leak is within 300 m of ``link_id``),
        ``peak_flow_m3h`` (largest flow tracked [m³/h]), ``repair_time`` (when the leak stopped,
        empty while it runs); the last two are the leak's and the same on each of its rows.
    issues : list of SensorIssue
        Sensor problems found (gaps, stuck values, spikes, drifts).
    notes : list of str
        How the data was used (training period, what could not be done and why).
    hourly : pandas.DataFrame
        Hourly diagnostics: ``balance_residual_m3h`` (the demand balance residual [m³/h]),
        ``tracked_leak_flow_m3h`` (the open leaks' tracked flow [m³/h]), and of the window with
        the strongest evidence that hour: ``glr_leak`` and ``glr_fault`` (likelihood ratio of
        the best pipe and of the best single-sensor fault), ``balance_z`` (the balance's change
        [standard deviations]), ``window_h`` (its length [h]) and ``against_training`` (True
        when it was tested against the training period rather than the days before it).
    timings : dict
        Seconds spent in each stage.
    roughness : RoughnessCalibration or None
        The pipe roughness fitted to the training period (None: not calibrated, see ``notes``).
    """

    detections: pd.DataFrame
    issues: list
    notes: list
    hourly: pd.DataFrame
    timings: dict
    train_until: pd.Timestamp | None = None
    sensitivities: list = field(default_factory=list, repr=False)
    roughness: RoughnessCalibration | None = None

    def write_csv(self, path) -> None:
        self.detections.to_csv(path, index=False)


def _parse_time(value) -> pd.Timestamp:
    t = pd.Timestamp(value)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _snapshot_weights(hours: tuple, n: int = 24) -> np.ndarray:
    """(24, len(hours)) linear interpolation weights of each hour of day between snapshots."""
    hs = np.array(hours, dtype=float)
    W = np.zeros((n, len(hs)))
    order = np.argsort(hs)
    hs_sorted = hs[order]
    for h in range(n):
        x = h + 0.5
        j = np.searchsorted(hs_sorted, x) % len(hs)
        i = (j - 1) % len(hs)
        a, b = hs_sorted[i], hs_sorted[j]
        span = (b - a) % 24 or 24.0
        w = ((x - a) % 24) / span
        W[h, order[i]] += 1 - w
        W[h, order[j]] += w
    return W


def _horizon_value(flow_m3h: float, cfg: "DetectConfig") -> float:
    """What a leak's water over ``cfg.value_horizon_days`` is worth [€]: flow × 24 h × days × price."""
    return max(float(flow_m3h), 0.0) * 24.0 * cfg.value_horizon_days * cfg.water_price_eur_m3


def worth_a_crew(p_within: float, flow_m3h: float, cfg: "DetectConfig") -> bool:
    """Whether sending a crew to a leak is worth it: the water it would save if it is where we
    say, against a visit in vain if it is not.

    Parameters
    ----------
    p_within : float
        Probability that the leak is within ``cfg.radius_m`` of the pipe reported.
    flow_m3h : float [m³/h]
        Its estimated flow.
    cfg : DetectConfig
        ``water_price_eur_m3`` [€/m³], ``crew_cost_eur`` [€], ``value_horizon_days`` [d].

    Returns
    -------
    bool
        ``p × flow × 24 × horizon × price ≥ (1 − p) × crew cost``; always True when the crew
        cost is 0, False when the probability or the flow is not a number.
    """
    if cfg.crew_cost_eur <= 0:
        return True
    if not (np.isfinite(p_within) and np.isfinite(flow_m3h)):
        return False
    saved = p_within * _horizon_value(flow_m3h, cfg)
    return bool(saved >= (1.0 - p_within) * cfg.crew_cost_eur)


def worth_a_survey(flow_m3h: float, cfg: "DetectConfig") -> bool:
    """Whether a leak is worth looking for even where its place is unknown (an alarm without a
    pipe, ``cfg.unplaced_alarm``): the water it would lose over ``cfg.value_horizon_days`` [d],
    at ``cfg.water_price_eur_m3`` [€/m³], is worth at least a visit in vain,
    ``cfg.crew_cost_eur`` [€] (compare :func:`worth_a_crew`, for a crew sent to one pipe).

    Parameters
    ----------
    flow_m3h : float [m³/h]
        The leak's estimated flow; not a number: False.

    Returns
    -------
    bool
        ``flow × 24 × horizon × price ≥ crew cost``.
    """
    if not np.isfinite(flow_m3h):
        return False
    return bool(_horizon_value(flow_m3h, cfg) >= cfg.crew_cost_eur)


def distance_weight(flow_m3h: float, cfg: "DetectConfig") -> float:
    """Weight κ of the expected search distance when choosing the pipe to report.

    Sending a crew to pipe ``e`` is worth, in expectation, ``(V + c)·P(e) − c·D(e) − c``: ``V``
    the water it saves when the leak is within ``radius_m`` (flow × 24 × horizon × price),
    ``c`` the crew cost (a visit in vain, or searching ``radius_m`` from the pipe), ``P(e)`` the
    probability that the leak is within ``radius_m`` of it and ``D(e)`` the expected distance
    [``radius_m``] to it over those cases (BattLeDIM's score, in the utility's own prices). The
    best pipe maximises ``P − κ·D`` with ``κ = c / (V + c)``: a small leak's pipe is chosen
    closer to where the evidence is densest, a large leak's by ``P`` almost alone.

    Parameters
    ----------
    flow_m3h : float [m³/h]
        The leak's estimated flow.
    cfg : DetectConfig
        ``water_price_eur_m3`` [€/m³], ``crew_cost_eur`` [€], ``value_horizon_days`` [d],
        ``rank_by_value``.

    Returns
    -------
    float
        κ in [0, 1]; 0 when ``rank_by_value`` is off or the crew cost is 0.
    """
    if not cfg.rank_by_value or cfg.crew_cost_eur <= 0:
        return 0.0
    saved = _horizon_value(flow_m3h, cfg) if np.isfinite(flow_m3h) else 0.0
    return float(cfg.crew_cost_eur / (saved + cfg.crew_cost_eur))


_ZONE_RETRY_H = tuple(range(48, 24 * 7 + 1, 24))  # [h] after a zone alarm


def growth_report_due(flow_m3h: float, reported_m3h: float, p_within: float, reports: int, cfg: "DetectConfig") -> bool:
    """Whether a known leak is reported again for its growth (``cfg.growth_alarm``).

    Parameters
    ----------
    flow_m3h : float [m³/h]
        Its tracked flow now.
    reported_m3h : float [m³/h]
        Its flow when last reported.
    p_within : float
        Probability that it is within ``cfg.radius_m`` of the pipe reported (NaN: not placed).
    reports : int
        How many times it was already reported again for its growth.
    cfg : DetectConfig
        ``growth_alarm``, ``growth_min_m3h`` [m³/h], ``growth_p_min``, ``growth_max_reports``.

    Returns
    -------
    bool
        ``flow ≥ growth_alarm × reported`` and ``flow − reported ≥ growth_min_m3h``, for a leak
        placed with at least ``growth_p_min`` and reported again fewer than
        ``growth_max_reports`` times; False when ``growth_alarm`` is None.
    """
    if cfg.growth_alarm is None or not (p_within >= cfg.growth_p_min):
        return False
    if _growth_capped(reports, cfg):
        return False
    return _grown(flow_m3h, reported_m3h, cfg.growth_alarm, cfg.growth_min_m3h)


def _growth_capped(reports: int, cfg: "DetectConfig") -> bool:
    """Whether a leak reported again ``reports`` times for its growth may be no more (``growth_max_reports``)."""
    return cfg.growth_max_reports is not None and reports >= cfg.growth_max_reports


def growth_look_due(flow_m3h: float, reference_m3h: float, p_within: float, cfg: "DetectConfig") -> bool:
    """Whether a leak too uncertainly placed for a growth report is localized again now (``growth_look``).

    Parameters
    ----------
    flow_m3h : float [m³/h]
        Its tracked flow now.
    reference_m3h : float [m³/h]
        Its flow when last reported or last localized again for its growth, the larger.
    p_within : float
        Probability that it is within ``cfg.radius_m`` of the pipe reported (NaN: not placed).
    cfg : DetectConfig

    Returns
    -------
    bool
        With ``growth_look`` and ``growth_alarm`` set, for a leak placed with less than
        ``growth_p_min`` (or not placed): ``flow ≥ growth_look_factor × reference`` and
        ``flow − reference ≥ growth_min_m3h``.
    """
    if not cfg.growth_look or cfg.growth_alarm is None or p_within >= cfg.growth_p_min:
        return False
    return _grown(flow_m3h, reference_m3h, cfg.growth_look_factor, cfg.growth_min_m3h)


def _grown(flow_m3h: float, reference_m3h: float, factor: float, min_growth_m3h: float) -> bool:
    return flow_m3h >= factor * reference_m3h and flow_m3h - reference_m3h >= min_growth_m3h


def posterior_signature(post: np.ndarray, bases: np.ndarray, rank: int, top: int = 50):
    """Mean signature of a leak whose place is known to a posterior, and how it may deviate.

    Parameters
    ----------
    post : numpy.ndarray (n,)
        Posterior probability of each candidate pipe.
    bases : numpy.ndarray (n_snapshots, n, channels)
        Signature of a unit leak [per m³/h] on each candidate.
    rank : int
        Number of principal deviations kept.
    top : int
        Only the ``top`` most likely candidates are weighed.

    Returns
    -------
    mean : numpy.ndarray (n_snapshots, channels)
        Posterior mean of the signature.
    spread : numpy.ndarray (rank', n_snapshots, channels)
        Principal deviations from the mean, scaled so that the sum of their outer products is
        the posterior covariance of the signature (its ``rank`` largest parts; fewer when the
        posterior has fewer candidates).
    """
    idx = np.argsort(post)[::-1][:top]
    w = post[idx] / post[idx].sum()
    n_s, _, c = bases.shape
    X = bases[:, idx, :].transpose(1, 0, 2).reshape(len(idx), n_s * c)
    mean = w @ X
    spread = _principal_rows(np.sqrt(w)[:, None] * (X - mean), rank)
    return mean.reshape(n_s, c), spread.reshape(-1, n_s, c)


def known_change_estimate(K: np.ndarray, delta: np.ndarray, prior_sd: np.ndarray) -> np.ndarray:
    """Posterior mean of the known leaks' flow changes given a whitened change of the residuals.

    ``delta = K c + e`` with ``c ~ N(0, diag(prior_sd²))`` and unit white noise ``e``.

    Parameters
    ----------
    K : numpy.ndarray (channels, k)
        Whitened mean signature of each known leak [per m³/h].
    delta : numpy.ndarray (channels,)
        Whitened change of the residuals.
    prior_sd : numpy.ndarray (k,) [m³/h]
        Prior standard deviation of each leak's change.

    Returns
    -------
    numpy.ndarray (k,) [m³/h]
        ``S² Kᵀ (I + K S² Kᵀ)⁻¹ Δ``, computed as ``(S⁻² + KᵀK)⁻¹ Kᵀ Δ``.
    """
    s2 = np.asarray(prior_sd, dtype=float) ** 2
    return np.linalg.solve(np.diag(1.0 / s2) + K.T @ K, K.T @ delta)


def _principal_rows(M: np.ndarray, rank: int) -> np.ndarray:
    """At most ``rank`` rows whose outer products sum to the largest parts of ``MᵀM``."""
    if rank <= 0:
        return np.zeros((0, M.shape[1]))
    _, sv, vt = np.linalg.svd(M, full_matrices=False)
    keep = sv[:rank] > 1e-9 * max(float(sv[0]), 1e-300)
    return (sv[:rank, None] * vt[:rank])[keep]


def _merge_spread(a: np.ndarray, b: np.ndarray, extra: np.ndarray, rank: int) -> np.ndarray:
    """Principal deviations of two estimates of one leak's signature, averaged (a, b: spreads;
    extra: half the difference of their means)."""
    stack = np.concatenate([a / np.sqrt(2), b / np.sqrt(2), extra[None]])
    return _principal_rows(stack.reshape(len(stack), -1), rank).reshape(-1, *stack.shape[1:])


SHRINKAGE_GRID = (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6)


def choose_shrinkage(Z: np.ndarray, day: np.ndarray, grid=SHRINKAGE_GRID) -> float:
    """Shrinkage of the residual correlation towards the identity, by two-fold cross-validation
    over days.

    The correlation is learnt on the even days and the odd days in turn; the Gaussian
    log-likelihood of the other days' hourly residuals (standardised, gaps at the mean, channels
    that never moved left out) is summed. The
    shrinkage that makes it largest suits a correlation learnt on half the days; learnt on all
    of them the estimate is twice as precise, and half that shrinkage is returned (the best
    shrinkage falls as the inverse of the number of samples, Ledoit & Wolf 2004).

    Parameters
    ----------
    Z : numpy.ndarray (hours, channels)
        Training residuals, centred.
    day : numpy.ndarray (hours,)
        Day number of each hour.
    """
    # channels that vary (a constant one has no correlation to learn), standardised, gaps at
    # the mean (so that one sensor's gap does not take the others' hours with it)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-empty channel has no variance
        sd = np.sqrt(np.nan_to_num(np.nanvar(Z, axis=0)))
    live = sd > 1e-9
    X = np.nan_to_num((Z[:, live] - np.nanmean(Z[:, live], axis=0)) / sd[live])
    c = int(live.sum())
    fold = (day % 2).astype(bool)
    if c < 2 or min(fold.sum(), (~fold).sum()) <= c + 2:
        return 0.3  # too little data to tell: lean on the diagonal
    total = np.zeros(len(grid))
    for train in (fold, ~fold):
        A, B = X[train], X[~train]
        C = np.atleast_2d(np.nan_to_num(np.corrcoef(A.T)))
        np.fill_diagonal(C, 1.0)
        SB = (B.T @ B) / len(B)
        for i, lam in enumerate(grid):
            S = (1 - lam) * C + lam * np.eye(c)
            sign, logdet = np.linalg.slogdet(S)
            if sign <= 0:
                total[i] = -np.inf
                continue
            total[i] += -0.5 * len(B) * (logdet + np.trace(np.linalg.solve(S, SB)))
    return 0.5 * float(grid[int(np.argmax(total))])


class _Noise:
    """Covariance of L-hour means of the residuals, learnt from the training period.

    Cross-channel correlation from the hourly residuals (shrunk towards the identity); the
    standard deviation of each channel's L-hour mean from rolling means over the training
    period, so that each channel keeps its own temporal correlation (the demand balance
    averages out faster than pressures that follow slow demand swings). Beyond a quarter of
    the training length the standard deviation falls as 1/√L.
    """

    def __init__(self, Ztr: np.ndarray, lengths, shrinkage: float | None, day: np.ndarray | None = None):
        n, c = Ztr.shape
        Zc = Ztr - np.nanmean(Ztr, axis=0)
        sd1 = np.sqrt(np.maximum(np.nanvar(Zc, axis=0), 1e-12))
        complete = np.isfinite(Zc).all(axis=1)
        if complete.sum() > 2 * c:
            C = np.corrcoef(Zc[complete].T) if c > 1 else np.ones((1, 1))
        else:
            C = np.eye(c)
        C = np.atleast_2d(np.nan_to_num(C))
        if shrinkage is None:
            shrinkage = choose_shrinkage(Zc, day) if day is not None else 0.3
        self.shrinkage = float(shrinkage)
        self.C = (1 - shrinkage) * C + shrinkage * np.eye(c)
        self.sd: dict[int, np.ndarray] = {}
        filled = np.where(np.isfinite(Zc), Zc, 0.0)
        cs = np.vstack([np.zeros((1, c)), np.cumsum(filled, axis=0)])
        last_L, last_sd = 1, sd1
        for L in sorted(set(int(x) for x in lengths)):
            if L <= 1:
                self.sd[L] = sd1
                continue
            if n >= 4 * L:
                m = (cs[L:] - cs[:-L]) / L
                sdL = np.sqrt(np.maximum(m.var(axis=0), 1e-12))
                # never below what independent hours would give
                sdL = np.maximum(sdL, sd1 / np.sqrt(L))
                last_L, last_sd = L, sdL
            else:
                sdL = last_sd * np.sqrt(last_L / L)
            self.sd[L] = sdL
        self._cache: dict = {}

    def sd_for(self, L: int) -> np.ndarray:
        """Standard deviation of each channel's L-hour mean (interpolated as 1/√L between lengths)."""
        L = int(L)
        if L not in self.sd:
            known = sorted(self.sd)
            below = max([k for k in known if k <= L], default=known[0])
            self.sd[L] = self.sd[below] * np.sqrt(below / L)
        return self.sd[L]

    def cov(self, L: int) -> np.ndarray:
        s = self.sd_for(L)
        return self.C * np.outer(s, s)

    def whitener(self, lengths: tuple, mask: np.ndarray) -> np.ndarray:
        """Inverse square root of the covariance of the sum of independent means over ``lengths``."""
        key = (lengths, mask.tobytes())
        if key not in self._cache:
            S = sum(self.cov(L) for L in lengths)[np.ix_(mask, mask)]
            vals, vecs = np.linalg.eigh(S)
            vals = np.maximum(vals, vals.max() * 1e-10)
            self._cache[key] = (vecs / np.sqrt(vals)) @ vecs.T
            if len(self._cache) > 512:
                self._cache.pop(next(iter(self._cache)))
        return self._cache[key]


def demand_scaling_note(hours, multipliers) -> str:
    """The note saying how the model's demands were scaled for the signatures.

    Parameters
    ----------
    hours : sequence of float [h]
        Hours of the day of the signatures (model clock).
    multipliers : sequence of float or None
        Factor applied to the model's demands at each hour; None where no inflow was measured
        then, NaN where the model's steady state without demand has no hydraulic solution (the
        model's demands are kept).
    """

    def scaled(m) -> str:
        if m is None:
            return "not scaled"
        return f"×{m:.2f}" if np.isfinite(m) else "not scaled (no hydraulic solution without demand)"

    far = any(m is not None and np.isfinite(m) and abs(m - 1) > 0.25 for m in multipliers)
    return (
        "signatures computed with the model's demands scaled to the water measured into the network in "
        "training (" + ", ".join(f"{h:02.0f}:00 {scaled(m)}" for h, m in zip(hours, multipliers)) + ")"
        + ("; the model's demands are far from what the meters say: check its base demands and patterns" if far else "")
    )


def _hour_sensitivity(wn, rm, data, train, candidates, hour, levels, demand=None) -> Sensitivity:
    """Signatures at ``hour``, averaged over the metered pumps' states as often as they occur then."""
    share = pump_on_share(data, train, wn, hour, rm.clock_tz)
    pumps = sorted(share, key=lambda p: -abs(share[p] - 0.5))[:3]  # the most undecided count most
    combos = [({}, 1.0)]
    for p in pumps:
        nxt = []
        for status, w in combos:
            for on, wp in ((True, share[p]), (False, 1.0 - share[p])):
                if wp > 0.02:
                    nxt.append(({**status, p: on}, w * wp))
        combos = nxt
    total = sum(w for _, w in combos)
    parts = [
        (sensitivities(wn, rm.pressure_sensors, rm.flow_sensors, candidates, hours=(hour,), tank_levels=levels,
                       tanks=rm.level_sensors, link_status=status, total_demand_m3h=demand), w / total)
        for status, w in combos
    ]
    first = parts[0][0]
    for name in ("dp", "dq", "dtank", "base_pressure", "base_flow"):
        setattr(first, name, sum(w * getattr(sp, name) for sp, w in parts))
    return first


def detect_leaks(
    wn: wntr.network.WaterNetworkModel,
    inputs: LeakInputs,
    train_until=None,
    config: DetectConfig | None = None,
    progress=None,
    sensitivity: Sensitivity | None = None,
) -> LeakReport:
    """Detect, localize and track leaks.

    Parameters
    ----------
    wn : wntr.network.WaterNetworkModel
        The network model (any EPANET units); its node and link ids name the sensors.
    inputs : LeakInputs
        Pressure [m], flow [m³/h], level [m] and demand [L/h] tables (UTC index).
    train_until : datetime-like, optional
        End of the leak-free training period (UTC). Default: the first
        ``config.default_train_days`` days (at most a quarter of the data), with a note.
    config : DetectConfig, optional
    progress : callable, optional
        Called with (stage description, fraction done).
    sensitivity : Sensitivity or list of Sensitivity, optional
        Precomputed signatures, one per ``config.sens_hours`` (``report.sensitivities`` of an
        earlier run on the same data), to save their computation in repeated runs.

    Returns
    -------
    LeakReport

    Raises
    ------
    InputError
        Columns that are not in the model, no time overlap, too short a training period.
    """
    cfg = config or DetectConfig()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    say = progress or (lambda stage, frac: None)
    notes: list[str] = []

    check_against_model(inputs, wn)
    data = inputs.regular()
    data, issues = screen_sensors(data, skip_spikes=set(wn.pump_name_list) | set(wn.valve_name_list))
    idx = data.index
    if len(idx) < 2:
        raise InputError("too little data")
    start, end = idx[0], idx[-1]
    if train_until is None:
        span_days = (end - start) / pd.Timedelta(days=1)
        days = min(cfg.default_train_days, max(cfg.min_train_days, 0.25 * span_days))
        train_end = start + pd.Timedelta(days=days)
        notes.append(
            f"no training end given: the first {days:g} days ({start:%Y-%m-%d %H:%M} to {train_end:%Y-%m-%d %H:%M}) "
            "are assumed leak-free; a leak already running then is learnt as normal and cannot be found"
        )
    else:
        train_end = _parse_time(train_until)
    if train_end <= start or (train_end - start) < pd.Timedelta(days=cfg.min_train_days):
        raise InputError(
            f"the training period ({start:%Y-%m-%d %H:%M} to {train_end:%Y-%m-%d %H:%M}) is shorter than "
            f"{cfg.min_train_days:g} days: give a later --train-until"
        )
    if train_end >= end:
        raise InputError(f"the training period ends at or after the last reading ({end:%Y-%m-%d %H:%M}): nothing left to analyse")
    train = np.asarray(idx < train_end)
    timings["prepare"] = time.perf_counter() - t0

    # -- leak-free model ------------------------------------------------------------------
    t1 = time.perf_counter()
    say("learning the leak-free network", 0.0)
    rm = ResidualModel(balance_each_meter=cfg.balance_each_meter, clock_tz=cfg.model_timezone).fit(data, train, wn)
    notes += rm.notes
    Z = rm.hourly_residuals(data)
    hours = Z.index
    channels = list(Z.columns)
    n_p = len(rm.pressure_sensors)
    has_bal = BALANCE in channels
    c = len(channels)
    Zv = Z.to_numpy()
    train_h = np.asarray(hours < train_end)
    timings["residuals"] = time.perf_counter() - t1

    localize = n_p >= cfg.min_pressure_sensors
    if not localize:
        notes.append(
            f"only {n_p} usable pressure sensor(s): too few to localize (at least {cfg.min_pressure_sensors} needed); "
            "leaks are detected from the demand balance and reported without a pipe "
            "(`tirtasu leaks place-sensors` says where loggers would help most)"
        )
    if not has_bal and n_p == 0:
        raise InputError("no usable pressure sensor and no demand balance: nothing to detect leaks with")

    # -- hydraulic signatures -----------------------------------------------------------------
    t1 = time.perf_counter()
    candidates = list(wn.junction_name_list)
    calibration = None
    if sensitivity is None:
        say("computing hydraulic signatures", 0.0)
        levels = {t: float(np.nanmean(data.level[t][train])) for t in rm.level_sensors}
        demand = measured_demand(rm, data, train_end, cfg.sens_hours, cfg.model_timezone) if cfg.calibrate_demand else {}
        wn_sig = wn
        if cfg.calibrate_roughness and localize:
            say("calibrating pipe roughness", 0.0)
            roughness, note = calibrate_against_training(
                wn, rm, data, train, train_end, cfg.model_timezone, with_demand=cfg.calibrate_demand
            )
            notes.append(note)
            if roughness is not None:
                calibration = roughness
                wn_sig = roughness.apply(wn)
        sens_list = [
            _hour_sensitivity(wn_sig, rm, data, train, candidates, h, levels, demand) for h in cfg.sens_hours
        ]
        if cfg.calibrate_demand and not demand:
            why = ("not every source is metered" if not rm.has_balance
                   else "too few training hours with the inflow measured")
            notes.append(
                f"signatures computed with the model's own demands: {why}, so they could not be scaled to the "
                "water measured into the network"
            )
        if demand:
            # None: no inflow measured then; NaN: the model has no solution for the scaling's probe
            mult = [s.demand_multiplier[0] if h in demand else None for h, s in zip(cfg.sens_hours, sens_list)]
            notes.append(demand_scaling_note(cfg.sens_hours, mult))
    else:
        sens_list = list(sensitivity) if isinstance(sensitivity, (list, tuple)) else [sensitivity] * len(cfg.sens_hours)
        if [s.pressure_sensors for s in sens_list] != [rm.pressure_sensors] * len(sens_list) or any(
            s.flow_sensors != rm.flow_sensors or s.tanks != rm.level_sensors for s in sens_list
        ):
            raise ValueError("the precomputed signatures are for other sensors than the usable ones")
    n_s = len(sens_list)
    bases = np.zeros((n_s, len(candidates), c))  # signature of a unit leak per snapshot
    for k, s in enumerate(sens_list):
        J = rm.flow_jacobian(cfg.sens_hours[k])
        bases[k, :, :n_p] = s.dp - np.hstack([s.dq, s.dtank]) @ (J @ rm.flow_map).T
        if has_bal:
            bases[k, :, n_p] = 1.0
    # candidates are pipes: a leak in the middle of a pipe moves the residuals about halfway
    # between a leak at either end (a reservoir or tank end does not move at all)
    node_pos = {n: i for i, n in enumerate(candidates)}
    pipes, rows_m, cols_m = [], [], []
    for name, link in wn.pipes():
        ends = [node_pos.get(link.start_node_name), node_pos.get(link.end_node_name)]
        if all(e is None for e in ends):
            continue
        for e in ends:
            if e is not None:
                rows_m.append(len(pipes))
                cols_m.append(e)
        pipes.append(name)
    M = np.zeros((len(pipes), len(candidates)))
    M[rows_m, cols_m] = 0.5
    bases = np.einsum("pn,knc->kpc", M, bases)
    if has_bal:
        bases[:, :, n_p] = 1.0
    candidates = pipes
    hour_w = _snapshot_weights(cfg.sens_hours)
    timings["signatures"] = time.perf_counter() - t1

    # fault directions: a step on one pressure sensor, on one flow meter, on one level sensor
    fault_dirs, fault_names = [], []
    for j in range(n_p):
        v = np.zeros(c)
        v[j] = 1.0
        fault_dirs.append(v)
        fault_names.append(("pressure", rm.pressure_sensors[j]))
    Jm = np.mean([rm.flow_jacobian(h) @ rm.flow_map for h in cfg.sens_hours], axis=0) if rm.flow_sensors else np.zeros((n_p, 0))
    for k, lk in enumerate(rm.flow_sensors):
        v = np.zeros(c)
        v[:n_p] = -Jm[:, k]
        if has_bal and lk in rm.sources:
            v[n_p] = rm.sources[lk]
        if np.abs(v).max() > 0:
            fault_dirs.append(v / np.linalg.norm(v))
            fault_names.append(("flow", lk))
    JL = rm.level_jacobian()
    for k, tank in enumerate(rm.level_sensors):
        v = np.zeros(c)
        v[:n_p] = -JL[:, k]
        if np.abs(v).max() > 0:
            fault_dirs.append(v / np.linalg.norm(v))
            fault_names.append(("level", tank))
    fault_dirs = np.array(fault_dirs).reshape(-1, c)

    # -- noise model from training -----------------------------------------------------------
    ref_lengths = {max(cfg.ref_h, L // 2) for L in cfg.windows_h}
    noise = _Noise(
        Zv[train_h], list(cfg.windows_h) + sorted(ref_lengths) + [24], cfg.shrinkage,
        day=np.asarray((hours[train_h] - hours[0]).days),
    )

    # effective dimension of the leak signatures (whitened, daily means): how many independent
    # directions a leak can take; the alarm threshold grows with it (the best of more directions
    # fits noise better)
    W24 = noise.whitener((24, 48), np.ones(c, dtype=bool))
    sv = np.linalg.svd(bases.mean(axis=0) @ W24.T, compute_uv=False)
    energy = np.cumsum(sv**2) / max(float((sv**2).sum()), 1e-300)
    d_eff = int(np.searchsorted(energy, 0.99) + 1)
    threshold = cfg.threshold
    notes_debug = {"d_eff": d_eff, "threshold": threshold, "shrinkage": noise.shrinkage}

    # prefix sums for fast window means
    finite = np.isfinite(Zv)
    csum = np.vstack([np.zeros((1, c)), np.cumsum(np.where(finite, Zv, 0.0), axis=0)])
    ccount = np.vstack([np.zeros((1, c)), np.cumsum(finite, axis=0)])
    hod = np.floor(model_hour(hours, cfg.model_timezone)).astype(int)
    cw = np.vstack([np.zeros((1, n_s)), np.cumsum(hour_w[hod], axis=0)])

    def window(a: int, b: int):
        n = ccount[b] - ccount[a]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (csum[b] - csum[a]) / n
        ok = n >= 0.5 * (b - a)
        w = (cw[b] - cw[a]) / max(b - a, 1)
        return mean, ok, w

    dist = NetworkDistances(wn) if localize else None
    pipe_len_prior = None  # any pipe may leak

    known: list[_Known] = []
    masked = np.zeros(c, dtype=bool)  # channels dropped for a fault
    rows: list[dict] = []
    total_flow = np.full(len(hours), np.nan)
    # best GLR of a leak, of a fault, balance z, window, whether that window was tested against training
    trace = np.full((len(hours), 5), np.nan)
    first = int(np.searchsorted(hours, train_end))
    n_hours = len(hours)
    max_L = max(cfg.windows_h)

    def active_known(h: int) -> list[_Known]:
        cool = max_L + max(ref_lengths)
        return [k for k in known if k.closed is None or h - k.closed < cool]

    wcache: dict = {}

    def evaluate(a: int, b: int, R: int, kn: list, ref_start: int | None = None) -> dict | None:
        """Test the change of the mean residual over hours [a, b) against the R hours before
        it, or against the R hours from ``ref_start`` (the training period)."""
        L = b - a
        ra = a - R if ref_start is None else ref_start
        mW, okW, wW = window(a, b)
        mR, okR, wR = window(ra, ra + R)
        m = okW & okR & ~masked
        if m.sum() < 1:
            return None
        Wm = noise.whitener((L, R), m)
        delta = Wm @ (mW - mR)[m]
        wmix = (wW * L + wR * R) / (L + R)
        key = (L, R, m.tobytes())
        if key not in wcache:
            if len(wcache) > 64:
                wcache.pop(next(iter(wcache)))
            # whitened signatures of each snapshot and fault directions, once per window shape
            wcache[key] = (np.stack([bases[k][:, m] @ Wm.T for k in range(n_s)]), fault_dirs[:, m] @ Wm.T)
        wb, F = wcache[key]
        G = np.tensordot(wmix, wb, axes=(0, 0))  # (n, cm)
        raw = (mW - mR)[m]
        # known sensor faults: whatever they do is explained (projected out)
        kf = [k for k in kn if k.kind == "fault"]
        if kf:
            Qf, _ = np.linalg.qr(np.column_stack([Wm @ (wmix @ k.basis)[m] for k in kf]))
            delta = delta - Qf @ (Qf.T @ delta)
            G = G - (G @ Qf) @ Qf.T
            F = F - (F @ Qf) @ Qf.T
        # known leaks may grow or be repaired: a change along their signature of about
        # ±known_change of their size is expected (a Gaussian prior on their change), so a
        # new leak that looks like a known one needs more evidence, but is not explained away
        kl = [k for k in kn if k.kind == "leak"]
        Ak = None
        thr_extra = 0.0
        if kl:
            # each known leak's change: along its mean signature and, as its place is only
            # known to its posterior, along the spread of its candidates' signatures
            dirs, mean_cols = [], []
            for k in kl:
                mean_cols.append(len(dirs))
                dirs += [(wmix @ v)[m] for v in (k.basis, *k.spread)]
            Kraw = np.column_stack(dirs)
            K = Wm @ Kraw
            if kf:
                K = K - Qf @ (Qf.T @ K)
            s_of = np.array([
                (cfg.known_change * k.q0 if k.closed is None and ref_start is None else max(k.peak, k.flow))
                + cfg.known_floor_m3h
                for k in kl
            ])
            s_dev = s_of
            if cfg.known_spread_window and len(dirs) > len(kl):
                # a deviation of a known leak's signature only shows in proportion to how much
                # the leak changes in this window: size it by that change, estimated along the
                # mean signatures alone (a steady leak has nothing to move)
                s_dev = np.minimum(s_of, np.abs(known_change_estimate(K[:, mean_cols], delta, s_of)) + cfg.known_floor_m3h)
            sk = np.repeat(s_dev, [1 + len(k.spread) for k in kl])
            sk[mean_cols] = s_of
            Minv = np.linalg.inv(np.diag(1.0 / sk**2) + K.T @ K)
            delta_a = delta - K @ (Minv @ (K.T @ delta))  # A⁻¹Δ, A = I + K S Kᵀ
            GA = G - ((G @ K) @ Minv) @ K.T
            FA = F - ((F @ K) @ Minv) @ K.T
            gd = GA @ delta
            gg = np.einsum("ij,ij->i", GA, G)
            fd = FA @ delta
            ff = np.einsum("ij,ij->i", FA, F)
            coef = sk**2 * (K.T @ delta_a)  # expected change of each known leak [m³/h]
            Ak = (K, sk)
            raw = raw - Kraw @ coef
            if ref_start is not None:
                # the known leaks' signatures are off by the model's error times their whole flow
                k_norm = np.linalg.norm(K[:, mean_cols], axis=0)
                thr_extra = float(np.sum((cfg.training_model_error * (s_of - cfg.known_floor_m3h) * k_norm) ** 2))
        else:
            gd = G @ delta
            gg = np.einsum("ij,ij->i", G, G)
            fd = F @ delta
            ff = np.einsum("ij,ij->i", F, F)
        with np.errstate(invalid="ignore", divide="ignore"):
            T = np.where(gd > 0, gd * gd / np.maximum(gg, 1e-12), 0.0)
        i_best = int(np.argmax(T))
        Tf = np.where(ff > 1e-12, fd * fd / np.maximum(ff, 1e-12), 0.0)
        j_best = int(np.argmax(Tf)) if len(Tf) else -1
        if kl and cfg.balance_joint and gg[i_best] > 1e-12 and T[i_best] > threshold:
            # the known leaks' change estimated together with the new leak: a new leak's water
            # must not be taken for the growth of a known one (nor a repair hide a new leak)
            q_i = max(float(gd[i_best]) / float(gg[i_best]), 0.0)
            r = delta - G[i_best] * q_i
            coef_j = sk**2 * (K.T @ (r - K @ (Minv @ (K.T @ r))))
            raw = (mW - mR)[m] - Kraw @ coef_j
        bal_z, q_bal = np.inf, None
        if has_bal and m[n_p]:
            j_bal = int(np.flatnonzero(m).tolist().index(n_p))
            q_bal = float(raw[j_bal])
            bal_z = float(raw[j_bal] / np.sqrt(noise.sd_for(L)[n_p] ** 2 + noise.sd_for(R)[n_p] ** 2))
        return dict(m=m, Wm=Wm, delta=delta, G=G, T=T, i=i_best, T_leak=float(T[i_best]),
                    T_fault=float(Tf[j_best]) if len(Tf) else 0.0, j=j_best, bal_z=bal_z, q_bal=q_bal,
                    Ak=Ak, wmix=wmix, gd=gd, gg=gg, thr_extra=thr_extra)

    def localize_change(a: int, b: int, others: list, flow_m3h: float):
        """Where the change over hours [a, b) (against the days before) points, the known
        leaks ``others`` allowed for, for a leak of ``flow_m3h`` (what its pipe is worth a
        crew's search): (ranking, posterior) or None when it is no leak's."""
        L = b - a
        R = min(max(cfg.ref_h, L), 168)
        if L < 3 or a - R < 0:
            return None
        ev = evaluate(a, b, R, others)
        if ev is None or ev["T_leak"] <= threshold:
            return None
        G_r, d_r = ev["G"], ev["delta"]
        if ev["Ak"] is not None:
            K, sk = ev["Ak"]
            vals, vecs = np.linalg.eigh(np.eye(len(d_r)) + (K * sk**2) @ K.T)
            Ais = (vecs / np.sqrt(vals)) @ vecs.T
            d_r, G_r = Ais @ d_r, G_r @ Ais
        post_r, _, _ = node_posterior(d_r, G_r, cfg.model_error, prior=pipe_len_prior, misfit_scale=cfg.misfit_scale)
        kappa = distance_weight(flow_m3h, cfg)
        return rank_pipes(post_r, candidates, dist, radius_m=cfg.radius_m, distance_weight=kappa), post_r

    def p_within_of(link: str, post: np.ndarray) -> float:
        """Posterior probability (``post`` over the candidates) that the leak is within radius_m of ``link``."""
        d = dist.midpoint_to_pipes(link, limit=cfg.radius_m * 1.01)
        return float(sum(post[i] for i, e in enumerate(candidates) if d[dist.pipe_index[e]] <= cfg.radius_m))

    def report_growth(k: _Known, hour: pd.Timestamp, **fields) -> None:
        """Report leak ``k`` again at its pipe with its flow now, once the data of ``hour`` are in."""
        rows.append({
            **rows[k.row],
            "start_time": min(hour + pd.Timedelta(hours=1), end).strftime(TIME_FORMAT),
            "leak_flow_m3h": round(k.flow, 3),
            **fields,
        })
        k.rows.append(len(rows) - 1)
        k.q_reported = k.flow
        k.growth_reports += 1

    t1 = time.perf_counter()
    say("detecting", 0.0)
    streak = 0  # consecutive hours with a leak's evidence over the threshold
    pending: list[str] = []  # best pipe of each hour of an alarm waiting to be sure where
    for h in range(first, n_hours + 1):
        if (h - first) % 24 == 0:
            say("detecting", (h - first) / max(1, n_hours - first))
        # ---- track the flow of the leaks that are open --------------------------------------
        open_leaks = [k for k in known if k.kind == "leak" and k.closed is None]
        if open_leaks and h - 24 >= 0:
            mean, ok, w = window(max(0, h - 24), h)
            m = ok & ~masked
            if m.any():
                Wm = noise.whitener((24,), m)
                y = Wm @ np.nan_to_num(mean[m])
                A = np.column_stack([Wm @ (w @ k.basis)[m] for k in open_leaks])
                faults = [k for k in known if k.kind == "fault"]
                if faults:
                    F = np.column_stack([Wm @ (w @ k.basis)[m] for k in faults])
                    Qf, _ = np.linalg.qr(F)
                    y = y - Qf @ (Qf.T @ y)
                    A = A - Qf @ (Qf.T @ A)
                flows, _ = nnls(A, y)
                for k, q in zip(open_leaks, flows):
                    k.flow = float(q)
                    k.peak = max(k.peak, k.flow) if h - k.since >= 12 else k.peak
                    if h - k.since >= 24 and k.flow < cfg.repair_fraction * max(k.peak, 1e-9):
                        k.low_hours += 1
                    else:
                        k.low_hours = 0
                    if k.low_hours >= cfg.repair_hours:
                        k.closed = h - cfg.repair_hours - 12
                        repaired = hours[min(max(k.closed, 0), n_hours - 1)].strftime(TIME_FORMAT)
                        for r in k.rows:
                            rows[r]["repair_time"] = repaired
                total_flow[h - 1] = float(flows.sum())
            for k in open_leaks:
                for r in k.rows:
                    rows[r]["peak_flow_m3h"] = round(max(k.peak, rows[r]["peak_flow_m3h"]), 3)
            # a leak that grew, or a second one beside it whose water the tracking gives it: report it again
            for k in open_leaks:
                if k.row is None or k.closed is not None or h - k.since < 24:
                    continue
                if growth_report_due(k.flow, k.q_reported, rows[k.row]["p_within_300m"], k.growth_reports, cfg):
                    report_growth(k, hours[h - 1], peak_flow_m3h=round(k.flow, 3))
                elif growth_look_due(k.flow, max(k.q_reported, k.q_looked), rows[k.row]["p_within_300m"], cfg):
                    # placed too uncertainly for a growth report: look again where the change is
                    k.look_due, k.q_looked = True, k.flow
        if h == n_hours:
            break

        # ---- re-localize known leaks with the evidence gathered since their onset ------------
        if localize and (cfg.relocate_h or cfg.pipe_p_min > 0):
            due = [
                k for k in known if k.kind == "leak" and k.closed is None and (
                    h - k.since in cfg.relocate_h
                    # a leak reported without a pipe is localized again every day for a week
                    or (not rows[k.row]["link_id"] and h - k.since in _ZONE_RETRY_H)
                    or k.look_due
                )
            ]
            for k in due:
                looked, k.look_due = k.look_due, False
                others = [o for o in active_known(h) if o is not k]
                located = localize_change(k.onset, h + 1, others, k.flow)
                if located is None:
                    continue
                rk, post_r = located
                if DEBUG:
                    print("relocate", hours[h], k.link, "->", rk.pipes[0], rk.probability[0], dist.pipe_to_pipe(k.link, rk.pipes[0]))
                if not rows[k.row]["link_id"]:
                    # reported without a pipe: name one as soon as the evidence places it well
                    # enough to be worth a crew
                    if rk.probability[0] < max(cfg.p_min, cfg.pipe_p_min) or (
                        cfg.unplaced_alarm and not worth_a_crew(rk.probability[0], k.flow, cfg)
                    ):
                        continue
                else:
                    if dist.pipe_to_pipe(k.link, rk.pipes[0]) <= cfg.relocate_m:
                        if looked and cfg.growth_look_report and not _growth_capped(k.growth_reports, cfg):
                            p_old = p_within_of(k.link, post_r)
                            if p_old >= cfg.growth_p_min:
                                # the look kept the place, now sure enough: the growth is reported there
                                report_growth(k, hours[h], p_within_300m=round(p_old, 3))
                        continue
                    # only when the evidence now clearly prefers the new place: within radius_m
                    # of it is more likely (by relocate_odds) than within radius_m of the pipe reported
                    p_old = p_within_of(k.link, post_r)
                    if DEBUG:
                        print("  p_new", rk.probability[0], "p_old", p_old)
                    if rk.probability[0] < max(cfg.p_min, cfg.relocate_odds * p_old):
                        continue
                top_r = np.argsort(post_r)[::-1][:50]
                k.basis, k.spread = posterior_signature(post_r, bases, cfg.known_spread_rank)
                k.node, k.link = candidates[int(top_r[0])], rk.pipes[0]
                prev = rows[k.row]
                pl = wn.get_link(k.node)
                rows.append({
                    **prev,
                    "link_id": rk.pipes[0],
                    "start_time": min(hours[h] + pd.Timedelta(hours=1), end).strftime(TIME_FORMAT),
                    # its flow now (a growth report follows only from there: not a second row for the same change)
                    "leak_flow_m3h": round(k.flow, 3),
                    "candidates": ";".join(rk.pipes[1:]),
                    "node_id": pl.start_node_name if pl.start_node_name in wn.junction_name_list else pl.end_node_name,
                    "p_within_300m": round(rk.probability[0], 3),
                    "search_km": round(search_length_km(post_r, candidates, dist), 2),
                })
                k.rows.append(len(rows) - 1)
                k.q_reported = k.flow

        # ---- test for a new leak ------------------------------------------------------------
        best = None
        kn = active_known(h)
        tests = [(L, max(cfg.ref_h, L // 2), None) for L in cfg.windows_h]
        if cfg.long_window_h is not None and any(
            k.kind == "leak" and (not rows[k.row]["link_id"] or rows[k.row]["p_within_300m"] < cfg.p_min) for k in kn
        ):
            # a leak placed poorly misfits its own change, and over weeks that misfit looks like a new leak
            tests = [t for t in tests if t[0] <= cfg.long_window_h]
        tests += [(L, first, 0) for L in cfg.training_windows_h if h + 1 - L >= first]
        for L, R, ref_start in tests:
            a = h + 1 - L
            if ref_start is None and a - R < 0:
                continue
            ev = evaluate(a, h + 1, R, kn, ref_start)
            if ev is None:
                continue
            m, Wm, delta, G, T, i_best, T_leak, T_fault, j_best, bal_z, q_bal, Ak, wmix, gd, gg = (
                ev[k] for k in ("m", "Wm", "delta", "G", "T", "i", "T_leak", "T_fault", "j", "bal_z", "q_bal", "Ak", "wmix", "gd", "gg")
            )
            # the demand balance must not contradict a leak of the size the pressures suggest
            bal_needed = cfg.balance_z
            if has_bal and m[n_p] and np.isfinite(bal_z):
                sd_bal = np.sqrt(noise.sd_for(L)[n_p] ** 2 + noise.sd_for(R)[n_p] ** 2)
                q_best = max(float(gd[i_best]) / max(float(gg[i_best]), 1e-12), 0.0)
                bal_needed = min(cfg.balance_z, 0.5 * q_best / sd_bal)
            thr = threshold + ev["thr_extra"]
            # the balance alone raises no alarm against the training period: demand drifts over weeks
            leak_ok = bal_z >= bal_needed and T_leak > T_fault and (
                T_leak > thr or (bal_z >= cfg.balance_strong_z and L >= 24 and ref_start is None)
            )
            fault_ok = T_fault > thr and T_fault > T_leak and bal_z < cfg.balance_z
            # the alarm goes to the window with the strongest evidence of its kind
            score = T_leak + (1e6 if leak_ok else 0.0) + (5e5 if fault_ok else 0.0)
            if best is None or score > best["score"]:
                # (against the training period, the onset is looked for in the window and the longest one before it)
                best = dict(score=score, L=L, R=R if ref_start is None else min(R, max(cfg.windows_h)), a=a, m=m, Wm=Wm, delta=delta, G=G, T=T, i=i_best,
                            T_leak=T_leak, T_fault=T_fault, j=j_best, bal_z=bal_z, wmix=wmix, Ak=Ak, q_bal=q_bal,
                            leak_ok=leak_ok, fault_ok=fault_ok, vs_training=ref_start is not None)
        if best is None:
            continue
        trace[h] = (best["T_leak"], best["T_fault"], best["bal_z"], best["L"], float(best["vs_training"]))

        if best["fault_ok"] and not best["leak_ok"]:
            kind, loc = fault_names[best["j"]]
            v = fault_dirs[best["j"]]
            t_fault = hours[best["a"]]
            if kind == "pressure":
                masked[channels.index(loc)] = True
            else:
                known.append(_Known(kind="fault", basis=np.tile(v, (n_s, 1)), since=h))
            issues.append(
                SensorIssue(kind, loc, "drift", t_fault, None,
                            "its readings moved away from what the other sensors and the model explain "
                            "(drift or offset); not used from then on" if kind == "pressure" else
                            "its readings moved in a way no leak explains (drift or offset); its effect is discounted")
            )
            continue

        if not best["leak_ok"]:
            streak = 0
            pending = []
            continue
        streak += 1
        if streak < cfg.persist_h:
            continue

        # ---- a new leak: localize it ----------------------------------------------------------
        m = best["m"]
        # onset: step change point of the matched-filter output
        u = best["G"][best["i"]] / max(np.linalg.norm(best["G"][best["i"]]), 1e-12)
        a0 = best["a"] - best["R"]
        seg = Zv[a0 : h + 1][:, m]
        seg = np.where(np.isfinite(seg), seg, np.nanmean(seg, axis=0))
        y = np.nan_to_num(seg) @ (best["Wm"].T @ u)
        n_seg = len(y)
        cs = np.cumsum(y)
        best_tau, best_s = best["a"], -np.inf
        for tau in range(max(1, best["R"] // 2), n_seg - 1):
            m1 = cs[tau - 1] / tau
            m2 = (cs[-1] - cs[tau - 1]) / (n_seg - tau)
            s = (m2 - m1) ** 2 * tau * (n_seg - tau) / n_seg
            if m2 > m1 and s > best_s:
                best_s, best_tau = s, a0 + tau
        est_start = hours[best_tau]
        if cfg.localize_since_onset:
            # all the evidence since the onset, against the days before it
            L_loc = h + 1 - best_tau
            R_loc = min(max(cfg.ref_h, L_loc), 168)
            if L_loc >= 3 and best_tau - R_loc >= 0:
                ev = evaluate(best_tau, h + 1, R_loc, active_known(h))
                if ev is not None and ev["T_leak"] > 0 and ev["m"].sum() == best["m"].sum():
                    best = {**best, **{k: ev[k] for k in ("m", "Wm", "delta", "G", "Ak", "q_bal")}}
        G, delta, m = best["G"], best["delta"], best["m"]
        if best["Ak"] is not None:  # whiten with the known leaks' allowed change: A^(-1/2)
            K, sk = best["Ak"]
            vals, vecs = np.linalg.eigh(np.eye(len(delta)) + (K * sk**2) @ K.T)
            Ais = (vecs / np.sqrt(vals)) @ vecs.T
            delta, G = Ais @ delta, G @ Ais
        q_bal = None
        if has_bal and m[n_p] and not cfg.localize_with_balance:
            # the demand balance says how much, not where: localize on the pattern of the
            # pressures alone (a free flow per candidate), so that an error in the size of the
            # hydraulic signatures (model error) does not move the leak
            jb = int(np.flatnonzero(m).tolist().index(n_p))
            e = np.zeros(len(delta))
            e[jb] = 1.0
            v = best["Wm"] @ e
            if best["Ak"] is not None:
                v = Ais @ v
            v /= max(np.linalg.norm(v), 1e-12)
            delta = delta - v * (v @ delta)
            G = G - np.outer(G @ v, v)
            q_bal = best["q_bal"]
        post, qs, chi2 = node_posterior(delta, G, cfg.model_error, prior=pipe_len_prior, misfit_scale=cfg.misfit_scale)
        i_map = int(np.argmax(post))
        q_hat = float(qs[i_map]) if q_bal is None else max(float(q_bal), 0.0)  # [m³/h]
        if DEBUG:
            print("alarm", hours[h], "L", best["L"], "q_map", qs[i_map], "q_best", qs[best["i"]], "q_mean", q_hat, "bal_z", best["bal_z"], "T", best["T_leak"])
        if not localize:
            post = np.full(len(candidates), 1.0 / len(candidates))

        top = np.argsort(post)[::-1][:50]
        basis, spread = posterior_signature(post, bases, cfg.known_spread_rank)
        link_map = candidates[i_map]
        pl = wn.get_link(link_map)
        node = pl.start_node_name if pl.start_node_name in wn.junction_name_list else pl.end_node_name

        # one alarm per leak: near a leak found in the last days → refine that one
        merged = False
        if not localize:
            # without a place, a second alarm while a recent leak is open is that leak
            merged = any(
                k.kind == "leak" and k.closed is None and h - k.since <= cfg.merge_days * 24 for k in known
            )
        else:
            for k in known:
                if k.kind != "leak" or k.closed is not None or h - k.since > cfg.merge_days * 24:
                    continue
                if dist.pipe_to_pipe(k.node, link_map) <= cfg.merge_m:
                    # combined posterior: the change seen now includes what the old one missed
                    k.spread = _merge_spread(k.spread, spread, 0.5 * (k.basis - basis), cfg.known_spread_rank)
                    k.basis = 0.5 * (k.basis + basis)
                    merged = True
                    break
        if merged:
            continue

        if localize:
            kappa = distance_weight(q_hat, cfg)
            ranking = rank_pipes(post, candidates, dist, radius_m=cfg.radius_m, distance_weight=kappa)
            link, alts, p300 = ranking.pipes[0], ranking.pipes[1:], ranking.probability[0]
            # not sure where yet: wait for more evidence (a crew sent to the wrong street costs
            # as much as a false alarm), at most max_wait_h
            # … unless the best pipe has stayed put (within radius_m) for stable_h hours
            pending.append(link)
            stable = cfg.stable_h is not None and len(pending) >= cfg.stable_h and all(
                dist.pipe_to_pipe(link, p) <= cfg.radius_m for p in pending[-cfg.stable_h :]
            )
            waited = streak - cfg.persist_h >= cfg.max_wait_h
            if p300 < cfg.p_min and not stable and not waited:
                continue
            # worth a crew? A small leak with an uncertain place waits for more evidence; with
            # unplaced_alarm, one worth a survey goes out without a pipe once it has waited
            crew = worth_a_crew(p300, q_hat, cfg)
            if not crew and not (cfg.unplaced_alarm and waited and worth_a_survey(q_hat, cfg)):
                continue
            internal_link = link
            if p300 < cfg.pipe_p_min or not crew:
                # too uncertain to name a pipe, or to send a crew to it: a zone alarm
                # (candidates and search_km say where to survey); a pipe follows once the
                # evidence places it
                link, alts = "", ranking.pipes
        else:
            link, alts, p300 = "", [], float("nan")
            internal_link = ""
        streak = 0
        pending = []
        t_alarm = hours[h] + pd.Timedelta(hours=1)  # the hour's data is complete at its end
        t_alarm = min(t_alarm, end)
        rows.append(
            {
                "link_id": link,
                "start_time": t_alarm.strftime(TIME_FORMAT),
                "leak_flow_m3h": round(q_hat, 3),
                "estimated_start": est_start.strftime(TIME_FORMAT),
                "candidates": ";".join(alts),
                "node_id": node if link else "",
                "p_within_300m": round(p300, 3) if localize else np.nan,
                "search_km": round(search_length_km(post, candidates, dist), 2) if localize else np.nan,
                "peak_flow_m3h": round(q_hat, 3),
                "repair_time": "",
            }
        )
        known.append(
            _Known(kind="leak", basis=basis, spread=spread, since=h, node=link_map, nodes=[candidates[i] for i in top[:10]],
                   post=post[top], flow=q_hat, peak=q_hat, q0=q_hat, q_reported=q_hat, rows=[len(rows) - 1], onset=best_tau, link=internal_link)
        )
    timings["detect"] = time.perf_counter() - t1
    say("detecting", 1.0)

    detections = pd.DataFrame(rows, columns=DETECTION_COLUMNS)
    hourly = pd.DataFrame(index=hours)
    if has_bal:
        hourly["balance_residual_m3h"] = Z[BALANCE]
    hourly["tracked_leak_flow_m3h"] = total_flow
    for k, name in enumerate(("glr_leak", "glr_fault", "balance_z", "window_h")):
        hourly[name] = trace[:, k]
    hourly["against_training"] = pd.array(np.where(np.isnan(trace[:, 4]), pd.NA, trace[:, 4] == 1.0), dtype="boolean")
    timings["total"] = time.perf_counter() - t0
    timings.update(notes_debug)
    return LeakReport(
        detections=detections, issues=issues, notes=notes, hourly=hourly, timings=timings, train_until=train_end, sensitivities=sens_list,
        roughness=calibration,
    )
