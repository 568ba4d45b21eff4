"""Retraining on feature subsets (Carter et al. 2021, Sec. 4): the pure pieces.

Do a model's top-ranked features carry the signal on their own? A fresh model
of the same architecture is trained on images that keep only a few features
(the top-ranked ones, or as many uniformly random ones; the rest the baseline
pixel) and scored on held-out images masked the same way. Here: the two masks
of an example (`subset_masks`), a Flax linen model in training mode, with or
without batch statistics (`training_apply`), its random initialisation
(`init_state`), the optimizer (`make_optimizer`) and training in chunks of
`lax.scan` steps that mask each batch as they draw it (`train_chunk`).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxaudit import conv_layout
from jaxaudit.data.pixels import unit_images
from jaxaudit.models.classifier import Classifier
from jaxaudit.sis import masks

# (params, model_state, images [B, H, W, 3] in [0, 1]) ->
# (logits [B, K], new model_state).
TrainApply = Callable[[Any, dict, jax.Array], tuple[jax.Array, dict]]


class TrainSettings(NamedTuple):
  """Static training hyperparameters.

  Attributes:
    batch_size: examples per step, drawn uniformly with replacement.
    num_steps: steps of the whole run (the learning-rate schedule's length).
    learning_rate: peak learning rate, after `warmup_steps` of linear warm-up,
      then cosine decay to 0 at `num_steps`.
    warmup_steps: steps of warm-up.
    weight_decay: decoupled L2 weight decay.
    horizontal_flip: flip each drawn image left-right with probability 1/2.
    block_size: side of a feature in pixels.
  """
  batch_size: int
  num_steps: int
  learning_rate: float
  warmup_steps: int
  weight_decay: float
  horizontal_flip: bool
  block_size: int


class TrainState(NamedTuple):
  """Where a run stands.

  Attributes:
    params: the trainable Flax collection ("params").
    model_state: the other collections (e.g. {"batch_stats": ...}); {} for a
      model without.
    opt_state: the optimizer's state.
    step: int32 [] steps taken.
  """
  params: Any
  model_state: dict
  opt_state: Any
  step: jax.Array


class TrainingSet(NamedTuple):
  """Attributes: images uint8 [N, H, W, 3]; keep bool [N, F] (the features
  each image keeps); labels int32 [N]."""
  images: jax.Array
  keep: jax.Array
  labels: jax.Array


def subset_masks(ranks: jax.Array, keys: jax.Array,
                 count: int) -> tuple[jax.Array, jax.Array]:
  """The features each example keeps: its `count` top-ranked ones, and as many
  uniformly random ones.

  Args:
    ranks: int [B, F] rank of each feature, 0 = most important.
    keys: [B] per-example PRNG keys (`sharding.example_keys`).
    count: features kept.

  Returns:
    (top-ranked bool [B, F], random bool [B, F]), `count` True per row each.
  """
  random = masks.random_ranks(keys, ranks.shape[-1])
  return ranks < count, random < count


def masked_images(images: jax.Array, keep: jax.Array, baseline: jax.Array,
                  block_size: int) -> jax.Array:
  """uint8 images [B, H, W, 3] with only the kept features of bool `keep`
  [B, F] -> float32 [B, H, W, 3] in [0, 1], the rest the `baseline` [3]."""
  return masks.apply_mask(unit_images(images), keep.astype(jnp.float32),
                          baseline, block_size)


def variables(state: TrainState) -> dict:
  """The Flax variables of a run, for `Classifier.logits`."""
  return {"params": state.params, **state.model_state}


def training_apply(model: Classifier) -> TrainApply:
  """The model's Flax linen module in training mode on [0, 1] pixels.

  The module gets `train=True` where its `__call__` takes `train` (BatchNorm
  then uses batch statistics and updates its running averages, returned as
  the new model state); a module without it, or without collections besides
  "params", runs as it is and returns the model state unchanged.

  Args:
    model: a classifier built with `Classifier.from_linen`.

  Returns:
    (params, model_state, images [B, H, W, 3]) -> (logits [B, K], model_state).
  """
  module = model.module
  kwargs = ({"train": True}
            if "train" in inspect.signature(module.__call__).parameters else {})

  def apply(params, model_state, images):
    x = model.normalization(images)
    if not model_state:
      return _logits(module.apply({"params": params}, x, **kwargs)), model_state
    out, updates = module.apply({"params": params, **model_state}, x,
                                mutable=list(model_state), **kwargs)
    return _logits(out), {**model_state, **updates}

  return apply


def _logits(out: Any) -> jax.Array:
  return out[0] if isinstance(out, (tuple, list)) else out


def make_optimizer(settings: TrainSettings) -> optax.GradientTransformation:
  """SGD with Nesterov momentum 0.9, decoupled weight decay and a linear
  warm-up then cosine learning-rate schedule."""
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, settings.learning_rate, settings.warmup_steps, settings.num_steps)
  return optax.chain(optax.add_decayed_weights(settings.weight_decay),
                     optax.sgd(schedule, momentum=0.9, nesterov=True))


def init_state(model: Classifier, key: jax.Array,
               tx: optax.GradientTransformation) -> TrainState:
  """A run from the model's random initialisation (`model.init_fn(key)`)."""
  initial = dict(model.init_fn(key))
  params = initial.pop("params")
  return TrainState(params, initial, tx.init(params), jnp.zeros((), jnp.int32))


def train_chunk(apply: TrainApply, tx: optax.GradientTransformation,
                state: TrainState, data: TrainingSet, baseline: jax.Array,
                rng: jax.Array, *, settings: TrainSettings,
                num_steps: int) -> tuple[TrainState, jax.Array]:
  """`num_steps` SGD steps in one `lax.scan`, each on a masked batch.

  Step t draws its batch (and flips) from fold_in(rng, t), so a run cut into
  chunks, or stopped and resumed from a saved state, takes the same steps.

  Args:
    apply: `training_apply(model)`.
    tx: `make_optimizer(settings)`.
    state: where the run stands.
    data: the training set (images, the features each keeps, labels).
    baseline: float32 [3] the pixel that replaces removed features.
    rng: the run's key.
    settings: the hyperparameters.
    num_steps: steps in this chunk.

  Returns:
    (the new state, cross-entropy losses float32 [num_steps]).
  """

  def loss_fn(params, model_state, x, y):
    logits, new_state = apply(params, model_state, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, new_state

  # XLA:CPU's slow in-loop convolution gradients otherwise (`conv_layout`).
  grad_fn = conv_layout.canonical_convolutions(
      jax.value_and_grad(loss_fn, has_aux=True))
  size = settings.batch_size

  def step(state: TrainState, _) -> tuple[TrainState, jax.Array]:
    pick, flip = jax.random.split(jax.random.fold_in(rng, state.step))
    rows = jax.random.randint(pick, (size,), 0, data.labels.shape[0])
    x = masked_images(data.images[rows], data.keep[rows], baseline,
                      settings.block_size)
    if settings.horizontal_flip:
      x = jnp.where(jax.random.bernoulli(flip, 0.5, (size, 1, 1, 1)),
                    x[:, :, ::-1], x)
    (loss, model_state), grads = grad_fn(state.params, state.model_state, x,
                                         data.labels[rows])
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), model_state,
                      opt_state, state.step + 1), loss

  return jax.lax.scan(step, state, None, length=num_steps)
