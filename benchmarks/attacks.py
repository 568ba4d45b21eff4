"""PGD-L-inf and DeepFool images/s: jaxaudit vs torchattacks, same weights/images.

The pretrained CIFAR ResNet-20 (Flax, and its plain-torch twin from
`benchmarks/torch_models.py`) on real CIFAR-10 test images; one run prints a
markdown table with throughputs, robust accuracies and speed ratios.

  pip install --no-deps torchattacks
  python benchmarks/attacks.py --n=256 --batch=128
"""

from __future__ import annotations

import functools
import os
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import torch
import torchattacks

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import torch_models  # pylint: disable=g-import-not-at-top
from jaxaudit import compile_options
from jaxaudit import sharding
from jaxaudit.attacks import deepfool, pgd
from jaxaudit.models import load_model
from jaxaudit.weights import load_state_dict

_DATA = flags.DEFINE_string("data", "../shared/data/cifar10",
                            "Folder with resnet20.th and test_jpeg.npz.")
_N = flags.DEFINE_integer("n", 256, "Images attacked.")
_BATCH = flags.DEFINE_integer("batch", 128, "Batch size (both frameworks).")
_EPS = flags.DEFINE_float("eps", 2.0, "PGD L-inf epsilon in 1/255.")
_STEPS = flags.DEFINE_integer("steps", 10, "PGD steps.")
_DF_STEPS = flags.DEFINE_integer("deepfool_steps", 50, "DeepFool max steps.")
_DF_N = flags.DEFINE_integer("deepfool_n", 8,
                             "Images for DeepFool (torchattacks' is slow; 0 = skip).")


def _timed(fn, batches, warm_up: bool):
  """(seconds, outputs) of fn over batches, after a warm-up (compile) call."""
  if warm_up:
    fn(*batches[0])
  start = time.perf_counter()
  outs = [fn(*b) for b in batches]
  return time.perf_counter() - start, outs


def main(argv):
  del argv
  root = _DATA.value
  model, params = load_model(ml_collections.ConfigDict(dict(
      name="cifar_resnet20", checkpoint=os.path.join(root, "resnet20.th"))))
  net = torch_models.CifarResNet(20).load_numpy_state(
      load_state_dict(os.path.join(root, "resnet20.th")))
  with np.load(os.path.join(root, "test_jpeg.npz")) as npz:
    images = npz["images"][:_N.value].astype(np.float32) / 255.0
    labels = npz["labels"][:_N.value].astype(np.int64)
  eps = _EPS.value / 255.0
  batch = _BATCH.value
  logits_fn = model.logits_fn(params)
  rows = []

  def run(name, n, jax_fn, torch_attack):
    chunks = [(images[i:min(i + batch, n)], labels[i:min(i + batch, n)])
              for i in range(0, n, batch)]
    keys = lambda m: sharding.example_keys(jax.random.key(0), jnp.arange(m))
    jax_batches = [(jnp.asarray(x), jnp.asarray(y, jnp.int32), keys(len(y)))
                   for x, y in chunks]
    seconds, outs = _timed(
        lambda *b: jax.block_until_ready(jax_fn(*b)), jax_batches, True)
    ours = np.concatenate([np.asarray(o.adv_class[0]) for o in outs])
    torch_batches = [(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
                      torch.from_numpy(y)) for x, y in chunks]
    t_seconds, t_outs = _timed(torch_attack, torch_batches, False)
    with torch.no_grad():
      theirs = np.concatenate([net(a).argmax(-1).numpy() for a in t_outs])
    truth = labels[:n]
    rows.append((name, n / seconds, n / t_seconds, (ours == truth).mean(),
                 (theirs == truth).mean()))

  pgd_fn = compile_options.jit(functools.partial(
      pgd.pgd_linf, logits_fn, epsilons=jnp.asarray([eps]),
      steps=_STEPS.value, rel_stepsize=0.25, random_start=True))
  run(f"PGD-Linf {_STEPS.value} steps, eps {_EPS.value:g}/255", _N.value,
      lambda x, y, k: pgd_fn(x, y, keys=k),
      torchattacks.PGD(net, eps=eps, alpha=eps / 4, steps=_STEPS.value,
                       random_start=True))
  df_fn = compile_options.jit(functools.partial(
      deepfool.deepfool, logits_fn, epsilons=jnp.asarray([np.inf]),
      steps=_DF_STEPS.value, candidates=10, overshoot=0.02))
  if _DF_N.value > 0:
    run(f"DeepFool L2 ({_DF_STEPS.value} steps, 10 classes)",
        min(_DF_N.value, _N.value), lambda x, y, k: df_fn(x, y, keys=k),
        torchattacks.DeepFool(net, steps=_DF_STEPS.value, overshoot=0.02))
  print(f"\nDevice: jax {jax.devices()[0].platform}, torch cpu "
        f"({torch.get_num_threads()} threads); batch {batch}\n")
  print("| attack | jaxaudit img/s | torchattacks img/s | speed-up | "
        "robust acc (jaxaudit / torchattacks) |")
  print("|---|---|---|---|---|")
  for name, ours, theirs, acc, t_acc in rows:
    print(f"| {name} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}x | "
          f"{acc:.3f} / {t_acc:.3f} |")


if __name__ == "__main__":
  app.run(main)
