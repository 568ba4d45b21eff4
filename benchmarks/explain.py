"""Integrated-gradients throughput: jaxaudit vs Captum on identical weights.

  python -m benchmarks.explain [--num_images=32 --steps=64 --chunks=2,16]

The CIFAR-10 ResNet-20 (pretrained weights from ../shared when present) on real
CIFAR test images (random ones otherwise); both sides use a black baseline,
Gauss-Legendre nodes and the predicted class, timed in one run on the same
machine, with the same gradient batch (jaxaudit's images x chunk = Captum's
`internal_batch_size`), once per chunk: 2 gives the gradient batch of the default
explain config (64), 16 a large one (512). Prints a markdown table (images/s and
the ratio) with one more row against Captum's default call (no
`internal_batch_size`: every path point in one batch), then the compiled scratch
memory of jaxaudit's IG for a small and a large number of steps (XLA's memory
analysis), which stays flat because the steps are a `lax.scan` over chunks, next
to Captum's peak RSS growth in that default call.
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
from jaxaudit import compile_options
from jaxaudit.explain import integrated_gradients as ig
from jaxaudit.models import load_model
from jaxaudit.weights import load_state_dict

_NUM = flags.DEFINE_integer("num_images", 32, "Images explained per run.")
_STEPS = flags.DEFINE_integer("steps", 64, "Quadrature steps.")
_CHUNKS = flags.DEFINE_list("chunks", ["2", "16"],
                            "jaxaudit: path points per gradient batch, one row "
                            "each (memory uses the first).")
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


def _jax_ig(model, steps: int, chunk: int):
  def run(params, images, targets):
    return ig.integrated_gradients(
        model.logits_fn(params), images, jnp.zeros_like(images), targets,
        steps=steps, chunk=chunk).attributions
  return compile_options.jit(run)


def _peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv):
  del argv
  from captum.attr import IntegratedGradients
  torch.set_num_threads(os.cpu_count())
  model, params, torch_model, images = _setup()
  x = jnp.asarray(images)
  targets = jnp.argmax(model.logits(params, x), -1)
  inputs = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
  explainer = IntegratedGradients(torch_model)
  torch_targets = torch.from_numpy(np.array(targets))
  n = len(images)
  chunks = [int(c) for c in _CHUNKS.value]

  def captum(steps: int, internal_batch_size: int | None):
    return explainer.attribute(inputs, baselines=torch.zeros_like(inputs),
                               target=torch_targets, n_steps=steps,
                               method="gausslegendre",
                               internal_batch_size=internal_batch_size)

  speed_rows, memory_rows = [], []
  jax_seconds = {}
  for chunk in chunks:
    run = _jax_ig(model, _STEPS.value, chunk)
    jax_s = jax_seconds[chunk] = timing.median_time(
        lambda: run(params, x, targets).block_until_ready(), _REPEATS.value)
    torch_s = timing.median_time(
        lambda: captum(_STEPS.value, n * chunk), _REPEATS.value)
    speed_rows.append((str(n * chunk), jax_s, torch_s))
  # Memory before Captum's default call at _STEPS raises the peak RSS.
  for steps in (int(s) for s in _MEMORY_STEPS.value):
    compiled = _jax_ig(model, steps, chunks[0]).lower(params, x,
                                                      targets).compile()
    scratch = compiled.memory_analysis().temp_size_in_bytes / 2 ** 20
    before = _peak_rss_mb()
    captum(steps, None)
    memory_rows.append((steps, scratch, _peak_rss_mb() - before))
  speed_rows.append((
      f"{n * chunks[0]} vs Captum's default ({n * _STEPS.value} at once)",
      jax_seconds[chunks[0]],
      timing.median_time(lambda: captum(_STEPS.value, None), _REPEATS.value)))

  print(f"\nIG, {_STEPS.value} Gauss-Legendre steps, CIFAR ResNet-20, {n} "
        f"images, {os.cpu_count()} CPU cores, jax {jax.__version__}, torch "
        f"{torch.__version__}\n")
  print("| gradient batch | jaxaudit images/s | Captum images/s | ratio |")
  print("|---|---|---|---|")
  for name, jax_s, torch_s in speed_rows:
    print(f"| {name} | {n / jax_s:.1f} | {n / torch_s:.1f} | "
          f"{torch_s / jax_s:.2f}x |")
  print(f"\n| steps | jaxaudit XLA scratch MB (chunk {chunks[0]}) | Captum "
        "peak-RSS growth MB (no internal_batch_size) |")
  print("|---|---|---|")
  for steps, scratch, growth in memory_rows:
    print(f"| {steps} | {scratch:.0f} | {growth:.0f} |")


if __name__ == "__main__":
  app.run(main)
