"""The peer references the cross-checks compare jaxaudit with, and the CIFAR
ResNet-20 and images they feed it.

Each cross-check runs twice: against the record in tests/references/ (CI), and
marked `crosscheck`, against the peer run live through the recording script's
own function (`pytest -m crosscheck`; needs the `crosscheck` extra).
"""

import functools

import ml_collections
import numpy as np
import pytest

from benchmarks import peer_references as refs
from conftest import require_shared
from jaxaudit.models import load_model
from jaxaudit.models.classifier import Classifier, Params

# The radii ([0, 1] pixel units) of torchattacks' APGD and AutoAttack records.
APGD_EPSILONS = {"linf": (1 / 255, 2 / 255), "l2": (0.1, 0.25)}
SOURCES = pytest.mark.parametrize(
    "source", ["recorded", pytest.param("live", marks=pytest.mark.crosscheck)])
# Reference name prefix -> the module its live run needs.
_PEERS = {"torchattacks": "torchattacks", "foolbox": "foolbox",
          "captum": "captum.attr", "torch": "torch",
          "autoattack": "autoattack"}
# References whose peer runs on no shared data (seeded inputs and weights).
_NO_SHARED_DATA = ("torch_resnet", "torch_efficientnet")


def reference(name: str, source: str) -> dict:
  """tests/references/<name>.json, or ("live") the peer run now."""
  if source == "recorded":
    return refs.load(name)
  pytest.importorskip("torch")
  pytest.importorskip(_PEERS[name.split("_")[0]])
  if not name.startswith(_NO_SHARED_DATA):
    require_shared(refs.CIFAR_DIR)
  from scripts import record_peer_references  # pylint: disable=g-import-not-at-top
  return dict(record_peer_references.RECORDERS[name](), name=name,
              command="(live)")


def check_hashes(record: dict, inputs_sha256: str, weights_sha256: str) -> None:
  """Fails unless the test feeds exactly the inputs and weights recorded."""
  for what, fed in (("inputs", inputs_sha256), ("weights", weights_sha256)):
    recorded = record[f"{what}_sha256"]
    if fed != recorded:
      pytest.fail(f"{record['name']}: the test feeds {what} with sha256 {fed}, "
                  f"the reference was recorded on {recorded}; if the change is "
                  f"intended, re-record with `{record['command']}`")


@functools.cache
def cifar_model() -> tuple[Classifier, Params]:
  """The shared pretrained CIFAR ResNet-20 (model, params)."""
  checkpoint = require_shared(refs.CIFAR_WEIGHTS)
  return load_model(ml_collections.ConfigDict(dict(
      name="cifar_resnet20", checkpoint=checkpoint, cache_dir="",
      random_init_seed=-1)))


def cifar_inputs(record: dict, count: int):
  """The first `count` shared CIFAR-10 test images, checked against `record`.

  Returns:
    (images float32 [count, 32, 32, 3], labels int64 [count]).
  """
  require_shared(refs.CIFAR_IMAGES)
  images, labels = refs.cifar_inputs(count)
  check_hashes(record, refs.sha256_inputs(images, labels),
               refs.sha256_file(require_shared(refs.CIFAR_WEIGHTS)))
  return images, labels


def robust_accuracies(record: dict, epsilons) -> list[float]:
  """The peer's robust accuracy at each epsilon, checking the epsilons."""
  assert [r["epsilon"] for r in record["results"]] == list(epsilons)
  return [float(np.mean(r["robust"])) for r in record["results"]]


def stage_epsilon(norm: str, eps: float) -> float:
  """A [0, 1]-pixel radius in the attack stage's units (L-inf in 1/255)."""
  return round(eps * 255, 6) if norm == "linf" else eps
