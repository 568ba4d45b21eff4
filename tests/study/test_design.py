"""The study design: seeded task orders per annotator and the balanced
with/without-overlay crossover of adversarial images."""

import hashlib

import pytest

from jaxaudit.errors import ParameterError
from jaxaudit.study import design

SIZES = [(1, 1), (1, 4), (2, 3), (7, 3), (30, 3), (31, 4), (10, 5), (9, 2),
         (40, 7)]


def _ids(prefix, n):
  return [f"{prefix}{i}" for i in range(n)]


def test_task_order_is_a_seeded_permutation_per_annotator():
  tasks = _ids("task-", 30)
  order = design.task_order(tasks, 11, "alice")
  assert sorted(order) == sorted(tasks) and order != tasks
  assert design.task_order(tasks, 11, "alice") == order
  assert design.task_order(tasks, 12, "alice") != order
  assert design.task_order(tasks, 11, "bob") != order


def test_task_order_is_pinned():
  """A digest of the annotator id and PCG64's raw stream, not Python's salted
  hash() nor Generator.permutation: the same under any process or NumPy."""
  assert design.task_order(_ids("t", 8), 3, "alice") == [
      "t0", "t4", "t3", "t7", "t1", "t6", "t2", "t5"]
  assert design.overlay_conditions(_ids("img", 6), ["alice", "bob"], 3) == {
      "alice": {"img0": True, "img1": False, "img2": False, "img3": True,
                "img4": False, "img5": True},
      "bob": {"img0": False, "img1": True, "img2": True, "img3": False,
              "img4": True, "img5": False}}


def test_task_order_edge_cases_and_bad_input():
  assert design.task_order([], 0, "a") == []
  assert design.task_order(["only"], 0, "a") == ["only"]
  with pytest.raises(ParameterError, match="distinct"):
    design.task_order(["a", "a"], 0, "x")
  for seed in (-1, True, 1.5):
    with pytest.raises(ParameterError, match="seed"):
      design.task_order(["a"], seed, "x")


@pytest.mark.parametrize("num_images,num_annotators", SIZES)
def test_overlay_design_is_balanced(num_images, num_annotators):
  images = _ids("adv-", num_images)
  annotators = _ids("annotator-", num_annotators)
  conditions = design.overlay_conditions(images, annotators, seed=5)
  assert list(conditions) == annotators
  for per_image in conditions.values():
    # One condition per image for each annotator, half of them with overlay.
    assert list(per_image) == images
    assert all(isinstance(c, bool) for c in per_image.values())
    shown = sum(per_image.values())
    assert abs(shown - (num_images - shown)) <= 1
  for image in images:
    shown = sum(conditions[a][image] for a in annotators)
    assert abs(shown - (num_annotators - shown)) <= 1


def test_overlay_design_depends_on_the_seed():
  images, annotators = _ids("adv-", 30), _ids("a", 3)
  first = design.overlay_conditions(images, annotators, seed=0)
  assert design.overlay_conditions(images, annotators, seed=0) == first
  for seed in (1, 2, 3):
    other = design.overlay_conditions(images, annotators, seed=seed)
    assert other["a0"] != first["a0"]


def test_slots_alternate_and_give_complementary_conditions():
  images, annotators = _ids("adv-", 12), _ids("a", 4)
  conditions = design.overlay_conditions(images, annotators, seed=9)
  assert [design.annotator_slot(a, annotators) for a in annotators] == [
      0, 1, 0, 1]
  assert conditions["a0"] == conditions["a2"]
  assert conditions["a1"] == {i: not c for i, c in conditions["a0"].items()}


def test_undeclared_annotator_gets_a_digest_slot_and_a_balanced_set():
  images, annotators = _ids("adv-", 11), ["alice", "bob"]
  declared = design.overlay_conditions(images, annotators, seed=4)
  for a in annotators:
    assert design.annotator_conditions(images, a, 4, annotators) == declared[a]
  slots = []
  for i in range(200):
    newcomer = f"newcomer-{i}"
    slot = design.annotator_slot(newcomer, annotators)
    digest = hashlib.sha256(newcomer.encode()).digest()
    assert slot == digest[-1] % 2
    conditions = design.annotator_conditions(images, newcomer, 4, annotators)
    # Same as the declared annotator in the same slot: balanced over images.
    assert conditions == declared[annotators[slot]]
    slots.append(slot)
  assert 70 <= sum(slots) <= 130  # Both slots drawn about equally often.


def test_overlay_rules_agree_with_the_conditions():
  images, annotators = _ids("adv-", 9), _ids("a", 3)
  rules = design.overlay_rules(images, annotators, seed=2)
  conditions = design.overlay_conditions(images, annotators, seed=2)
  assert list(rules) == images
  for a in annotators:
    assert {i: rule(a) for i, rule in rules.items()} == conditions[a]


def test_overlay_design_refuses_repeated_ids():
  with pytest.raises(ParameterError, match="annotators"):
    design.overlay_conditions(["x"], ["a", "a"], 0)
  with pytest.raises(ParameterError, match="image_ids"):
    design.overlay_conditions(["x", "x"], ["a"], 0)
