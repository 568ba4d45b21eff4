"""The judgements file reader: valid files round-trip; every malformed or
foreign file (and any mutation of a valid one) is refused with a
JudgementsError naming the file and the problem, or parses to valid answers."""

import builtins
import json
import os

from hypothesis import given, HealthCheck, settings
from hypothesis import strategies as st
import pytest

from jaxaudit.errors import JudgementsError
from jaxaudit.study import design
from jaxaudit.study import judgements

RUN = "run-2024-digits"
ANNOTATORS = ["ann-a", "ann-b", "ann-c"]
SEED = 7
ERRORS = [f"err-{i}" for i in range(3)]
ADVERSARIALS = [f"adv-{i}" for i in range(4)]
SUBSETS = [f"sub-{i}" for i in range(3)]
RULES = design.overlay_rules(ADVERSARIALS, ANNOTATORS, SEED)
TASKS = {
    **{t: judgements.TaskSpec("error", frozenset({1, 2, 3, 4, 5, 7}))
       for t in ERRORS},
    **{t: judgements.TaskSpec("adversarial", overlay=RULES[t])
       for t in ADVERSARIALS},
    **{t: judgements.TaskSpec("subset", frozenset(range(10)))
       for t in SUBSETS}}


def valid(annotator="ann-a"):
  """A complete, valid file's JSON value for `annotator`."""
  conditions = design.annotator_conditions(ADVERSARIALS, annotator, SEED,
                                           ANNOTATORS)
  return {
      "format": judgements.FORMAT, "run_id": RUN, "annotator": annotator,
      "answers": [
          {"task": "err-0", "kind": "error", "correct": [7, 1]},
          {"task": "err-1", "kind": "error", "correct": []},
          {"task": "err-2", "kind": "error", "correct": [3]},
          *[{"task": t, "kind": "adversarial", "acceptable": i % 3 == 0,
             "overlay": conditions[t]} for i, t in enumerate(ADVERSARIALS)],
          {"task": "sub-0", "kind": "subset", "seen": 4},
          {"task": "sub-1", "kind": "subset", "seen": None},
          {"task": "sub-2", "kind": "subset", "seen": 0}]}


def load_bytes(data, source="<fuzz>"):
  return judgements.load(data, run_id=RUN, tasks=TASKS, source=source)


def write(tmp_path, value, name="judgements.json"):
  """`value` (bytes, or JSON-encoded) written to tmp_path / name."""
  path = tmp_path / name
  path.write_bytes(value if isinstance(value, bytes)
                   else json.dumps(value).encode())
  return str(path)


def test_valid_file_loads(tmp_path):
  got = judgements.load(write(tmp_path, valid("ann-b")), run_id=RUN,
                        tasks=TASKS)
  assert got.source == str(tmp_path / "judgements.json")
  assert (got.run_id, got.annotator) == (RUN, "ann-b")
  assert got.errors == {"err-0": (1, 7), "err-1": (), "err-2": (3,)}
  conditions = design.overlay_conditions(ADVERSARIALS, ANNOTATORS, SEED)
  assert got.adversarial == {
      t: judgements.Adversarial(i % 3 == 0, conditions["ann-b"][t])
      for i, t in enumerate(ADVERSARIALS)}
  assert got.subsets == {"sub-0": 4, "sub-1": None, "sub-2": 0}


def test_encode_round_trips():
  first = load_bytes(json.dumps(valid()).encode(), source="a")
  again = load_bytes(judgements.encode(first), source="a")
  assert again == first


def test_partial_file_and_unicode_annotator_load():
  value = valid("Zoë 注釈者")
  value["answers"] = value["answers"][3:5]
  got = load_bytes(json.dumps(value, ensure_ascii=False).encode())
  assert got.annotator == "Zoë 注釈者"
  assert (got.errors, got.subsets) == ({}, {})
  assert set(got.adversarial) == {"adv-0", "adv-1"}


def test_undeclared_annotator_is_checked_against_its_digest_slot():
  value = valid("newcomer")
  assert load_bytes(json.dumps(value).encode()).annotator == "newcomer"
  value["answers"][3]["overlay"] = not value["answers"][3]["overlay"]
  with pytest.raises(JudgementsError, match="design shows it to 'newcomer'"):
    load_bytes(json.dumps(value).encode())


def _set(path, new):
  """A change to the valid value: sets (or, for new=..., deletes) a field."""

  def change(value):
    *parents, last = path
    target = value
    for key in parents:
      target = target[key]
    if new is ...:
      del target[last]
    else:
      target[last] = new
    return value

  return change


def _answers(edit):
  def change(value):
    edit(value["answers"])
    return value
  return change


def _first_adversarial_flipped(value):
  answer = value["answers"][3]
  answer["overlay"] = not answer["overlay"]
  return value


RAW = {
    "not_utf8": (b'{"format": "\xff"}', "not UTF-8 (byte 12)"),
    "not_json": (b'{"format": ', "not JSON"),
    "empty": (b"", "not JSON"),
    "nan": (b'{"format": NaN}', "NaN is not JSON"),
    "repeated_key": (b'{"format": 1, "format": 2}',
                     "repeats the key 'format'"),
    "deep": (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    "huge_int": (b'{"answers": [' + b"7" * 5000 + b"]}",
                 "not JSON (Exceeds the limit (4300 digits) for integer"),
}

CASES = {
    "top_array": (lambda v: [v], "the top level is an array, not an object"),
    "no_format": (_set(["format"], ...), "missing field 'format'"),
    "wrong_format": (_set(["format"], "jaxaudit-judgements/2"),
                     "format is 'jaxaudit-judgements/2', not"),
    "format_int": (_set(["format"], 1), "format is an integer, not"),
    "other_run": (_set(["run_id"], "run-other"),
                  "judgements of another run: run_id 'run-other'"),
    "no_run_id": (_set(["run_id"], ...), "missing field 'run_id'"),
    "run_id_int": (_set(["run_id"], 3), "run_id is an integer, not a string"),
    "no_annotator": (_set(["annotator"], ...), "missing field 'annotator'"),
    "annotator_null": (_set(["annotator"], None),
                       "annotator is null, not a string"),
    "annotator_empty": (_set(["annotator"], ""), "annotator has 0 characters"),
    "annotator_long": (_set(["annotator"], "x" * 65),
                       "annotator has 65 characters, not 1 to 64"),
    "annotator_control": (_set(["annotator"], "ann\nb"), "control character"),
    "no_answers": (_set(["answers"], ...), "missing field 'answers'"),
    "answers_object": (_set(["answers"], {}),
                       "answers is an object, not an array"),
    "extra_field": (_set(["comment"], "hi"), "unknown field 'comment'"),
    "answer_string": (_set(["answers", 0], "err-0"),
                      "answers[0]: the answer is a string, not an object"),
    "no_task": (_set(["answers", 0, "task"], ...),
                "answers[0]: missing field 'task'"),
    "task_int": (_set(["answers", 0, "task"], 0),
                 "answers[0]: task is an integer, not a string"),
    "unknown_task": (_set(["answers", 1, "task"], "err-99"),
                     "answers[1]: unknown task 'err-99'"),
    "duplicate": (_answers(lambda a: a.append(dict(a[0]))),
                  "answers[10]: a second answer for task 'err-0' (the first "
                  "is answers[0])"),
    "no_kind": (_set(["answers", 0, "kind"], ...),
                "answers[0]: missing field 'kind'"),
    "kind_list": (_set(["answers", 0, "kind"], ["error"]),
                  "kind is an array, not a string"),
    "unknown_kind": (_set(["answers", 0, "kind"], "mistake"),
                     "unknown kind 'mistake'"),
    "kind_mismatch": (_set(["answers", 3, "kind"], "subset"),
                      "answers[3]: kind 'subset', but task 'adv-0' is of "
                      "kind 'adversarial'"),
    "no_correct": (_set(["answers", 0, "correct"], ...),
                   "missing field 'correct'"),
    "answer_extra": (_set(["answers", 5, "note"], "?"),
                     "answers[5]: unknown field 'note'"),
    "correct_int": (_set(["answers", 0, "correct"], 7),
                    "correct is an integer, not an array"),
    "correct_bool": (_set(["answers", 0, "correct"], [True]),
                     "correct[0] is a boolean, not an integer"),
    "correct_float": (_set(["answers", 0, "correct"], [1, 1.0]),
                      "correct[1] is a number, not an integer"),
    "correct_outside": (_set(["answers", 2, "correct"], [6]),
                        "answers[2]: class 6 was not a candidate of task "
                        "'err-2'"),
    "correct_negative": (_set(["answers", 2, "correct"], [-1]),
                         "class -1 was not a candidate"),
    "correct_twice": (_set(["answers", 0, "correct"], [1, 1]),
                      "correct lists a class twice"),
    "acceptable_int": (_set(["answers", 3, "acceptable"], 1),
                       "acceptable is an integer, not a boolean"),
    "acceptable_missing": (_set(["answers", 3, "acceptable"], ...),
                           "missing field 'acceptable'"),
    "overlay_string": (_set(["answers", 4, "overlay"], "yes"),
                       "overlay is a string, not a boolean"),
    "overlay_flipped": (_first_adversarial_flipped,
                        "answers[3]: task 'adv-0' was shown with"),
    "seen_bool": (_set(["answers", 7, "seen"], False),
                  "seen is a boolean, not an integer"),
    "seen_string": (_set(["answers", 7, "seen"], "4"),
                    "seen is a string, not an integer"),
    "seen_outside": (_set(["answers", 7, "seen"], 42),
                     "class 42 was not a candidate of task 'sub-0'"),
    "seen_missing": (_set(["answers", 8, "seen"], ...),
                     "missing field 'seen'"),
}


def _refused(path, expected):
  with pytest.raises(JudgementsError) as info:
    judgements.load(path, run_id=RUN, tasks=TASKS)
  message = str(info.value)
  assert message.startswith(f"{path}: "), message
  assert expected in message, message
  assert "\n" not in message and len(message) < len(path) + 200, message


@pytest.mark.parametrize("name", sorted(RAW))
def test_malformed_bytes_are_refused_naming_file_and_problem(tmp_path, name):
  data, expected = RAW[name]
  _refused(write(tmp_path, data, f"{name}.json"), expected)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_fields_are_refused_naming_file_and_problem(tmp_path, name):
  change, expected = CASES[name]
  _refused(write(tmp_path, change(valid()), f"{name}.json"), expected)


def test_overlay_condition_is_checked_for_each_declared_annotator():
  for annotator in ANNOTATORS:
    value = valid(annotator)
    load_bytes(json.dumps(value).encode())
    for i in range(3, 3 + len(ADVERSARIALS)):
      flipped = json.loads(json.dumps(value))
      flipped["answers"][i]["overlay"] = not flipped["answers"][i]["overlay"]
      with pytest.raises(JudgementsError, match=rf"answers\[{i}\]: .*design"):
        load_bytes(json.dumps(flipped).encode())


def test_missing_path_is_refused(tmp_path):
  _refused(str(tmp_path / "absent.json"), "cannot read it")
  _refused(str(tmp_path), "cannot read it")


class _Spy:
  """Wraps `open` in the judgements module, recording every read size."""

  def __init__(self):
    self.reads = []

  def __call__(self, *args, **kwargs):
    f = builtins.open(*args, **kwargs)
    spy = self

    class Reader:
      def __enter__(self):
        return self

      def __exit__(self, *exc):
        f.close()

      def fileno(self):
        return f.fileno()

      def read(self, size=-1):
        spy.reads.append(size)
        return f.read(size)

    return Reader()


def test_oversized_file_is_refused_before_any_read(tmp_path, monkeypatch):
  path = str(tmp_path / "huge.json")
  with open(path, "wb") as f:
    f.truncate(judgements.MAX_BYTES + 1)  # Sparse: no disk used.
  spy = _Spy()
  monkeypatch.setattr(judgements, "open", spy, raising=False)
  _refused(path, f"{judgements.MAX_BYTES + 1} bytes, over the "
                 f"{judgements.MAX_BYTES}-byte cap")
  assert spy.reads == []


def test_endless_file_reads_at_most_the_cap(monkeypatch):
  if not os.path.exists("/dev/zero"):
    pytest.skip("needs /dev/zero")
  spy = _Spy()
  monkeypatch.setattr(judgements, "open", spy, raising=False)
  with pytest.raises(JudgementsError, match="^/dev/zero: over the 1000-byte"):
    judgements.load("/dev/zero", run_id=RUN, tasks=TASKS, max_bytes=1000)
  assert spy.reads == [1001]


def test_bytes_over_the_cap_are_refused():
  data = json.dumps(valid()).encode()
  load_bytes(data)
  with pytest.raises(JudgementsError, match="^<judgements bytes>: over the"):
    judgements.load(data, run_id=RUN, tasks=TASKS, max_bytes=len(data) - 1)


def test_load_many_refuses_two_files_by_one_annotator(tmp_path):
  paths = [write(tmp_path, valid(a), f"{i}.json")
           for i, a in enumerate(["ann-a", "ann-c", "newcomer"])]
  got = judgements.load_many(paths, run_id=RUN, tasks=TASKS)
  assert [j.annotator for j in got] == ["ann-a", "ann-c", "newcomer"]
  assert [j.source for j in got] == paths
  again = write(tmp_path, valid("ann-c"), "again.json")
  with pytest.raises(JudgementsError) as info:
    judgements.load_many([*paths, again], run_id=RUN, tasks=TASKS)
  assert str(info.value) == (f"{again}: annotator 'ann-c' also wrote "
                             f"{paths[1]}")


def _check_valid(got):
  """What a file that loads must satisfy."""
  assert got.run_id == RUN and got.source == "<fuzz>"
  assert 1 <= len(got.annotator) <= 64 and got.annotator.isprintable()
  for task, correct in got.errors.items():
    assert TASKS[task].kind == "error"
    assert list(correct) == sorted(set(correct))
    assert all(type(c) is int and c in TASKS[task].candidates
               for c in correct)
  for task, answer in got.adversarial.items():
    assert TASKS[task].kind == "adversarial"
    assert type(answer.acceptable) is bool
    assert answer.overlay is TASKS[task].overlay(got.annotator)
  for task, seen in got.subsets.items():
    assert TASKS[task].kind == "subset"
    assert seen is None or (type(seen) is int
                            and seen in TASKS[task].candidates)
  assert not set(got.errors) & set(got.adversarial)
  assert not set(got.adversarial) & set(got.subsets)
  assert not set(got.errors) & set(got.subsets)


def _load_or_refuse(data):
  """Loads `data`: valid answers or a JudgementsError, nothing else.

  Returns:
    "loaded", or where the refusal was: "answer" or "file".
  """
  try:
    got = load_bytes(data)
  except JudgementsError as e:
    assert str(e).startswith("<fuzz>: ") and "\n" not in str(e), str(e)
    return "answer" if str(e).startswith("<fuzz>: answers[") else "file"
  _check_valid(got)
  return "loaded"


VALID_BYTES = json.dumps(valid(), indent=1).encode()
FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                database=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def byte_mutations(draw):
  """VALID_BYTES with 1-4 byte-level edits: replace, insert, delete, cut."""
  data = bytearray(VALID_BYTES)
  for _ in range(draw(st.integers(1, 4))):
    at = draw(st.integers(0, len(data)))
    op = draw(st.sampled_from(["replace", "insert", "delete", "cut"]))
    if op == "replace" and at < len(data):
      data[at] = draw(st.integers(0, 255))
    elif op == "insert":
      data[at:at] = draw(st.binary(min_size=1, max_size=8))
    elif op == "delete":
      del data[at:at + draw(st.integers(1, 8))]
    else:
      del data[at:]
  return bytes(data)


@FUZZ
@given(byte_mutations())
def test_fuzz_byte_mutations_load_or_raise_judgements_error(data):
  _load_or_refuse(data)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 12) | st.floats()
    | st.sampled_from(["err-0", "adv-1", "sub-2", "error", "adversarial",
                       "subset", RUN, "ann-b", judgements.FORMAT, ""])
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["task", "kind", "correct", "seen",
                                       "acceptable", "overlay", "x"]),
                      inner, max_size=3),
    max_leaves=6)


def _containers(value, out):
  """Every dict and list inside `value`, depth first."""
  if isinstance(value, (dict, list)):
    out.append(value)
    for child in (value.values() if isinstance(value, dict) else value):
      _containers(child, out)
  return out


@st.composite
def structural_mutations(draw):
  """The valid value with 1-3 fields replaced, deleted or added."""
  value = valid(draw(st.sampled_from([*ANNOTATORS, "newcomer"])))
  for _ in range(draw(st.integers(1, 3))):
    container = draw(st.sampled_from(_containers(value, [])))
    keys = (list(container) if isinstance(container, dict)
            else list(range(len(container))))
    op = draw(st.sampled_from(["replace", "delete", "add"]))
    if op == "add" or not keys:
      if isinstance(container, dict):
        container[draw(st.sampled_from(["task", "kind", "seen", "y"]))] = draw(
            JSON_VALUES)
      else:
        container.append(draw(JSON_VALUES))
    elif op == "delete":
      del container[draw(st.sampled_from(keys))]
    else:
      container[draw(st.sampled_from(keys))] = draw(JSON_VALUES)
  return json.dumps(value, allow_nan=True).encode()


@FUZZ
@given(structural_mutations())
def test_fuzz_structural_mutations_load_or_raise_judgements_error(data):
  _load_or_refuse(data)


def test_fuzz_strategies_reach_every_outcome():
  """The structural fuzzer gets past the first checks: some mutations still
  load (e.g. an answer deleted), some are refused for the file's header and
  some for an answer."""
  outcomes = set()

  @settings(max_examples=300, deadline=None, derandomize=True, database=None)
  @given(structural_mutations())
  def collect(data):
    outcomes.add(_load_or_refuse(data))

  collect()
  assert outcomes == {"loaded", "file", "answer"}
