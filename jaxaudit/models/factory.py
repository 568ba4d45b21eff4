"""A user's own model: `config.model.name = "package.module:make"` or "file.py:make".

The factory is called with `config.model` and returns a `Classifier`, or a
`(Classifier, params)` pair; params may be arrays or `jax.ShapeDtypeStruct`s
(a template that `config.model.checkpoint` fills). Every failure (no such file,
an import that raises, a missing attribute, a factory that returns something
else) is a `ConfigError` naming `config.model.name`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from typing import Any, Callable

import ml_collections

from jaxaudit.errors import ConfigError
from jaxaudit.models.classifier import Classifier, Params

FIELD = "config.model.name"


def is_factory(name: str) -> bool:
  """Whether `config.model.name` names a factory rather than a built-in."""
  return ":" in name


def _describe(error: BaseException) -> str:
  return f"{type(error).__name__}: {error}".splitlines()[0][:300]


def _import_file(path: str) -> Any:
  path = os.path.abspath(os.path.expanduser(path))
  if not os.path.isfile(path):
    raise ConfigError(f"{FIELD}: no such file: {path}")
  digest = hashlib.sha1(path.encode()).hexdigest()[:12]
  module_name = f"jaxaudit_user_model_{digest}"
  if module_name in sys.modules:
    return sys.modules[module_name]
  spec = importlib.util.spec_from_file_location(module_name, path)
  if spec is None or spec.loader is None:
    raise ConfigError(f"{FIELD}: cannot load {path} as a Python module")
  module = importlib.util.module_from_spec(spec)
  sys.modules[module_name] = module
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except  (user code)
    del sys.modules[module_name]
    raise ConfigError(f"{FIELD}: importing {path} failed: {_describe(e)}"
                      ) from e
  return module


def load_factory(spec: str) -> Callable[[ml_collections.ConfigDict], Any]:
  """The callable `spec` ("pkg.module:attr" or "path/file.py:attr") names."""
  target, _, attribute = spec.rpartition(":")
  if not target or not attribute:
    raise ConfigError(f"{FIELD}: '{spec}' must be 'package.module:factory' or "
                      "'path/to/file.py:factory'")
  if target.endswith(".py") or os.sep in target:
    module = _import_file(target)
  else:
    try:
      module = importlib.import_module(target)
    except Exception as e:  # pylint: disable=broad-except  (user code)
      raise ConfigError(f"{FIELD}: cannot import module '{target}': "
                        f"{_describe(e)}") from e
  factory = getattr(module, attribute, None)
  if factory is None:
    raise ConfigError(f"{FIELD}: '{target}' has no attribute '{attribute}'")
  if not callable(factory):
    raise ConfigError(f"{FIELD}: '{spec}' is a {type(factory).__name__}, not "
                      "a callable factory")
  return factory


def call_factory(spec: str, model_config: ml_collections.ConfigDict
                 ) -> tuple[Classifier, Params | None]:
  """Calls the factory with `config.model` and checks what it returned.

  Returns:
    (classifier, params or None when the factory gave only a classifier).
  """
  factory = load_factory(spec)
  try:
    result = factory(model_config)
  except ConfigError:
    raise
  except Exception as e:  # pylint: disable=broad-except  (user code)
    raise ConfigError(f"{FIELD}: factory '{spec}' raised {_describe(e)}"
                      ) from e
  if isinstance(result, Classifier):
    return result, None
  if (isinstance(result, tuple) and len(result) == 2
      and isinstance(result[0], Classifier)):
    return result
  raise ConfigError(
      f"{FIELD}: factory '{spec}' returned a {type(result).__name__}; expected "
      "a jaxaudit.Classifier or a (Classifier, params) pair")
