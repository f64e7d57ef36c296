"""How precise a timing is, with the stdlib only: quantiles and their distribution-free confidence intervals
(order statistics), and the t-interval of a mean. The `bench` op's stop rule is built on these."""
from __future__ import annotations

import functools
import math
from statistics import NormalDist
from typing import List, Optional, Sequence, Tuple


def quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values, linearly interpolated (numpy's default `percentile` method)."""
    if not ordered:
        raise ValueError("no values")
    pos = (len(ordered) - 1) * q
    low = int(math.floor(pos))
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def quantile_interval(ordered: Sequence[float], q: float, confidence: float) -> Optional[Tuple[float, float]]:
    """Distribution-free confidence interval of the q-quantile: the order statistics at ranks
    n·q ± z·sqrt(n·q·(1−q)) (normal approximation of the binomial count below the quantile).

    None while n is too small for a bound to exist (e.g. p95 at 95 % needs n ≥ 73).
    """
    n = len(ordered)
    if n == 0:
        return None
    centre, half = n * q, _z(confidence) * math.sqrt(n * q * (1.0 - q))
    lo_rank, hi_rank = int(math.floor(centre - half)), int(math.ceil(centre + half))  # 1-based ranks
    if lo_rank < 1 or hi_rank > n:
        return None
    return ordered[lo_rank - 1], ordered[hi_rank - 1]


def quantile_precision(ordered: Sequence[float], q: float, confidence: float) -> Optional[float]:
    """The q-quantile's achieved relative precision: the wider side of its confidence interval over the
    estimate (0.02 = ±2 %). None when no interval exists yet or the estimate is not positive."""
    bounds = quantile_interval(ordered, q, confidence)
    estimate = quantile(ordered, q) if ordered else 0.0
    if bounds is None or estimate <= 0:
        return None
    return max(estimate - bounds[0], bounds[1] - estimate) / estimate


def _t_cdf(x: float, df: int) -> float:
    """Student's t distribution function for x ≥ 0 (Simpson's rule on the density: accurate to ~1e-7)."""
    log_norm = math.lgamma((df + 1) / 2.0) - math.lgamma(df / 2.0) - 0.5 * math.log(df * math.pi)
    steps = 400
    h = x / steps
    total = 0.0
    for i in range(steps + 1):
        weight = 1 if i in (0, steps) else (4 if i % 2 else 2)
        total += weight * math.exp(log_norm - (df + 1) / 2.0 * math.log1p((i * h) ** 2 / df))
    return 0.5 + total * h / 3.0


@functools.lru_cache(maxsize=64)
def t_quantile(p: float, df: int) -> float:
    """Student's t quantile for p in (0.5, 1) by bisection on its distribution function (no scipy)."""
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if _t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def mean_precision(values: Sequence[float], confidence: float) -> Optional[float]:
    """Relative half-width of the t confidence interval of the mean of `values` (0.02 = ±2 %); None below
    two values or for a non-positive mean."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    if mean <= 0:
        return None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return t_quantile(0.5 + confidence / 2.0, n - 1) * sd / math.sqrt(n) / mean


def summary(ordered: List[float]) -> dict:
    """Percentiles, mean and coefficient of variation of sorted latencies (ms)."""
    n = len(ordered)
    mean = sum(ordered) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in ordered) / n)  # population sd, as numpy's std()
    out = {"p%d_latency_ms" % p: quantile(ordered, p / 100.0) for p in (50, 90, 95, 99)}
    out.update({"mean_latency_ms": mean, "latency_cv": sd / mean if mean > 0 else 0.0})
    return out
