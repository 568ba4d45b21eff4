"""AutoAttack in the attack stage: each sub-attack only on what is still robust,
re-batched, with the same per-example results as the whole-batch composition."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from conftest import CIFAR_DIR, require_shared
from jaxaudit import job_config, pipeline
from jaxaudit.attacks import autoattack
from jaxaudit.models import load_model
from jaxaudit.sharding import example_keys
from jaxaudit.stages.base import stage_rng

SETTINGS = {"norm": "linf", "attacks": "apgd_ce,apgd_t,fab_t,square",
            "steps": 5, "restarts": 1, "num_target_classes": 3,
            "queries": 50}


def _config(num_examples, batch_size, epsilons):
  """The attack stage running only AutoAttack on shared CIFAR test images."""
  config = job_config.cifar10_config(folder=CIFAR_DIR)
  config.stages = "evaluate,attack"
  config.data.num_examples = num_examples
  config.batch_size = batch_size
  config.attack.attacks = "autoattack"
  config.attack.autoattack.epsilons = epsilons
  return config


def test_rebatched_autoattack_equals_the_whole_batch_composition(tmp_path):
  npz = require_shared(os.path.join(CIFAR_DIR, "test_jpeg.npz"))
  config = _config(24, 8, (0.5, 1.0))
  config.attack.autoattack.update(SETTINGS)
  summary = pipeline.run(config, str(tmp_path))["attack"]
  stats = summary["autoattack"]
  for eps in ("0.5/255", "1/255"):
    after = list(stats[eps]["robust_accuracy_after"].values())
    assert after == sorted(after, reverse=True)  # Each attack only removes.
    assert after[-1] == summary["robust_accuracy"]["autoattack"][eps]
  assert (summary["robust_accuracy"]["autoattack"]["1/255"]
          < summary["clean_accuracy"])
  records = pd.read_parquet(tmp_path / "records" / "attack")
  # The same attacks on the whole batch at once, with the stage's keys.
  model, params = load_model(config.model)
  data = np.load(npz)
  images = jnp.asarray(data["images"][:24] / 255.0, jnp.float32)
  labels = jnp.asarray(data["labels"][:24].astype(np.int32))
  keys = example_keys(jax.random.fold_in(stage_rng(config.seed, "attack"), 0),
                      jnp.arange(24))
  whole = jax.jit(lambda x, y, k: autoattack.autoattack(
      model.logits_fn(params), x, y, jnp.asarray([0.5, 1.0]) / 255, k,
      **SETTINGS))(images, labels, keys)
  correct = np.asarray(model.logits(params, images)).argmax(-1) == np.asarray(
      labels)
  for e, eps in enumerate(("0.5/255", "1/255")):
    rows = records[records["epsilon_label"] == eps].sort_values("id")
    np.testing.assert_array_equal(
        rows["success"].to_numpy(), np.asarray(whole.success[e]) & correct)


@pytest.mark.slow
@pytest.mark.parametrize("norm,epsilons,torch_epsilons", [
    ("linf", (1.0, 2.0), (1 / 255, 2 / 255)),
    ("l2", (0.1, 0.25), (0.1, 0.25))])
def test_autoattack_matches_torchattacks(tmp_path, norm, epsilons,
                                         torch_epsilons):
  """Standard AutoAttack robust accuracy from the attack stage, on 200 shared
  CIFAR test images, within 1 point of torchattacks' composition with the
  paper's settings on the same weights."""
  torch = pytest.importorskip("torch")
  pytest.importorskip("torchattacks")
  from benchmarks import torch_models, torch_peers  # pylint: disable=g-import-not-at-top
  from jaxaudit.weights import load_state_dict  # pylint: disable=g-import-not-at-top
  npz = require_shared(os.path.join(CIFAR_DIR, "test_jpeg.npz"))
  config = _config(200, 100, epsilons)
  config.attack.autoattack.norm = norm
  summary = pipeline.run(config, str(tmp_path))["attack"]
  ours = list(summary["robust_accuracy"]["autoattack"].values())
  net = torch_models.CifarResNet(20).load_numpy_state(
      load_state_dict(os.path.join(CIFAR_DIR, "resnet20.th")))
  with np.load(npz) as data:
    x = torch.from_numpy((data["images"][:200] / 255.0).astype(np.float32)
                         .transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(data["labels"][:200].astype(np.int64))
  for eps, mine in zip(torch_epsilons, ours):
    adversarials = torch_peers.standard_autoattack(net, norm, eps)(x, y)
    with torch.no_grad():
      theirs = float((net(adversarials).argmax(-1) == y).float().mean())
    assert abs(mine - theirs) <= 0.01 + 1e-9, (norm, eps, mine, theirs)
