"""Runs the PyTorch peers and records their results as tests/references/*.json.

  python scripts/record_peer_references.py [--only=NAME,...]

Each peer (torchattacks, Foolbox 3, Captum, the plain-torch models of
`benchmarks/torch_models.py`) runs on the inputs and weights the tests in
`tests/crosscheck/` feed jaxaudit, at those tests' settings. A record holds the
per-example results, the settings, the peer's and torch's versions, the sha256
of the exact inputs and weights, the command that wrote it and its wall time.
Needs the `crosscheck` extra and ../shared/data; `torchattacks_autoattack_*`
take the longest (FAB computes every class's Jacobian), then the
`autoattack_authors_*` records: the authors' AutoAttack (github.com/fra31/
auto-attack, MIT, not on PyPI) run on the CPU. Install it from a clone at
AUTOATTACK_COMMIT (the example weights are not needed):
  mkdir /tmp/autoattack_src && git -C <clone> archive HEAD setup.py README.md \\
      $(git -C <clone> ls-tree --name-only HEAD autoattack/ | grep '\\.py$') \\
      | tar -x -C /tmp/autoattack_src
  pip install --no-deps /tmp/autoattack_src
"""

import argparse
import contextlib
import glob
import hashlib
import importlib.metadata
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import peer_references as refs
from benchmarks import torch_models
from jaxaudit.models import efficientnet_lite
from jaxaudit.weights import load_state_dict

PGD_EPSILONS = (0.5 / 255, 1 / 255)
APGD_EPSILONS = {"linf": (1 / 255, 2 / 255), "l2": (0.1, 0.25)}
AUTOATTACK_EPSILONS = APGD_EPSILONS
DEEPFOOL = dict(steps=50, candidates=10, overshoot=0.02, loss="logits")
CW = dict(binary_search_steps=5, steps=100, stepsize=0.01, confidence=0.0,
          initial_const=0.01, abort_early=False)
IG = dict(steps=16, internal_batch_size=24, rules=("gausslegendre",
                                                    "riemann_middle"))
# The authors' AutoAttack: the commit installed, its 'standard' version's
# sub-attacks in order, and the radii it runs at ([0, 1] pixel units). The L2
# radii leave 57% (0.03) and 33.5% (0.06) of the 200 images robust to APGD-CE
# alone (clean: 80%), so every later sub-attack has robust images to work on.
AUTOATTACK_COMMIT = "a39220048b3c9f2cca9a4d3a54604793c68eca7e"
AUTHORS_STANDARD = ("apgd-ce", "apgd-t", "fab-t", "square")
AUTHORS_EPSILONS = {"linf": (0.25 / 255, 0.5 / 255), "l2": (0.03, 0.06)}
AUTHORS_IMAGES = 200
# Each sub-attack alone: L-inf radius and image count (64: on a shared 2-core
# CPU 200 images take each of them far over ten minutes; within AutoAttack,
# APGD-T took 24 minutes, 9 targets x 100 steps, on the 106 APGD-CE left).
AUTHORS_SINGLE_EPSILON = 0.5 / 255
AUTHORS_SINGLE_IMAGES = {"apgd-t": 64, "fab-t": 64, "square": 64}
# What AutoAttack(version="standard") sets for L-inf and L2 (autoattack.py).
AUTHORS_STANDARD_SETTINGS = {
    "apgd-ce": dict(n_iter=100, n_restarts=1, loss="ce", rho=0.75,
                    eot_iter=1),
    "apgd-t": dict(n_iter=100, n_restarts=1, n_target_classes=9, loss="dlr",
                   rho=0.75, eot_iter=1),
    "fab-t": dict(n_iter=100, n_restarts=1, n_target_classes=9),
    "square": dict(n_queries=5000, n_restarts=1, p_init=0.8,
                   resc_schedule=False, loss="margin"),
}
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def _cifar_net() -> torch_models.CifarResNet:
  return torch_models.CifarResNet(20).load_numpy_state(
      load_state_dict(refs.CIFAR_WEIGHTS))


def _cifar_batch(count: int):
  """(images NHWC, labels, torch images NCHW, torch labels, inputs sha256)."""
  images, labels = refs.cifar_inputs(count)
  x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
  return (images, labels, x, torch.from_numpy(labels),
          refs.sha256_inputs(images, labels))


def _adv_classes(net, adversarials: torch.Tensor) -> list[int]:
  with torch.no_grad():
    return net(adversarials).argmax(-1).tolist()


def _attack_record(peer: str, count: int, attack_fn, epsilons, settings):
  """Runs `attack_fn(net, eps)` at every epsilon on the first `count` images:
  per-epsilon adversarial classes and robust flags."""
  net = _cifar_net()
  _, labels, x, y, inputs_sha = _cifar_batch(count)
  results = []
  for eps in epsilons:
    adv_class = _adv_classes(net, attack_fn(net, eps)(x, y))
    results.append({"epsilon": eps, "adv_class": adv_class,
                    "robust": (np.asarray(adv_class) == labels).tolist()})
  return dict(peer=peer, settings=dict(settings, epsilons=list(epsilons),
                                       num_images=count),
              inputs_sha256=inputs_sha,
              weights_sha256=refs.sha256_file(refs.CIFAR_WEIGHTS),
              results=results)


def torchattacks_pgd():
  import torchattacks
  return _attack_record("torchattacks", 32, lambda net, eps: torchattacks.PGD(
      net, eps=eps, alpha=eps / 4, steps=10, random_start=False),
                        PGD_EPSILONS, dict(steps=10, alpha="eps / 4",
                                           random_start=False))


def _apgd(norm: str):
  import torchattacks
  return _attack_record(
      "torchattacks", 200, lambda net, eps: torchattacks.APGD(
          net, norm={"linf": "Linf", "l2": "L2"}[norm], eps=eps, steps=100,
          n_restarts=1, loss="ce"),
      APGD_EPSILONS[norm], dict(norm=norm, steps=100, n_restarts=1, loss="ce"))


def _autoattack(norm: str):
  from benchmarks import torch_peers
  return _attack_record(
      "torchattacks", 200,
      lambda net, eps: torch_peers.standard_autoattack(net, norm, eps),
      AUTOATTACK_EPSILONS[norm],
      dict(norm=norm, composition="benchmarks.torch_peers.standard_autoattack",
           seed=0))


def _foolbox(attack_name: str, settings: dict):
  """Foolbox's minimal L2 norm per image (None where it failed)."""
  import foolbox as fb
  images, _, x, y, inputs_sha = _cifar_batch(100)
  attack_class = getattr(fb.attacks, attack_name)
  raw, _, success = attack_class(**settings)(
      fb.PyTorchModel(_cifar_net(), bounds=(0.0, 1.0)), x, y, epsilons=None)
  size = np.sqrt(((raw.numpy().transpose(0, 2, 3, 1) - images) ** 2).sum(
      axis=(1, 2, 3)))
  return dict(peer="foolbox", settings=dict(settings, attack=attack_name,
                                            num_images=100),
              inputs_sha256=inputs_sha,
              weights_sha256=refs.sha256_file(refs.CIFAR_WEIGHTS),
              results={"min_norm": refs.rounded(
                  np.where(success.numpy(), size, np.inf))})


def _authors_source_sha256() -> str:
  """sha256 of the installed autoattack/*.py files (sorted by name)."""
  import autoattack
  digest = hashlib.sha256()
  for path in sorted(glob.glob(os.path.join(
      os.path.dirname(autoattack.__file__), "*.py"))):
    digest.update(os.path.basename(path).encode())
    with open(path, "rb") as f:
      digest.update(f.read())
  return digest.hexdigest()


@contextlib.contextmanager
def _authors_robust_flags(snapshots: list):
  """Within: every AutoAttack.run_standard_evaluation appends (sub-attack,
  robust flags after it, time.time()) to `snapshots` as it finishes each
  sub-attack (its EvaluationState.add_run_attack)."""
  from autoattack import autoattack as aa_module
  original = aa_module.EvaluationState

  class Recording(original):
    def add_run_attack(self, attack: str) -> None:
      snapshots.append((attack, self.robust_flags.clone(), time.time()))
      super().add_run_attack(attack)

  aa_module.EvaluationState = Recording
  try:
    yield
  finally:
    aa_module.EvaluationState = original


def _perturbation_norm(norm: str, adversarials, x) -> list:
  delta = (adversarials - x).reshape(len(x), -1)
  size = (delta.abs().amax(-1) if norm == "linf"
          else delta.pow(2).sum(-1).sqrt())
  return refs.rounded(size.numpy())


def _authors_run(net, x, y, labels, norm: str, eps: float, attacks) -> dict:
  """The authors' AutoAttack(version="standard", seed=0) at `eps`, running
  `attacks` (a subsequence of the standard four, standard settings) through
  run_standard_evaluation: each on what the previous left robust, one batch.

  Returns:
    epsilon, per-sub-attack robust accuracy and per-example robust flags
    (after each sub-attack, in order; "clean" first), final adv_class, robust,
    perturbation norm, and the seconds each sub-attack and the run took (the
    first sub-attack's include AutoAttack's checks and clean pass).
  """
  from autoattack import AutoAttack
  adversary = AutoAttack(net, norm={"linf": "Linf", "l2": "L2"}[norm],
                         eps=eps, version="standard", seed=0, device="cpu",
                         verbose=True)
  adversary.attacks_to_run = list(attacks)
  with torch.no_grad():
    clean = net(x).argmax(-1) == y
  snapshots = []
  start = time.time()
  with _authors_robust_flags(snapshots):
    adversarials, adv_class = adversary.run_standard_evaluation(
        x, y, bs=250, return_labels=True)
  seconds = time.time() - start
  robust_after = {"clean": clean.tolist()}
  sub_seconds, previous = {}, start
  for attack, flags, finished in snapshots:
    robust_after[attack] = flags.tolist()
    sub_seconds[attack] = round(finished - previous, 1)
    previous = finished
  robust = snapshots[-1][1] if snapshots else clean
  # Where none is left robust AutoAttack skips the remaining sub-attacks.
  for attack in attacks:
    robust_after.setdefault(attack, robust.tolist())
  # The model re-run on all the returned adversarials at once (AutoAttack
  # classified them in sub-batches): differences would be float ties.
  recheck = np.asarray(_adv_classes(net, adversarials)) == labels
  return {"epsilon": eps,
          "robust_accuracy": {k: float(np.mean(v))
                              for k, v in robust_after.items()},
          "robust_after": robust_after,
          "adv_class": adv_class.tolist(), "robust": robust.tolist(),
          "perturbation_norm": _perturbation_norm(norm, adversarials, x),
          "sub_attack_seconds": sub_seconds, "seconds": round(seconds, 1),
          "skipped": [a for a in attacks if a not in sub_seconds],
          "recheck_differs": np.flatnonzero(
              recheck != robust.numpy()).tolist()}


def _authors_record(norm: str, count: int, attacks, epsilons,
                    settings: dict):
  net = _cifar_net()
  _, labels, x, y, inputs_sha = _cifar_batch(count)
  x, y = x.contiguous(), y.contiguous()
  results = [_authors_run(net, x, y, labels, norm, eps, attacks)
             for eps in epsilons]
  return dict(
      peer="autoattack", peer_commit=AUTOATTACK_COMMIT,
      peer_source_sha256=_authors_source_sha256(),
      settings=dict(settings, norm=norm, epsilons=list(epsilons),
                    num_images=count, version="standard", seed=0,
                    device="cpu", attacks=list(attacks),
                    sub_attack_settings={
                        a: AUTHORS_STANDARD_SETTINGS[a] for a in attacks},
                    call="AutoAttack(net, norm, eps, version='standard', "
                         "seed=0, device='cpu').run_standard_evaluation("
                         "x, y, bs=250, return_labels=True): one batch"),
      inputs_sha256=inputs_sha,
      weights_sha256=refs.sha256_file(refs.CIFAR_WEIGHTS),
      results=results)


def _authors_autoattack(norm: str):
  settings = {"epsilon_units": "[0, 1] pixels"}
  if norm == "l2":
    settings["epsilon_choice"] = (
        "radii where the authors' APGD-CE alone leaves 0.57 (0.03) and 0.335 "
        "(0.06) of the 200 images robust (clean 0.80), so APGD-T, FAB-T and "
        "Square each get robust images to work on")
  return _authors_record(norm, AUTHORS_IMAGES, AUTHORS_STANDARD,
                         AUTHORS_EPSILONS[norm], settings)


def _authors_single(attack: str):
  """One sub-attack alone at AutoAttack's standard settings, on the images the
  model classifies correctly (as run_standard_evaluation_individual runs it)."""
  return _authors_record("linf", AUTHORS_SINGLE_IMAGES[attack], (attack,),
                         (AUTHORS_SINGLE_EPSILON,),
                         {"epsilon_units": "[0, 1] pixels"})


def captum_ig():
  from captum import attr
  net = _cifar_net()
  images, _ = refs.cifar_inputs(3)
  x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
  with torch.no_grad():
    targets = net(x).argmax(-1)
  results = {}
  for rule in IG["rules"]:
    attributions = attr.IntegratedGradients(net).attribute(
        x, baselines=torch.zeros_like(x), target=targets, n_steps=IG["steps"],
        method=rule, internal_batch_size=IG["internal_batch_size"])
    # One row of 32 * 32 * 3 NHWC values per image.
    results[rule] = refs.rounded(
        attributions.detach().numpy().transpose(0, 2, 3, 1).reshape(3, -1))
  return dict(peer="captum", settings=dict(IG, baseline="zeros", num_images=3),
              inputs_sha256=refs.sha256_inputs(images, targets.numpy()),
              weights_sha256=refs.sha256_file(refs.CIFAR_WEIGHTS),
              results=dict(results, targets=targets.tolist()))


def _logits_record(net, x: np.ndarray, torch_input: np.ndarray,
                   weights_sha: str, settings: dict):
  with torch.no_grad():
    logits = net(torch.from_numpy(torch_input.transpose(0, 3, 1, 2).copy()))
  return dict(peer="torch", settings=settings,
              inputs_sha256=refs.sha256_inputs(x), weights_sha256=weights_sha,
              results={"logits": refs.rounded(logits.numpy())})


def torch_cifar_resnet20():
  x = np.random.RandomState(0).rand(8, 32, 32, 3).astype(np.float32)
  return _logits_record(_cifar_net(), x, x,
                        refs.sha256_file(refs.CIFAR_WEIGHTS),
                        dict(model="benchmarks.torch_models.CifarResNet(20)",
                             input="RandomState(0).rand(8, 32, 32, 3)"))


def _resnet(depth: int):
  state = refs.resnet_random_state(depth, seed=depth)
  net = torch_models.load_numpy_state(torch_models.ResNet(depth), state)
  x = np.random.RandomState(1).rand(2, 96, 96, 3).astype(np.float32)
  return _logits_record(
      net, x, (x - IMAGENET_MEAN) / IMAGENET_STD, refs.sha256_state(state),
      dict(model=f"benchmarks.torch_models.ResNet({depth})",
           weights=f"peer_references.resnet_random_state({depth}, seed={depth})",
           input="RandomState(1).rand(2, 96, 96, 3), ImageNet-normalised"))


def torch_efficientnet_lite0():
  path = efficientnet_lite.default_checkpoint()
  net = torch_models.load_numpy_state(torch_models.EfficientNetLite0(),
                                      load_state_dict(path))
  x = np.random.RandomState(0).rand(2, 224, 224, 3).astype(np.float32)
  return _logits_record(net, x, x, refs.sha256_file(path),
                        dict(model="benchmarks.torch_models.EfficientNetLite0",
                             input="RandomState(0).rand(2, 224, 224, 3)"))


RECORDERS = {
    "torchattacks_pgd": torchattacks_pgd,
    "torchattacks_apgd_linf": lambda: _apgd("linf"),
    "torchattacks_apgd_l2": lambda: _apgd("l2"),
    "torchattacks_autoattack_linf": lambda: _autoattack("linf"),
    "torchattacks_autoattack_l2": lambda: _autoattack("l2"),
    "foolbox_deepfool": lambda: _foolbox("L2DeepFoolAttack", DEEPFOOL),
    "foolbox_cw": lambda: _foolbox("L2CarliniWagnerAttack", CW),
    "captum_ig": captum_ig,
    "torch_cifar_resnet20": torch_cifar_resnet20,
    "torch_resnet18": lambda: _resnet(18),
    "torch_resnet50": lambda: _resnet(50),
    "torch_efficientnet_lite0": torch_efficientnet_lite0,
    "autoattack_authors_linf": lambda: _authors_autoattack("linf"),
    "autoattack_authors_l2": lambda: _authors_autoattack("l2"),
    "autoattack_authors_apgd_t": lambda: _authors_single("apgd-t"),
    "autoattack_authors_fab_t": lambda: _authors_single("fab-t"),
    "autoattack_authors_square": lambda: _authors_single("square"),
}


def _version(peer: str) -> str:
  module = __import__(peer)
  if hasattr(module, "__version__"):
    return module.__version__
  return importlib.metadata.version(peer)  # The authors' autoattack: "0.1".


def record(name: str) -> str:
  """Runs one peer and writes its reference; returns the file's path."""
  start = time.time()
  result = RECORDERS[name]()
  result.update(
      name=name, peer_version=_version(result["peer"]),
      torch_version=torch.__version__,
      command=f"python scripts/record_peer_references.py --only={name}",
      seconds=round(time.time() - start, 1))
  return refs.write(name, result)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--only", default=",".join(RECORDERS),
                      help="comma-separated names: " + ", ".join(RECORDERS))
  names = parser.parse_args().only.split(",")
  unknown = sorted(set(names) - set(RECORDERS))
  if unknown:
    parser.error(f"unknown {unknown}; valid: {', '.join(RECORDERS)}")
  for name in names:
    print(record(name), flush=True)


if __name__ == "__main__":
  main()
