"""A finished run with a human study, for the tests that answer and score it.

The shipped digits test model on the first 100 scikit-learn test digits, 36 of
them relabelled (label + 1 mod 10): the model's top-1 on those is right and
the given label wrong, the label noise a study of top-1 errors exists to find.
The run has evaluate, mistakes (superclass groups as the proxy), attack (PGD
at 16/255 and 32/255), explain (saliency overlays of the adversarials) and
sis; `python -m jaxaudit.annotate` then writes its page with at least 30 tasks
of each kind (37 errors, 40 adversarials, 20 images x 2 subsets).
"""

import os

import ml_collections
import numpy as np

import digits_model
from conftest import ROOT
from jaxaudit import annotate
from jaxaudit import pipeline
from jaxaudit.data import digits as digits_data
from jaxaudit.study import key as key_lib

NUM_EXAMPLES = 100
NUM_RELABELLED = 36
SEED = 3
ANNOTATORS = ("ann-a", "ann-b", "ann-c")
MAX_PER_KIND = 40


def digits_config(stages: str) -> ml_collections.ConfigDict:
  """configs/digits.py's fast config running `stages` small enough for a
  test: PGD (L-inf) the one attack, saliency overlays of it and of the clean
  images, no neighbours, coarse SIS steps."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(
      "digits_config", os.path.join(ROOT, "configs", "digits.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  c = module.get_config("fast")
  c.stages = stages
  c.attack.attacks = "pgd_linf"  # The gallery attack: stored.
  c.explain.methods = "saliency"
  c.explain.adversarial_attack = "pgd_linf"
  c.explain.adversarial_methods = "saliency"
  c.explain.neighbours = 0
  c.sis.step_fraction = 0.3
  c.sis.min_step_fraction = 0.02
  return c


def relabelled_digits(folder) -> str:
  """The run's data as an .npz in `folder` (written once); returns its
  path."""
  path = os.path.join(str(folder), "relabelled-digits.npz")
  if os.path.exists(path):
    return path
  images, labels = digits_data.digit_images("test")
  labels = labels[:NUM_EXAMPLES].copy()
  rows = np.arange(0, 2 * NUM_RELABELLED, 2)
  labels[rows] = (labels[rows] + 1) % 10
  np.savez(path, images=images[:NUM_EXAMPLES], labels=labels,
           classes=np.asarray(digits_data.CLASS_NAMES))
  return path


def config(folder) -> ml_collections.ConfigDict:
  """The job's config; its data and groups files are written to `folder`."""
  c = digits_config("evaluate,mistakes,attack,explain,sis")
  c.data.builtin = ""
  c.data.npz = relabelled_digits(folder)
  c.data.num_examples = 0
  c.taxonomy.superclass = digits_model.write_groups(folder)
  c.attack.pgd_linf.steps = 5
  c.attack.pgd_linf.epsilons = (16.0, 32.0)
  return c


def make(folder) -> tuple[str, str, key_lib.StudyKey]:
  """Runs the job in `folder`/run and writes its study.

  Returns:
    (workdir, the page's path, the study's key).
  """
  workdir = os.path.join(str(folder), "run")
  pipeline.run(config(folder), workdir)
  page = annotate.write_study(workdir, seed=SEED, annotators=ANNOTATORS,
                              max_per_kind=MAX_PER_KIND)
  key = key_lib.load(os.path.join(os.path.dirname(page), annotate.KEY_FILE))
  return workdir, page, key
