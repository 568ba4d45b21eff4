"""Runs the PyTorch peers and records their results as tests/references/*.json.

  python scripts/record_peer_references.py [--only=NAME,...]

Each peer (torchattacks, Foolbox 3, Captum, the plain-torch models of
`benchmarks/torch_models.py`) runs on the inputs and weights the tests in
`tests/crosscheck/` feed jaxaudit, at those tests' settings. A record holds the
per-example results, the settings, the peer's and torch's versions, the sha256
of the exact inputs and weights, the command that wrote it and its wall time.
Needs the `crosscheck` extra and ../shared/data; `torchattacks_autoattack_*`
take the longest (FAB computes every class's Jacobian).
"""

import argparse
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
}


def _version(peer: str) -> str:
  return __import__(peer).__version__


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
