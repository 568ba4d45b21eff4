"""A user's own Flax model, as a researcher would write it outside jaxaudit.

`write(folder)` puts `mymodel.py` in a folder outside the repository; its
factory `make(model_config)` returns a 7-class digit classifier (classes named
"zero" ... "six", not ImageNet's) and random params. `digits(n)` gives real
scikit-learn digits of those classes as 16x16 RGB uint8 images, and `train`
fits the model to them with optax so the audits see a real classifier.
"""

import os

import numpy as np

SOURCE = '''
import flax.linen as nn
import jax

import jaxaudit

NAMES = ("zero", "one", "two", "three", "four", "five", "six")


class DigitNet(nn.Module):
  """[B, 16, 16, 3] normalised pixels -> (logits [B, 7], features [B, 32])."""

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(16, (3, 3))(x))
    x = nn.relu(nn.Conv(32, (3, 3), strides=2)(x))
    features = x.mean((1, 2))
    return nn.Dense(len(NAMES))(features), features


def classifier():
  return jaxaudit.Classifier.from_linen(
      DigitNet(), input_size=16, class_names=NAMES,
      normalization=jaxaudit.Normalization(mean=0.3, std=0.4), name="digitnet")


def make(model_config):
  model = classifier()
  return model, model.init_fn(jax.random.key(0))
'''


def write(folder) -> str:
  """Writes mymodel.py into `folder`; returns its path."""
  path = os.path.join(str(folder), "mymodel.py")
  with open(path, "w") as f:
    f.write(SOURCE)
  return path


def digits(n: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """n real digits of classes 0-6: uint8 [n, 16, 16, 3], labels int [n]."""
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  data = load_digits()
  keep = np.flatnonzero(data.target < 7)[offset:offset + n]
  small = data.images[keep] / 16.0  # [n, 8, 8] in [0, 1]
  images = np.kron(small, np.ones((2, 2)))[..., None].repeat(3, -1)
  return np.round(images * 255).astype(np.uint8), data.target[keep]


def train(classifier, params, images, labels, steps: int = 150):
  """Adam steps on the images (one lax.scan): a classifier worth auditing."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from jaxaudit import compile_options, conv_layout  # pylint: disable=g-import-not-at-top
  x = jnp.asarray(images, jnp.float32) / 255.0
  y = jnp.asarray(labels)
  tx = optax.adam(1e-2)

  def loss_fn(p):
    logits = classifier.logits(p, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  # XLA:CPU's in-loop convolution gradients are slow without this.
  grad_fn = conv_layout.canonical_convolutions(jax.value_and_grad(loss_fn))

  def step(carry, _):
    p, state = carry
    loss, grads = grad_fn(p)
    updates, state = tx.update(grads, state, p)
    return (optax.apply_updates(p, updates), state), loss

  (params, _), losses = compile_options.jit(lambda p: jax.lax.scan(
      step, (p, tx.init(p)), None, length=steps))(params)
  return params, np.asarray(losses)
