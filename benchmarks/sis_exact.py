"""Exact backward selection: jaxaudit's compiled scan against the authors' host loop.

Exact backward selection (Carter et al. 2019, 2021) scores every remaining
feature's removal at every step, F (F + 1) / 2 forward passes per image, so how
fast it runs decides whether it is usable at all. jaxaudit runs it as one
compiled `lax.scan` over images in batches (`jaxaudit.sis.exact`). The reference
is the authors' procedure (gifford-lab/overinterpretation,
`sufficient_input_subsets/sis.py` `_backselect` / `find_sis` driven by
`sis_util.make_f_for_class`), reimplemented here in plain PyTorch and NumPy: per
image a host loop over the steps; each step builds the masked inputs for every
remaining feature in NumPy, evaluates p(target) with the torch model under
no_grad in batches of 128, removes the argmax (ties: the lowest feature index)
and records its value; the SIS is the shortest suffix of the removal order that
keeps p(target) >= 0.99. Both sides rank the same 2 x 2-pixel features (256 on
CIFAR-10) of the same test images with the same ResNet-20 weights, and mask with
the same pixel (the "mean" baseline, which the model normalises to zero: the
authors' "fully masked input").

Throughput counts F (F + 1) / 2 = 32,896 forward passes per image on both
sides; jaxaudit also runs the padding of each step's last chunk (36,864 passes
with --chunk=32), the reference the partial last batch of 128. Compilation is
timed apart from the steady-state calls.

Agreement: the share of steps at which both remove the same feature; and at
every step where they choose differently from the same remaining set (a
divergence), whether the two choices are a near-tie (within 1e-4 in torch's
log p(target)). Between a divergence and the point where both have removed the
same set again, the orders differ as its consequence, so those steps are not
judged. The SIS sizes at threshold 0.99 are compared per image (both finding
none, where the full image is below the threshold, counts as agreeing), and
the reference model scores jaxaudit's SIS, to tell a subset that still suffices
from a wrong one where the sizes differ.

  python benchmarks/sis_exact.py --images=1   # ~4-7 minutes on 2 CPU cores
  python benchmarks/sis_exact.py              # 4 images: ~10-20 minutes
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks import peer_references  # pylint: disable=g-import-not-at-top
from benchmarks import torch_models  # pylint: disable=g-import-not-at-top
from jaxaudit import compile_options
from jaxaudit import weights
from jaxaudit.models.loading import load_model
from jaxaudit.sis import bgsis
from jaxaudit.sis import exact
from jaxaudit.sis import masks

BLOCK_SIZE = 2
THRESHOLD = 0.99
TORCH_BATCH = 128  # sis_util.make_f_for_class's default.
NEAR_TIE = 1e-4  # log p(target)


class TorchSelection(NamedTuple):
  """One image's backward selection by the reference loop."""

  order: np.ndarray  # int [F] features in removal order.
  values: np.ndarray  # float32 [F] p(target) after each removal.
  # F arrays: log p(target) of every candidate of that step, in ascending
  # feature index among the features then remaining.
  step_log_probs: list[np.ndarray]
  full: float  # p(target) of the full image.
  target: int  # The class predicted on the full image.


def class_probability(net: torch.nn.Module, inputs: np.ndarray,
                      target: int) -> np.ndarray:
  """p(target) of NCHW inputs, under no_grad in batches of TORCH_BATCH, as
  `sis_util.make_f_for_class(..., add_softmax=True)`."""
  x = torch.from_numpy(np.ascontiguousarray(inputs))
  out = []
  with torch.no_grad():
    for start in range(0, len(x), TORCH_BATCH):
      probs = torch.softmax(net(x[start:start + TORCH_BATCH]), dim=1)
      out.append(probs[:, target])
  return torch.cat(out).numpy()


def masked_inputs(image: np.ndarray, kept: np.ndarray,
                  baseline: np.ndarray) -> np.ndarray:
  """Masked copies of one image, as the authors' `produce_masked_inputs`.

  Args:
    image: float32 [3, H, W] in [0, 1].
    kept: bool [R, F] feature masks (True = kept), F = (H / BLOCK_SIZE)^2.
    baseline: float32 [3], the pixel of a removed feature.

  Returns:
    float32 [R, 3, H, W].
  """
  side = masks.grid_side(image.shape[1], BLOCK_SIZE)
  blocks = kept.reshape(-1, 1, side, 1, side, 1)
  pixels = np.broadcast_to(blocks, (len(kept), 1, side, BLOCK_SIZE, side,
                                    BLOCK_SIZE)).reshape(
                                        len(kept), 1, side * BLOCK_SIZE,
                                        side * BLOCK_SIZE)
  return np.where(pixels, image, baseline[:, None, None])


def torch_backselect(net: torch.nn.Module, image: np.ndarray,
                     baseline: np.ndarray) -> TorchSelection:
  """The authors' backward selection of one image, on block features.

  Args:
    net: the torch model, [B, 3, H, W] in [0, 1] -> logits.
    image: float32 [H, W, 3] in [0, 1].
    baseline: float32 [3], the pixel of a removed feature.

  Returns:
    The `TorchSelection`.
  """
  x = np.ascontiguousarray(image.transpose(2, 0, 1))
  f = masks.grid_side(image.shape[0], BLOCK_SIZE) ** 2
  with torch.no_grad():
    target = int(net(torch.from_numpy(x[None])).argmax())
  full_p = class_probability(net, x[None], target)
  kept = np.ones(f, bool)
  order, values, step_log_probs = [], [], []
  for _ in range(f):
    remaining = np.flatnonzero(kept)
    trial = np.repeat(kept[None], len(remaining), axis=0)
    trial[np.arange(len(remaining)), remaining] = False
    p = class_probability(net, masked_inputs(x, trial, baseline), target)
    best = int(np.argmax(p))
    order.append(remaining[best])
    values.append(p[best])
    step_log_probs.append(np.log(p.astype(np.float64)))
    kept[remaining[best]] = False
  return TorchSelection(np.asarray(order), np.asarray(values, np.float32),
                        step_log_probs, float(full_p[0]), target)


def authors_sis_size(selection: TorchSelection, threshold: float) -> int | None:
  """SIS size as `find_sis` reads it off the removal order: the features removed
  after the last step whose value still met the threshold; None where the full
  image does not meet it."""
  if selection.full < threshold:
    return None
  meets = np.flatnonzero(selection.values >= threshold)
  f = len(selection.order)
  return f if not len(meets) else f - 1 - int(meets[-1])


def compare(jax_order: np.ndarray, jax_log_curve: np.ndarray,
            selection: TorchSelection) -> dict:
  """Agreement of one image's two removal orders.

  Args:
    jax_order: int [F] jaxaudit's removal order.
    jax_log_curve: float [F - 1] jaxaudit's log p(target) after each of the
      first F - 1 removals.
    selection: torch's selection of the same image.

  Returns:
    identical_position_share; disagreements (steps choosing different features);
    divergences (those among them where both sides had the same remaining set,
    so torch scored jaxaudit's choice too), near_tie_divergences and
    max_divergence_gap (torch's log p of its choice minus of jaxaudit's); and
    max_abs_log_p_diff, the largest difference of the two sides' log p(target)
    after steps where both had removed the same set (the models' agreement).
  """
  f = len(jax_order)
  removed_by = np.zeros(f, np.int64)  # +1 jaxaudit, -1 torch: 0 = both/none.
  differing = 0  # Features removed by one side only.
  gaps, curve_diffs = [], []
  for t in range(f):
    a, b = int(jax_order[t]), int(selection.order[t])
    if a != b and differing == 0:
      remaining = np.setdiff1d(np.arange(f), jax_order[:t])
      scores = selection.step_log_probs[t]
      gaps.append(scores[np.searchsorted(remaining, b)]
                  - scores[np.searchsorted(remaining, a)])
    for feature, side in ((a, 1), (b, -1)):
      before = removed_by[feature]
      removed_by[feature] += side
      differing += abs(removed_by[feature]) - abs(before)
    if differing == 0 and t < f - 1:
      curve_diffs.append(abs(jax_log_curve[t]
                             - np.log(np.float64(selection.values[t]))))
  gaps = np.asarray(gaps)
  return {
      "identical_position_share": float(np.mean(jax_order == selection.order)),
      "disagreements": int(np.sum(jax_order != selection.order)),
      "divergences": len(gaps),
      "near_tie_divergences": int(np.sum(gaps <= NEAR_TIE)),
      "max_divergence_gap": float(gaps.max()) if len(gaps) else 0.0,
      "max_abs_log_p_diff": float(max(curve_diffs, default=0.0)),
  }


def machine() -> dict:
  """CPU model, core count, load and library versions of this machine."""
  with open("/proc/cpuinfo") as f:
    cpu = next((line.split(":", 1)[1].strip() for line in f
                if line.startswith("model name")), platform.processor())
  return {"cpu": cpu, "cores": os.cpu_count(),
          "load_average_1min_at_start": os.getloadavg()[0],
          "platform": platform.platform(),
          "jax_backend": jax.default_backend(),
          "versions": {name: importlib.metadata.version(name) for name in
                       ("jax", "jaxlib", "torch", "numpy")}}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
  parser.add_argument("--images", type=int, default=4)
  parser.add_argument("--chunk", type=int, default=32,
                      help="jaxaudit candidates per forward pass and image")
  parser.add_argument("--batch", type=int, default=4,
                      help="images per jaxaudit call")
  parser.add_argument("--out", default=os.path.join(
      ROOT, "benchmarks", "results", "sis-exact.json"))
  args = parser.parse_args()
  batch = min(args.batch, args.images)
  if args.images < 1 or args.chunk < 1 or batch < 1:
    parser.error("--images, --chunk and --batch must be positive")
  if args.images % batch:
    parser.error(f"--images ({args.images}) must be a multiple of --batch "
                 f"({batch}): every jaxaudit call runs the one compiled shape")
  for path in (peer_references.CIFAR_IMAGES, peer_references.CIFAR_WEIGHTS):
    if not os.path.exists(path):
      sys.exit(f"missing {os.path.normpath(path)}: this benchmark needs the "
               "shared CIFAR-10 test images and ResNet-20 checkpoint")
  info = machine()
  torch.set_num_threads(os.cpu_count())
  images, _ = peer_references.cifar_inputs(args.images)
  checkpoint = peer_references.CIFAR_WEIGHTS
  model, params = load_model(ml_collections.ConfigDict(dict(
      name="cifar_resnet20", checkpoint=checkpoint)))
  baseline = masks.baseline_pixel(model, "mean")
  f = masks.grid_side(images.shape[1], BLOCK_SIZE) ** 2
  candidates = f * (f + 1) // 2  # Scored removals per image.
  chunk = min(args.chunk, f)
  padded = sum(-(-r // chunk) * chunk for r in range(1, f + 1))

  def run(params, x):
    targets = jnp.argmax(model.logits(params, x), -1)
    log_prob = lambda y: jax.nn.log_softmax(model.logits(params, y), -1)
    sel = exact.backward_selection(log_prob, x, targets, jnp.asarray(baseline),
                                   block_size=BLOCK_SIZE, chunk=args.chunk)
    return targets, sel

  start = time.perf_counter()
  compiled = compile_options.jit(run).lower(
      params, jnp.asarray(images[:batch])).compile()
  compile_s = time.perf_counter() - start
  outputs = []
  start = time.perf_counter()
  for i in range(0, args.images, batch):
    outputs.append(jax.block_until_ready(
        compiled(params, jnp.asarray(images[i:i + batch]))))
  jax_s = time.perf_counter() - start
  targets = np.concatenate([np.asarray(t) for t, _ in outputs])
  ranks = np.concatenate([np.asarray(s.ranks) for _, s in outputs])
  curve = np.concatenate([np.asarray(s.curve) for _, s in outputs])
  sizes, found = bgsis.sis_size(jnp.asarray(curve), outputs[0][1].kept,
                                THRESHOLD)

  net = torch_models.CifarResNet(20).load_numpy_state(
      weights.load_state_dict(checkpoint))
  start = time.perf_counter()
  selections = [torch_backselect(net, image, baseline) for image in images]
  torch_s = time.perf_counter() - start

  per_image = []
  for i, selection in enumerate(selections):
    jax_order = np.argsort(f - 1 - ranks[i])  # removed_at ascending.
    row = compare(jax_order, np.log(curve[i, 1:].astype(np.float64)),
                  selection)
    jax_size = int(sizes[i]) if bool(found[i]) else None
    if jax_size is not None:
      # Whether jaxaudit's subset also suffices under the reference model.
      sis_mask = ranks[i][None] < jax_size
      row["p_torch_of_jaxaudit_sis"] = float(class_probability(
          net, masked_inputs(images[i].transpose(2, 0, 1), sis_mask, baseline),
          selection.target)[0])
    row.update(target_jaxaudit=int(targets[i]), target_torch=selection.target,
               p_full_jaxaudit=float(curve[i, 0]), p_full_torch=selection.full,
               sis_size_jaxaudit=jax_size,
               sis_size_torch=authors_sis_size(selection, THRESHOLD))
    per_image.append(row)
  n = args.images
  agreement = {
      "mean_identical_position_share": float(np.mean(
          [r["identical_position_share"] for r in per_image])),
      "divergences": sum(r["divergences"] for r in per_image),
      "all_divergences_near_ties": all(
          r["near_tie_divergences"] == r["divergences"] for r in per_image),
      "sis_found": int(np.sum(found)),
      "sis_sizes_agree": sum(r["sis_size_jaxaudit"] == r["sis_size_torch"]
                             for r in per_image),
      "targets_agree": sum(r["target_jaxaudit"] == r["target_torch"]
                           for r in per_image),
      "per_image": per_image,
  }
  results = {
      "machine": dict(info, load_average_1min_at_end=os.getloadavg()[0]),
      "settings": {"images": n, "batch": batch, "chunk": args.chunk,
                   "block_size": BLOCK_SIZE, "features": f,
                   "candidates_per_image": candidates,
                   "jaxaudit_padded_passes_per_image": padded,
                   "threshold": THRESHOLD, "torch_batch": TORCH_BATCH,
                   "torch_threads": torch.get_num_threads(),
                   "near_tie_log_p": NEAR_TIE, "baseline": "mean",
                   "model": "cifar_resnet20"},
      "inputs_sha256": peer_references.sha256_inputs(images),
      "weights_sha256": peer_references.sha256_file(checkpoint),
      "jaxaudit": {"compile_s": compile_s, "seconds": jax_s,
                   "images_per_s": n / jax_s,
                   "forward_passes_per_s": n * candidates / jax_s},
      "torch": {"seconds": torch_s, "images_per_s": n / torch_s,
                "forward_passes_per_s": n * candidates / torch_s},
      "torch_over_jaxaudit": torch_s / jax_s,
      "agreement": agreement,
  }
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as fh:
    json.dump(results, fh, indent=1, sort_keys=True)
  print(f"{n} CIFAR-10 images, ResNet-20, {f} features ({candidates} passes "
        f"each): jaxaudit {n / jax_s:.3f} img/s ({n * candidates / jax_s:.0f} "
        f"passes/s, compile {compile_s:.1f} s), torch host loop "
        f"{n / torch_s:.3f} img/s; torch/jaxaudit {torch_s / jax_s:.2f}x; "
        f"identical positions {agreement['mean_identical_position_share']:.1%}, "
        f"{agreement['divergences']} divergences (all near-ties: "
        f"{agreement['all_divergences_near_ties']}), SIS sizes agree "
        f"{agreement['sis_sizes_agree']}/{n} ({agreement['sis_found']} images "
        f"meet p >= {THRESHOLD}); wrote {args.out}")


if __name__ == "__main__":
  main()
