"""Uncertainty for accuracies: bootstrap confidence intervals and paired tests between systems.

All inputs are per-example 0/1 outcomes (numpy arrays or lists of bools). Resampling is seeded and
vectorised: one (resamples × n) index matrix per call.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Accuracy:
    accuracy: float  # NaN when n == 0
    low: float
    high: float
    correct: int
    n: int

    def as_dict(self) -> dict:
        return _json_safe(asdict(self))


@dataclass(frozen=True)
class PairedComparison:
    baseline_accuracy: float
    system_accuracy: float
    difference: float  # system - baseline, absolute (accuracy points as a fraction)
    relative: float  # difference / baseline accuracy (NaN when the baseline is 0)
    low: float  # paired bootstrap CI of the difference
    high: float
    only_system: int  # discordant: system right, baseline wrong
    only_baseline: int  # discordant: baseline right, system wrong
    p_value: float  # McNemar's exact test (two-sided)
    n: int

    def as_dict(self) -> dict:
        return _json_safe(asdict(self))


def _as_array(values) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError("expected a 1-D sequence of 0/1 outcomes")
    return arr


def _resample_means(arr: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(n_resamples, arr.size))
    return arr[idx].mean(axis=1)


def bootstrap_ci(
    values, *, n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values`; (nan, nan) when empty."""
    arr = _as_array(values)
    if arr.size == 0:
        return math.nan, math.nan
    means = _resample_means(arr, n_resamples, seed)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def accuracy(values, **kwargs) -> Accuracy:
    """Accuracy of 0/1 outcomes with its bootstrap confidence interval."""
    arr = _as_array(values)
    if arr.size == 0:
        return Accuracy(math.nan, math.nan, math.nan, 0, 0)
    low, high = bootstrap_ci(arr, **kwargs)
    return Accuracy(float(arr.mean()), low, high, int(arr.sum()), int(arr.size))


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of the discordant pairs against p = 1/2."""
    if only_a < 0 or only_b < 0:
        raise ValueError("discordant counts must be non-negative")
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_bootstrap_diff(
    baseline,
    system,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float, float]:
    """(difference, low, high): system minus baseline accuracy, resampling examples jointly."""
    a, b = _as_array(baseline), _as_array(system)
    if a.size != b.size:
        raise ValueError(f"paired outcomes need equal lengths ({a.size} vs {b.size})")
    if a.size == 0:
        return math.nan, math.nan, math.nan
    diffs = _resample_means(b - a, n_resamples, seed)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    return float(b.mean() - a.mean()), float(low), float(high)


def compare_paired(baseline, system, **kwargs) -> PairedComparison:
    """Improvement of `system` over `baseline` on the same examples, with CI and McNemar's test."""
    a, b = _as_array(baseline).astype(bool), _as_array(system).astype(bool)
    diff, low, high = paired_bootstrap_diff(a, b, **kwargs)
    only_system = int(np.sum(b & ~a))
    only_baseline = int(np.sum(a & ~b))
    base_acc = float(a.mean()) if a.size else math.nan
    sys_acc = float(b.mean()) if b.size else math.nan
    relative = diff / base_acc if base_acc else math.nan
    return PairedComparison(
        baseline_accuracy=base_acc,
        system_accuracy=sys_acc,
        difference=diff,
        relative=relative,
        low=low,
        high=high,
        only_system=only_system,
        only_baseline=only_baseline,
        p_value=mcnemar_exact(only_system, only_baseline),
        n=int(a.size),
    )


def _json_safe(d: dict) -> dict:
    """NaN -> None so the result is valid JSON."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}
