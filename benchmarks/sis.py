"""BGSIS images/s: jaxaudit's compiled loop against a PyTorch loop with a host step.

The reference follows the public BGSIS code: every selection step runs the model
forward and backward in PyTorch, copies the mask gradient to the host, picks the
features to remove in NumPy and uploads the new mask. Both rank single pixels
of the same CIFAR-10 test images with the same ResNet-20 weights and schedule.

  python benchmarks/sis.py            # ~1-2 minutes on 2 CPU cores
  python benchmarks/sis.py --images=64 --min_step_fraction=0.01
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import torch_models  # pylint: disable=g-import-not-at-top
from jaxaudit import compile_options
from jaxaudit import weights
from jaxaudit.models.loading import load_model
from jaxaudit.sis import bgsis
from jaxaudit.sis import masks

CIFAR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "..", "shared", "data", "cifar10")


def torch_bgsis(net, images: np.ndarray, removals: np.ndarray,
                baseline: np.ndarray) -> np.ndarray:
  """Reference: one host round-trip per step. images [B, 32, 32, 3] -> ranks."""
  x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
  base = torch.from_numpy(baseline).view(1, 3, 1, 1)
  with torch.no_grad():
    targets = net(x).argmax(-1)
  b, f = len(images), 32 * 32
  mask = np.ones((b, f), np.float32)
  removed_at = np.full((b, f), f, np.int64)
  start = 0
  for k in removals:
    m = torch.from_numpy(mask).view(b, 1, 32, 32).requires_grad_(True)
    log_p = torch.log_softmax(net(x * m + base * (1 - m)), -1)
    log_p.gather(1, targets[:, None]).sum().backward()
    grad = m.grad.view(b, f).numpy()
    score = np.where(mask > 0, grad, np.inf)
    idx = np.argsort(score, axis=1, kind="stable")[:, :k]
    np.put_along_axis(mask, idx, 0.0, axis=1)
    np.put_along_axis(removed_at, idx, start + np.arange(k)[None], axis=1)
    start += k
  return f - 1 - removed_at


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--images", type=int, default=64)
  parser.add_argument("--min_step_fraction", type=float, default=0.05)
  args = parser.parse_args()
  checkpoint = os.path.join(CIFAR, "resnet20.th")
  with np.load(os.path.join(CIFAR, "test_jpeg.npz")) as data:
    images = data["images"][:args.images].astype(np.float32) / 255.0
  model, params = load_model(ml_collections.ConfigDict(dict(
      name="cifar_resnet20", checkpoint=checkpoint)))
  baseline = masks.baseline_pixel(model, "mean")
  removals = bgsis.removal_schedule(1024, 0.0, args.min_step_fraction)

  def run(params, x):
    targets = jnp.argmax(model.logits(params, x), -1)
    log_prob = lambda y: jax.nn.log_softmax(model.logits(params, y), -1)
    return bgsis.backward_selection(log_prob, x, targets, jnp.asarray(baseline),
                                    block_size=1,
                                    removals=tuple(removals.tolist())).ranks

  fn = compile_options.jit(run)
  x = jnp.asarray(images)
  jax.block_until_ready(fn(params, x))  # compile
  t = time.perf_counter()
  ranks = np.asarray(jax.block_until_ready(fn(params, x)))
  jax_s = time.perf_counter() - t
  net = torch_models.CifarResNet(20).load_numpy_state(
      weights.load_state_dict(checkpoint))
  t = time.perf_counter()
  torch_ranks = torch_bgsis(net, images, removals, baseline)
  torch_s = time.perf_counter() - t
  top = max(1, len(removals) // 20) * int(removals[0])
  overlap = np.mean([len(np.intersect1d(np.flatnonzero(a < top),
                                        np.flatnonzero(b < top))) / top
                     for a, b in zip(ranks, torch_ranks)])
  n = len(images)
  print(f"{n} CIFAR-10 images, ResNet-20, {len(removals)} steps, "
        f"{torch.get_num_threads()} torch threads; top-{top} overlap {overlap:.2f}")
  print("| BGSIS (ResNet-20, 32x32) | jaxaudit img/s | PyTorch host loop img/s | speed-up |")
  print("|---|---|---|---|")
  print(f"| {len(removals)} steps, {n} images | {n / jax_s:.1f} | "
        f"{n / torch_s:.1f} | {torch_s / jax_s:.2f}x |")


if __name__ == "__main__":
  main()
