"""Standard AutoAttack through the attack stage against torchattacks'
composition with the paper's settings (`benchmarks.torch_peers`), recorded in
tests/references/torchattacks_autoattack_*.json, on identical weights and 200
shared CIFAR-10 test images.

Both sources are marked `crosscheck` (`pytest -m crosscheck` runs them): the
jaxaudit half alone took 21 minutes of a CI worker, and at these radii APGD-CE
leaves the later sub-attacks almost nothing. CI checks AutoAttack against the
authors' own code instead (test_autoattack_authors.py), at radii where every
sub-attack has work.
"""

import pytest

from benchmarks import peer_references as refs
from jaxaudit import job_config, pipeline
from reference_fixtures import (APGD_EPSILONS, SOURCES, cifar_inputs,
                                reference, robust_accuracies, stage_epsilon)


@pytest.mark.slow
@pytest.mark.crosscheck
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
  config.attack.autoattack.epsilons = tuple(
      stage_epsilon(norm, eps) for eps in APGD_EPSILONS[norm])
  config.attack.autoattack.norm = norm
  summary = pipeline.run(config, str(tmp_path))["attack"]
  ours = list(summary["robust_accuracy"]["autoattack"].values())
  theirs = robust_accuracies(record, APGD_EPSILONS[norm])
  assert len(ours) == len(theirs)
  for eps, mine, their in zip(APGD_EPSILONS[norm], ours, theirs):
    assert abs(mine - their) <= 0.01 + 1e-9, (norm, eps, mine, their)
