"""Learning curves: validation score against training-set size, per strategy family.

**Like statistics at every size.** A family's curve is fit to one strategy (the one the search
probed, ``curve_of``) at every size: at the full size the mean of its full-size runs, at each
smaller size the mean of its probe runs there. (Taking the best of a family's many runs at the
full size and single probes below would bias the curve upwards.) Each point carries its standard
error: the standard deviation of its runs over the square root of their number, or the study's
pooled seed standard deviation for a single run.

**A curve that saturates.** With 3 or more sizes the curve is the power law with an asymptote
``score(n) = a - b n^(-c)`` (for a metric to minimise, ``a + b n^(-c)``), the usual learning-curve
model (Hestness et al. 2017, "Deep Learning Scaling is Predictable, Empirically"; Mukherjee et al.
2003), fit by weighted least squares with ``b >= 0`` and ``0.05 <= c <= 1.5`` (exactly, on a grid
of exponents: see :func:`_fit_power`). With 2 sizes the same law with its asymptote at the metric's
best score (``1 - b n^(-c)`` for accuracy: the gap to a perfect score shrinks as a power of n),
two parameters through two points; it saturates by construction and never predicts more than the
log-linear ``a + b ln n`` through the same points (which is used for a metric without a bound,
and which two points would carry past the bound). With one size, a flat line that predicts only
at that size.

**Its uncertainty** is a parametric bootstrap: the points are redrawn from normal distributions
with their standard errors and the curve refit 200 times; the 10th and 90th percentiles of the
refit curves' predictions give an 80% interval. Beyond the largest size measured the form of the
curve is itself uncertain (no one form fits all learning curves: Viering and Loog 2022, "The
Shape of Learning Curves: a Review"), and the bootstrap does not see that: there the interval
also reaches the log-linear line ``a + b ln n`` through the same points, which does not
saturate. (On 2,000 SST-2 rows probed at 200 and 600, the power law predicted 0.849 at 8,000
rows with the bootstrap's interval 0.840-0.861, the log-linear line (weighted by the points'
standard errors, as fit here) 0.890, and 3 seeds measured 0.867:
``benchmarks/results/curves_and_cost.json``.) Predictions beyond
:data:`MAX_EXTRAPOLATION` times the largest size trained on are not made.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autoft.strategies import Family
from autoft.study.records import TrialRecord

__all__ = ["MAX_EXTRAPOLATION", "LearningCurve", "fit_learning_curves"]

#: Predictions are made up to this multiple of the largest training size measured.
MAX_EXTRAPOLATION = 4.0
#: Seed standard deviation assumed for a single run when no strategy was re-seeded.
DEFAULT_SIGMA = 0.01
_DRAWS = 200


def _power(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - b * np.power(n, -c)


@dataclass(frozen=True)
class LearningCurve:
    """The learning curve of one family.

    Attributes:
        family: The family.
        trial: The trial whose strategy the curve follows.
        points: ``(train_size, mean score, runs, standard error)`` at each size measured.
        form: ``"power"`` (``a - b n^-c``), ``"log"`` (``a + b ln n``) or ``"flat"``.
        params: The fit's parameters (``a, b, c``; ``a, b``; ``a``), in the maximise form.
        sign: +1 for a metric to maximise, -1 to minimise (the fit is on ``sign * score``).
        bounds: Scores the metric can take (e.g. ``(0, 1)`` for accuracy); predictions are clipped.
        draws: Bootstrap refits of ``params`` (for the interval).
        alternative: For a power-law curve, the log-linear fit ``(a, b)`` through the same
            points (maximise form), which the interval reaches beyond the largest size measured;
            empty otherwise.
    """

    family: Family
    trial: int
    points: tuple[tuple[int, float, int, float], ...]
    form: str
    params: tuple[float, ...]
    sign: float = 1.0
    bounds: tuple[float, float] | None = (0.0, 1.0)
    draws: tuple[tuple[float, ...], ...] = field(default=(), repr=False)
    alternative: tuple[float, ...] = ()

    @property
    def max_size(self) -> int:
        """The largest training size measured."""
        return max(n for n, *_ in self.points)

    def _eval(self, params: Sequence[float], n: float, form: str | None = None) -> float:
        form = form or self.form
        if form == "power":
            value = float(_power(np.asarray(float(n)), *params))
        elif form == "log":
            value = params[0] + params[1] * math.log(max(1.0, n))
        else:
            value = params[0]
        value *= self.sign
        if self.bounds is not None:
            value = min(self.bounds[1], max(self.bounds[0], value))
        return value

    def covers(self, train_size: int) -> bool:
        """Whether a prediction at ``train_size`` is made: up to :data:`MAX_EXTRAPOLATION` times
        the largest size measured for a fitted curve; only at the size measured for a flat one
        (one size says nothing about others)."""
        if self.form == "flat":
            return train_size == self.max_size
        return train_size <= MAX_EXTRAPOLATION * self.max_size

    def predict(self, train_size: int) -> float | None:
        """Expected validation score with ``train_size`` training examples (None beyond
        :data:`MAX_EXTRAPOLATION` times the largest size measured)."""
        if not self.covers(train_size):
            return None
        return self._eval(self.params, train_size)

    def interval(self, train_size: int, level: float = 0.8) -> tuple[float, float] | None:
        """The central ``level`` interval of the bootstrap predictions at ``train_size``, widened
        beyond the largest size measured to reach the log-linear alternative (see the module
        doc). None without draws or beyond the extrapolation limit."""
        if not self.draws or not self.covers(train_size):
            return None
        values = np.asarray([self._eval(p, train_size) for p in self.draws])
        tail = (1 - level) / 2 * 100
        low, high = float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))
        if self.alternative and train_size > self.max_size:
            other = self._eval(self.alternative, train_size, "log")
            low, high = min(low, other), max(high, other)
        return low, high

    def grid(self, steps: int = 24) -> list[list[float | None]]:
        """``[n, prediction, low, high]`` at ``steps + 1`` sizes spaced evenly in log n from the
        smallest size measured to the largest one predicted (for plots)."""
        lo, hi = min(n for n, *_ in self.points), MAX_EXTRAPOLATION * self.max_size
        out: list[list[float | None]] = []
        for i in range(steps + 1):
            n = int(round(lo * (hi / lo) ** (i / steps)))
            interval = self.interval(n)
            out.append([n, self.predict(n), *(interval if interval else (None, None))])
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the bootstrap draws summarised by :meth:`grid`)."""
        return {"family": str(self.family), "trial": self.trial,
                "points": [list(p) for p in self.points], "form": self.form,
                "params": list(self.params), "alternative": list(self.alternative),
                "max_size": self.max_size,
                "max_prediction_size": int(MAX_EXTRAPOLATION * self.max_size),
                "grid": self.grid() if len(self.points) > 1 else []}


#: Exponents c the power law is fit over (profile least squares, see :func:`_fit_power`).
EXPONENTS = np.linspace(0.05, 1.5, 59)


def _fit_power(ns: np.ndarray, ys: np.ndarray, sigma: np.ndarray,
               cap: float | None = None, at_cap: bool = False) -> np.ndarray:
    """Weighted least-squares fits of ``a - b n^-c`` (``b >= 0``) to each row of ``ys``.

    For a fixed exponent c the model is linear in (a, b), so it is solved exactly for every c of
    :data:`EXPONENTS` (with b clipped at 0, where a is the weighted mean) and the c with the
    smallest weighted residual is kept: profile least squares, deterministic and without the
    convergence failures of iterative fitting on 3 points.

    Args:
        ns: Training sizes, shape ``(K,)``.
        ys: Scores, shape ``(D, K)`` (one fit per row).
        sigma: Standard errors of the points, shape ``(K,)``.
        cap: The best score the metric allows (1 for accuracy), in the maximise form: the
            asymptote ``a`` is kept at or below it, with ``b`` refit for ``a = cap`` where the
            free fit goes above (three points rising towards 1 otherwise extrapolate past it,
            and clipping every bootstrap draw at 1 gives the interval [1, 1]). None: free.
        at_cap: Fix the asymptote at ``cap`` and fit only b and c (for 2 sizes, where a free
            asymptote is undetermined). Needs ``cap``.

    Returns:
        Parameters ``(a, b, c)`` of each row, shape ``(D, 3)``.
    """
    w = 1.0 / sigma**2  # (K,)
    best_err = np.full(ys.shape[0], np.inf)
    best = np.zeros((ys.shape[0], 3))
    mean = (ys * w).sum(axis=1) / w.sum()  # (D,): the fit with b = 0
    for c in EXPONENTS:
        x = -np.power(ns, -c)  # (K,)
        sw, sx, sxx = w.sum(), (w * x).sum(), (w * x * x).sum()
        det = sw * sxx - sx * sx
        sy, sxy = (ys * w).sum(axis=1), (ys * w * x).sum(axis=1)  # (D,)
        b = (sw * sxy - sx * sy) / det
        a = (sy - b * sx) / sw
        if at_cap and cap is not None:
            a = np.full_like(a, cap)
            b = (w * x * (ys - cap)).sum(axis=1) / sxx
        elif cap is not None:
            over = a > cap
            b_capped = (w * x * (ys - cap)).sum(axis=1) / sxx
            a, b = np.where(over, cap, a), np.where(over, b_capped, b)
        flat = b < 0  # with the asymptote at the cap: points above it (bootstrap draws)
        level = mean if cap is None else np.minimum(mean, cap)
        a, b = np.where(flat, level, a), np.where(flat, 0.0, b)
        err = (w * (ys - (a[:, None] + b[:, None] * x)) ** 2).sum(axis=1)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best[better] = np.stack([a, b, np.full_like(a, c)], axis=1)[better]
    return best


def _fit(ns: np.ndarray, ys: np.ndarray, sigma: np.ndarray,
         cap: float | None = None) -> tuple[str, np.ndarray]:
    """Fit the maximise-form curve to each row of ``ys`` ``(D, K)``; the form depends on how many
    sizes there are (``cap``: see :func:`_fit_power`). Returns the form and the parameters, shape
    ``(D, P)``."""
    if len(ns) == 1:
        return "flat", ys[:, :1]
    if len(ns) >= 3:
        return "power", _fit_power(ns, ys, sigma, cap)
    if cap is not None:  # two sizes: the asymptote at the metric's best score
        return "power", _fit_power(ns, ys, sigma, cap, at_cap=True)
    return "log", _fit_log(ns, ys, sigma)


def _fit_log(ns: np.ndarray, ys: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Weighted least-squares fits of ``a + b ln n`` to each row of ``ys`` ``(D, K)``; returns
    ``(a, b)`` of each row, shape ``(D, 2)``."""
    w = 1.0 / sigma**2
    x = np.log(ns)
    sw, sx, sxx = w.sum(), (w * x).sum(), (w * x * x).sum()
    sy, sxy = (ys * w).sum(axis=1), (ys * w * x).sum(axis=1)
    slope = (sw * sxy - sx * sy) / (sw * sxx - sx * sx)
    return np.stack([(sy - slope * sx) / sw, slope], axis=1)


def fit_learning_curves(
    records: Sequence[TrialRecord],
    *,
    direction: str = "maximize",
    pooled_sigma: float | None = None,
    bounds: tuple[float, float] | None = (0.0, 1.0),
    seed: int = 0,
) -> dict[Family, LearningCurve]:
    """One learning curve per family that the search probed at smaller sizes, and a flat curve
    for every other family that trained to the end at full size.

    Args:
        records: The study's records.
        direction: ``"maximize"`` or ``"minimize"`` (the metric's direction).
        pooled_sigma: Seed standard deviation for single-run points (the study's pooled one);
            None for :data:`DEFAULT_SIGMA`.
        bounds: Scores the metric can take; None for unbounded metrics. Default ``(0, 1)``.
        seed: Seed of the bootstrap. Default 0.
    """
    sign = -1.0 if direction == "minimize" else 1.0
    sigma1 = pooled_sigma if pooled_sigma and pooled_sigma > 0 else DEFAULT_SIGMA
    done = [r for r in records if r.finished]
    by_number = {r.number: r for r in records}
    full: dict[str, list[float]] = {}
    for r in done:
        if not r.is_probe:
            full.setdefault(r.key, []).append(float(r.score or 0.0))
    sources: dict[int, dict[int, list[float]]] = {}
    for r in done:
        if r.is_probe and r.curve_of in by_number and r.train_size:
            sources.setdefault(int(r.curve_of), {}).setdefault(int(r.train_size), []).append(
                float(r.score or 0.0))
    rng = np.random.default_rng(seed)
    curves: dict[Family, LearningCurve] = {}
    # the best score the metric allows, in the maximise form the curves are fit in
    cap = None if bounds is None else (bounds[1] if sign > 0 else -bounds[0])
    cap = cap if cap is not None and math.isfinite(cap) else None

    def point(n: int, scores: list[float]) -> tuple[int, float, int, float]:
        se = (statistics.stdev(scores) if len(scores) > 1 else sigma1) / math.sqrt(len(scores))
        return (n, statistics.fmean(scores), len(scores), max(se, 1e-4))

    for number, sizes in sorted(sources.items()):
        source = by_number[number]
        if source.key not in full or not source.train_size:
            continue
        pts = sorted([point(int(n), s) for n, s in sizes.items()]
                     + [point(int(source.train_size), full[source.key])])
        fam = source.family()
        if fam in curves and len(curves[fam].points) > len(pts):
            continue
        ns = np.asarray([p[0] for p in pts], dtype=float)
        ys = sign * np.asarray([p[1] for p in pts])
        sig = np.asarray([p[3] for p in pts])
        form, params = _fit(ns, ys[None, :], sig, cap)
        _, draws = _fit(ns, ys[None, :] + rng.normal(0.0, 1.0, (_DRAWS, len(ns))) * sig, sig,
                        cap)
        alternative = (tuple(float(v) for v in _fit_log(ns, ys[None, :], sig)[0])
                       if form == "power" else ())
        curves[fam] = LearningCurve(fam, number, tuple(pts), form,
                                    tuple(float(v) for v in params[0]), sign, bounds,
                                    tuple(tuple(float(v) for v in d) for d in draws),
                                    alternative)
    for r in done:  # families never probed: a flat line at the mean of their best strategy
        if r.is_probe or not r.train_size:
            continue
        fam = r.family()
        if fam in curves:
            continue
        keys = {o.key for o in done if not o.is_probe and o.family() == fam}
        top = max(keys, key=lambda k: sign * statistics.fmean(full[k]))
        first = min((o for o in done if o.key == top and not o.is_probe), key=lambda o: o.number)
        pts = (point(int(first.train_size or 0), full[top]),)
        curves[fam] = LearningCurve(fam, first.number, pts, "flat", (sign * pts[0][1],), sign,
                                    bounds)
    return curves
