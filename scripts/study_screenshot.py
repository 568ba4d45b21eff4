"""Saves docs/study_page.png: the human study page showing an adversarial task
beside its explanation overlay.

  JAX_PLATFORMS=cpu python scripts/study_screenshot.py [--out=PATH]

regenerates it (about half a minute on two CPU cores). It builds the finished
run and study of tests/study_run.py (the shipped digits model on relabelled
scikit-learn digits, PGD adversarials with saliency overlays) in a temporary
folder, opens the page in headless Chromium through selenium and chromedriver
(Debian's `chromium` and `chromium-driver`, the `test` extra), enters the
first declared annotator's id, answers tasks until an adversarial one is shown
with the overlay, and saves a 1200x1000 screenshot of it.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The run (tests/study_run.py) and the browser (tests/study/chromium.py).
sys.path[:0] = [os.path.join(ROOT, "tests"),
                os.path.join(ROOT, "tests", "study")]
DEFAULT_OUT = os.path.join(ROOT, "docs", "study_page.png")
WINDOW = (1200, 1000)
# Keys that answer the task on screen and move on (none of the labels, no,
# none seen): the screenshot only needs to reach an adversarial task.
_ANSWER_KEYS = {"error": "0", "adversarial": "n", "subset": "0"}


def screenshot(page: str, annotator: str, out: str) -> None:
  """Opens `page` as `annotator` and saves the first adversarial task shown
  with the overlay to `out`."""
  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.common.action_chains import ActionChains
  from selenium.webdriver.common.by import By
  from selenium.webdriver.common.keys import Keys
  import chromium
  # pylint: enable=g-import-not-at-top
  driver_path = shutil.which("chromedriver")
  if driver_path is None:
    sys.exit("error: needs chromedriver (Debian package 'chromium-driver')")
  with chromium.start(driver_path, size=WINDOW, viewport=True) as driver:
    driver.get(pathlib.Path(page).as_uri())
    driver.find_element(By.ID, "annotator").send_keys(annotator, Keys.ENTER)
    while True:
      task = driver.find_elements(By.ID, "task")
      if not task:
        sys.exit("error: the page shows no adversarial task with the overlay")
      kind = task[0].get_attribute("data-kind")
      if kind == "adversarial" and task[0].get_attribute(
          "data-overlay") == "true":
        break
      ActionChains(driver).send_keys(_ANSWER_KEYS[kind], Keys.ENTER).perform()
    if not driver.save_screenshot(out):
      sys.exit(f"error: could not write {out}")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=DEFAULT_OUT,
                      help="the PNG to write (default: docs/study_page.png)")
  args = parser.parse_args()
  import study_run  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as folder:
    _, page, _ = study_run.make(folder)
    screenshot(page, study_run.ANNOTATORS[0], os.path.abspath(args.out))
  print(args.out)


if __name__ == "__main__":
  main()
