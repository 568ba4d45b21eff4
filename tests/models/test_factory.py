"""User factories from a config: `package.module:make` or `file.py:make`."""

import sys

import ml_collections
import pytest

import user_model
from jaxaudit import classes
from jaxaudit.errors import ConfigError
from jaxaudit.models import load_model


def _config(name, **fields):
  return ml_collections.ConfigDict(dict(
      {"name": name, "checkpoint": "", "cache_dir": "", "random_init_seed": -1},
      **fields))


def test_file_and_module_factories_build_the_users_model(tmp_path):
  path = user_model.write(tmp_path)
  classifier, params = load_model(_config(f"{path}:make"))
  assert classifier.name == "digitnet" and classifier.num_classes == 7
  assert classifier.class_names[0] == "zero"
  assert classes.LabelSpace.of(classifier.class_names).kind == classes.CUSTOM
  sys.path.insert(0, str(tmp_path))
  try:
    again, _ = load_model(_config("mymodel:make"))
  finally:
    sys.path.remove(str(tmp_path))
  assert again.class_names == classifier.class_names
  assert classifier.output_shapes(params) == ((1, 7), (1, 32))


@pytest.mark.parametrize("body, name, message", [
    (None, "/no/such/dir/model.py:make", "config.model.name: no such file"),
    ("x = 1", "{path}:make", "has no attribute 'make'"),
    ("make = 3", "{path}:make", "is a int, not a callable factory"),
    ("raise RuntimeError('broken import')", "{path}:make",
     "importing .* failed: RuntimeError: broken import"),
    ("def make(c):\n  return 42", "{path}:make",
     "returned a int; expected a jaxaudit.Classifier"),
    ("def make(c):\n  raise ValueError('bad width')", "{path}:make",
     "factory .* raised ValueError: bad width"),
    (None, "no_such_module_xyz:make", "cannot import module 'no_such_module_xyz'"),
    (None, "mymodel", "unknown model 'mymodel'.*factory"),
])
def test_factory_errors_name_config_model_name(tmp_path, body, name, message):
  path = tmp_path / "bad_model.py"
  if body is not None:
    path.write_text(body)
  with pytest.raises(ConfigError, match=message) as err:
    load_model(_config(name.format(path=path)))
  assert str(err.value).startswith("config.model.name")


def test_params_that_do_not_fit_the_module_name_the_field(tmp_path):
  path = tmp_path / "model.py"
  path.write_text(user_model.SOURCE + '''

def make_wrong(model_config):
  import jax, jax.numpy as jnp
  model = classifier()
  params = model.init_fn(jax.random.key(0))
  params = jax.tree.map(lambda a: jnp.zeros(a.shape[:-1] + (a.shape[-1] + 1,)),
                        params)
  return model, params


def make_wrong_names(model_config):
  import dataclasses, jax
  model = dataclasses.replace(classifier(), class_names=("a", "b"))
  return model, model.init_fn(jax.random.key(0))
''')
  with pytest.raises(ConfigError,
                     match="config.model.name: the params do not fit"):
    load_model(_config(f"{path}:make_wrong"))
  with pytest.raises(ConfigError, match="outputs 7 logits but declares 2"):
    load_model(_config(f"{path}:make_wrong_names"))
