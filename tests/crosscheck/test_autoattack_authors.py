"""jaxaudit's AutoAttack against the authors' own code (github fra31/
auto-attack, recorded in tests/references/autoattack_authors_*.json by
scripts/record_peer_references.py) on identical weights and CIFAR-10 test
images, at radii where every sub-attack has robust images to work on (L-inf
0.25/255 and 0.5/255, L2 0.03 and 0.06): the robust accuracy after each
sub-attack of the attack stage's AutoAttack within 1 point on 200 images, and
APGD-T, FAB-T and Square each alone at 0.5/255 (on the images the record
names).

CI runs the composition at L-inf 0.5/255 (APGD-CE leaves 50 images; 7
minutes of a CI worker) and the three sub-attacks alone; L2 at 0.06 (9
minutes) and both radii of each norm are marked `crosscheck` (run with
`pytest -m crosscheck`; all passed when recorded).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import peer_references as refs
from jaxaudit import compile_options, job_config, pipeline, sharding
from jaxaudit.attacks import apgd, fab, square
from reference_fixtures import (SOURCES, cifar_inputs, cifar_model, reference,
                                stage_epsilon)

# The authors' sub-attack names -> jaxaudit's.
NAMES = {"apgd-ce": "apgd_ce", "apgd-t": "apgd_t", "fab-t": "fab_t",
         "square": "square"}
ALONE = {"apgd-t": apgd.apgd_t, "fab-t": fab.fab_t, "square": square.square}
# Standard AutoAttack's settings of each sub-attack (jaxaudit's names).
STANDARD = {"apgd-t": dict(steps=100, restarts=1, num_target_classes=9),
            "fab-t": dict(steps=100, restarts=1, num_target_classes=9),
            "square": dict(queries=5000, restarts=1)}
POINT = 0.01 + 1e-9


@pytest.mark.slow
@SOURCES
@pytest.mark.parametrize("norm,radii", [
    ("linf", "largest"),
    pytest.param("l2", "largest", marks=pytest.mark.crosscheck),
    pytest.param("linf", "all", marks=pytest.mark.crosscheck),
    pytest.param("l2", "all", marks=pytest.mark.crosscheck)])
def test_robust_accuracy_after_each_sub_attack_matches_the_authors(
    tmp_path, source, norm, radii):
  record = reference(f"autoattack_authors_{norm}", source)
  results = record["results"] if radii == "all" else record["results"][-1:]
  count = record["settings"]["num_images"]
  cifar_inputs(record, count)  # What the stage reads from the same file.
  config = job_config.cifar10_config(folder=refs.CIFAR_DIR)
  config.stages = "evaluate,attack"
  config.data.num_examples = count
  config.batch_size = 100
  config.attack.attacks = "autoattack"
  config.attack.autoattack.norm = norm
  config.attack.autoattack.epsilons = tuple(
      stage_epsilon(norm, r["epsilon"]) for r in results)
  summary = pipeline.run(config, str(tmp_path))["attack"]
  ours = summary["robust_accuracy_after"]["autoattack"]
  assert len(ours) == len(results)
  for (label, after), theirs in zip(ours.items(), results):
    theirs = theirs["robust_accuracy"]
    # Every sub-attack had work: some robust image left before it ran.
    assert min(theirs.values()) > 0, (label, theirs)
    for name, value in theirs.items():
      if name != "clean":
        assert abs(after[NAMES[name]] - value) <= POINT, (
            norm, label, name, after[NAMES[name]], value)


@pytest.mark.slow
@SOURCES
@pytest.mark.parametrize("name", sorted(ALONE))
def test_sub_attack_alone_matches_the_authors(source, name):
  """One sub-attack on the clean-correct images (as AutoAttack runs it):
  robust accuracy within 1 point or one image, whichever is larger."""
  record = reference(f"autoattack_authors_{name.replace('-', '_')}", source)
  count = record["settings"]["num_images"]
  images, labels = cifar_inputs(record, count)
  (result,) = record["results"]
  model, params = cifar_model()
  keys = sharding.example_keys(jax.random.key(0), jnp.arange(count))
  attack = compile_options.jit(functools.partial(
      ALONE[name], model.logits_fn(params), norm="linf", **STANDARD[name]))
  out = attack(jnp.asarray(images), jnp.asarray(labels, jnp.int32),
               jnp.asarray([result["epsilon"]], jnp.float32), keys)
  correct = np.asarray(model.logits(params, jnp.asarray(images))).argmax(
      -1) == labels
  ours = float((correct & ~np.asarray(out.success[0])).mean())
  theirs = result["robust_accuracy"][name]
  assert theirs < result["robust_accuracy"]["clean"]  # It fooled some.
  assert abs(ours - theirs) <= max(POINT, 1.0 / count + 1e-9), (
      name, count, ours, theirs)
