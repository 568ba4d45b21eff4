"""Expected calibration error and the reliability diagram.

With B bins over the examples' top-1 confidences, ECE = sum_b (n_b / N) *
|accuracy_b - mean confidence_b|. Equal-width bins split [0, 1] into B
intervals (lower edge open: bin b holds (b/B, (b+1)/B], the first also 0);
equal-mass bins split the examples, sorted by confidence, into B runs of
sizes differing by at most one (`np.array_split`), so every bin holds about
N/B examples. The sort key is the confidence rounded to 4 decimals, ties by
position: device layouts whose logits differ in the last bits (batch shapes
round differently) then bin the examples alike, where near-equal confidences
of a confident model would otherwise swap places across a bin edge. Bootstrap intervals resample examples with
replacement and rebin each resample. Pure NumPy.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

BINNINGS = ("equal_width", "equal_mass")


class Reliability(NamedTuple):
  """Per-bin points of a reliability diagram (empty bins left out).

  Attributes:
    confidence: float [b] mean confidence of each bin.
    accuracy: float [b] its accuracy.
    count: int [b] its examples.
  """
  confidence: np.ndarray
  accuracy: np.ndarray
  count: np.ndarray


def _check(confidence: np.ndarray, correct: np.ndarray,
           num_bins: int) -> tuple[np.ndarray, np.ndarray]:
  confidence = np.asarray(confidence, np.float64)
  correct = np.asarray(correct, np.float64)
  if confidence.ndim != 1 or confidence.shape != correct.shape:
    raise ValueError(f"confidence and correct must be [N], got "
                     f"{confidence.shape} and {correct.shape}")
  if num_bins < 1:
    raise ValueError(f"num_bins must be >= 1, got {num_bins}")
  return confidence, correct


def bin_index(confidence: np.ndarray, num_bins: int,
              binning: str) -> np.ndarray:
  """int [N] each example's bin.

  Args:
    confidence: float [N] in [0, 1].
    num_bins: B.
    binning: "equal_width" or "equal_mass".
  """
  confidence = np.asarray(confidence, np.float64)
  if binning == "equal_width":
    return np.clip(np.ceil(confidence * num_bins).astype(np.int64) - 1, 0,
                   num_bins - 1)
  if binning == "equal_mass":
    order = np.lexsort((np.arange(len(confidence)), np.round(confidence, 4)))
    out = np.empty(len(confidence), np.int64)
    for b, rows in enumerate(np.array_split(order, num_bins)):
      out[rows] = b
    return out
  raise ValueError(f"binning must be one of {BINNINGS}, got {binning!r}")


def reliability(confidence: np.ndarray, correct: np.ndarray, num_bins: int,
                binning: str) -> Reliability:
  """The reliability diagram's points.

  Args:
    confidence: float [N] top-1 probabilities.
    correct: bool [N] the top-1 is the label.
    num_bins: B.
    binning: "equal_width" or "equal_mass".
  """
  confidence, correct = _check(confidence, correct, num_bins)
  bins = bin_index(confidence, num_bins, binning)
  count = np.bincount(bins, minlength=num_bins)
  used = count > 0
  conf_sum = np.bincount(bins, confidence, minlength=num_bins)
  hit_sum = np.bincount(bins, correct, minlength=num_bins)
  return Reliability(conf_sum[used] / count[used], hit_sum[used] / count[used],
                     count[used])


def ece(confidence: np.ndarray, correct: np.ndarray, num_bins: int,
        binning: str) -> float:
  """Expected calibration error (NaN for no examples).

  Args:
    confidence: float [N] top-1 probabilities.
    correct: bool [N] the top-1 is the label.
    num_bins: B.
    binning: "equal_width" or "equal_mass".
  """
  points = reliability(confidence, correct, num_bins, binning)
  if not points.count.size:
    return float("nan")
  weights = points.count / points.count.sum()
  return float(np.sum(weights * np.abs(points.accuracy - points.confidence)))


def ece_interval(confidence: np.ndarray, correct: np.ndarray, num_bins: int,
                 binning: str, *, rng: np.random.Generator, samples: int,
                 level: float) -> list[float]:
  """Percentile bootstrap interval of `ece` (examples resampled, rebinned).

  Args:
    confidence: float [N] top-1 probabilities.
    correct: bool [N].
    num_bins: B.
    binning: "equal_width" or "equal_mass".
    rng: draws the resamples.
    samples: resamples.
    level: the interval's coverage.

  Returns:
    [low, high]; NaNs for no examples.
  """
  confidence, correct = _check(confidence, correct, num_bins)
  n = len(confidence)
  if not n:
    return [float("nan"), float("nan")]
  stats = np.empty(samples)
  for s in range(samples):
    rows = rng.integers(0, n, n)
    stats[s] = ece(confidence[rows], correct[rows], num_bins, binning)
  low, high = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
  return [float(low), float(high)]
