"""The shipped test model: its committed weights load through the bounded
reader, classify real held-out digits, and are what the training script makes."""

import os

import ml_collections
import pytest

from jaxaudit.errors import DataError
from jaxaudit.models import digits_cnn, load_model
from scripts import make_test_model


def _committed():
  return load_model(ml_collections.ConfigDict(dict(name="digits_cnn")))


def test_committed_weights_are_small_and_accurate():
  assert os.path.getsize(digits_cnn.WEIGHTS) < 200_000
  model, params = _committed()
  assert model.class_names[:2] == ("zero", "one")
  assert make_test_model.test_accuracy(params) >= 0.93


def test_training_script_reproduces_the_committed_accuracy():
  """The script trains a model as good as the committed one: the same bar,
  and within 5 of the 500 test digits of its accuracy. Not bit for bit:
  another CPU rounds sums differently over the 1,500 steps (measured: 0.948
  where the file was made, 0.942 on a second machine of the same kind)."""
  trained, losses = make_test_model.train()
  assert losses[-50:].mean() < 0.1 * losses[:10].mean()
  _, committed = _committed()
  accuracy = make_test_model.test_accuracy(trained)
  assert accuracy >= 0.93
  assert abs(accuracy - make_test_model.test_accuracy(committed)) <= 5 / 500


def test_corrupt_weights_are_refused_with_the_file_named(tmp_path):
  data = bytearray(open(digits_cnn.WEIGHTS, "rb").read())
  path = tmp_path / "digits_cnn.msgpack"
  path.write_bytes(bytes(data[:len(data) // 2]))
  with pytest.raises(DataError, match="digits_cnn.msgpack"):
    load_model(ml_collections.ConfigDict(dict(name="digits_cnn",
                                              checkpoint=str(path))))


def test_untrained_model_is_near_chance():
  """The accuracy check above is not vacuous: random weights score ~10%."""
  model, params = load_model(ml_collections.ConfigDict(dict(
      name="digits_cnn", random_init_seed=0)))
  assert make_test_model.test_accuracy(params) < 0.3
  assert model.num_classes == 10


def test_early_checkpoint_is_a_weaker_second_model():
  """`digits_cnn_early` (300 steps, another seed) is what the script's recipe
  makes and is clearly worse than `digits_cnn`: the pair the compare tests
  audit side by side."""
  _, early = load_model(ml_collections.ConfigDict(dict(name="digits_cnn_early")))
  accuracy = make_test_model.test_accuracy(early)
  assert 0.8 <= accuracy <= 0.92
  trained, _ = make_test_model.train(*make_test_model.RECIPES["digits_cnn_early"])
  assert abs(make_test_model.test_accuracy(trained) - accuracy) <= 5 / 500
