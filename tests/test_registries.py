"""Contract tests over every registry entry: each model builds and maps [0, 1]
images to logits and features; each stage has a config section and a `run`."""

import inspect

import jax
import jax.numpy as jnp
import ml_collections
import pytest

from jaxaudit import job_config
from jaxaudit.errors import ConfigError
from jaxaudit.models import MODELS
from jaxaudit.models.classifier import ModelDims
from jaxaudit.stages import STAGES


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_maps_images_to_logits_and_features(name):
  entry = MODELS.get(name)
  model = entry.make_classifier(name)
  size = 32 if model.label_space == "cifar10" else 64
  x = jnp.full((2, size, size, 3), 0.5)
  variables = jax.eval_shape(model.init_fn, jax.random.key(0))
  logits, features = jax.eval_shape(model.logits_and_features, variables, x)
  assert logits.shape == (2, model.num_classes)
  assert features.ndim == 2 and features.shape[0] == 2
  assert len(model.class_names) == model.num_classes


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
