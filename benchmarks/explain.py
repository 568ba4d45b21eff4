"""Integrated-gradients throughput: jaxaudit vs Captum on identical weights.

  python -m benchmarks.explain [--num_images=32 --steps=64 --chunk=16]

The CIFAR-10 ResNet-20 (pretrained weights from ../shared when present) on real
CIFAR test images (random ones otherwise); both sides use a black baseline,
Gauss-Legendre nodes and the predicted class, timed in one run on the same
machine, with the same gradient batch (Captum's `internal_batch_size` = images x
chunk). Prints a markdown table (images/s and the ratio), then the compiled
scratch memory of jaxaudit's IG for a small and a large number of steps (XLA's
memory analysis), which stays flat because the steps are a `lax.scan` over
chunks, next to Captum's peak RSS growth (no `internal_batch_size`).
"""

from __future__ import annotations

import os
import resource

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import torch

from benchmarks import timing
from benchmarks import torch_models
from jaxaudit.explain import integrated_gradients as ig
from jaxaudit.models import load_model
from jaxaudit.weights import load_state_dict

_NUM = flags.DEFINE_integer("num_images", 32, "Images explained per run.")
_STEPS = flags.DEFINE_integer("steps", 64, "Quadrature steps.")
_CHUNK = flags.DEFINE_integer("chunk", 16, "jaxaudit: path points per batch.")
_MEMORY_STEPS = flags.DEFINE_list("memory_steps", ["32", "256"],
                                  "Steps compared for memory.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repetitions (median).")
_CIFAR = flags.DEFINE_string("cifar_dir", "../shared/data/cifar10",
                             "Folder with resnet20.th and test_jpeg.npz.")


def _setup():
  checkpoint = os.path.join(_CIFAR.value, "resnet20.th")
  images_path = os.path.join(_CIFAR.value, "test_jpeg.npz")
  present = os.path.exists(checkpoint) and os.path.exists(images_path)
  model, params = load_model(ml_collections.ConfigDict(dict(
      name="cifar_resnet20", checkpoint=checkpoint if present else "",
      cache_dir="", random_init_seed=-1 if present else 0)))
  torch_model = torch_models.CifarResNet(20)
  if present:
    torch_model.load_numpy_state(load_state_dict(checkpoint))
    images = np.load(images_path)["images"][:_NUM.value] / 255.0
  else:
    torch_model.eval()
    images = np.random.default_rng(0).uniform(size=(_NUM.value, 32, 32, 3))
  return model, params, torch_model, images.astype(np.float32)


def _jax_ig(model, steps: int):
  @jax.jit
  def run(params, images, targets):
    return ig.integrated_gradients(
        model.logits_fn(params), images, jnp.zeros_like(images), targets,
        steps=steps, chunk=_CHUNK.value).attributions
  return run


def _peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv):
  del argv
  from captum.attr import IntegratedGradients
  torch.set_num_threads(os.cpu_count())
  model, params, torch_model, images = _setup()
  targets = jnp.argmax(model.logits(params, jnp.asarray(images)), -1)
  run = _jax_ig(model, _STEPS.value)
  x = jnp.asarray(images)
  jax_s = timing.median_time(
      lambda: run(params, x, targets).block_until_ready(), _REPEATS.value)
  inputs = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
  explainer = IntegratedGradients(torch_model)
  torch_targets = torch.from_numpy(np.asarray(targets))

  def captum():
    return explainer.attribute(inputs, baselines=torch.zeros_like(inputs),
                               target=torch_targets, n_steps=_STEPS.value,
                               method="gausslegendre",
                               internal_batch_size=len(images) * _CHUNK.value)

  torch_s = timing.median_time(captum, _REPEATS.value)
  n = len(images)
  print(f"\nIG, {_STEPS.value} Gauss-Legendre steps, CIFAR ResNet-20, {n} "
        f"images, gradient batch {n * _CHUNK.value}, {os.cpu_count()} CPU "
        f"cores, jax {jax.__version__}, torch {torch.__version__}\n")
  print("| model | steps | jaxaudit images/s | Captum images/s | ratio |")
  print("|---|---|---|---|---|")
  print(f"| cifar_resnet20 | {_STEPS.value} | {n / jax_s:.1f} | "
        f"{n / torch_s:.1f} | {torch_s / jax_s:.2f}x |")
  print("\n| steps | jaxaudit XLA scratch MB (chunk "
        f"{_CHUNK.value}) | Captum peak-RSS growth MB (no internal_batch_size)"
        " |")
  print("|---|---|---|")
  for steps in (int(s) for s in _MEMORY_STEPS.value):
    compiled = _jax_ig(model, steps).lower(params, x, targets).compile()
    scratch = compiled.memory_analysis().temp_size_in_bytes / 2 ** 20
    before = _peak_rss_mb()
    explainer.attribute(inputs, baselines=torch.zeros_like(inputs),
                        target=torch_targets, n_steps=steps,
                        method="gausslegendre")
    print(f"| {steps} | {scratch:.0f} | {_peak_rss_mb() - before:.0f} |")


if __name__ == "__main__":
  app.run(main)
