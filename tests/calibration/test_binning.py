"""ECE and the reliability diagram against independent computations: a worked
example, a plain-loop reference on random data (equal-mass bins sort by the
confidence to 4 decimals, then position), and known probabilities
(labels drawn from the confidences themselves are calibrated; from their
squares, off by E[c - c^2] = 1/6 for uniform c)."""

import bisect

import numpy as np
import pytest

from jaxaudit.calibration import binning


def _reference_ece(confidence, correct, num_bins, kind):
  """ECE by explicit bins: edges with bisect, or sorted equal-count runs."""
  n = len(confidence)
  if kind == "equal_width":
    edges = [b / num_bins for b in range(1, num_bins)]
    groups = [[] for _ in range(num_bins)]
    for i, c in enumerate(confidence):
      groups[bisect.bisect_left(edges, c)].append(i)
  else:
    order = sorted(range(n), key=lambda i: (round(confidence[i], 4), i))
    size, extra = divmod(n, num_bins)
    groups, start = [], 0
    for b in range(num_bins):
      stop = start + size + (1 if b < extra else 0)
      groups.append(order[start:stop])
      start = stop
  total = 0.0
  for group in groups:
    if group:
      accuracy = sum(correct[i] for i in group) / len(group)
      mean_confidence = sum(confidence[i] for i in group) / len(group)
      total += len(group) / n * abs(accuracy - mean_confidence)
  return total


def test_worked_example():
  confidence = np.array([0.1, 0.35, 0.6, 0.9])
  correct = np.array([False, True, True, True])
  # Width: (0, .5] holds 0.1, 0.35 (acc 0.5, conf 0.225); (.5, 1] 0.6, 0.9
  # (acc 1, conf 0.75).
  assert binning.ece(confidence, correct, 2, "equal_width") == pytest.approx(
      0.5 * 0.275 + 0.5 * 0.25)
  # Mass with 4 bins: one example each.
  assert binning.ece(confidence, correct, 4, "equal_mass") == pytest.approx(
      (0.1 + 0.65 + 0.4 + 0.1) / 4)
  points = binning.reliability(confidence, correct, 4, "equal_width")
  np.testing.assert_allclose(points.confidence, [0.1, 0.35, 0.6, 0.9])
  np.testing.assert_array_equal(points.count, [1, 1, 1, 1])


@pytest.mark.parametrize("kind", binning.BINNINGS)
@pytest.mark.parametrize("seed", range(4))
def test_matches_a_plain_loop(kind, seed):
  rng = np.random.default_rng(seed)
  n = int(rng.integers(1, 400))
  confidence = rng.random(n)
  confidence[: n // 4] = np.round(confidence[: n // 4], 1)  # Ties, edges.
  correct = rng.random(n) < confidence
  assert binning.ece(confidence, correct, 15, kind) == pytest.approx(
      _reference_ece(confidence.tolist(), correct.tolist(), 15, kind))


@pytest.mark.parametrize("kind", binning.BINNINGS)
def test_known_probabilities(kind):
  rng = np.random.default_rng(0)
  confidence = rng.random(200_000)
  calibrated = rng.random(confidence.size) < confidence
  overconfident = rng.random(confidence.size) < confidence ** 2
  assert binning.ece(confidence, calibrated, 15, kind) < 0.01
  assert binning.ece(confidence, overconfident, 15, kind) == pytest.approx(
      1 / 6, abs=0.01)


def test_interval_holds_the_estimate_and_narrows_with_more_examples():
  widths = []
  for n in (500, 20_000):
    rng = np.random.default_rng(1)
    confidence = rng.random(n)
    correct = rng.random(n) < confidence ** 2
    low, high = binning.ece_interval(confidence, correct, 15, "equal_mass",
                                     rng=np.random.default_rng(2), samples=200,
                                     level=0.95)
    assert low <= binning.ece(confidence, correct, 15, "equal_mass") <= high
    widths.append(high - low)
  assert widths[1] < widths[0] / 3
