"""The shipped test model (`digits_cnn`) on real scikit-learn test digits: what
the attack, explanation, criticism and SIS tests run on in any clone."""

import functools
import json
import os
from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaudit import sharding
from jaxaudit.data import digits as digits_data
from jaxaudit.models import load_model

# `configs/digits.py` with the shipped model; add --workdir and overrides.
JOB_ARGS = ("--config=configs/digits.py",)
# Digits a person might confuse, as a `config.taxonomy.superclass` map; two,
# unlisted, stands alone.
GROUPS = {"one": "stroke", "four": "stroke", "seven": "stroke",
          "three": "curl", "five": "curl", "eight": "curl", "nine": "curl",
          "zero": "loop", "six": "loop"}


def group_of(label: int) -> str:
  """The `GROUPS` group of a class index (its own name if unlisted)."""
  name = digits_data.CLASS_NAMES[label]
  return GROUPS.get(name, name)


def write_groups(folder) -> str:
  """Writes `GROUPS` as JSON into `folder`; returns the path."""
  path = os.path.join(str(folder), "groups.json")
  with open(path, "w") as f:
    json.dump(GROUPS, f)
  return path


@functools.cache
def model_and_params():
  """(classifier, params) of the committed `digits_cnn` weights."""
  return load_model(ml_collections.ConfigDict(dict(name="digits_cnn")))


@functools.cache
def digits(n: int = 64):
  """(classifier, params, images float32 [n, 16, 16, 3] in [0, 1], labels
  int32 [n], per-example keys [n]) of the first n test digits."""
  model, params = model_and_params()
  images, labels = digits_data.digit_images("test")
  x = jnp.asarray(images[:n], jnp.float32) / 255.0
  y = jnp.asarray(labels[:n].astype(np.int32))
  keys = sharding.example_keys(jax.random.key(0), jnp.arange(n))
  return model, params, x, y, keys


def digits_npz(folder, n: int = 96, split: str = "test",
               rows: Sequence[int] | None = None) -> str:
  """Digits of a split as an .npz (images, labels, classes) in `folder`, for
  jobs that read the .npz path; returns its path.

  Args:
    folder: where to write `digits-<split>.npz`.
    n: the first n digits of the split, unless `rows` is given.
    split: "train" or "test".
    rows: the split's rows to write, in this order.
  """
  images, labels = digits_data.digit_images(split)
  rows = list(range(n)) if rows is None else list(rows)
  path = os.path.join(str(folder), f"digits-{split}.npz")
  np.savez(path, images=images[rows], labels=labels[rows],
           classes=np.asarray(digits_data.CLASS_NAMES))
  return path
