"""Trains the shipped test models, `digits_cnn` and `digits_cnn_early`, and
writes their weights.

  python scripts/make_test_model.py [--name=digits_cnn_early]

Deterministic: fixed keys, Adam on the digits' train split (1,297 real scans,
`jaxaudit.data.digits`) in one `lax.scan`, on the CPU. Prints the accuracy on
the 500 test digits; `tests/models/test_digits_cnn.py` reruns `train` and checks
it reproduces the committed file's accuracy.
"""

import argparse

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxaudit import compile_options, conv_layout
from jaxaudit.data import digits
from jaxaudit.models import digits_cnn
from jaxaudit.models.classifier import Params

STEPS = 1500
BATCH_SIZE = 128
LEARNING_RATE = 3e-3
SEED = 0
# Registry name -> (steps, seed): the early one is a weaker second checkpoint.
RECIPES = {"digits_cnn": (STEPS, SEED), "digits_cnn_early": (300, 1)}


def train(steps: int = STEPS, seed: int = SEED) -> tuple[Params, np.ndarray]:
  """Adam on the cross-entropy of minibatches of the train split.

  Returns:
    (variables {"params": ...} as NumPy arrays, losses [steps]).
  """
  model = digits_cnn.make_classifier()
  images, labels = digits.digit_images("train")
  x = jnp.asarray(images, jnp.float32) / 255.0
  y = jnp.asarray(labels)
  tx = optax.adam(LEARNING_RATE)

  def loss_fn(params, batch):
    logits = model.logits(params, x[batch])
    return optax.softmax_cross_entropy_with_integer_labels(
        logits, y[batch]).mean()

  # XLA:CPU runs convolution gradients inside loops slowly unless their
  # layouts are explicit (jaxaudit.conv_layout).
  grad_fn = conv_layout.canonical_convolutions(jax.value_and_grad(loss_fn))

  def step(carry, key):
    params, state = carry
    batch = jax.random.randint(key, (BATCH_SIZE,), 0, len(images))
    loss, grads = grad_fn(params, batch)
    updates, state = tx.update(grads, state, params)
    return (optax.apply_updates(params, updates), state), loss

  params = model.init_fn(jax.random.key(seed))
  keys = jax.random.split(jax.random.key(seed + 1), steps)
  (params, _), losses = compile_options.jit(
      lambda p: jax.lax.scan(step, (p, tx.init(p)), keys))(params)
  return jax.tree.map(np.asarray, params), np.asarray(losses)


def test_accuracy(params: Params) -> float:
  """Top-1 accuracy on the 500 test digits."""
  model = digits_cnn.make_classifier()
  images, labels = digits.digit_images("test")
  logits = jax.jit(model.logits)(params, jnp.asarray(images, jnp.float32) / 255)
  return float((np.asarray(logits).argmax(-1) == labels).mean())


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--name", default="digits_cnn", choices=sorted(RECIPES))
  args = parser.parse_args()
  params, losses = train(*RECIPES[args.name])
  out = digits_cnn.CHECKPOINTS[args.name]
  with open(out, "wb") as f:
    f.write(flax.serialization.to_bytes(params))
  print(f"{out}: loss {losses[0]:.3f} -> {losses[-1]:.3f}, test accuracy "
        f"{test_accuracy(params):.4f}")


if __name__ == "__main__":
  main()
