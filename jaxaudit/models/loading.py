"""Builds the configured classifier and its params (converted, optionally cached).

`config.model.name` is a built-in architecture (`jaxaudit.models.registry`) or
a user factory ("package.module:make", "path/to/file.py:make";
`jaxaudit.models.factory`). Params come, in this order of precedence, from
`config.model.random_init_seed` (>= 0: the model's `init_fn`), from
`config.model.checkpoint` (any format `jaxaudit.models.checkpoint` reads), from
the factory, or from the weights a built-in's package ships. The checkpoint and
`config.model.cache_dir` may be local paths or URLs (`jaxaudit.storage`).
"""

from __future__ import annotations

import dataclasses
import hashlib

from absl import logging
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaudit import files
from jaxaudit import storage
from jaxaudit.errors import ConfigError
from jaxaudit.models import checkpoint as checkpoint_lib
from jaxaudit.models import convert
from jaxaudit.models import factory
from jaxaudit.models.classifier import Classifier, Params
from jaxaudit.models.registry import MODELS
from jaxaudit import weights

_HINT = ", or a factory 'package.module:make' / 'path/to/file.py:make'"


def _cache_path(cache_dir: str, name: str, checkpoint: str) -> str:
  """The cache file of a checkpoint's converted weights: keyed by the model
  and the checkpoint's path and version (`storage.fingerprint`)."""
  key = f"{name}:{storage.fingerprint(checkpoint)}"
  digest = hashlib.sha1(key.encode()).hexdigest()[:16]
  return storage.join(storage.expand(cache_dir), f"{name}-{digest}.npz")


def _save_cache(path: str, variables: Params) -> None:
  flat = flax.traverse_util.flatten_dict(variables, sep="/")
  files.write_with(path, lambda f: np.savez(
      f, **{k: np.asarray(v) for k, v in flat.items()}))


def _load_cache(path: str) -> Params:
  """Converted weights saved by `_save_cache` (read like any weight file: the
  cache folder may be shared)."""
  return flax.traverse_util.unflatten_dict(
      weights.load_state_dict(path, strip_prefix=""), sep="/")


def _builtin(name: str) -> tuple[Classifier, Params | None]:
  MODELS.check(name, _HINT)
  entry = MODELS.get(name)
  classifier = entry.make_classifier(name)

  if entry.convert is None:
    return classifier, None

  def convert_state_dict(state):
    return entry.convert(convert.StateDict(state), name)

  return dataclasses.replace(classifier,
                             convert_state_dict=convert_state_dict), None


def _params(classifier: Classifier, params: Params | None,
            model_config: ml_collections.ConfigDict) -> Params:
  name = model_config.name
  seed = int(model_config.get("random_init_seed", -1))
  if seed >= 0:
    if classifier.init_fn is None:
      raise ConfigError(f"config.model.random_init_seed: model '{name}' has no "
                        "init_fn to draw random weights with")
    return classifier.init_fn(jax.random.key(seed))
  path = model_config.get("checkpoint", "")
  if not path and params is not None and not _abstract(params):
    return params
  if not path and not factory.is_factory(name):
    entry = MODELS.get(name)
    if entry.default_checkpoint is not None:
      path = entry.default_checkpoint(name)
  if not path:
    raise ConfigError(f"config.model.checkpoint: model '{name}' has no weights;"
                      " give a checkpoint (or have the factory return params)")
  path = storage.expand(path)
  # Only torch-named weights are converted, and worth caching.
  cache_dir = model_config.get("cache_dir", "")
  cache = (_cache_path(cache_dir, name, path) if cache_dir and storage.isfile(
      path) and classifier.convert_state_dict is not None else "")
  if cache and storage.isfile(cache):
    logging.info("loading converted weights from %s", cache)
    return _load_cache(cache)
  template = params
  if template is None and classifier.init_fn is not None:
    template = jax.eval_shape(classifier.init_fn, jax.random.key(0))
  loaded = checkpoint_lib.load_params(path, template,
                                      classifier.convert_state_dict)
  if cache and jax.process_index() == 0:
    _save_cache(cache, loaded)
  return loaded


def _abstract(params: Params) -> bool:
  return any(isinstance(leaf, jax.ShapeDtypeStruct)
             for leaf in jax.tree.leaves(params))


def check_fits(classifier: Classifier, params: Params, field: str) -> tuple[
    int, int | None]:
  """Traces the classifier once on a dummy batch.

  Returns:
    (K logits, D features or None).

  Raises:
    ConfigError: naming `field` and what failed (params that do not fit the
      module, outputs of the wrong rank, class names of the wrong count).
  """
  try:
    logits, features = classifier.output_shapes(params)
  except Exception as e:  # pylint: disable=broad-except  (user models)
    message = f"{type(e).__name__}: {e}".splitlines()[0][:400]
    raise ConfigError(f"{field}: the params do not fit the model "
                      f"'{classifier.name}' ({message})") from e
  if len(logits) != 2:
    raise ConfigError(f"{field}: the model returns logits of shape {logits} "
                      "for one image; expected [1, K]")
  if features is not None and len(features) != 2:
    raise ConfigError(f"{field}: the model returns features of shape "
                      f"{features} for one image; expected [1, D]")
  num_classes = logits[-1]
  if classifier.class_names is not None and len(
      classifier.class_names) != num_classes:
    raise ConfigError(f"{field}: the model outputs {num_classes} logits but "
                      f"declares {len(classifier.class_names)} class names")
  return num_classes, None if features is None else features[-1]


def load_model(model_config: ml_collections.ConfigDict
               ) -> tuple[Classifier, Params]:
  """The classifier `config.model` names and its params.

  Args:
    model_config: `config.model`: `name` (a built-in or a factory),
      `checkpoint` ("" = the factory's params or the weights a built-in's
      package ships), `cache_dir` ("" = no cache of converted torch weights)
      and `random_init_seed` (>= 0: random weights from the model's init).

  Returns:
    (classifier, params as jax arrays).

  Raises:
    ConfigError / WeightsError: naming the `config.model.*` field at fault.
  """
  name = model_config.name
  if not isinstance(name, str) or not name:
    raise ConfigError("config.model.name must be a model name or a factory")
  if factory.is_factory(name):
    classifier, params = factory.call_factory(name, model_config)
  else:
    classifier, params = _builtin(name)
  params = _params(classifier, params, model_config)
  params = jax.tree.map(jnp.asarray, params)
  check_fits(classifier, params,
             "config.model.checkpoint" if model_config.get("checkpoint")
             else "config.model.name")
  return classifier, params
