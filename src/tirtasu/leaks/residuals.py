"""What the sensors would read without a leak, learnt from a leak-free period.

Two kinds of residual carry the leak evidence:

* **Pressure residuals.** Each pressure sensor is regressed on what drives it in a leak-free
  network: the metered flows (and their squares: head loss grows with flow²), tank levels,
  the smart-meter total and the hour of day. The residual is the measured pressure minus that
  prediction [m].
* **Demand balance residual.** The water that enters the network (flow meters on links out of
  reservoirs, minus the filling of metered tanks) is what customers use plus leaks. It is
  regressed on the smart-meter total and the hour of day; the residual [m³/h] rises by the
  flow of every leak wherever it is.

A leak of ``q`` at a node changes the pressure residuals by ``(dp - J·dq)·q``: its direct
effect ``dp`` on the sensors minus what the regression attributes to the extra flow ``dq`` it
draws through the meters (``J`` the regression's derivative with respect to each flow). The
demand balance residual rises by ``q``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import wntr

from tirtasu.leaks.data import LeakInputs
from tirtasu.telemetry.timestamps import resolve_tz

__all__ = ["ResidualModel", "model_hour", "source_meters"]


def source_meters(wn: wntr.network.WaterNetworkModel, flow_links: list[str]) -> dict[str, float]:
    """Flow meters on links into or out of a reservoir, with the sign that makes them an inflow."""
    reservoirs = set(wn.reservoir_name_list)
    out = {}
    for lk in flow_links:
        link = wn.get_link(lk)
        if link.start_node_name in reservoirs:
            out[lk] = 1.0
        elif link.end_node_name in reservoirs:
            out[lk] = -1.0
    return out


def tank_area(wn: wntr.network.WaterNetworkModel, tank: str, level: float | None = None) -> float:
    """Horizontal cross-section of a tank [m²] (from its volume curve at ``level`` if it has one)."""
    t = wn.get_node(tank)
    curve = getattr(t, "vol_curve", None)
    if curve is not None and len(curve.points) > 1 and level is not None:
        pts = np.array(curve.points, dtype=float)
        i = int(np.clip(np.searchsorted(pts[:, 0], level), 1, len(pts) - 1))
        return float((pts[i, 1] - pts[i - 1, 1]) / max(pts[i, 0] - pts[i - 1, 0], 1e-9))
    return float(np.pi / 4.0 * t.diameter**2)


def model_hour(index: pd.DatetimeIndex, tz: str | None = None) -> np.ndarray:
    """Hour of the day [h, fractional] of each UTC time on the model's clock.

    An EPANET model's demand patterns and controls run on the utility's local time; the
    readings are in UTC. ``tz`` is that time zone (``"Asia/Jakarta"``, ``"UTC+7"``, anything
    :func:`tirtasu.telemetry.timestamps.resolve_tz` reads); None: UTC.
    """
    if tz is not None:
        index = index.tz_localize("UTC") if index.tz is None else index
        index = index.tz_convert(resolve_tz(tz))
    return (index.hour + index.minute / 60.0 + index.second / 3600.0).to_numpy(dtype=float)


def _harmonics(index: pd.DatetimeIndex, orders=(1, 2, 3)) -> np.ndarray:
    hod = (index.hour + index.minute / 60.0 + index.second / 3600.0).to_numpy(dtype=float)
    cols = []
    for k in orders:
        cols += [np.sin(2 * np.pi * k * hod / 24.0), np.cos(2 * np.pi * k * hod / 24.0)]
    return np.column_stack(cols) if cols else np.empty((len(index), 0))


def _fill_short(df: pd.DataFrame, limit: int) -> pd.DataFrame:
    return df.interpolate(limit=limit, limit_area="inside") if len(df.columns) else df


@dataclass
class ResidualModel:
    """Regressions of the leak-free network, fitted on a training period.

    Use :meth:`fit`, then :meth:`hourly_residuals` on any data with the same sensors.
    """

    pressure_sensors: list = field(default_factory=list)
    flow_sensors: list = field(default_factory=list)
    level_sensors: list = field(default_factory=list)
    sources: dict = field(default_factory=dict)
    tank_areas: dict = field(default_factory=dict)
    use_amr: bool = False
    ridge: float = 1e-3
    pressure_on_amr: bool = False
    balance_each_meter: bool = True
    amr_fill: pd.Series | None = None
    pressure_harmonics: tuple = ()
    clock_tz: str | None = None  # time zone the model's patterns and controls run on (None: UTC)
    # fitted
    x_mean: np.ndarray | None = None
    x_sd: np.ndarray | None = None
    beta: np.ndarray | None = None  # (features, pressure sensors), on standardised features
    d_beta: np.ndarray | None = None
    d_x_mean: np.ndarray | None = None
    d_x_sd: np.ndarray | None = None
    flow_profile: np.ndarray | None = None  # mean flow of each meter per hour of day (24, f)
    level_mean: np.ndarray | None = None
    has_balance: bool = False
    notes: list = field(default_factory=list)

    # -- features --------------------------------------------------------------------------
    def raw_flows(self, inputs: LeakInputs, fill: int) -> np.ndarray:
        """The metered flows, then each metered tank's outflow rate [m³/h], per reading.

        A tank's outflow is −area·dlevel/dt from the level smoothed over half an hour: in a
        network fed from tanks it is the flow that drives the head losses, as a source's meter
        is elsewhere.
        """
        idx = inputs.index
        cols = []
        if self.flow_sensors:
            cols.append(_fill_short(inputs.flow[self.flow_sensors], fill).to_numpy())
        if self.level_sensors:
            per_hour = max(1, int(round(pd.Timedelta(hours=1) / inputs.step)))
            w = max(3, per_hour // 2 | 1)
            lev = _fill_short(inputs.level[self.level_sensors], fill).rolling(w, center=True, min_periods=1).mean()
            dt_h = inputs.step / pd.Timedelta(hours=1)
            half = max(1, w // 2)
            rate = (lev.shift(-half) - lev.shift(half)) / (2 * half * dt_h)
            area = np.array([self.tank_areas[t] for t in self.level_sensors])
            cols.append(-rate.to_numpy() * area)
        return np.column_stack(cols) if cols else np.empty((len(idx), 0))

    @property
    def flow_map(self) -> np.ndarray:
        """(flow regressors, metered flows + tank outflows): how the regressors combine them.

        The meters on links out of reservoirs are summed into one regressor, the total source
        inflow: they rise and fall together with demand, so a regression cannot tell their
        separate effects, while a leak changes their split. Other meters (pumps, valves, DMA
        inlets) and tank outflows are regressors of their own.
        """
        f, nt = len(self.flow_sensors), len(self.level_sensors)
        rows = []
        src = [k for k, lk in enumerate(self.flow_sensors) if lk in self.sources]
        if src:
            r = np.zeros(f + nt)
            for k in src:
                r[k] = self.sources[self.flow_sensors[k]]
            rows.append(r)
        for k, lk in enumerate(self.flow_sensors):
            if lk not in self.sources:
                r = np.zeros(f + nt)
                r[k] = 1.0
                rows.append(r)
        for k in range(nt):
            r = np.zeros(f + nt)
            r[f + k] = 1.0
            rows.append(r)
        return np.array(rows).reshape(-1, f + nt)

    def flow_like(self, inputs: LeakInputs, fill: int) -> np.ndarray:
        """The flow regressors per reading [m³/h] (see :attr:`flow_map`)."""
        raw = self.raw_flows(inputs, fill)
        return raw @ self.flow_map.T if raw.shape[1] else raw

    @property
    def n_flow_like(self) -> int:
        return self.flow_map.shape[0]

    def _pressure_features(self, inputs: LeakInputs, fill: int) -> np.ndarray:
        idx = inputs.index
        cols = []
        flows = self.flow_like(inputs, fill)
        for k in range(flows.shape[1]):
            cols += [flows[:, k], flows[:, k] ** 2]
        if self.level_sensors:
            lev = _fill_short(inputs.level[self.level_sensors], fill).to_numpy()
            cols += [lev[:, k] for k in range(lev.shape[1])]
        if self.use_amr and self.pressure_on_amr:
            cols.append(self._amr_total(inputs, fill))
        X = np.column_stack(cols) if cols else np.empty((len(idx), 0))
        return np.column_stack([X, _harmonics(idx, self.pressure_harmonics)])

    def _amr_total(self, inputs: LeakInputs, fill: int) -> np.ndarray:
        d = _fill_short(inputs.demand, fill)
        total = d.sum(axis=1, min_count=max(1, int(0.8 * d.shape[1]))).to_numpy() / 1000.0  # L/h → m³/h
        # a meter missing for a moment: scale the rest up rather than lose the hour
        n_ok = d.notna().sum(axis=1).to_numpy()
        scale = np.where(n_ok > 0, d.shape[1] / np.maximum(n_ok, 1), np.nan)
        return total * scale

    def inflow_hourly(self, inputs: LeakInputs) -> pd.Series:
        """Water into the network per hour [m³/h] (metered source inflow minus tank filling);
        empty unless every source is metered (``has_balance``)."""
        if not self.has_balance:
            return pd.Series(dtype=float)
        step_h = inputs.step / pd.Timedelta(hours=1)
        return self._balance(inputs, max(1, int(round(1.0 / step_h))))

    def _balance(self, inputs: LeakInputs, fill: int) -> pd.Series:
        """Water into the network per hour [m³/h]: metered source inflow minus tank filling."""
        idx = inputs.index
        q = pd.Series(0.0, index=idx)
        for lk, sign in self.sources.items():
            q = q + sign * _fill_short(inputs.flow[[lk]], fill)[lk]
        hourly = q.resample("1h").mean()
        for tank, area in self.tank_areas.items():
            # volume change over each hour from the level at its boundaries (a short centred
            # mean of the readings around each boundary), so that inflow and filling cover the
            # same interval whatever the pumps do inside it
            lev = _fill_short(inputs.level[[tank]], fill)[tank]
            smooth = lev.rolling(3, center=True, min_periods=1).mean()
            at = smooth.reindex(hourly.index.union([hourly.index[-1] + pd.Timedelta(hours=1)]), method="nearest", tolerance=inputs.step)
            rate = (at.shift(-1) - at).reindex(hourly.index)  # m per hour
            hourly = hourly - area * rate
        return hourly

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, inputs: LeakInputs, train: np.ndarray, wn: wntr.network.WaterNetworkModel) -> "ResidualModel":
        """Fit on the rows of ``inputs`` where ``train`` is True (leak-free)."""
        self.pressure_sensors = list(inputs.pressure.columns)
        self.flow_sensors = list(inputs.flow.columns)
        self.level_sensors = [c for c in inputs.level.columns if c in wn.tank_name_list]
        self.use_amr = len(inputs.demand.columns) > 0
        step_h = inputs.step / pd.Timedelta(hours=1)
        fill = max(1, int(round(1.0 / step_h)))
        self.sources = source_meters(wn, self.flow_sensors)
        self.tank_areas = {t: tank_area(wn, t, float(np.nanmean(inputs.level[t]))) for t in self.level_sensors}
        n_res = len([r for r in wn.reservoir_name_list])
        unmetered_res = []
        for r in wn.reservoir_name_list:
            links = [lk for lk, link in wn.links() if r in (link.start_node_name, link.end_node_name)]
            if not any(lk in self.sources for lk in links):
                unmetered_res.append(r)
        unmetered_tanks = [t for t in wn.tank_name_list if t not in self.level_sensors]
        self.has_balance = bool(self.sources) and not unmetered_res
        if not self.sources:
            self.notes.append(
                "no flow meter on a link out of a reservoir: the demand balance (total leak flow) is not "
                "available; detection relies on pressures alone"
            )
        elif unmetered_res and n_res:
            self.notes.append(
                f"reservoir(s) {', '.join(unmetered_res)} have no metered outlet: the demand balance is "
                "incomplete and not used"
            )
        if self.has_balance and unmetered_tanks:
            self.notes.append(
                f"tank(s) {', '.join(unmetered_tanks)} have no level sensor: their filling is missing from the "
                "demand balance (hour-to-hour noise, no bias over days)"
            )

        X = self._pressure_features(inputs, fill)
        P = inputs.pressure.to_numpy()
        rows = train & np.isfinite(X).all(axis=1)
        if rows.sum() < max(48, 3 * X.shape[1]):
            raise ValueError(
                f"only {int(rows.sum())} complete training readings: not enough to learn the leak-free network"
            )
        self.x_mean = X[rows].mean(axis=0)
        self.x_sd = X[rows].std(axis=0)
        self.x_sd[self.x_sd < 1e-12] = 1.0
        Xs = np.column_stack([np.ones(rows.sum()), (X[rows] - self.x_mean) / self.x_sd])
        self.beta = np.zeros((Xs.shape[1], P.shape[1]))
        reg = self.ridge * rows.sum() * np.eye(Xs.shape[1])
        reg[0, 0] = 0.0
        for j in range(P.shape[1]):
            ok = np.isfinite(P[rows, j])
            if ok.sum() < Xs.shape[1] * 3:
                continue
            A = Xs[ok]
            self.beta[:, j] = np.linalg.solve(A.T @ A + reg, A.T @ P[rows, j][ok])
        # mean of each flow regressor by hour of day (for the regression's derivative)
        fl = pd.DataFrame(self.flow_like(inputs, fill), index=inputs.index)[train]
        if fl.shape[1]:
            prof = fl.groupby(model_hour(fl.index, self.clock_tz).astype(int)).mean().reindex(range(24))
            self.flow_profile = prof.ffill().bfill().to_numpy()
        else:
            self.flow_profile = np.zeros((24, 0))

        if self.has_balance:
            bal = self._balance(inputs, fill)
            Xd = self._balance_features(inputs, fill, bal.index)
            train_h = pd.Series(train, index=inputs.index).resample("1h").min().reindex(bal.index).fillna(False).to_numpy(bool)
            ok = train_h & np.isfinite(Xd).all(axis=1) & np.isfinite(bal.to_numpy())
            if ok.sum() < 24:
                self.has_balance = False
                self.notes.append("too little complete training data for the demand balance; not used")
            else:
                self.d_x_mean = Xd[ok].mean(axis=0)
                self.d_x_sd = Xd[ok].std(axis=0)
                self.d_x_sd[self.d_x_sd < 1e-12] = 1.0
                A = np.column_stack([np.ones(ok.sum()), (Xd[ok] - self.d_x_mean) / self.d_x_sd])
                reg = self.ridge * ok.sum() * np.eye(A.shape[1])
                reg[0, 0] = 0.0
                self.d_beta = np.linalg.solve(A.T @ A + reg, A.T @ bal.to_numpy()[ok])
        return self

    def _balance_features(self, inputs: LeakInputs, fill: int, hours: pd.DatetimeIndex) -> np.ndarray:
        """Hourly smart-meter readings, each its own regressor [m³/h], and the hour of day.

        Each meter stands for the customers whose use follows the same pattern and swings
        (a neighbourhood, a category): a ridge regression on the meters one by one estimates
        the unmetered consumption much better than their sum does. A missing reading takes the
        meter's training mean.
        """
        cols = []
        if self.use_amr:
            amr = inputs.demand.resample("1h").mean().reindex(hours) / 1000.0  # L/h → m³/h
            if self.amr_fill is None:
                self.amr_fill = amr.mean().fillna(0.0)
            amr = amr.reindex(columns=self.amr_fill.index).fillna(self.amr_fill)
            cols.append(amr.sum(axis=1).to_numpy())
            if self.balance_each_meter:
                cols.append(amr.to_numpy())
        X = np.column_stack(cols) if cols else np.empty((len(hours), 0))
        return np.column_stack([X, _harmonics(hours)])

    # -- derivatives -------------------------------------------------------------------------
    def flow_jacobian(self, hour: float) -> np.ndarray:
        """d(predicted pressure)/d(each flow regressor) at the training mean flows of ``hour``.

        Returns an array (pressure sensors, flow regressors) [m per m³/h]; ``J @ flow_map``
        gives the derivative with respect to each metered flow and tank outflow.
        """
        f = self.n_flow_like
        J = np.zeros((len(self.pressure_sensors), f))
        h0 = int(np.floor(hour)) % 24
        h1 = (h0 + 1) % 24
        w = hour - np.floor(hour)
        for k in range(f):
            F = (1 - w) * self.flow_profile[h0, k] + w * self.flow_profile[h1, k]
            b_lin = self.beta[1 + 2 * k] / self.x_sd[2 * k]
            b_sq = self.beta[2 + 2 * k] / self.x_sd[2 * k + 1]
            J[:, k] = b_lin + 2.0 * b_sq * F
        return J

    def level_jacobian(self) -> np.ndarray:
        """d(predicted pressure)/d(tank level) (pressure sensors, level sensors) [m per m]."""
        f = self.n_flow_like
        J = np.zeros((len(self.pressure_sensors), len(self.level_sensors)))
        for k in range(len(self.level_sensors)):
            J[:, k] = self.beta[1 + 2 * f + k] / self.x_sd[2 * f + k]
        return J

    # -- residuals ---------------------------------------------------------------------------
    def residuals(self, inputs: LeakInputs) -> pd.DataFrame:
        """Pressure residuals at the data's own step [m] (NaN where a reading or regressor is missing)."""
        step_h = inputs.step / pd.Timedelta(hours=1)
        fill = max(1, int(round(1.0 / step_h)))
        X = self._pressure_features(inputs, fill)
        Xs = np.column_stack([np.ones(len(X)), (X - self.x_mean) / self.x_sd])
        pred = Xs @ self.beta
        P = inputs.pressure[self.pressure_sensors].to_numpy()
        return pd.DataFrame(P - pred, index=inputs.index, columns=self.pressure_sensors)

    def hourly_residuals(self, inputs: LeakInputs, min_coverage: float = 0.5) -> pd.DataFrame:
        """Hourly means of the pressure residuals [m] and the demand balance residual [m³/h].

        Columns: the pressure sensors, then ``"__balance__"`` when the balance is available.
        An hour with less than ``min_coverage`` of its readings is NaN.
        """
        R = self.residuals(inputs)
        g = R.resample("1h")
        mean, count = g.mean(), g.count()
        per_hour = max(1, int(round(pd.Timedelta(hours=1) / inputs.step)))
        mean[count < min_coverage * per_hour] = np.nan
        if self.has_balance:
            step_h = inputs.step / pd.Timedelta(hours=1)
            fill = max(1, int(round(1.0 / step_h)))
            bal = self._balance(inputs, fill).reindex(mean.index)
            Xd = self._balance_features(inputs, fill, mean.index)
            A = np.column_stack([np.ones(len(Xd)), (Xd - self.d_x_mean) / self.d_x_sd])
            mean["__balance__"] = bal.to_numpy() - A @ self.d_beta
        return mean
