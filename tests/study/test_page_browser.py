"""The study page in headless Chromium: scripted annotators answer every task
by keys and clicks across a reload, download their judgements, and the strict
reader accepts the file with exactly the scripted answers in the designed
overlay conditions; run text stays text.

Needs Debian's `chromium` and `chromium-driver` and the `selenium` package
(the `test` extra); skips without them.
"""

import json
import os
import time

import numpy as np
import pytest
from sklearn import datasets

from jaxaudit.study import design
from jaxaudit.study import judgements
from jaxaudit.study import page

pytest.importorskip(
    "selenium.webdriver", reason="needs selenium (pip install selenium, the "
    "test extra) to drive Chromium")
# pylint: disable=g-import-not-at-top
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
import chromium
# pylint: enable=g-import-not-at-top

RUN = "digits-study-1"
SEED = 11
ANNOTATORS = ["ann-a", "ann-b", "ann-c"]
CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven",
           "eight", "nine"]
XSS_IMG = '<img src=x onerror="window.__pwned=1">'
XSS_SCRIPT = "</script><script>window.__pwned=2</script>"


@pytest.fixture
def browser(tmp_path):
  """(driver, download folder) of a fresh headless Chromium."""
  downloads = tmp_path / "downloads"
  downloads.mkdir()
  with chromium.driver_or_skip(str(downloads)) as driver:
    yield driver, downloads


def _rgb(gray):
  return np.repeat(gray[..., None], 3, axis=-1)


def _digit_tasks():
  """4 tasks of each kind from scikit-learn's digits and a nearest-centroid
  classifier: its errors, perturbed images with a heat map, pixel subsets."""
  digits = datasets.load_digits()
  images = (digits.images * (255 / 16)).astype(np.uint8)
  flat = digits.images.reshape(len(images), -1)
  centroids = np.stack([flat[digits.target == c].mean(0) for c in range(10)])
  ranks = np.argsort(((flat[:, None] - centroids) ** 2).sum(-1), axis=1)
  wrong = np.flatnonzero(ranks[:, 0] != digits.target)[:4]
  right = np.flatnonzero(ranks[:, 0] == digits.target)
  rng = np.random.RandomState(0)
  tasks = []
  for i, n in enumerate(wrong):
    shown = list(ranks[n, :5]) + [digits.target[n]]
    candidates = [(int(c), CLASSES[c]) for c in dict.fromkeys(shown)]
    tasks.append(page.Task(f"err-{i}", "error", _rgb(images[n]), candidates))
  for i, n in enumerate(right[:4]):
    noise = rng.randint(-40, 41, images[n].shape)
    adversarial = np.clip(images[n] + noise, 0, 255).astype(np.uint8)
    heat = np.abs(flat[n] - centroids[ranks[n, 1]]).reshape(8, 8) / 16
    overlay = _rgb(adversarial).astype(float) * 0.5
    overlay[..., 0] += 127 * heat
    tasks.append(page.Task(f"adv-{i}", "adversarial", _rgb(adversarial),
                           adversarial_class=CLASSES[ranks[n, 1]],
                           overlay=overlay.astype(np.uint8)))
  for i, n in enumerate(right[4:8]):
    keep = rng.rand(8, 8) < 0.25
    tasks.append(page.Task(f"sub-{i}", "subset", _rgb(images[n] * keep),
                           [(c, name) for c, name in enumerate(CLASSES)]))
  return tasks


# Per task: the actions (keys, or ("click", option position)) and the answer
# they give; error answers name candidate positions.
SCRIPT = {
    "err-0": (["1", "3"], [0, 2]),
    "err-1": ([], []),
    "err-2": (["2", "2", "1"], [0]),
    "err-3": (["1", "0", ("click", 1)], [1]),
    "adv-0": (["y"], True),
    "adv-1": (["n"], False),
    "adv-2": (["y", "n"], False),
    "adv-3": ([("click", 0)], True),
    "sub-0": (["3"], 2),
    "sub-1": (["0"], None),
    "sub-2": ([("click", 9)], 9),
    "sub-3": (["5", "0", "2"], 1),
}


def _expected(tasks):
  """The answers `SCRIPT` gives, as `judgements.load` returns them."""
  errors, adversarial, subsets = {}, {}, {}
  for task in tasks:
    answer = SCRIPT[task.id][1]
    if task.kind == "error":
      errors[task.id] = tuple(sorted(task.candidates[p][0] for p in answer))
    elif task.kind == "adversarial":
      adversarial[task.id] = answer
    else:
      subsets[task.id] = None if answer is None else task.candidates[answer][0]
  return errors, adversarial, subsets


def _keys(driver, *keys):
  ActionChains(driver).send_keys(*keys).perform()


def _open(driver, path, annotator):
  driver.get(path.as_uri())
  field = driver.find_element(By.ID, "annotator")
  field.clear()
  field.send_keys(annotator, Keys.ENTER)


def _current(driver):
  """(task id, shown with overlay) of the task on screen."""
  task = driver.find_element(By.ID, "task")
  overlays = driver.find_elements(By.ID, "overlay")
  assert task.get_attribute("data-overlay") == str(bool(overlays)).lower()
  assert all(o.is_displayed() for o in overlays)
  return task.get_attribute("data-task"), bool(overlays)


def _answer(driver, task_id):
  for action in SCRIPT[task_id][0]:
    if isinstance(action, tuple):
      driver.find_elements(By.CSS_SELECTOR, "#task .option")[action[1]].click()
    else:
      _keys(driver, action)
  _keys(driver, Keys.ENTER)


def _pressed(driver):
  return [b.get_attribute("aria-pressed") == "true"
          for b in driver.find_elements(By.CSS_SELECTOR, "#task .option")]


def _download(driver, downloads, name):
  driver.find_element(By.ID, "download-final").click()
  path = downloads / name
  deadline = time.monotonic() + 15
  while not path.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
  assert path.exists(), os.listdir(downloads)
  return path


def _load(path, tasks):
  specs = page.task_specs(tasks, seed=SEED, annotators=ANNOTATORS)
  return judgements.load(path, run_id=RUN, tasks=specs)


def _open_digit_study(driver, tmp_path):
  """Writes the digit tasks' page and opens it: (tasks, ids, adversarial ids,
  the page's path)."""
  tasks = _digit_tasks()
  path = tmp_path / "study.html"
  page.write_page(path, tasks, run_id=RUN, seed=SEED, annotators=ANNOTATORS)
  driver.get(path.as_uri())
  return (tasks, [t.id for t in tasks],
          [t.id for t in tasks if t.kind == "adversarial"], path)


def test_declared_annotator_answers_every_task_across_a_reload(browser,
                                                               tmp_path):
  driver, downloads = browser
  tasks, ids, adversarial, path = _open_digit_study(driver, tmp_path)
  annotator = "ann-b"
  choices = driver.find_elements(By.CLASS_NAME, "annotator-choice")
  assert [c.text for c in choices] == ANNOTATORS
  choices[1].click()
  want_order = design.task_order(ids, SEED, annotator)
  assert page.page_order(ids, SEED, annotator, ANNOTATORS) == want_order
  conditions = design.overlay_conditions(adversarial, ANNOTATORS, SEED)
  seen, shown = [], {}
  for i in range(6):
    assert driver.find_element(By.ID, "progress").text == f"{i + 1} / 12"
    task_id, overlay = _current(driver)
    seen.append(task_id)
    shown[task_id] = overlay
    _answer(driver, task_id)

  driver.refresh()
  _open(driver, path, annotator)
  assert driver.find_element(By.ID, "progress").text == "7 / 12"
  assert driver.find_element(By.ID, "answered").text == "6 answered"
  _keys(driver, Keys.BACKSPACE)
  previous = driver.find_element(By.ID, "task").get_attribute("data-task")
  assert previous == seen[-1]
  task = tasks[ids.index(previous)]
  answer = SCRIPT[previous][1]
  if task.kind == "error":
    want = [p in answer for p in range(len(task.candidates))]
  elif task.kind == "adversarial":
    want = [answer, not answer]
  else:
    want = [p == answer for p in range(len(CLASSES))] + [answer is None]
  assert _pressed(driver) == want
  _keys(driver, Keys.ENTER)

  for i in range(6, 12):
    assert driver.find_element(By.ID, "progress").text == f"{i + 1} / 12"
    task_id, overlay = _current(driver)
    seen.append(task_id)
    shown[task_id] = overlay
    _answer(driver, task_id)
  assert driver.find_elements(By.ID, "done")
  assert seen == want_order
  assert {t: shown[t] for t in adversarial} == conditions[annotator]

  path = _download(driver, downloads, f"judgements-{RUN}-{annotator}.json")
  got = _load(path, tasks)
  errors, acceptable, subsets = _expected(tasks)
  assert got.annotator == annotator
  assert got.errors == errors and got.subsets == subsets
  assert got.adversarial == {
      t: judgements.Adversarial(acceptable[t], conditions[annotator][t])
      for t in adversarial}
  answers = json.loads(path.read_text())["answers"]
  assert [a["task"] for a in answers] == want_order


def test_undeclared_annotator_gets_the_digest_slot_and_order(browser,
                                                             tmp_path):
  driver, downloads = browser
  tasks, ids, adversarial, path = _open_digit_study(driver, tmp_path)
  field = driver.find_element(By.ID, "annotator")
  for bad in (" ", "x" * 65):
    field.clear()
    field.send_keys(bad, Keys.ENTER)
    assert "1 to 64 printable" in driver.find_element(By.ID,
                                                      "start-error").text

  # UTF-8 lengths around SHA-256's one/two-block padding boundary, multibyte.
  newcomers = ["x" * 55, "y" * 56, "z" * 63, "w" * 64, "Zoë 東京", "n-1",
               "n-2", "n-3"]
  slots = [design.annotator_slot(a, ANNOTATORS) for a in newcomers]
  assert set(slots) == {0, 1}
  for annotator, slot in zip(newcomers, slots):
    _open(driver, path, annotator)
    body = driver.find_element(By.TAG_NAME, "body")
    assert body.get_attribute("data-slot") == str(slot), annotator

  annotator = "Zoë 東京"
  _open(driver, path, annotator)
  seen, shown = [], {}
  for _ in ids:
    task_id, overlay = _current(driver)
    seen.append(task_id)
    shown[task_id] = overlay
    _answer(driver, task_id)
  assert seen == page.page_order(ids, SEED, annotator, ANNOTATORS)
  assert {t: shown[t] for t in adversarial} == design.annotator_conditions(
      adversarial, annotator, SEED, ANNOTATORS)
  # The file name replaces the space; the file keeps the id as typed.
  name = f"judgements-{RUN}-Zoë_東京.json"
  got = _load(_download(driver, downloads, name), tasks)
  errors, acceptable, subsets = _expected(tasks)
  assert got.annotator == annotator
  assert got.errors == errors and got.subsets == subsets
  assert got.adversarial == {
      t: judgements.Adversarial(acceptable[t], shown[t]) for t in adversarial}


def test_run_text_is_shown_as_text(browser, tmp_path):
  driver, downloads = browser
  image = np.full((4, 4, 3), 128, np.uint8)
  tasks = [
      page.Task(XSS_SCRIPT, "error", image, [(0, XSS_IMG), (1, "one")]),
      page.Task("adv", "adversarial", image, adversarial_class=XSS_IMG,
                overlay=image),
      page.Task("sub", "subset", image, [(2, XSS_IMG)])]
  path = tmp_path / "study.html"
  title = "Study " + XSS_SCRIPT
  page.write_page(path, tasks, run_id=RUN, seed=SEED, annotators=[XSS_IMG],
                  title=title)
  driver.get(path.as_uri())
  assert driver.title == title
  assert driver.find_element(By.ID, "title").text == title
  assert driver.find_element(By.CLASS_NAME, "annotator-choice").text == XSS_IMG
  _open(driver, path, XSS_IMG)
  assert driver.find_element(By.CSS_SELECTOR, "#who strong").text == XSS_IMG
  names = []
  for _ in tasks:
    task_id = driver.find_element(By.ID, "task").get_attribute("data-task")
    names += [n.text for n in driver.find_elements(By.CSS_SELECTOR,
                                                   "#task .name")]
    if task_id == "adv":
      assert driver.find_element(By.ID, "label").text == XSS_IMG
      _keys(driver, "y")
    else:
      _keys(driver, "1")
    _keys(driver, Keys.ENTER)
  assert names.count(XSS_IMG) == 2
  assert not driver.find_elements(By.CSS_SELECTOR, "img:not(.shown)")
  assert driver.execute_script("return window.__pwned") is None
  files = []
  driver.find_element(By.ID, "download-final").click()
  deadline = time.monotonic() + 15
  while not files and time.monotonic() < deadline:
    files = [f for f in os.listdir(downloads) if f.endswith(".json")]
    time.sleep(0.05)
  assert len(files) == 1 and files[0].startswith(f"judgements-{RUN}-")
  specs = page.task_specs(tasks, seed=SEED, annotators=[XSS_IMG])
  got = judgements.load(downloads / files[0], run_id=RUN, tasks=specs)
  assert got.annotator == XSS_IMG
  assert got.errors == {XSS_SCRIPT: (0,)} and got.subsets == {"sub": 2}
  assert driver.execute_script("return window.__pwned") is None
