"""Study tasks from arrays, on scikit-learn's digits: error tasks only for
real errors and with the label among the candidates, adversarial overlays,
SIS and random subsets keeping the same number of pixels under ids that hide
which is which, and the limits."""

import math
import re

import numpy as np
import pytest

from jaxaudit.data.digits import CLASS_NAMES, digit_images
from jaxaudit.errors import ParameterError
from jaxaudit.study import page
from jaxaudit.study import tasks

N = 40
BASELINE = np.array([255, 0, 255], np.uint8)  # Magenta: in no digit.


@pytest.fixture(scope="module")
def digits():
  images, labels = digit_images("test")
  return np.arange(100, 100 + N), images[:N], labels[:N].astype(np.int64)


def _top5(labels, wrong):
  """Top-5 holding the label first, except at `wrong` (label 2nd or absent)."""
  top5 = np.stack([(labels + k) % 10 for k in range(5)], 1)
  top5[wrong] = np.roll(top5[wrong], -1, axis=1)
  top5[wrong[::2]] = np.stack([(labels[wrong[::2]] + k) % 10
                               for k in range(1, 6)], 1)
  return top5


def test_error_tasks_only_for_errors_with_the_label_a_candidate(digits):
  ids, images, labels = digits
  wrong = np.array([3, 7, 8, 20, 31])
  labels = labels.copy()
  labels[5] = -1  # Unknown: never an error.
  top5 = _top5(labels, wrong)
  top5[5, 0] = 0
  got = tasks.error_tasks(ids, images, labels, top5, CLASS_NAMES, limit=100)
  assert [t.id for t in got] == [f"error-{ids[r]}" for r in wrong]
  for task, row in zip(got, wrong):
    indices = [i for i, _ in task.candidates]
    assert task.kind == "error"
    assert indices[:5] == top5[row].tolist()
    assert labels[row] in indices and len(set(indices)) == len(indices)
    assert all(name == CLASS_NAMES[i] for i, name in task.candidates)
    np.testing.assert_array_equal(task.image, images[row])
  assert len(tasks.error_tasks(ids, images, labels, top5, CLASS_NAMES,
                               limit=2)) == 2
  with pytest.raises(ParameterError, match="limit"):
    tasks.error_tasks(ids, images, labels, top5, CLASS_NAMES, limit=-1)


def test_adversarial_tasks_for_successes_with_an_overlay(digits):
  ids, images, labels = digits
  success = np.zeros(N, bool)
  success[[1, 4, 9, 10]] = True
  adv_class = (labels + 1) % 10
  maps = np.random.RandomState(0).randn(N, 16, 16).astype(np.float32)
  got = tasks.adversarial_tasks(ids, images, adv_class, success, maps,
                                CLASS_NAMES, limit=3)
  assert [t.id for t in got] == [f"adversarial-{ids[r]}" for r in (1, 4, 9)]
  for task, row in zip(got, (1, 4, 9)):
    assert task.adversarial_class == CLASS_NAMES[adv_class[row]]
    assert task.overlay.shape == images[row].shape
    assert task.overlay.dtype == np.uint8
  # Where the map is zero the overlay is the image; elsewhere it is tinted.
  flat = np.zeros((16, 16), np.float32)
  flat[4:8, 4:8] = 1.0
  blended = tasks.overlay(images[0], flat)
  np.testing.assert_array_equal(blended[flat == 0], images[0][flat == 0])
  assert (blended[flat > 0] != images[0][flat > 0]).any()
  page.render_page(got, run_id="r", seed=0, annotators=())


def _ranks(num_features, seed):
  return np.stack([np.random.RandomState(seed + i).permutation(num_features)
                   for i in range(N)]).astype(np.int32)


@pytest.mark.parametrize("block", [1, 2])
def test_subset_tasks_keep_the_top_ranked_pixels_and_as_many_random(
    digits, block):
  ids, images, labels = digits
  side = 16 // block
  ranks = _ranks(side * side, 7)
  fraction = 0.05
  count = math.ceil(fraction * side * side)
  got, hidden = tasks.subset_tasks(
      ids, images, ranks, CLASS_NAMES, block_size=block, fraction=fraction,
      baseline=BASELINE, seed=3, key="secret", limit=6)
  assert len(got) == 12 and set(hidden) == {t.id for t in got}
  assert [t.id for t in got] == sorted(t.id for t in got)
  by_example = {}
  for task in got:
    example, variant = hidden[task.id]
    assert re.fullmatch(r"subset-[0-9a-f]{20}", task.id)
    row = int(example) - 100
    kept = (task.image != BASELINE).any(-1)
    assert kept.sum() == count * block * block
    if variant == tasks.SIS:
      # Every pixel outside the top-ranked ones is the baseline.
      np.testing.assert_array_equal(
          kept, tasks.kept_pixels(ranks[row], count, block))
    np.testing.assert_array_equal(task.image[kept], images[row][kept])
    assert sorted(i for i, _ in task.candidates) == list(range(10))
    by_example.setdefault(example, {})[variant] = task
  assert len(by_example) == 6
  for pair in by_example.values():
    sis, control = pair[tasks.SIS], pair[tasks.RANDOM]
    assert sis.candidates == control.candidates  # Same choices, same order.
    assert not np.array_equal(sis.image, control.image)


def test_random_subset_keeps_as_many_pixels():
  ids = np.array([5])
  images = np.zeros((1, 16, 16, 3), np.uint8)  # Kept pixels are black.
  ranks = _ranks(256, 0)[:1]
  got, hidden = tasks.subset_tasks(
      ids, images, ranks, CLASS_NAMES, block_size=1, fraction=0.1,
      baseline=BASELINE, seed=0, key="k", limit=5)
  kept = {hidden[t.id][1]: int((t.image == 0).all(-1).sum()) for t in got}
  assert kept == {tasks.SIS: 26, tasks.RANDOM: 26}


def test_subset_tasks_are_deterministic_and_keyed(digits):
  ids, images, _ = digits
  ranks = _ranks(256, 1)
  args = dict(block_size=1, fraction=0.05, baseline=BASELINE, limit=4)
  a, hidden_a = tasks.subset_tasks(ids, images, ranks, CLASS_NAMES, seed=1,
                                   key="k", **args)
  b, hidden_b = tasks.subset_tasks(ids, images, ranks, CLASS_NAMES, seed=1,
                                   key="k", **args)
  c, _ = tasks.subset_tasks(ids, images, ranks, CLASS_NAMES, seed=1,
                            key="other", **args)
  assert hidden_a == hidden_b
  assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
  assert not {t.id for t in a} & {t.id for t in c}
  # The conditions alternate in no fixed pattern in the listed order.
  variants = [hidden_a[t.id][1] for t in a]
  assert variants.count(tasks.SIS) == variants.count(tasks.RANDOM) == 4


def test_subset_choices_above_ten_classes_are_top5_and_label(digits):
  ids, images, labels = digits
  names = [f"class {i}" for i in range(20)]
  top5 = np.stack([(labels + k) % 20 for k in range(1, 6)], 1)
  got, hidden = tasks.subset_tasks(
      ids, images, _ranks(256, 2), names, block_size=1, fraction=0.05,
      baseline=BASELINE, seed=0, key="k", limit=3, top5=top5, labels=labels)
  for task in got:
    row = hidden[task.id][0] - 100
    assert ({i for i, _ in task.candidates}
            == set(top5[row].tolist()) | {int(labels[row])})
  with pytest.raises(ParameterError, match="top5"):
    tasks.subset_tasks(ids, images, _ranks(256, 2), names, block_size=1,
                       fraction=0.05, baseline=BASELINE, seed=0, key="k",
                       limit=3)
