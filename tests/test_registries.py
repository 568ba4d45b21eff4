"""Contract tests over every registry entry: each model builds and maps [0, 1]
images to logits and features, one example's logits depending on that example
alone; each stage has a config section and a `run`."""

import inspect

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxaudit import classes
from jaxaudit import job_config
from jaxaudit.errors import ConfigError
from jaxaudit.models import MODELS
from jaxaudit.models.classifier import ModelDims
from jaxaudit.stages import STAGES


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_maps_images_to_logits_and_features(name):
  entry = MODELS.get(name)
  model = entry.make_classifier(name)
  size = _input_size(model)
  x = jnp.full((2, size, size, 3), 0.5)
  variables = jax.eval_shape(model.init_fn, jax.random.key(0))
  logits, features = jax.eval_shape(model.logits_and_features, variables, x)
  assert logits.shape == (2, model.num_classes)
  assert features.ndim == 2 and features.shape[0] == 2
  assert len(model.class_names) == model.num_classes


def _input_size(model) -> int:
  cifar = classes.LabelSpace.of(model.class_names).kind == classes.CIFAR10
  return min(model.input_size, 32 if cifar else 64)


# One entry of each architecture module (the others differ in depth or width).
@pytest.mark.parametrize("name", ["digits_cnn", "cifar_resnet20", "resnet18",
                                  "efficientnet_lite0"])
def test_logits_depend_on_each_example_alone(name):
  """Evaluation-mode models: changing one image changes its own logits and no
  other row's (the executor pads and shards batches, so a model mixing rows,
  e.g. BatchNorm in training mode, would make results depend on the layout)."""
  model = MODELS.get(name).make_classifier(name)
  params = jax.jit(model.init_fn)(jax.random.key(0))
  size = _input_size(model)
  x = jax.random.uniform(jax.random.key(1), (3, size, size, 3))
  run = jax.jit(model.logits_and_features)
  logits, features = run(params, x)
  changed, changed_features = run(params, x.at[2].set(1.0 - x[2]))
  assert logits.shape == (3, model.num_classes) and features.shape[0] == 3
  np.testing.assert_array_equal(changed[:2], logits[:2])
  np.testing.assert_array_equal(changed_features[:2], features[:2])
  assert float(jnp.abs(changed[2] - logits[2]).max()) > 1e-4
  assert bool(jnp.isfinite(logits).all())


@pytest.mark.parametrize("name", STAGES.names())
def test_every_stage_declares_its_config_contract_and_run(name):
  config = job_config.base_config()
  assert isinstance(config[name], ml_collections.ConfigDict)
  stage = STAGES.get(name)
  assert list(inspect.signature(stage.run).parameters) == ["ctx"]
  dims = ModelDims(num_classes=10, feature_dim=64, input_size=32)
  stage.check_config(config, dims)
  contract = stage.contract(config, dims)
  for spec in contract.produces:
    assert spec.stage == name and spec.name.count(".") >= 1
  for need in contract.consumes:
    assert need.stage in STAGES and need.stage != name


def test_unknown_names_list_the_valid_ones():
  with pytest.raises(ConfigError, match="valid: .*efficientnet_lite0"):
    MODELS.get("vit")
  with pytest.raises(ConfigError, match="config.stages: unknown stage 'x'"):
    STAGES.get("x")
