"""Retraining on sufficient input subsets: do the top-ranked features alone carry
the signal? (Carter et al., "Overinterpretation reveals image classification
model pathologies", NeurIPS 2021, Sec. 4.)

For every example the stage keeps its `fraction` top-ranked features by the sis
stage's ranking (`sis.ranks` [N, F]: F features, blocks of side S / sqrt(F) on
S x S inputs, the sis stage's grid), the rest the sis stage's baseline pixel
(`config.sis.baseline`), and, for comparison, as many uniformly random features
(a key per example from the stage's key and the example id). For each of `num_seeds`
seeds it trains two fresh models of the job's architecture from the same random
initialisation and the same batch order: one on top-ranked subsets, one on
random ones; each is scored on held-out images masked the same way (top-ranked
subsets for the first, random ones for the second, as the paper does).

Split: examples are split by id, so every layout and every rerun splits alike:
the last `held_out_share` of the job's selected examples (id >=
round((1 - held_out_share) * N)) are held out, the others train. Unlabelled
examples take part in neither.

Training is replicated: the training set (uint8 images, a bool mask per
example and variant, labels) is gathered to every process, and each process
trains the same models on one of its devices, a pure jitted `lax.scan` per
chunk of steps, masking each batch as it draws it; so 1 device, 8 devices and
several processes train identically, with no cross-device reduction per step.
That is acceptable because the retrained models are small next to the audit (a
few hundred steps each); the limit is memory: N_train * (H * W * 3 + 2F) bytes
on every host and one variant's share on one device of each (8,000 CIFAR
images: 41 MB). Masking and held-out scoring run sharded over the mesh like any
stage's step.

Resume: after each chunk, a run's state is saved with orbax under
`<workdir>/checkpoints/retrain/<variant>-seed<s>` (`ctx.checkpoint_dir`); a
restarted job restores the latest and trains only the steps left, with the
same results. The workdir must be local or a URL orbax writes (gs://).
"""

from __future__ import annotations

import functools
import math
import os
from typing import Callable

from absl import logging
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from jaxaudit import compile_options
from jaxaudit import sharding
from jaxaudit import storage
from jaxaudit.artifacts import Contract, Need
from jaxaudit.errors import ConfigError
from jaxaudit.models.classifier import Classifier, ModelDims
from jaxaudit.report import retrain as report
from jaxaudit.sis import masks
from jaxaudit.sis import retraining
from jaxaudit.sis import subsets
from jaxaudit.stages.base import StageContext, StageOutput

VARIANTS = ("sis", "random")  # Top-ranked subsets, random subsets.


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      "fraction": 0.05,  # Features kept: ceil(fraction * F).
      "held_out_share": 0.2,  # The last 20% of the examples (by id).
      "num_seeds": 3,  # Models per variant (seed s: same init for both).
      "num_steps": 200,
      "chunk_steps": 100,  # Steps per compiled scan, and per checkpoint.
      "batch_size": 128,  # Examples per step (and per scoring batch).
      "learning_rate": 0.1,
      "warmup_steps": 10,
      "weight_decay": 5e-4,
      "horizontal_flip": True,  # Mirror half the drawn images (not for digits).
  })


def check_config(config: ml_collections.ConfigDict, dims: ModelDims) -> None:
  """Raises ConfigError naming the bad `config.retrain` field."""
  del dims
  cfg = config.retrain
  if not 0.0 < cfg.fraction <= 1.0:
    raise ConfigError(f"config.retrain.fraction must be in (0, 1], got "
                      f"{cfg.fraction}")
  if not 0.0 < cfg.held_out_share < 1.0:
    raise ConfigError("config.retrain.held_out_share must be in (0, 1), got "
                      f"{cfg.held_out_share}")
  for field in ("num_seeds", "num_steps", "chunk_steps", "batch_size"):
    if cfg[field] < 1:
      raise ConfigError(f"config.retrain.{field} must be >= 1, got "
                        f"{cfg[field]}")
  if cfg.num_steps % cfg.chunk_steps:
    raise ConfigError(f"config.retrain.chunk_steps ({cfg.chunk_steps}) must "
                      f"divide config.retrain.num_steps ({cfg.num_steps})")
  if not 0 <= cfg.warmup_steps < cfg.num_steps:
    raise ConfigError("config.retrain.warmup_steps must be in [0, num_steps), "
                      f"got {cfg.warmup_steps}")
  if cfg.learning_rate <= 0:
    raise ConfigError("config.retrain.learning_rate must be > 0, got "
                      f"{cfg.learning_rate}")
  if cfg.weight_decay < 0:
    raise ConfigError("config.retrain.weight_decay must be >= 0, got "
                      f"{cfg.weight_decay}")


def contract(config: ml_collections.ConfigDict, dims: ModelDims) -> Contract:
  del config, dims
  return Contract(consumes=(Need("sis.ranks"),))


def split(ids: np.ndarray, labels: np.ndarray, num_selected: int,
          held_out_share: float) -> tuple[np.ndarray, np.ndarray]:
  """Which examples train and which are held out.

  Args:
    ids: int [n] global example ids; labels: int [n] (-1 = unlabelled).
    num_selected: N, the job's examples over all processes.
    held_out_share: share of the ids held out (the last ones).

  Returns:
    (train bool [n], held out bool [n]); unlabelled examples in neither.
  """
  held = ids >= round((1.0 - held_out_share) * num_selected)
  labelled = labels >= 0
  return labelled & ~held, labelled & held


def _orbax_path(path: str) -> str:
  """Orbax takes absolute local paths or URLs."""
  if storage.is_local(path):
    return os.path.abspath(storage.local_path(path))
  return path


def _train_mesh() -> Mesh:
  """One device of each process: every process trains the same model."""
  first = {}
  for device in jax.devices():
    first.setdefault(device.process_index, device)
  return Mesh(np.asarray([first[p] for p in sorted(first)]), ("replica",))


def _train(name: str, checkpoint_dir: str, chunk: Callable, init: Callable,
           data: tuple[retraining.TrainingSet, jax.Array], key: jax.Array,
           num_steps: int, target: NamedSharding) -> retraining.TrainState:
  """One run, from its latest checkpoint if any, to `num_steps`.

  Args:
    name: the run, "<variant>-seed<s>"; names its checkpoint folder.
    checkpoint_dir: the stage's checkpoint folder.
    chunk: jitted (state, training set, baseline, key) -> (state, losses).
    init: jitted key -> the initial `TrainState`.
    data: (the training set, the baseline pixel), placed on `target`.
    key: the run's key (initialisation, then batches).
    num_steps: steps of the whole run.
    target: the replicated sharding training runs on.

  Returns:
    The trained state, as host arrays.
  """
  init_key, batch_key = jax.random.split(key)
  state = sharding.put_global(init(init_key), target)
  manager = ocp.CheckpointManager(
      _orbax_path(storage.join(checkpoint_dir, name)),
      options=ocp.CheckpointManagerOptions(max_to_keep=1))
  if manager.latest_step() is not None:
    state = manager.restore(manager.latest_step(),
                            args=ocp.args.StandardRestore(state))
    logging.info("%s: restored step %d", name, int(state.step))
  batch_key = sharding.put_global(batch_key, target)
  while int(state.step) < num_steps:
    state, losses = chunk(state, *data, batch_key)
    manager.save(int(state.step), args=ocp.args.StandardSave(state))
    logging.info("%s: step %d/%d, mean loss %.3f", name, int(state.step),
                 num_steps, float(jnp.mean(losses)))
  manager.wait_until_finished()
  manager.close()
  return jax.tree.map(np.asarray, state)


def _train_all(ctx: StageContext, gathered: dict[str, np.ndarray],
               baseline: np.ndarray, settings: retraining.TrainSettings,
               key: jax.Array) -> dict[str, list[dict]]:
  """Every (variant, seed) model, trained replicated on every process.

  Args:
    gathered: the training set of every process: `image` uint8 [N, H, W, 3],
      `label` [N], and per variant the features kept, bool [N, F].
    baseline: float32 [3].
    settings: the hyperparameters.
    key: the stage's training key; seed s runs from fold_in(key, s), for both
      variants.

  Returns:
    variant -> [the Flax variables of each seed's model].
  """
  cfg = ctx.config.retrain
  model = ctx.model
  tx = retraining.make_optimizer(settings)
  target = NamedSharding(_train_mesh(), P())
  init = jax.jit(lambda k: retraining.init_state(model, k, tx))
  chunk = compile_options.jit(functools.partial(
      retraining.train_chunk, retraining.training_apply(model), tx,
      settings=settings, num_steps=int(cfg.chunk_steps)))
  trained = {}
  for variant in VARIANTS:
    data = sharding.put_global((retraining.TrainingSet(
        gathered["image"], gathered[variant],
        gathered["label"].astype(np.int32)), baseline), target)
    trained[variant] = [retraining.variables(_train(
        f"{variant}-seed{seed}", ctx.checkpoint_dir, chunk, init, data,
        jax.random.fold_in(key, seed), settings.num_steps, target))
                        for seed in range(cfg.num_seeds)]
  return trained


def _accuracies(ctx: StageContext, correct: dict[str, np.ndarray],
                parts: dict[str, np.ndarray], sizes: dict[str, int]
                ) -> dict[str, np.ndarray]:
  """Accuracy of every (variant, seed) model on each part of the examples
  over all processes.

  Args:
    correct: variant -> bool [n, S] each seed's model right on each example.
    parts: "train" / "held_out" -> bool [n] its local examples.
    sizes: part -> its examples over all processes.

  Returns:
    {"<variant>_<part>": float [S]}.
  """
  names = [(v, p) for v in VARIANTS for p in parts]
  counts = ctx.executor.sum_counts(
      np.stack([correct[v][parts[p]].sum(0) for v, p in names]))
  return {f"{v}_{p}": counts[i] / sizes[p] for i, (v, p) in enumerate(names)}


def _subsets(ctx: StageContext, ranks, count: int,
             key: jax.Array) -> dict[str, np.ndarray]:
  """The features each local example keeps: variant -> bool [n, F].

  Args:
    ranks: int32 [n, F] `sis.ranks` (a `ShardedArray`).
    count: features kept.
    key: random subsets' key, folded with each example's id.
  """

  def step(key, batch):
    top, random = retraining.subset_masks(
        batch["ranks"], sharding.example_keys(key, batch["id"]), count)
    return {"sis": top, "random": random}

  return ctx.executor.run("subsets", step, key,
                          {"ranks": ranks, "id": ctx.data.ids},
                          batch_size=ctx.batch_size)


def _predict(ctx: StageContext, trained: dict[str, list[dict]],
             keep: dict[str, np.ndarray], baseline: np.ndarray,
             block: int) -> dict[str, np.ndarray]:
  """Each model's class for every local example, masked as it was trained:
  variant -> int [n, S]."""
  model = ctx.model

  def step(models, batch):
    out = {}
    for variant in VARIANTS:
      x = retraining.masked_images(batch["image"], batch[variant],
                                   jnp.asarray(baseline), block)
      out[variant] = jnp.stack([jnp.argmax(model.logits(v, x), -1)
                                for v in models[variant]], -1)
    return out

  return ctx.executor.run(
      "score", step, trained,
      {"image": ctx.data.images, **{v: keep[v] for v in VARIANTS}},
      batch_size=ctx.batch_size)


def _check_trainable(model: Classifier) -> None:
  """Raises ConfigError unless the model can be trained from random weights."""
  if model.module is None or model.init_fn is None:
    raise ConfigError(
        f"config.model.name: the retrain stage trains '{model.name}' from "
        "random weights and needs a Flax linen model (Classifier.from_linen)")


def run(ctx: StageContext) -> StageOutput:
  """Masks, trains and scores; see the module docstring."""
  cfg = ctx.config.retrain
  model = ctx.model
  _check_trainable(model)
  ranks = ctx.artifacts["sis.ranks"]
  num_features = ranks.shape[1]
  block = model.input_size // math.isqrt(num_features)
  (count,) = subsets.subset_counts((float(cfg.fraction),), num_features)
  baseline = masks.baseline_pixel(model, ctx.config.sis.baseline)
  subset_key, train_key = jax.random.split(ctx.rng)
  keep = _subsets(ctx, ranks, count, subset_key)
  ids, labels = ctx.data.ids, ctx.data.labels
  train, held = split(ids, labels, ctx.data.num_selected, cfg.held_out_share)
  parts = {"train": train, "held_out": held}
  sizes = dict(zip(parts, ctx.executor.sum_counts(
      np.asarray([train.sum(), held.sum()])).tolist()))
  if not all(sizes.values()):
    raise ConfigError(
        f"config.retrain.held_out_share: {cfg.held_out_share} of "
        f"{ctx.data.num_selected} examples leaves {sizes['train']} labelled "
        f"to train on and {sizes['held_out']} held out; both must be > 0")
  gathered = sharding.gather_to_all(
      {"image": ctx.data.fetch(ids[train]), "label": labels[train],
       **{v: keep[v][train] for v in VARIANTS}}, ids[train])
  settings = retraining.TrainSettings(
      batch_size=int(cfg.batch_size), num_steps=int(cfg.num_steps),
      learning_rate=float(cfg.learning_rate),
      warmup_steps=int(cfg.warmup_steps),
      weight_decay=float(cfg.weight_decay),
      horizontal_flip=bool(cfg.horizontal_flip), block_size=block)
  trained = _train_all(ctx, gathered, baseline, settings, train_key)
  predictions = _predict(ctx, trained, keep, baseline, block)
  correct = {v: predictions[v] == labels[:, None] for v in VARIANTS}
  accuracy = _accuracies(ctx, correct, parts, sizes)
  class_counts = ctx.executor.sum_counts(
      np.bincount(labels[held], minlength=len(ctx.labels)))
  summary = _summary(accuracy, count, num_features, block, sizes,
                     float(class_counts.max() / sizes["held_out"]))
  labelled = labels >= 0
  records = {"id": ids[labelled], "held_out": held[labelled],
             **{f"{v}_correct": correct[v][labelled] for v in VARIANTS}}
  return StageOutput(summary=summary, records=records,
                     sections=report.sections(summary))


def _summary(accuracy: dict[str, np.ndarray], count: int, num_features: int,
             block: int, sizes: dict[str, int], chance: float) -> dict:
  held = {v: accuracy[f"{v}_held_out"] for v in VARIANTS}
  mean = {v: float(held[v].mean()) for v in VARIANTS}
  return {
      "features_kept": count,
      "num_features": num_features,
      "block_size": block,
      "num_train": sizes["train"],
      "num_held_out": sizes["held_out"],
      "held_out_accuracy": {v: held[v].tolist() for v in VARIANTS},
      "held_out_accuracy_mean": mean,
      "held_out_accuracy_spread": {v: float(held[v].max() - held[v].min())
                                   for v in VARIANTS},
      "gap": mean["sis"] - mean["random"],
      "train_accuracy_mean": {v: float(accuracy[f"{v}_train"].mean())
                              for v in VARIANTS},
      "chance_accuracy": chance,
  }
