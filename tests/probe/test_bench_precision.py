"""The bench op's precision maths (stdlib only, in the probe agent's precision module) on known samples."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

from modelcompat.probe.agent.modelcompat_probe_agent.precision import (
    mean_precision,
    quantile,
    quantile_interval,
    quantile_precision,
    summary,
    t_quantile,
)


def test_quantile_is_numpys_default_percentile() -> None:
    values = sorted(np.random.default_rng(0).exponential(size=137).tolist())
    for q in (0.0, 0.5, 0.9, 0.95, 0.99, 1.0):
        assert quantile(values, q) == pytest.approx(float(np.percentile(values, q * 100)))


def test_quantile_interval_is_the_order_statistics_at_n_q_plus_minus_z_sigma() -> None:
    ranks = list(range(1, 101))  # value = rank
    assert quantile_interval(ranks, 0.5, 0.95) == (40, 60)  # 50 ± 1.96·5 = 40.2 … 59.8 → ranks 40 and 60
    # p95's upper bound exists from n = 73 at 95 % (0.95·n + 1.96·sqrt(0.0475·n) ≤ n)
    assert quantile_interval(list(range(1, 73)), 0.95, 0.95) is None
    assert quantile_interval(list(range(1, 74)), 0.95, 0.95) == (65, 73)
    # a lower confidence needs fewer samples
    assert quantile_interval(list(range(1, 41)), 0.95, 0.80) is not None


def test_quantile_precision_is_the_wider_side_over_the_estimate() -> None:
    ranks = [float(r) for r in range(1, 101)]
    assert quantile_precision(ranks, 0.5, 0.95) == pytest.approx(10.5 / 50.5)  # (40, 60) around 50.5
    assert quantile_precision(ranks[:72], 0.95, 0.95) is None
    assert quantile_precision([5.0] * 200, 0.95, 0.95) == 0.0  # a constant time is exact


def test_the_median_interval_covers_the_true_median_at_its_confidence() -> None:
    rng = random.Random(1)
    hits = 0
    for _ in range(1000):
        bounds = quantile_interval(sorted(rng.expovariate(1.0) for _ in range(200)), 0.5, 0.95)
        hits += bounds[0] <= math.log(2) <= bounds[1]
    assert 0.93 <= hits / 1000 <= 0.985  # nominal 95 %; discrete ranks make it a little conservative


@pytest.mark.parametrize(("p", "df", "table"), [(0.975, 2, 4.303), (0.975, 9, 2.262), (0.975, 30, 2.042),
                                               (0.95, 4, 2.132), (0.995, 5, 4.032)])
def test_t_quantile_matches_the_table(p: float, df: int, table: float) -> None:
    assert t_quantile(p, df) == pytest.approx(table, abs=1e-3)


def test_mean_precision_is_the_t_half_width_over_the_mean() -> None:
    assert mean_precision([9.0, 10.0, 11.0], 0.95) == pytest.approx(4.3027 / math.sqrt(3) / 10, rel=1e-4)
    assert mean_precision([10.0], 0.95) is None
    assert mean_precision([10.0] * 5, 0.95) == 0.0


def test_summary_matches_numpy() -> None:
    values = sorted(np.random.default_rng(2).lognormal(size=500).tolist())
    out = summary(values)
    for p in (50, 90, 95, 99):
        assert out[f"p{p}_latency_ms"] == pytest.approx(float(np.percentile(values, p)))
    assert out["mean_latency_ms"] == pytest.approx(float(np.mean(values)))
    assert out["latency_cv"] == pytest.approx(float(np.std(values) / np.mean(values)))
