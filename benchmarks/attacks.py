"""Attack speed: jaxaudit against the peers a user would pick, in one run.

The pretrained CIFAR ResNet-20 (Flax, and its plain-torch twin from
`benchmarks/torch_models.py`) on real CIFAR-10 test images. Each part times
both sides on the same weights and images and prints a markdown row with the
speed ratio and what each side found (robust accuracy or median minimal L2):

- `autoattack`: standard AutoAttack (APGD-CE, APGD-T, FAB-T at 100 steps,
  Square at 5,000 queries) at L-inf 1/255 and L2 0.25, through the attack
  stage as `jaxaudit.main` runs it (compilation included), against
  torchattacks' composition with the same settings
  (`benchmarks/torch_peers.py`). On the first 200 CIFAR-10 test images
  APGD-CE leaves 7 robust at 1/255 and none at L2 0.25; `--aa_linf=0.5
  --aa_l2=0.06` give the later sub-attacks more to do.
- `pgd`: PGD-L-inf against Foolbox 3's JAX backend on the same Flax model.
- `minimal`: DeepFool and C&W against Foolbox 3 on PyTorch.
- `curve`: an 8-epsilon robust-accuracy curve from one FMN run against eight
  PGD runs (what a fixed-epsilon sweep costs) and one (each the fastest of
  three passes: a pass takes seconds, and this machine's speed drifts by
  10-20% from one to the next).

  pip install --no-deps torchattacks foolbox eagerpy
  python -m benchmarks.attacks --parts=autoattack --n=200
"""

from __future__ import annotations

import functools
import os
import tempfile
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import torch

from benchmarks import torch_models, torch_peers
from jaxaudit import compile_options, job_config, pipeline, sharding
from jaxaudit.attacks import cw, deepfool, fmn, pgd
from jaxaudit.models import load_model
from jaxaudit.weights import load_state_dict

_DATA = flags.DEFINE_string("data", "../shared/data/cifar10",
                            "Folder with resnet20.th and test_jpeg.npz.")
_PARTS = flags.DEFINE_list("parts", ["autoattack", "pgd", "minimal", "curve"],
                           "Which comparisons to run.")
_N = flags.DEFINE_integer("n", 200, "Images for AutoAttack.")
_AA_LINF = flags.DEFINE_float("aa_linf", 1.0,
                              "AutoAttack's L-inf epsilon in 1/255.")
_AA_L2 = flags.DEFINE_float("aa_l2", 0.25, "AutoAttack's L2 epsilon.")
_N_SMALL = flags.DEFINE_integer("n_small", 100,
                                "Images for PGD, DeepFool, C&W and the curve.")
_BATCH = flags.DEFINE_integer("batch", 250, "Batch size (both sides).")
_EPS = flags.DEFINE_float("eps", 2.0, "PGD's L-inf epsilon in 1/255.")
_FMN_STEPS = flags.DEFINE_integer("fmn_steps", 15, "FMN steps for the curve.")

_CURVE = np.asarray([0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0]) / 255


def _setup(n: int):
  root = _DATA.value
  model, params = load_model(ml_collections.ConfigDict(dict(
      name="cifar_resnet20", checkpoint=os.path.join(root, "resnet20.th"))))
  net = torch_models.CifarResNet(20).load_numpy_state(
      load_state_dict(os.path.join(root, "resnet20.th")))
  with np.load(os.path.join(root, "test_jpeg.npz")) as npz:
    images = (npz["images"][:n] / 255.0).astype(np.float32)
    labels = npz["labels"][:n].astype(np.int64)
  return model.logits_fn(params), net, images, labels


def _torch(images, labels):
  return (torch.from_numpy(images.transpose(0, 3, 1, 2).copy()),
          torch.from_numpy(labels))


def _timed(fn):
  start = time.perf_counter()
  out = fn()
  return time.perf_counter() - start, out


def _chunks(n: int, batch: int):
  return [slice(i, min(i + batch, n)) for i in range(0, n, batch)]


def _jax_batches(fn, images, labels, batch, repeats: int = 1):
  """fn(images, labels, keys) over batches (one compile, timed after a
  warm-up batch; the fastest of `repeats` passes) -> (seconds, outputs)."""
  keys = sharding.example_keys(jax.random.key(0), jnp.arange(len(labels)))
  parts = [(jnp.asarray(images[s]), jnp.asarray(labels[s], jnp.int32), keys[s])
           for s in _chunks(len(labels), batch)]
  jax.block_until_ready(fn(*parts[0]))
  timings = [_timed(lambda: [jax.block_until_ready(fn(*p)) for p in parts])
             for _ in range(repeats)]
  return min(t for t, _ in timings), timings[-1][1]


def _robust(net, adversarials, y) -> float:
  with torch.no_grad():
    return float((net(adversarials).argmax(-1) == y).float().mean())


def _autoattack(rows):
  """Standard AutoAttack at `--aa_linf` (in 1/255) and at `--aa_l2`."""
  _, net, images, labels = _setup(_N.value)
  x, y = _torch(images, labels)
  linf, l2 = _AA_LINF.value, _AA_L2.value
  for norm, eps, peer_eps, label in (
      ("linf", linf, linf / 255, f"L-inf {linf:g}/255"),
      ("l2", l2, l2, f"L2 {l2:g}")):
    config = job_config.cifar10_config(folder=_DATA.value)
    config.stages = "evaluate,attack"
    config.data.num_examples = _N.value
    config.batch_size = _BATCH.value
    config.attack.attacks = "autoattack"
    config.attack.autoattack.norm = norm
    config.attack.autoattack.epsilons = (eps,)
    summary = pipeline.run(config, tempfile.mkdtemp())["attack"]
    eps_label = next(iter(summary["robust_accuracy_after"]["autoattack"]))
    subs = summary["timing"]["attacks"]["autoattack"]["sub_attacks"]
    seconds = sum(t["compile_seconds"] + t["run_seconds"]
                  for t in subs.values())
    after = summary["robust_accuracy_after"]["autoattack"][eps_label]
    attack = torch_peers.standard_autoattack(net, norm, peer_eps)
    t_seconds, adversarials = _timed(lambda a=attack: torch.cat(
        [a(x[s], y[s]) for s in _chunks(len(y), _BATCH.value)]))
    theirs = _robust(net, adversarials, y)
    rows.append((f"standard AutoAttack, {label}, {_N.value} images "
                 "(jaxaudit: the attack stage, compilation included)",
                 seconds, "torchattacks", t_seconds,
                 "robust accuracy after " + ", ".join(
                     f"{k} {v:.3f}" for k, v in after.items())
                 + f" / {theirs:.3f}"))


def _pgd(rows):
  import foolbox as fb  # pylint: disable=g-import-not-at-top
  logits_fn, _, images, labels = _setup(_N_SMALL.value)
  eps = _EPS.value / 255
  ours_fn = compile_options.jit(functools.partial(
      pgd.pgd_linf, logits_fn, epsilons=jnp.asarray([eps]), steps=10,
      rel_stepsize=0.25, random_start=True))
  seconds, outs = _jax_batches(lambda x, y, k: ours_fn(x, y, keys=k), images,
                               labels, _BATCH.value)
  ours = np.mean(np.concatenate([np.asarray(o.adv_class[0]) for o in outs])
                 == labels)
  # Foolbox traces the model inside its own transformations: a plain jit.
  fmodel = fb.JAXModel(jax.jit(logits_fn), bounds=(0.0, 1.0))
  attack = fb.attacks.LinfPGD(steps=10, rel_stepsize=0.25, random_start=True)

  def theirs_fn():
    out = []
    for s in _chunks(len(labels), _BATCH.value):
      _, clipped, _ = attack(fmodel, jnp.asarray(images[s]),
                             jnp.asarray(labels[s], jnp.int32),
                             epsilons=[eps])
      out.append(np.asarray(logits_fn(clipped[0])).argmax(-1))
    return np.concatenate(out)

  theirs_fn()  # Foolbox traces its gradient on the first call too.
  t_seconds, predicted = _timed(theirs_fn)
  rows.append((f"PGD-L-inf 10 steps, {_EPS.value:g}/255, {len(labels)} images",
               seconds, "Foolbox 3 JAX backend", t_seconds,
               f"robust accuracy {ours:.3f} / {np.mean(predicted == labels):.3f}"))


def _median(norms, rows):
  return float(np.median(norms[rows]))


def _minimal(rows):
  import foolbox as fb  # pylint: disable=g-import-not-at-top
  logits_fn, net, images, labels = _setup(_N_SMALL.value)
  x, y = _torch(images, labels)
  fmodel = fb.PyTorchModel(net, bounds=(0.0, 1.0))
  correct = np.asarray(logits_fn(jnp.asarray(images))).argmax(-1) == labels
  cw_settings = dict(binary_search_steps=5, steps=100, stepsize=0.01,
                     confidence=0.0, initial_const=0.01)
  for name, ours_attack, theirs_attack in (
      ("DeepFool L2, 50 steps, 10 classes, overshoot 0.02",
       functools.partial(deepfool.deepfool, norm="l2", steps=50, candidates=10,
                         overshoot=0.02),
       fb.attacks.L2DeepFoolAttack(steps=50, candidates=10, overshoot=0.02,
                                   loss="logits")),
      ("C&W L2, 5 x 100 steps",
       functools.partial(cw.cw_l2, **cw_settings),
       fb.attacks.L2CarliniWagnerAttack(abort_early=False, **cw_settings))):
    fn = compile_options.jit(functools.partial(
        ours_attack, logits_fn, epsilons=jnp.asarray([np.inf])))
    seconds, outs = _jax_batches(lambda a, b, k, fn=fn: fn(a, b, keys=k),
                                 images, labels, _BATCH.value)
    ours = np.concatenate([np.asarray(o.min_norm) for o in outs])

    def theirs_fn(attack=theirs_attack):
      norms = []
      for s in _chunks(len(labels), _BATCH.value):
        raw, _, success = attack(fmodel, x[s], y[s], epsilons=None)
        size = (raw - x[s]).flatten(1).norm(dim=1).numpy()
        norms.append(np.where(success.numpy(), size, np.inf))
      return np.concatenate(norms)

    t_seconds, theirs = _timed(theirs_fn)
    both = correct & np.isfinite(ours) & np.isfinite(theirs)
    rows.append((f"{name}, {len(labels)} images", seconds, "Foolbox 3 PyTorch",
                 t_seconds,
                 f"median minimal L2 {_median(ours, both):.4f} / "
                 f"{_median(theirs, both):.4f}; found "
                 f"{np.isfinite(ours[correct]).sum()} / "
                 f"{np.isfinite(theirs[correct]).sum()} of {correct.sum()}"))


def _curve(rows):
  logits_fn, _, images, labels = _setup(_N_SMALL.value)
  one = compile_options.jit(functools.partial(
      pgd.pgd_linf, logits_fn, epsilons=jnp.asarray(_CURVE[-1:]), steps=10,
      rel_stepsize=0.25, random_start=True))
  one_seconds, _ = _jax_batches(lambda x, y, k: one(x, y, keys=k), images,
                                labels, _BATCH.value, repeats=3)
  sweep = compile_options.jit(functools.partial(
      pgd.pgd_linf, logits_fn, epsilons=jnp.asarray(_CURVE), steps=10,
      rel_stepsize=0.25, random_start=True))
  sweep_seconds, outs = _jax_batches(lambda x, y, k: sweep(x, y, keys=k),
                                     images, labels, _BATCH.value, repeats=3)
  pgd_curve = np.mean(np.concatenate(
      [np.asarray(o.adv_class) for o in outs], axis=1) == labels[None], axis=1)
  minimal = compile_options.jit(functools.partial(
      fmn.fmn_linf, logits_fn, epsilons=jnp.asarray(_CURVE[-1:]),
      steps=_FMN_STEPS.value))
  fmn_seconds, outs = _jax_batches(lambda x, y, k: minimal(x, y, keys=k),
                                   images, labels, _BATCH.value, repeats=3)
  min_norm = np.concatenate([np.asarray(o.min_norm) for o in outs])
  fmn_curve = np.mean(min_norm[None] > _CURVE[:, None], axis=1)
  gap = np.max(fmn_curve - pgd_curve)
  rows.append((f"8-epsilon L-inf curve (0.25..4/255), {len(labels)} images: "
               f"FMN {_FMN_STEPS.value} steps vs 8 PGD runs of 10 steps",
               fmn_seconds, "jaxaudit PGD, 8 runs", sweep_seconds,
               f"one PGD run {one_seconds:.2f} s: the curve costs "
               f"{fmn_seconds / one_seconds:.2f}x one run; FMN curve minus "
               f"PGD at most {gap:+.3f}"))


def main(argv):
  del argv
  print(f"\nDevice: jax {jax.devices()[0].platform}, torch cpu "
        f"({torch.get_num_threads()} threads); batch {_BATCH.value}\n")
  print("| attack | jaxaudit s | peer | peer s | speed-up | found "
        "(jaxaudit / peer) |")
  print("|---|---|---|---|---|---|", flush=True)
  for part in _PARTS.value:
    rows = []
    {"autoattack": _autoattack, "pgd": _pgd, "minimal": _minimal,
     "curve": _curve}[part](rows)
    for name, ours, peer, theirs, found in rows:
      print(f"| {name} | {ours:.1f} | {peer} | {theirs:.1f} | "
            f"{theirs / ours:.2f}x | {found} |", flush=True)


if __name__ == "__main__":
  app.run(main)
