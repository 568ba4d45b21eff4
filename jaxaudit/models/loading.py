"""Builds the configured classifier and its weights (converted, optionally cached)."""

from __future__ import annotations

import hashlib
import os

from absl import logging
import flax
import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit.errors import ConfigError
from jaxaudit.models import convert
from jaxaudit.models.base import Classifier, Params
from jaxaudit.registry import Registry
from jaxaudit import weights

MODELS = Registry("model", "config.model.name", {
    "efficientnet_lite0": "jaxaudit.models.efficientnet_lite:ENTRY",
    **{f"resnet{d}": "jaxaudit.models.resnet:ENTRY"
       for d in (18, 34, 50, 101, 152)},
    **{f"cifar_resnet{d}": "jaxaudit.models.cifar_resnet:ENTRY"
       for d in (20, 32, 44, 56, 110)},
})


def _cache_path(cache_dir: str, name: str, checkpoint: str) -> str:
  stat = os.stat(checkpoint)
  key = f"{name}:{os.path.abspath(checkpoint)}:{stat.st_size}:{stat.st_mtime_ns}"
  digest = hashlib.sha1(key.encode()).hexdigest()[:16]
  return os.path.join(os.path.expanduser(cache_dir), f"{name}-{digest}.npz")


def _save_cache(path: str, variables: Params) -> None:
  flat = flax.traverse_util.flatten_dict(variables, sep="/")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f"{path}.tmp-{os.getpid()}.npz"
  np.savez(tmp, **{k: np.asarray(v) for k, v in flat.items()})
  os.replace(tmp, path)


def _load_cache(path: str) -> Params:
  """Converted weights saved by `_save_cache` (read like any weight file: the
  cache folder may be shared)."""
  return flax.traverse_util.unflatten_dict(
      weights.load_state_dict(path, strip_prefix=""), sep="/")


def load_model(model_config) -> tuple[Classifier, Params]:
  """The classifier named by `config.model` and its Flax variables.

  Args:
    model_config: `config.model` with `name`, `checkpoint` ("" = the weights an
      installed package ships, where the model has some), `cache_dir` ("" = no
      cache of converted weights) and `random_init_seed` (>= 0: random weights,
      no checkpoint; for tests and training from scratch).

  Returns:
    (classifier, variables) with variables as float32 jax arrays.
  """
  name = model_config.name
  entry = MODELS.get(name)
  classifier = entry.make_classifier(name)
  seed = int(model_config.get("random_init_seed", -1))
  if seed >= 0:
    size = classifier.preprocessing.image_size
    variables = classifier.module.init(jax.random.key(seed),
                                       jnp.zeros((1, size, size, 3)))
    return classifier, variables
  checkpoint = model_config.get("checkpoint", "")
  if not checkpoint:
    if entry.default_checkpoint is None:
      raise ConfigError(f"config.model.checkpoint: model '{name}' ships no "
                        "weights; give a checkpoint file")
    checkpoint = entry.default_checkpoint()
  checkpoint = os.path.expanduser(checkpoint)
  if not os.path.isfile(checkpoint):
    raise ConfigError(f"config.model.checkpoint: no such file: {checkpoint}")
  cache_dir = model_config.get("cache_dir", "")
  cache = _cache_path(cache_dir, name, checkpoint) if cache_dir else ""
  if cache and os.path.isfile(cache):
    logging.info("loading converted weights from %s", cache)
    variables = _load_cache(cache)
  else:
    state = convert.StateDict(weights.load_state_dict(checkpoint), checkpoint)
    variables = entry.convert(state, name)
    if cache and jax.process_index() == 0:
      _save_cache(cache, variables)
  return classifier, jax.tree.map(jnp.asarray, variables)
