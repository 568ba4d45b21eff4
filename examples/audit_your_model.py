"""Train a small Flax CNN on real handwritten digits, then audit it with every stage.

  python examples/audit_your_model.py --workdir=/tmp/jaxaudit-digits

Runs offline on a CPU in about a minute: the digits are scikit-learn's 8x8 set
(1,797 real scans that ship inside the package), upsampled to 16x16 RGB. The
first 1,297 train the model (optax Adam, one `lax.scan`); the last 500 are
audited through `jaxaudit.audit`: accuracy and confusions, adversarial
robustness, error categories, explanations, MMD-critic prototypes and
criticisms, and overinterpretation (sufficient input subsets). It prints the
headline numbers; `<workdir>/report.html` shows the rest.
"""

import argparse
import json
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxaudit
from jaxaudit import compile_options, conv_layout
from jaxaudit.data import digits

NAMES = digits.CLASS_NAMES


class DigitNet(nn.Module):
  """[B, 16, 16, 3] normalised pixels -> (logits [B, 10], features [B, 64])."""

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = nn.relu(nn.Conv(32, (3, 3))(x))
    x = nn.relu(nn.Conv(64, (3, 3), strides=2)(x))
    features = x.mean((1, 2))
    return nn.Dense(len(NAMES))(features), features


def train(model: jaxaudit.Classifier, images: np.ndarray, labels: np.ndarray,
          steps: int, batch_size: int = 128, seed: int = 0):
  """Adam on the cross-entropy: `steps` minibatch steps in one lax.scan."""
  x = jnp.asarray(images, jnp.float32) / 255.0
  y = jnp.asarray(labels)
  tx = optax.adam(3e-3)

  def loss_fn(params, batch):
    logits = model.logits(params, x[batch])
    return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                           y[batch]).mean()

  # XLA:CPU runs convolution gradients inside loops slowly unless their
  # layouts are made explicit (jaxaudit.conv_layout).
  grad_fn = conv_layout.canonical_convolutions(jax.value_and_grad(loss_fn))

  def step(carry, key):
    params, state = carry
    batch = jax.random.randint(key, (batch_size,), 0, len(images))
    loss, grads = grad_fn(params, batch)
    updates, state = tx.update(grads, state, params)
    return (optax.apply_updates(params, updates), state), loss

  params = model.init_fn(jax.random.key(seed))
  keys = jax.random.split(jax.random.key(seed + 1), steps)
  run = compile_options.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)),
                                                   keys))
  (params, _), losses = run(params)
  return params, np.asarray(losses)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", default=None,
                      help="output folder (default: a new temporary one)")
  parser.add_argument("--steps", type=int, default=600,
                      help="training steps (batches of 128)")
  parser.add_argument("--audit", type=int, default=500,
                      help="held-out digits to audit")
  args = parser.parse_args()

  train_x, train_y = digits.digit_images("train")
  test_x, test_y = digits.digit_images("test")
  test_x, test_y = test_x[:args.audit], test_y[:args.audit]
  model = jaxaudit.Classifier.from_linen(
      DigitNet(), input_size=16, class_names=NAMES,
      normalization=jaxaudit.Normalization(mean=0.2, std=0.35),
      name="digitnet")
  start = time.time()
  params, losses = train(model, train_x, train_y, args.steps)
  print(f"trained {args.steps} steps in {time.time() - start:.0f} s: loss "
        f"{losses[0]:.3f} -> {losses[-1]:.3f}")
  start = time.time()

  result = jaxaudit.audit(
      model, params, images=test_x, labels=test_y,
      stages="evaluate,attack,mistakes,explain,criticism,sis",
      workdir=args.workdir, batch_size=100,
      attack={"attacks": "fgsm,pgd_linf,deepfool",
              "fgsm": {"epsilons": (8.0, 16.0, 32.0)},
              "pgd_linf": {"epsilons": (8.0, 16.0, 32.0), "steps": 10},
              "deepfool": {"steps": 20, "candidates": 10}},
      explain={"batch_size": 50, "ig": {"steps": 32, "chunk": 8}},
      sis={"threshold": 0.9})
  s = result.summary
  headline = {
      "top-1": s["evaluate"]["top1"],
      "PGD robust accuracy (L-inf, 1/255 units)":
          s["attack"]["robust_accuracy"]["pgd_linf"],
      "DeepFool median minimal L2": s["attack"]["median_min_perturbation"][
          "deepfool"]["median"],
      "error categories": s["mistakes"]["error_categories"],
      "IG median completeness error": s["explain"][
          "ig_completeness_error_median"],
      "deletion / insertion AUC (IG)": [
          s["explain"]["deletion_auc"]["integrated_gradients"],
          s["explain"]["insertion_auc"]["integrated_gradients"]],
      "criticism groups": s["criticism"]["group_by"],
      "SIS: accuracy on the top 5% / 10% of pixels": s["sis"][
          "subset_accuracy"],
      "SIS: accuracy on random 5% / 10%": s["sis"]["random_subset_accuracy"],
  }
  print(json.dumps(headline, indent=1))
  print(f"audited {len(test_x)} digits in {time.time() - start:.0f} s; report: "
        f"{result.report_path}")


if __name__ == "__main__":
  main()
