"""Standard AutoAttack through the attack stage against torchattacks'
composition with the paper's settings (`benchmarks.torch_peers`), recorded in
tests/references/torchattacks_autoattack_*.json, on identical weights and 200
shared CIFAR-10 test images."""

import pytest

from benchmarks import peer_references as refs
from jaxaudit import job_config, pipeline
from reference_fixtures import SOURCES, cifar_inputs, reference
from reference_fixtures import robust_accuracies

EPSILONS = {"linf": (1 / 255, 2 / 255), "l2": (0.1, 0.25)}
# The same radii in the attack stage's units (L-inf in 1/255 pixel steps).
STAGE_EPSILONS = {"linf": (1.0, 2.0), "l2": (0.1, 0.25)}


@pytest.mark.slow
@SOURCES
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_autoattack_stage_matches_torchattacks(tmp_path, source, norm):
  """Standard AutoAttack robust accuracy from the attack stage, on 200 shared
  CIFAR test images, within 1 point of torchattacks' composition with the
  paper's settings (`benchmarks.torch_peers`) on the same weights."""
  record = reference(f"torchattacks_autoattack_{norm}", source)
  cifar_inputs(record, 200)  # What the stage reads from the same file.
  config = job_config.cifar10_config(folder=refs.CIFAR_DIR)
  config.stages = "evaluate,attack"
  config.data.num_examples = 200
  config.batch_size = 100
  config.attack.attacks = "autoattack"
  config.attack.autoattack.epsilons = STAGE_EPSILONS[norm]
  config.attack.autoattack.norm = norm
  summary = pipeline.run(config, str(tmp_path))["attack"]
  ours = list(summary["robust_accuracy"]["autoattack"].values())
  theirs = robust_accuracies(record, EPSILONS[norm])
  assert len(ours) == len(theirs)
  for eps, mine, their in zip(EPSILONS[norm], ours, theirs):
    assert abs(mine - their) <= 0.01 + 1e-9, (norm, eps, mine, their)
