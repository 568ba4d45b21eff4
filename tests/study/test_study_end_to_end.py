"""The human study end to end on a finished run (`tests/study_run.py`).

Three scripted annotators answer every task of the run's study page in
headless Chromium, by keys and clicks, one of them across a reload, with
designed disagreement (each answer follows a rule on the task's place in the
key, and one annotator accepts adversarial labels more often beside the
explanation overlay). Their downloaded files hold exactly the scripted answers
in the balanced overlay design. Scoring the run with them gives every human
metric of the mistakes, attack and sis stages (point estimates, intervals,
the permutation test's p-value, the per-example record columns) as a hand
computation from the files, the key and the run's own records does; people
who find the relabelled digits' labels wrong lift the rectified top-1 above
the plain one.

Needs Debian's `chromium` and `chromium-driver` and the `selenium` package
(the `test` extra); skips without them.
"""

import glob
import json
import os
import pathlib
import time
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest

import study_run
from jaxaudit import pipeline
from jaxaudit import summary as summary_lib
from jaxaudit.study import design
from jaxaudit.study import judgements
from jaxaudit.study import key as key_lib
from jaxaudit.study import metrics
from jaxaudit.study import statistics

pytest.importorskip(
    "selenium.webdriver", reason="needs selenium (pip install selenium, the "
    "test extra) to drive Chromium")
# pylint: disable=g-import-not-at-top
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
import chromium
# pylint: enable=g-import-not-at-top

ANNOTATORS = study_run.ANNOTATORS
# The annotator who reloads the page half-way and resumes.
RELOADS = "ann-b"
JUDGED_STAGES = ("mistakes", "attack", "sis")
# The task on screen: (id, shown with the overlay, the overlay image is there
# and visible, the progress text); null once every task is answered.
_STATE_SCRIPT = """
const task = document.getElementById('task');
if (!task) return null;
const overlay = document.getElementById('overlay');
return [task.dataset.task, task.dataset.overlay === 'true',
        overlay !== null && overlay.offsetWidth > 0,
        document.getElementById('progress').textContent];
"""


class Run(NamedTuple):
  """The finished run and its study, as the hand computation reads them.

  Attributes:
    folder: the folder of the run's data and groups files.
    workdir: the run's folder.
    page: the study page's path.
    key: the study's key, as jaxaudit reads it.
    key_json: tasks.json parsed with `json`.
    records: stage -> its records before scoring, sorted by id.
    subset_prediction: example id -> the model's class from its SIS pixels at
      the study's subset fraction (the sis stage's stored shards).
    groups: class index -> its superclass group (groups.json; a class not
      listed is its own group).
  """
  folder: str
  workdir: str
  page: str
  key: key_lib.StudyKey
  key_json: dict
  records: dict
  subset_prediction: dict
  groups: list


class Annotated(NamedTuple):
  """What one annotator's session showed and downloaded.

  Attributes:
    order: task ids in the order the page showed them.
    overlay: adversarial task id -> the page showed the overlay.
    expected: the file the script's answers make, as a JSON value.
    path: the downloaded judgements file.
  """
  order: list
  overlay: dict
  expected: dict
  path: str


def _read_records(workdir, stage):
  frame = pd.read_parquet(os.path.join(workdir, "records", stage))
  return frame.sort_values("id", kind="stable").reset_index(drop=True)


def _subset_predictions(workdir, fraction_index):
  """Example id -> the model's class from its SIS pixels (stored shards)."""
  out = {}
  for shard in glob.glob(os.path.join(workdir, "shards", "sis", "bgsis",
                                      "shard-*")):
    ids = np.load(os.path.join(shard, "__ids__.npy"))
    predictions = np.load(os.path.join(shard, "subset_prediction.npy"))
    out.update(zip(ids.tolist(), predictions[:, fraction_index].tolist()))
  return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """The finished run with its study, read before any scoring."""
  folder = str(tmp_path_factory.mktemp("study-end-to-end"))
  workdir, page_path, key = study_run.make(folder)
  with open(os.path.join(os.path.dirname(page_path), "tasks.json"),
            encoding="utf-8") as f:
    key_json = json.load(f)
  with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
    fractions = json.load(f)["sis"]["subset_fractions"]
  with open(os.path.join(folder, "groups.json"), encoding="utf-8") as f:
    groups_by_name = json.load(f)
  names = np.load(study_run.relabelled_digits(folder))["classes"].tolist()
  fraction = key_json["sources"]["subset"]["fraction"]
  return Run(folder, workdir, page_path, key, key_json,
             {stage: _read_records(workdir, stage)
              for stage in ("evaluate",) + JUDGED_STAGES},
             _subset_predictions(workdir, fractions.index(fraction)),
             [groups_by_name.get(name, name) for name in names])


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
  """(driver, download folder) of one headless Chromium for all annotators
  (each keeps its answers under its own localStorage key)."""
  downloads = tmp_path_factory.mktemp("downloads")
  with chromium.driver_or_skip(str(downloads)) as driver:
    yield driver, downloads


def _tasks(key_json, kind):
  """The key's tasks of `kind`, in the key's (the page's) order."""
  return [t for t in key_json["tasks"] if t["kind"] == kind]


def _labels(run):
  """Example id -> its given label (the evaluate records)."""
  evaluate = run.records["evaluate"]
  return dict(zip(evaluate["id"].tolist(), evaluate["label"].tolist()))


def _click(position):
  """An action clicking the task's option at `position`."""
  return ("click", position)


def _digit_key(position):
  """The key that selects the option at `position` (the first nine)."""
  assert position < 9
  return str(position + 1)


def _error_script(annotator, k, classes, label):
  """(actions, classes marked correct) for the k-th error task of the key.

  ann-a accepts every top-1; ann-b the top-1 of every other task and the
  given label of every third; ann-c the top-1 of all but every fourth, where
  it toggles the top-1 on and off, and the given label of some, by click.
  """
  top1, given = 0, classes.index(label)
  if annotator == "ann-a":
    marked = [top1]
    actions = [_click(top1) if k % 5 == 0 else _digit_key(top1)]
  elif annotator == "ann-b":
    marked = ([top1] if k % 2 == 0 else []) + ([given] if k % 3 == 0 else [])
    # With nothing marked: "0" (none) on some, a bare Enter on the others.
    actions = ([_digit_key(p) for p in reversed(marked)]
               or (["0"] if k % 4 == 1 else []))
  elif k % 4 == 3:
    marked, actions = [], [_digit_key(top1), _digit_key(top1)]
  else:
    marked = [top1] + ([given] if k % 5 == 2 else [])
    actions = [_digit_key(top1)] + ([_click(given)] if k % 5 == 2 else [])
  return actions, sorted(classes[p] for p in marked)


def _adversarial_script(annotator, k, overlay):
  """(actions, acceptable) for the k-th adversarial task of the key.

  ann-a accepts every third label, ann-b every other; ann-c accepts three in
  four beside the overlay and one in four without it. Some answers are
  clicked, some keyed after first keying the other answer.
  """
  if annotator == "ann-a":
    acceptable = k % 3 == 0
  elif annotator == "ann-b":
    acceptable = k % 2 == 0
  else:
    acceptable = k % 4 != 3 if overlay else k % 4 == 0
  if k % 7 == 0:
    actions = [_click(0 if acceptable else 1)]
  elif k % 7 == 1:
    actions = ["n" if acceptable else "y", "y" if acceptable else "n"]
  else:
    actions = ["y" if acceptable else "n"]
  return actions, acceptable


def _subset_script(annotator, k, variant, classes, label):
  """(actions, class seen or None) for the k-th subset task of the key.

  ann-a names the label in every SIS subset and every other random one (none
  in the rest); ann-b names the label, the next class, the label, none in
  turn; ann-c the label but for a class three on in every fifth and none in
  every fifth, some after first answering none. The tenth class and every
  sixth answer are clicked (keys reach nine classes).
  """
  if annotator == "ann-a":
    seen = label if variant == key_lib.SIS or k % 2 == 0 else None
  elif annotator == "ann-b":
    seen = [label, (label + 1) % len(classes), label, None][k % 4]
  else:
    seen = [label, label, label, (label + 3) % len(classes), None][k % 5]
  position = len(classes) if seen is None else classes.index(seen)
  if k % 6 == 0 or position == 9:
    actions = [_click(position)]
  else:
    actions = ["0" if seen is None else _digit_key(position)]
  if annotator == "ann-c" and k % 7 == 0:
    actions = ["0"] + actions
  return actions, seen


def _scripted(annotator, k, task, label, overlay):
  """(actions, the answer in the file) of `annotator` for the task on screen,
  the k-th of its kind in the key, of an image labelled `label`."""
  classes = [c for c, _ in task["candidates"]]
  if task["kind"] == "error":
    actions, correct = _error_script(annotator, k, classes, label)
    return actions, {"task": task["id"], "kind": "error", "correct": correct}
  if task["kind"] == "adversarial":
    actions, acceptable = _adversarial_script(annotator, k, overlay)
    return actions, {"task": task["id"], "kind": "adversarial",
                     "acceptable": acceptable, "overlay": overlay}
  actions, seen = _subset_script(annotator, k, task["variant"], classes, label)
  return actions, {"task": task["id"], "kind": "subset", "seen": seen}


def _perform(driver, actions):
  """Keys and clicks, then Enter; consecutive keys go in one batch."""
  keys = []
  for action in actions:
    if isinstance(action, tuple):
      if keys:
        ActionChains(driver).send_keys(*keys).perform()
        keys = []
      driver.find_elements(By.CSS_SELECTOR, "#task .option")[action[1]].click()
    else:
      keys.append(action)
  ActionChains(driver).send_keys(*keys, Keys.ENTER).perform()


def _start(driver, page_path, annotator):
  """Opens the page and enters the annotator id."""
  driver.get(pathlib.Path(page_path).as_uri())
  field = driver.find_element(By.ID, "annotator")
  field.clear()
  field.send_keys(annotator, Keys.ENTER)


def _download(driver, path):
  driver.find_element(By.ID, "download-final").click()
  deadline = time.monotonic() + 15
  while not os.path.exists(path) and time.monotonic() < deadline:
    time.sleep(0.05)
  assert os.path.exists(path), os.listdir(os.path.dirname(path))


def _annotate(run, driver, downloads, annotator):
  """One annotator's session: every task as scripted, then the download."""
  tasks = {t["id"]: (k, t) for kind in judgements.KINDS
           for k, t in enumerate(_tasks(run.key_json, kind))}
  labels = _labels(run)
  reload_after = len(tasks) // 2 if annotator == RELOADS else None
  _start(driver, run.page, annotator)
  order, overlays, answers = [], {}, []
  while (state := driver.execute_script(_STATE_SCRIPT)) is not None:
    task_id, overlay, overlay_visible, progress = state
    assert progress == f"{len(order) + 1} / {len(tasks)}"
    assert overlay == overlay_visible, task_id
    k, task = tasks[task_id]
    order.append(task_id)
    if task["kind"] == "adversarial":
      overlays[task_id] = overlay
    actions, answer = _scripted(annotator, k, task,
                                labels[task["example_id"]], overlay)
    answers.append(answer)
    _perform(driver, actions)
    if len(order) == reload_after:
      driver.refresh()
      _start(driver, run.page, annotator)
      assert driver.find_element(By.ID, "progress").text == (
          f"{len(order) + 1} / {len(tasks)}")
      assert driver.find_element(By.ID, "answered").text == (
          f"{len(order)} answered")
  assert driver.find_elements(By.ID, "done")
  path = os.path.join(downloads,
                      f"judgements-{run.key.run_id}-{annotator}.json")
  _download(driver, path)
  expected = {"format": judgements.FORMAT, "run_id": run.key.run_id,
              "annotator": annotator, "answers": answers}
  return Annotated(order, overlays, expected, path)


@pytest.fixture(scope="module")
def annotated(browser, run):
  """annotator -> `Annotated`, every annotator's session done."""
  driver, downloads = browser
  return {a: _annotate(run, driver, str(downloads), a) for a in ANNOTATORS}


@pytest.fixture(scope="module")
def scored(run, annotated):
  """(the scoring job's config, its summary): the run scored with the three
  files in every judgements field."""
  config = study_run.config(run.folder)
  paths = ",".join(annotated[a].path for a in ANNOTATORS)
  for stage in JUDGED_STAGES:
    config[stage].judgements = paths
  return config, pipeline.run(config, run.workdir)


def _files(annotated):
  """The downloaded files parsed with `json`, in the annotators' order, each
  as task id -> answer."""
  out = []
  for annotator in ANNOTATORS:
    with open(annotated[annotator].path, encoding="utf-8") as f:
      out.append({a["task"]: a for a in json.load(f)["answers"]})
  return out


# The hand computation: numbers from the files, the key and the records, the
# library used only for its statistics (intervals, p-value) on hand-built
# arrays.


def _matrix(files, task_ids, value):
  """float [T, A]: `value(task id, answer)` per task (rows, in `task_ids`'
  order) and annotator (columns, in the files' order)."""
  return np.array([[float(value(t, f[t])) for f in files] for t in task_ids])


def _seed(config, name):
  return metrics.metric_seed(config.seed, name)


def _share(values, config, name):
  """A share by hand: the mean of item scores and its bootstrap interval."""
  low, high = statistics.bootstrap_interval(
      values, lambda x: x.mean(axis=1), seed=_seed(config, name),
      num_resamples=config.study.num_resamples, level=config.study.level,
      batched=True)
  return {"value": float(np.mean(values)), "interval": [low, high],
          "items": len(values)}


def _fleiss_kappa(counts):
  """Fleiss' kappa from its textbook formula: counts [N, K], n raters each."""
  n = counts[0].sum()
  agreement = ((counts ** 2).sum(axis=1) - n) / (n * (n - 1))  # P_i
  observed = agreement.mean()  # P_bar
  shares = counts.sum(axis=0) / counts.sum()  # p_j
  chance = (shares ** 2).sum()  # P_e
  return (observed - chance) / (1 - chance)


def _kappa(categories, num_categories, config, name):
  """Kappa by hand over items rated by every annotator: categories [T, A]."""
  counts = np.stack([(categories == c).sum(axis=1)
                     for c in range(num_categories)], axis=1)
  low, high = statistics.bootstrap_interval(
      counts, statistics.fleiss_kappa, seed=_seed(config, name),
      num_resamples=config.study.num_resamples, level=config.study.level)
  return {"value": float(_fleiss_kappa(counts)), "interval": [low, high],
          "items": len(categories), "annotators": categories.shape[1]}


def _agreement(scores, proxy):
  """A proxy's agreement with the majority of three (no ties)."""
  return {"agreement": float(np.mean(np.asarray(proxy) == (scores > 0.5))),
          "items": len(scores)}


def _affine(share, offset, scale):
  return {"value": offset + scale * share["value"],
          "interval": [offset + scale * v for v in share["interval"]],
          "items": share["items"]}


def _assert_matches(got, want, where="human"):
  """`got` (a summary, rounded) equals `want` rounded as summaries are."""
  if isinstance(want, dict):
    assert isinstance(got, dict) and set(got) == set(want), where
    for name in want:
      _assert_matches(got[name], want[name], f"{where}.{name}")
  elif isinstance(want, list):
    assert isinstance(got, list) and len(got) == len(want), where
    for i, (g, w) in enumerate(zip(got, want)):
      _assert_matches(g, w, f"{where}[{i}]")
  elif isinstance(want, float):
    assert got == pytest.approx(summary_lib.to_json(want), abs=1e-9), where
  else:
    assert got == want and type(got) is type(want), where


def _assert_intervals(human, varying):
  """Every interval in `human` holds its point estimate; those named in
  `varying` (their data vary; all must be there) have positive width."""
  found = set()

  def visit(tree, where):
    for name, value in tree.items():
      if not isinstance(value, dict):
        continue
      path = f"{where}.{name}"
      if "interval" in value:
        point = value.get("value", value.get("difference"))
        low, high = value["interval"]
        assert low - 1e-12 <= point <= high + 1e-12, path
        assert path not in varying or high > low, path
        found.add(path)
      visit(value, path)

  visit(human, "human")
  assert varying <= found, varying - found


def _error_hand(run, files, config):
  """(summary["mistakes"]["human"], example id -> item score), by hand."""
  evaluate = run.records["evaluate"]
  by_id = evaluate.set_index("id")
  mistakes = run.records["mistakes"].set_index("id")
  tasks = _tasks(run.key_json, "error")
  ids = [t["id"] for t in tasks]
  examples = [t["example_id"] for t in tasks]
  prediction = dict(zip(ids, by_id.loc[examples, "prediction"].tolist()))
  label = dict(zip(ids, by_id.loc[examples, "label"].tolist()))
  assert [prediction[t] for t in ids] == [t["candidates"][0][0] for t in tasks]
  accept = _matrix(files, ids, lambda t, a: prediction[t] in a["correct"])
  label_ok = _matrix(files, ids, lambda t, a: label[t] in a["correct"])
  scores = accept.mean(axis=1)
  num_labelled = int((evaluate["label"] >= 0).sum())
  num_correct = int(evaluate["correct"].sum())
  num_errors = num_labelled - num_correct
  top1 = num_correct / num_labelled
  accepted = _share(scores, config, "error.accepted")
  superclass = [run.groups[prediction[t]] == run.groups[label[t]] for t in ids]
  assert superclass == mistakes.loc[examples, "same_superclass"].tolist()
  plausible = mistakes.loc[examples, ["same_superclass", "in_label_set",
                                      "near_duplicate"]].any(axis=1)
  return {
      "rectified_top1": _affine(accepted, top1, num_errors / num_labelled),
      "top1": top1,
      "accepted": accepted,
      "label_accepted": _share(label_ok.mean(axis=1), config,
                               "error.label_accepted"),
      "kappa": _kappa(accept, 2, config, "error.kappa"),
      "proxy_agreement": {"superclass": _agreement(scores, superclass),
                          "plausible": _agreement(scores, plausible)},
      "judged_errors": len(ids),
      "num_errors": num_errors,
      "annotators": list(ANNOTATORS),
  }, dict(zip(examples, scores))


def _studied_records(run, records):
  """The attack records at the study's attack and epsilon, by id."""
  source = run.key_json["sources"]["adversarial"]
  return records[(records["attack"] == source["attack"])
                 & (records["epsilon_label"] == source["epsilon_label"])
                 ].set_index("id")


def _adversarial_hand(run, files, config):
  """(summary["attack"]["human"], example id -> item score), by hand."""
  point = _studied_records(run, run.records["attack"])
  tasks = _tasks(run.key_json, "adversarial")
  ids = [t["id"] for t in tasks]
  examples = [t["example_id"] for t in tasks]
  assert point.loc[examples, "success"].all()
  assert [t["adversarial_class"] for t in tasks] == point.loc[
      examples, "adv_class_name"].tolist()
  accept = _matrix(files, ids, lambda t, a: a["acceptable"])
  overlay = _matrix(files, ids, lambda t, a: a["overlay"]).astype(bool)
  # Each answer is one observation, listed task by task in the key's order
  # and by annotator within a task: the order the resamples index.
  with_overlay, without = accept[overlay], accept[~overlay]
  scores = accept.mean(axis=1)
  labelled = point["label"] >= 0
  num_labelled = int(labelled.sum())
  num_robust = int((point["robust"] & labelled).sum())
  num_flipped = int((point["success"] & labelled).sum())
  robust = num_robust / num_labelled
  accepted = _share(scores, config, "adversarial.accepted")
  low, high = statistics.difference_interval(
      with_overlay, without, seed=_seed(config, "adversarial.effect"),
      num_resamples=config.study.num_resamples, level=config.study.level)
  adversarial_class = point.loc[examples, "adv_class"].tolist()
  labels = point.loc[examples, "label"].tolist()
  superclass = [run.groups[c] == run.groups[y]
                for c, y in zip(adversarial_class, labels)]
  assert superclass == point.loc[examples, "same_superclass"].tolist()
  return {
      "human_plausible_robust_accuracy": _affine(
          accepted, robust, num_flipped / num_labelled),
      "robust_accuracy": robust,
      "accepted": accepted,
      "explanation_effect": {
          "difference": float(with_overlay.mean() - without.mean()),
          "interval": [low, high],
          "p_value": statistics.permutation_test(
              with_overlay, without,
              seed=_seed(config, "adversarial.permutation"),
              num_permutations=config.study.num_permutations),
          "accepted_with_overlay": float(with_overlay.mean()),
          "accepted_without_overlay": float(without.mean()),
          "answers_with_overlay": len(with_overlay),
          "answers_without_overlay": len(without),
      },
      "kappa": _kappa(accept, 2, config, "adversarial.kappa"),
      "proxy_agreement": {
          "superclass": _agreement(scores, superclass),
          "plausible": _agreement(scores,
                                  point.loc[examples, "plausible"].tolist())},
      "judged_adversarials": len(ids),
      "num_flipped": num_flipped,
      "annotators": list(ANNOTATORS),
  }, dict(zip(examples, scores))


def _subset_hand(run, files, config):
  """(summary["sis"]["human"], variant -> example id -> item score), by
  hand."""
  labels = _labels(run)
  sis = run.records["sis"].set_index("id")
  fraction = run.key_json["sources"]["subset"]["fraction"]
  percent = f"{fraction * 100:g}"
  model_columns = {key_lib.SIS: f"subset_{percent}pct_correct",
                   key_lib.RANDOM: f"random_{percent}pct_accuracy"}
  all_tasks = _tasks(run.key_json, "subset")
  example = {t["id"]: t["example_id"] for t in all_tasks}
  out = {"fraction": fraction, "human_accuracy": {}, "model_accuracy": {},
         "none_share": {}}
  scores = {}
  for variant, model_column in model_columns.items():
    ids = [t["id"] for t in all_tasks if t["variant"] == variant]
    examples = [example[t] for t in ids]
    right = _matrix(files, ids,
                    lambda t, a: a["seen"] == labels[example[t]])
    none = _matrix(files, ids, lambda t, a: a["seen"] is None)
    out["human_accuracy"][variant] = _share(right.mean(axis=1), config,
                                            f"subset.{variant}")
    out["model_accuracy"][variant] = float(np.mean(
        sis.loc[examples, model_column].to_numpy(np.float64)))
    out["none_share"][variant] = float(none.mean())
    scores[variant] = dict(zip(examples, right.mean(axis=1)))
  sis_ids = [t["id"] for t in all_tasks if t["variant"] == key_lib.SIS]
  agree = _matrix(files, sis_ids, lambda t, a: (
      a["seen"] == run.subset_prediction[example[t]]))
  out["agreement_with_model"] = _share(agree.mean(axis=1), config,
                                       "subset.agreement")
  classes = sorted({c for t in all_tasks for c, _ in t["candidates"]})
  category = _matrix(files, list(example), lambda t, a: (
      len(classes) if a["seen"] is None else classes.index(a["seen"])))
  out["kappa"] = _kappa(category, len(classes) + 1, config, "subset.kappa")
  out["annotators"] = list(ANNOTATORS)
  return out, scores


def _column(records, name, scores):
  """A record column against hand scores by id (NaN: not judged)."""
  want = [scores.get(i, np.nan) for i in records["id"].tolist()]
  np.testing.assert_allclose(records[name].to_numpy(np.float64), want,
                             rtol=0, atol=1e-12, err_msg=name)


def test_files_hold_exactly_the_scripted_answers(annotated, run):
  specs = key_lib.task_specs(run.key)
  kinds = [t.kind for t in run.key.tasks.values()]
  assert [kinds.count(k) for k in judgements.KINDS] == [37, 40, 40]
  for annotator in ANNOTATORS:
    session = annotated[annotator]
    assert session.order == design.task_order(list(run.key.tasks),
                                              run.key.seed, annotator)
    with open(session.path, encoding="utf-8") as f:
      assert json.load(f) == session.expected
    loaded = judgements.load(session.path, run_id=run.key.run_id, tasks=specs)
    answers = session.expected["answers"]
    assert loaded.annotator == annotator
    assert loaded.errors == {a["task"]: tuple(a["correct"]) for a in answers
                             if a["kind"] == "error"}
    assert loaded.adversarial == {
        a["task"]: judgements.Adversarial(a["acceptable"], a["overlay"])
        for a in answers if a["kind"] == "adversarial"}
    assert loaded.subsets == {a["task"]: a["seen"] for a in answers
                              if a["kind"] == "subset"}
  # The designed disagreement: on every kind, the files differ pairwise.
  files = _files(annotated)
  for kind in judgements.KINDS:
    for i in range(len(files)):
      for j in range(i):
        assert any(files[i][t] != files[j][t] for t in run.key.ids(kind))


def test_each_annotator_saw_the_balanced_overlay_design(annotated, run):
  images = run.key.ids("adversarial")
  conditions = design.overlay_conditions(images, list(ANNOTATORS),
                                         run.key.seed)
  shown = {}
  for annotator in ANNOTATORS:
    answers = [a for a in annotated[annotator].expected["answers"]
               if a["kind"] == "adversarial"]
    assert sorted(a["task"] for a in answers) == sorted(images)
    shown[annotator] = {a["task"]: a["overlay"] for a in answers}
    assert shown[annotator] == annotated[annotator].overlay
    assert shown[annotator] == conditions[annotator]
    with_overlay = sum(shown[annotator].values())
    assert abs(with_overlay - (len(images) - with_overlay)) <= 1
  for image in images:
    assert len({shown[a][image] for a in ANNOTATORS}) == 2, image


def test_error_metrics_are_the_hand_computation(annotated, run, scored):
  config, summary = scored
  want, scores = _error_hand(run, _files(annotated), config)
  human = summary["mistakes"]["human"]
  _assert_matches(human, want)
  _assert_intervals(human, {"human.rectified_top1", "human.accepted",
                            "human.label_accepted", "human.kappa"})
  # People accept the model's top-1 on the relabelled digits: label noise.
  assert human["rectified_top1"]["value"] > human["top1"]
  _column(_read_records(run.workdir, "mistakes"), "human_top1_accepted",
          scores)


def test_adversarial_metrics_are_the_hand_computation(annotated, run, scored):
  config, summary = scored
  want, scores = _adversarial_hand(run, _files(annotated), config)
  human = summary["attack"]["human"]
  _assert_matches(human, want)
  _assert_intervals(human, {"human.human_plausible_robust_accuracy",
                            "human.accepted", "human.explanation_effect",
                            "human.kappa"})
  effect = human["explanation_effect"]
  assert effect["difference"] > 0 and effect["p_value"] < 1
  source = run.key_json["sources"]["adversarial"]
  assert human["robust_accuracy"] == pytest.approx(
      summary["attack"]["robust_accuracy"][source["attack"]][
          source["epsilon_label"]], abs=1e-9)
  records = _read_records(run.workdir, "attack")
  studied = (records["attack"] == source["attack"]) & (
      records["epsilon_label"] == source["epsilon_label"])
  _column(records[studied], "human_adversarial_accepted", scores)
  assert records.loc[~studied, "human_adversarial_accepted"].isna().all()


def test_subset_metrics_are_the_hand_computation(annotated, run, scored):
  config, summary = scored
  want, scores = _subset_hand(run, _files(annotated), config)
  human = summary["sis"]["human"]
  _assert_matches(human, want)
  _assert_intervals(human, {"human.human_accuracy.sis",
                            "human.human_accuracy.random",
                            "human.agreement_with_model", "human.kappa"})
  accuracy = human["human_accuracy"]
  assert accuracy["sis"]["value"] > accuracy["random"]["value"]
  records = _read_records(run.workdir, "sis")
  for variant in (key_lib.SIS, key_lib.RANDOM):
    _column(records, f"human_{variant}_subset_correct", scores[variant])
