"""`config.model.checkpoint` in every format round-trips into the model's params."""

import os

import flax.serialization
import jax
import ml_collections
import numpy as np
import pytest

import user_model
from jaxaudit.errors import WeightsError
from jaxaudit.models import checkpoint, load_model


def _trained(tmp_path):
  path = user_model.write(tmp_path)
  config = ml_collections.ConfigDict({"name": f"{path}:make", "checkpoint": "",
                                      "cache_dir": "", "random_init_seed": -1})
  classifier, params = load_model(config)
  # Any change from the factory's params shows a checkpoint really loaded.
  params = jax.tree.map(lambda a: np.asarray(a) + 0.5, params)
  return config, classifier, params


def _save(fmt, params, folder):
  flat = checkpoint.flatten(params)
  if fmt == "msgpack":
    path = os.path.join(folder, "params.msgpack")
    with open(path, "wb") as f:
      f.write(flax.serialization.to_bytes(params))
  elif fmt == "orbax":
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    path = os.path.join(folder, "orbax")
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, params)
    checkpointer.wait_until_finished()
  elif fmt == "safetensors":
    from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
    path = os.path.join(folder, "params.safetensors")
    save_file({k: np.asarray(v) for k, v in flat.items()}, path)
  elif fmt == "npz":
    path = os.path.join(folder, "params.npz")
    np.savez(path, **{k: np.asarray(v) for k, v in flat.items()})
  else:  # torch, with torch-style dotted names
    torch = pytest.importorskip("torch")
    path = os.path.join(folder, "params.pth")
    torch.save({k.replace("/", "."): torch.from_numpy(np.asarray(v))
                for k, v in flat.items()}, path)
  return path


@pytest.mark.parametrize("fmt", ["msgpack", "orbax", "safetensors", "npz",
                                 "torch"])
def test_each_format_round_trips(tmp_path, fmt):
  config, classifier, params = _trained(tmp_path)
  config.checkpoint = _save(fmt, params, str(tmp_path))
  loaded_classifier, loaded = load_model(config)
  assert jax.tree.structure(loaded) == jax.tree.structure(params)
  for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(params)):
    np.testing.assert_array_equal(np.asarray(a), b)
  x = np.random.RandomState(0).rand(2, 16, 16, 3).astype(np.float32)
  np.testing.assert_allclose(loaded_classifier.logits(loaded, x),
                             classifier.logits(params, x), rtol=1e-6)


@pytest.mark.parametrize("fmt", ["msgpack", "npz"])
def test_a_checkpoint_of_another_model_names_what_does_not_fit(tmp_path, fmt):
  config, _, params = _trained(tmp_path)
  params = jax.tree.map(lambda a: a, params)
  params["params"]["Dense_0"]["kernel"] = np.zeros((5, 7), np.float32)
  del params["params"]["Conv_0"]["bias"]
  params["params"]["extra"] = {"w": np.zeros(3, np.float32)}
  config.checkpoint = _save(fmt, params, str(tmp_path))
  with pytest.raises(WeightsError) as err:
    load_model(config)
  message = str(err.value)
  assert message.startswith("config.model.checkpoint")
  assert "params/Conv_0/bias" in message and "params/extra/w" in message
  assert "params/Dense_0/kernel (5, 7) vs (32, 7)" in message


def test_missing_and_unreadable_checkpoints_name_the_field(tmp_path):
  config, _, _ = _trained(tmp_path)
  config.checkpoint = str(tmp_path / "absent.msgpack")
  with pytest.raises(WeightsError, match="config.model.checkpoint: no such"):
    load_model(config)
  (tmp_path / "junk.msgpack").write_bytes(b"\xc1garbage")
  config.checkpoint = str(tmp_path / "junk.msgpack")
  with pytest.raises(WeightsError, match="config.model.checkpoint: .*junk"):
    load_model(config)
  (tmp_path / "notorbax").mkdir()
  config.checkpoint = str(tmp_path / "notorbax")
  with pytest.raises(WeightsError, match="notorbax: .*orbax checkpoint"):
    load_model(config)
