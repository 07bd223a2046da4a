"""The one bootstrap interval of a mean, for the evaluation tables and the study report.

Every interval promptxray prints is a percentile bootstrap of a mean
(`scipy.stats.bootstrap`), drawn from `numpy.random.default_rng(seed)` so the same
values always give the same interval, byte for byte. A paired comparison is the
same interval over the per-prompt differences A − B.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mean_interval(
    values: Sequence[float], n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float | None, float | None]:
    """(mean, low, high) of `values`: no interval (None, None) for fewer than two values;
    exactly [v, v] when every value is v (every resample's mean is v; numpy's mean of
    equal floats can be off by an ulp, so it is not computed)."""
    from scipy.stats import bootstrap

    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("mean_interval needs at least one value.")
    if np.ptp(data) == 0:
        v = float(data[0])
        return (v, v, v) if data.size >= 2 else (v, None, None)
    result = bootstrap(
        (data,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    return float(data.mean()), float(ci.low), float(ci.high)
