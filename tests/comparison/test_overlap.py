"""Feature-subset overlap between models: top-ranked subsets from ranks,
coarse masks on a finer grid (each fine cell takes the coarse cell under its
centre: 2x2 -> 4x4 is 2x2 blocks, 4x4 -> 6x6 maps fine rows/columns to coarse
0, 1, 1, 2, 3, 3), IoU on hand examples and across grid sides, and the IoU
of random 5% subsets against the chance value the comparison reports."""

import math
from fractions import Fraction

import numpy as np
import pytest

from jaxaudit.comparison import overlap
from jaxaudit.sis import subsets


def _grid(rows):
  """A bool [1, g * g] mask from a list of g strings of '.' and '#'."""
  return np.array([[c == "#" for row in rows for c in row]])


def test_ranked_subset_keeps_the_top_ranks():
  ranks = np.array([[2, 0, 3, 1],
                    [0, 1, 2, 3],
                    [3, 2, 1, 0]])
  np.testing.assert_array_equal(overlap.ranked_subset(ranks, [2, 1, 4]), [
      [False, True, False, True],
      [True, False, False, False],
      [True, True, True, True]])
  # One count for every row; 0 keeps nothing.
  np.testing.assert_array_equal(overlap.ranked_subset(ranks, 1), ranks == 0)
  assert not overlap.ranked_subset(ranks, 0).any()
  assert overlap.ranked_subset(ranks, [2, 1, 4]).sum(-1).tolist() == [2, 1, 4]


def test_two_by_two_onto_four_by_four_is_blocks():
  mask = _grid(["#.",
                ".#"])
  want = _grid(["##..",
                "##..",
                "..##",
                "..##"])
  np.testing.assert_array_equal(overlap.on_grid(mask, 4), want)
  # Every single coarse cell becomes its own 2 x 2 block.
  for cell in range(4):
    one = np.eye(4, dtype=bool)[cell][None]
    fine = overlap.on_grid(one, 4).reshape(4, 4)
    r, c = divmod(cell, 2)
    assert fine[2 * r:2 * r + 2, 2 * c:2 * c + 2].all() and fine.sum() == 4


def test_four_by_four_onto_six_by_six_takes_the_cell_under_each_centre():
  # Fine index i has its centre at (i + 0.5) / 6 of the side, i.e. coarse
  # index floor((i + 0.5) * 4 / 6) = 0, 1, 1, 2, 3, 3 (1.5 * 4 / 6 = 1 and
  # 4.5 * 4 / 6 = 3 land on edges and take the next cell).
  mask = _grid(["#...",
                "..#.",
                "....",
                "...#"])
  want = _grid(["#.....",
                "...#..",
                "...#..",
                "......",
                "....##",
                "....##"])
  np.testing.assert_array_equal(overlap.on_grid(mask, 6), want)
  # Coarse columns 1 and 2: fine columns 1, 2 and 3.
  band = _grid([".##.",
                ".##.",
                ".##.",
                ".##."])
  np.testing.assert_array_equal(overlap.on_grid(band, 6), _grid(
      [".###.."] * 6))


def test_on_grid_keeps_a_batch_and_its_own_side():
  rng = np.random.default_rng(0)
  masks = rng.random((5, 9)) < 0.4
  np.testing.assert_array_equal(overlap.on_grid(masks, 3), masks)
  fine = overlap.on_grid(masks, 6)
  assert fine.shape == (5, 36)
  # 3 -> 6 is an exact doubling: each example's count quadruples.
  np.testing.assert_array_equal(fine.sum(-1), 4 * masks.sum(-1))


def test_on_grid_refuses_a_non_square_count():
  with pytest.raises(ValueError, match="12 features are not a square grid"):
    overlap.on_grid(np.zeros((1, 12), bool), 4)


def test_iou_of_identical_disjoint_and_empty_masks():
  rng = np.random.default_rng(1)
  a = rng.random((6, 16)) < 0.5
  a[:, 0] = True  # None empty.
  np.testing.assert_array_equal(overlap.iou(a, a), np.ones(6))
  np.testing.assert_array_equal(overlap.iou(a, ~a), np.zeros(6))
  empty = np.zeros((2, 16), bool)
  got = overlap.iou(empty, empty)
  assert got.dtype == np.float64
  np.testing.assert_array_equal(got, [0.0, 0.0])
  # One empty, one not: no intersection, IoU 0.
  np.testing.assert_array_equal(overlap.iou(empty, a[:2]), [0.0, 0.0])


def test_iou_on_a_hand_example():
  a = _grid(["##..",
             "##..",
             "....",
             "...."])
  b = _grid([".##.",
             ".##.",
             ".##.",
             "...."])
  # Shared: (0, 1), (1, 1) -> 2; union 4 + 6 - 2 = 8.
  assert overlap.iou(a, b) == pytest.approx([0.25])
  # Per example, in a batch.
  np.testing.assert_allclose(
      overlap.iou(np.concatenate([a, a]), np.concatenate([b, a])), [0.25, 1.0])


def test_iou_across_grid_sides():
  coarse = _grid(["#.",
                  ".."])
  # A 2x2 mask against its own 4x4 upsampling: the same pixels.
  assert overlap.iou(coarse, overlap.on_grid(coarse, 4)) == pytest.approx([1.0])
  assert overlap.iou(overlap.on_grid(coarse, 4), coarse) == pytest.approx([1.0])
  # Against one fine cell of its block: 1 shared of 4.
  fine = _grid(["#...",
                "....",
                "....",
                "...."])
  assert overlap.iou(coarse, fine) == pytest.approx([0.25])
  # 4x4 against 6x6: the 4x4 cell (3, 3) covers fine rows and columns 4, 5;
  # a 6x6 mask of fine column 5 shares (4, 5), (5, 5) of its 4 cells and
  # has 6: IoU 2 / 8.
  corner = _grid(["....", "....", "....", "...#"])
  column = _grid([".....#"] * 6)
  assert overlap.iou(corner, column) == pytest.approx([0.25])


def _expected_random_iou(num_features, count):
  """E[X / (2k - X)] for two independent uniform k-subsets of F features:
  their intersection X is hypergeometric (F, k, k); summed exactly."""
  total = Fraction(0)
  for x in range(count + 1):
    p = Fraction(math.comb(count, x) * math.comb(num_features - count,
                                                 count - x),
                 math.comb(num_features, count))
    total += p * Fraction(x, 2 * count - x)
  return float(total)


def test_random_five_percent_subsets_overlap_at_chance():
  # The comparison keeps ceil(0.05 * 1024) = 52 features of a 32 x 32 grid and
  # reports chance as the exact hypergeometric E[X / (2k - X)] (`chance_iou`),
  # above f / (2 - f) = 0.025641: the rounded-up count (p = 52 / 1024) gives
  # 0.026052 and the convexity of X / (2k - X) adds the rest.
  num_features, fraction = 1024, 0.05
  count = subsets.subset_counts((fraction,), num_features)[0]
  assert count == 52
  exact = _expected_random_iou(num_features, count)
  assert exact == pytest.approx(0.026292, abs=1e-6)
  chance = overlap.chance_iou(count, count, num_features)
  assert chance == pytest.approx(exact, rel=1e-9)
  # Coarse grids: 13 of 256 and 4 of 64 (the fraction rounded up) sit well
  # above f / (2 - f).
  for n, k in ((256, 13), (64, 4)):
    assert overlap.chance_iou(k, k, n) == pytest.approx(
        _expected_random_iou(n, k), rel=1e-9)
  # A subset on a grid of half the side covers 4 cells of the finer one each.
  assert overlap.chance_iou_across(13, 16, 52, 32) == pytest.approx(
      overlap.chance_iou(52, 52, 1024))
  rng = np.random.default_rng(0)
  draws = 4000
  base = np.tile(np.arange(num_features), (draws, 1))
  ranks_a = rng.permuted(base, axis=1)
  ranks_b = rng.permuted(base, axis=1)
  a = overlap.ranked_subset(ranks_a, count)
  b = overlap.ranked_subset(ranks_b, count)
  assert (a.sum(-1) == count).all() and (b.sum(-1) == count).all()
  values = overlap.iou(a, b)
  # One draw's IoU has sd ~0.015 (X has sd ~1.55 over a union of ~101), so
  # the mean of 4000 has a standard error ~0.00024: 4 of them is ~1e-3.
  stderr = values.std() / np.sqrt(draws)
  assert 0.0002 < stderr < 0.0003
  assert abs(values.mean() - exact) < 4 * stderr

