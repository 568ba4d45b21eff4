"""The study key: it round-trips, its specs check answers with the page's
overlay design, and an edited or malformed key is refused naming the file."""

import json

import pytest

from jaxaudit.errors import JudgementsError
from jaxaudit.study import design
from jaxaudit.study import key as key_lib
from jaxaudit.study import page
from jaxaudit.study.key import AdversarialSource, KeyTask, StudyKey

KEY = StudyKey(
    "run-1", 4, ("a", "b"),
    {"error-3": KeyTask("error", 3, None, ((5, "five"), (3, "three"))),
     "adversarial-7": KeyTask("adversarial", 7, None, (), "seven"),
     "adversarial-2": KeyTask("adversarial", 2, None, (), "one"),
     "subset-ab": KeyTask("subset", 3, "sis", ((1, "one"), (3, "three"))),
     "subset-cd": KeyTask("subset", 3, "random", ((1, "one"), (3, "three")))},
    AdversarialSource("pgd_linf", 8 / 255, "8/255", "saliency"), 0.05)


def _write(tmp_path, value):
  path = tmp_path / "tasks.json"
  path.write_text(json.dumps(value))
  return str(path)


def test_round_trip_and_ids(tmp_path):
  loaded = key_lib.load(_write(tmp_path, key_lib.to_json(KEY)))
  assert loaded == KEY
  assert loaded.ids("adversarial") == ["adversarial-7", "adversarial-2"]
  assert loaded.ids("subset", "random") == ["subset-cd"]


def test_specs_follow_the_pages_overlay_design():
  specs = key_lib.task_specs(KEY)
  tasks = [page.Task(i, t.kind, None, t.candidates, t.adversarial_class,
                     overlay=None) for i, t in KEY.tasks.items()]
  rules = design.overlay_rules([t.id for t in tasks
                                if t.kind == "adversarial"], ["a", "b"], 4)
  for task_id in KEY.ids("adversarial"):
    for annotator in ("a", "b", "someone"):
      assert specs[task_id].overlay(annotator) == rules[task_id](annotator)
  assert specs["error-3"].candidates == frozenset({3, 5})
  assert specs["subset-ab"].overlay is None


def _mutated(edit):
  value = key_lib.to_json(KEY)
  edit(value)
  return value


@pytest.mark.parametrize("edit, problem", [
    (lambda v: v.update(format="jaxaudit-study-tasks/0"), "not a study key"),
    (lambda v: v.pop("seed"), "missing field 'seed'"),
    (lambda v: v.update(seed=-1), "seed is negative"),
    (lambda v: v.update(seed=True), "seed is a boolean"),
    (lambda v: v.update(extra=1), "unknown field 'extra'"),
    (lambda v: v["tasks"][3].update(variant="both"), "variant"),
    (lambda v: v["tasks"][0].update(variant="sis"), "has no variant"),
    (lambda v: v["tasks"].append(dict(v["tasks"][0])), "repeats the task id"),
    (lambda v: v["tasks"][0].update(candidates=[[5, "a"], [5, "b"]]),
     "repeat a class"),
    (lambda v: v["tasks"][1].update(adversarial_class=""), "names its class"),
    (lambda v: v["sources"].update(subset=None), "source iff"),
    (lambda v: v["sources"]["adversarial"].update(epsilon="big"),
     "epsilon is a string"),
    (lambda v: v.update(annotators=["a", "a"]), "repeat an id"),
])
def test_malformed_keys_are_refused_naming_the_file(tmp_path, edit, problem):
  path = _write(tmp_path, _mutated(edit))
  with pytest.raises(JudgementsError, match=problem) as info:
    key_lib.load(path)
  assert str(info.value).startswith(path)


def test_oversized_key_is_refused(tmp_path):
  path = _write(tmp_path, key_lib.to_json(KEY))
  with pytest.raises(JudgementsError, match="cap"):
    key_lib.load(path, max_bytes=100)
