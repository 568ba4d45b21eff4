"""Retraining on pixel subsets (Carter et al. 2021, Sec. 4): do 5% subsets carry signal?

  python -m jaxaudit.retrain --config=configs/cifar10_sis_retrain.py \
      --workdir=/tmp/jaxaudit-sis-retrain

Writes `<workdir>/retrain.json` with both held-out accuracies; a killed run
resumes from its orbax checkpoints and cached rankings.

A pretrained ResNet-20 ranks every pixel of every image with BGSIS; a fresh
ResNet-20 is trained with optax on images that keep only their top-ranked 5% of
pixels (the rest the baseline), and another on as many uniformly random pixels.
Both are scored on held-out images masked the same way.

Only CIFAR-10's 10,000 test images ship here, so they are split by position:
the first `num_train` (default 8,000) train, the rest (2,000) are held out. The
npz is class-interleaved, so both parts hold every class about equally.
"""

from __future__ import annotations

import io
import json
import os
import sys
from typing import Any, NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp

from jaxaudit import compile_options
from jaxaudit import files
from jaxaudit import conv_layout
from jaxaudit import sharding
from jaxaudit import storage
from jaxaudit import summary as summary_lib
from jaxaudit.errors import ConfigError, DataError
from jaxaudit.models import Classifier, load_model
from jaxaudit.sis import bgsis
from jaxaudit.sis import masks


class TrainState(NamedTuple):
  """params / batch_stats: Flax collections; opt_state: optax state; step: int32."""
  params: Any
  batch_stats: Any
  opt_state: Any
  step: jax.Array


def rank_pixels(config: ml_collections.ConfigDict, images: np.ndarray,
                mesh) -> np.ndarray:
  """BGSIS ranks of every image under the pretrained model.

  Args:
    config: the retrain config (`model`, `sis`, `batch_size`).
    images: uint8 [N, 32, 32, 3].
    mesh: device mesh.

  Returns:
    int32 [N, 1024] ranks (0 = most important pixel).
  """
  model, params = load_model(config.model)
  baseline = jnp.asarray(masks.baseline_pixel(model, config.sis.baseline))
  removals = tuple(bgsis.removal_schedule(
      images.shape[1] ** 2, config.sis.step_fraction,
      config.sis.min_step_fraction).tolist())

  def step(params, batch):
    x = batch["image"].astype(jnp.float32) / 255.0
    targets = jnp.argmax(model.logits(params, x), -1)
    log_prob = lambda y: jax.nn.log_softmax(model.logits(params, y), -1)
    return {"ranks": bgsis.backward_selection(
        log_prob, x, targets, baseline, block_size=1, removals=removals).ranks}

  return sharding.map_batches(step, params, {"image": images}, mesh=mesh,
                              batch_size=config.batch_size, desc="bgsis")["ranks"]


def subset_images(images: np.ndarray, ranks: np.ndarray, fraction: float,
                  baseline: np.ndarray) -> np.ndarray:
  """float32 [N, H, W, 3]: the top-ranked `fraction` of pixels, the rest baseline."""
  count = max(1, int(np.ceil(fraction * ranks.shape[1] - 1e-9)))
  keep = (ranks < count).reshape(images.shape[:3] + (1,)).astype(np.float32)
  return images.astype(np.float32) / 255.0 * keep + baseline * (1.0 - keep)


def random_ranks(seed: int, num_examples: int, num_features: int) -> np.ndarray:
  """Uniformly random rankings, one per example id (its own PRNG key)."""
  keys = sharding.example_keys(jax.random.key(seed), jnp.arange(num_examples))
  return np.asarray(masks.random_ranks(keys, num_features))


def make_optimizer(cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """SGD with Nesterov momentum, weight decay and a cosine learning rate."""
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, cfg.learning_rate, cfg.warmup_steps, cfg.num_steps)
  return optax.chain(optax.add_decayed_weights(cfg.weight_decay),
                     optax.sgd(schedule, momentum=0.9, nesterov=True))


def training_apply(model: Classifier):
  """`model.module.apply` on [0, 1] pixels (the model's normalisation first),
  with the keyword arguments of training (`train=True, mutable=...`)."""

  def apply_fn(variables, images, **kwargs):
    return model.module.apply(variables, model.normalization(images), **kwargs)

  return apply_fn


def train_chunk(apply_fn, tx: optax.GradientTransformation, state: TrainState,
                images: jax.Array, labels: jax.Array, rng: jax.Array, *,
                batch_size: int, num_steps: int) -> tuple[TrainState, jax.Array]:
  """`num_steps` SGD steps in one `lax.scan`.

  Args:
    apply_fn: `training_apply(model)`.
    tx: the optimizer.
    state: where training stands.
    images: float32 [N, H, W, 3] training images; labels int [N].
    rng: training key; step t draws its batch and flips from fold_in(rng, t).
    batch_size: examples per step; num_steps: steps in this chunk.

  Returns:
    (new state, losses float32 [num_steps]).
  """

  def loss_fn(params, batch_stats, x, y):
    (logits, _), updates = apply_fn(
        {"params": params, "batch_stats": batch_stats}, x, train=True,
        mutable=["batch_stats"])
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, updates["batch_stats"]

  # XLA:CPU's slow in-loop convolutions otherwise (see `conv_layout`).
  grad_fn = conv_layout.canonical_convolutions(
      jax.value_and_grad(loss_fn, has_aux=True))

  def step(state: TrainState, _):
    key = jax.random.fold_in(rng, state.step)
    pick, flip = jax.random.split(key)
    idx = jax.random.randint(pick, (batch_size,), 0, images.shape[0])
    x = images[idx]
    x = jnp.where(jax.random.bernoulli(flip, 0.5, (batch_size, 1, 1, 1)),
                  x[:, :, ::-1], x)
    (loss, stats), grads = grad_fn(state.params, state.batch_stats, x,
                                   labels[idx])
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), stats,
                      opt_state, state.step + 1), loss

  return jax.lax.scan(step, state, None, length=num_steps)


def accuracy(apply_fn, variables, images: np.ndarray, labels: np.ndarray,
             batch_size: int) -> float:
  """Top-1 accuracy of `variables` on float32 images [N, H, W, 3]."""
  predict = compile_options.jit(lambda v, x: jnp.argmax(apply_fn(v, x)[0], -1))
  correct = 0
  for lo in range(0, len(images), batch_size):
    pred = np.asarray(predict(variables, images[lo:lo + batch_size]))
    correct += int((pred == labels[lo:lo + batch_size]).sum())
  return correct / len(images)


def train_variant(config: ml_collections.ConfigDict, name: str,
                  train: tuple[np.ndarray, np.ndarray],
                  test: tuple[np.ndarray, np.ndarray], workdir: str) -> dict:
  """Trains a fresh ResNet-20 on one kind of subset; resumes from orbax checkpoints.

  Returns:
    {"accuracy": held-out top-1, "final_loss": mean loss of the last chunk}.
  """
  cfg = config.train
  model_config = ml_collections.ConfigDict(dict(config.model))
  model_config.random_init_seed = cfg.seed
  model, variables = load_model(model_config)
  tx = make_optimizer(cfg)
  state = TrainState(variables["params"], variables["batch_stats"],
                     tx.init(variables["params"]), jnp.zeros((), jnp.int32))
  directory = storage.join(workdir, name)
  if storage.is_local(directory):  # Orbax takes absolute paths or gs:// URLs.
    directory = os.path.abspath(storage.local_path(directory))
  manager = ocp.CheckpointManager(
      directory,
      options=ocp.CheckpointManagerOptions(max_to_keep=1))
  if manager.latest_step() is not None:
    state = manager.restore(manager.latest_step(),
                            args=ocp.args.StandardRestore(state))
  chunk = compile_options.jit(lambda s, x, y, r, n=cfg.chunk_steps: train_chunk(
      training_apply(model), tx, s, x, y, r, batch_size=cfg.batch_size,
      num_steps=n))
  images, labels = jnp.asarray(train[0]), jnp.asarray(train[1])
  rng = jax.random.key(cfg.seed)
  losses = jnp.zeros(())
  while int(state.step) < cfg.num_steps:
    state, losses = chunk(state, images, labels, rng)
    manager.save(int(state.step), args=ocp.args.StandardSave(state))
    logging.info("%s subsets: step %d/%d, mean loss %.3f", name,
                 int(state.step), cfg.num_steps, float(jnp.mean(losses)))
  manager.wait_until_finished()
  trained = {"params": state.params, "batch_stats": state.batch_stats}
  return {"accuracy": accuracy(training_apply(model), trained, test[0], test[1],
                               cfg.batch_size),
          "final_loss": float(jnp.mean(losses))}


def run(config: ml_collections.ConfigDict, workdir: str, mesh) -> dict:
  """Ranks, masks, trains on SIS and random subsets; returns both accuracies."""
  if config.train.num_steps % config.train.chunk_steps:
    raise ConfigError("config.train.num_steps must be a multiple of "
                      "config.train.chunk_steps")
  with storage.open(config.data.npz, "rb") as f, np.load(f) as data:
    images, labels = data["images"], data["labels"].astype(np.int32)
  if config.data.num_examples:
    images, labels = images[:config.data.num_examples], labels[:config.data.num_examples]
  n_train = config.split.num_train
  if not 0 < n_train < len(images):
    raise ConfigError(f"config.split.num_train must be in (0, {len(images)}), "
                      f"got {n_train}")
  storage.makedirs(workdir)
  ranks_path = storage.join(workdir, "ranks.npy")
  if storage.exists(ranks_path):
    ranks = np.load(io.BytesIO(storage.read_bytes(ranks_path)),
                    allow_pickle=False)
  else:
    ranks = rank_pixels(config, images, mesh)
    files.write_npy(ranks_path, ranks)
  model, _ = load_model(config.model)
  baseline = masks.baseline_pixel(model, config.sis.baseline)
  variants = {"sis": ranks,
              "random": random_ranks(config.seed, len(images), ranks.shape[1])}
  results = {}
  for name, variant_ranks in variants.items():
    subset = subset_images(images, variant_ranks, config.sis.fraction, baseline)
    results[name] = train_variant(
        config, name, (subset[:n_train], labels[:n_train]),
        (subset[n_train:], labels[n_train:]), workdir)
  return results


def main(argv) -> None:
  del argv
  if _CONFIG.value is None:
    sys.exit("error: --config is required, e.g. "
             "--config=configs/cifar10_sis_retrain.py")
  try:
    results = run(_CONFIG.value, _WORKDIR.value, sharding.make_mesh())
  except (ConfigError, DataError) as e:
    sys.exit(f"error: {e}")
  summary_lib.write_json(storage.join(_WORKDIR.value, "retrain.json"), results)
  print(json.dumps(summary_lib.to_json(results), indent=1, sort_keys=True))


if __name__ == "__main__":
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  _CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.",
                                            lock_config=True)
  _WORKDIR = flags.DEFINE_string("workdir", None, "Output folder.",
                                 required=True)
  app.run(main)
