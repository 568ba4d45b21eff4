"""A small CNN for scikit-learn's 16 x 16 digits, with weights that ship inside
jaxaudit: the model every test and quick audit can run with nothing from
outside the repository.

`scripts/make_test_model.py` trains it deterministically on the digits' train
split and writes `digits_cnn.msgpack` beside this file (Flax msgpack, read by
jaxaudit's bounded reader like any user checkpoint). `digits_cnn_early` is the
same network stopped early from another seed (300 steps: 0.872 top-1 against
0.948), a second checkpoint for comparing models (`configs/digits_compare.py`).
"""

from __future__ import annotations

import os

import flax.linen as nn
import jax

from jaxaudit.data import digits
from jaxaudit.models.classifier import Classifier, Normalization
from jaxaudit.models.registry import ModelEntry

WEIGHTS = os.path.join(os.path.dirname(__file__), "digits_cnn.msgpack")
# Registry name -> its shipped weights.
CHECKPOINTS = {"digits_cnn": WEIGHTS,
               "digits_cnn_early": os.path.join(os.path.dirname(__file__),
                                                "digits_cnn_early.msgpack")}
NORMALIZATION = Normalization(mean=0.2, std=0.35)


class DigitsCNN(nn.Module):
  """[B, 16, 16, 3] normalised pixels -> (logits [B, 10], features [B, 64])."""

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = nn.relu(nn.Conv(32, (3, 3), name="conv1")(x))
    x = nn.relu(nn.Conv(64, (3, 3), strides=2, name="conv2")(x))
    features = x.mean((1, 2))
    return nn.Dense(len(digits.CLASS_NAMES), name="head")(features), features


def make_classifier(name: str = "digits_cnn") -> Classifier:
  return Classifier.from_linen(DigitsCNN(), input_size=digits.SIZE,
                               class_names=digits.CLASS_NAMES,
                               normalization=NORMALIZATION, name=name)


def default_checkpoint(name: str = "digits_cnn") -> str:
  return CHECKPOINTS[name]


ENTRY = ModelEntry(make_classifier, None, default_checkpoint)
