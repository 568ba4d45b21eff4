"""The tests that guard the attacks, the attribution methods, SIS and retraining
on SIS fail when a reviewer's stand-ins replace them (`tests/stubs.py`: an
identity attack, constant attributions, random SIS ranks): none of them is
passed by a no-op."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

from conftest import ROOT

# Each guards a method `tests/stubs.py` replaces; every test these ids collect
# (all parametrisations) must fail under the stubs.
GUARDS = (
    # Attacks: the identity attack.
    "tests/attacks/test_registry.py::test_contract",
    "tests/attacks/test_fgsm.py::test_fgsm_stays_in_ball_and_lowers_accuracy",
    "tests/attacks/test_pgd.py::test_pgd_linf_in_ball_monotone_and_at_least_fgsm",
    "tests/attacks/test_pgd.py::test_pgd_l2_in_ball_and_flips_labels",
    "tests/attacks/test_pgd.py::test_targeted_reaches_targets",
    "tests/attacks/test_deepfool.py::test_deepfool_finds_small_l2_adversarials",
    "tests/attacks/test_cw.py::test_cw_finds_adversarials_with_small_norm",
    "tests/attacks/test_fmn.py::test_fmn_curve_from_one_run",
    "tests/attacks/test_fmn.py::test_fmn_l2_is_as_small_as_deepfool",
    "tests/attacks/test_fmn.py::test_fmn_linf_is_at_least_pgd",
    "tests/attacks/test_apgd.py::test_apgd_ce_in_ball_flips_labels_and_beats_pgd",
    "tests/attacks/test_apgd.py::test_apgd_t_in_ball_and_flips_labels",
    "tests/attacks/test_fab.py::test_fab_t_linf_flips_labels_in_ball",
    "tests/attacks/test_fab.py::test_fab_l2_flips_labels_and_beats_deepfool",
    "tests/attacks/test_square.py::test_square_flips_labels_inside_the_ball",
    "tests/attacks/test_square.py::test_square_needs_no_gradients",
    "tests/stages/test_autoattack.py"
    "::test_rebatched_autoattack_equals_the_whole_batch_composition",
    # Attributions: all ones, IG claiming zero completeness error.
    "tests/explain/test_neighbours_and_gradients.py"
    "::test_every_method_explains_the_digit_it_is_given",
    "tests/explain/test_integrated_gradients.py"
    "::test_linear_model_is_exact_for_any_rule_and_steps",
    "tests/explain/test_integrated_gradients.py"
    "::test_completeness_error_shrinks_with_steps_on_a_relu_net",
    # SIS and retraining on its subsets: random ranks.
    "tests/sis/test_bgsis.py"
    "::test_top_ranked_pixels_keep_most_accuracy_random_ones_do_not",
    "tests/sis/test_bgsis.py::test_sis_mask_meets_the_threshold",
    "tests/sis/test_bgsis.py::test_last_step_ranks_the_remainder",
    "tests/stages/test_sis.py::test_summary_records_masks_and_report",
    "tests/stages/test_retrain.py"
    "::test_sis_subsets_beat_random_ones_on_held_out_digits",
)


def test_every_guard_fails_against_the_stubs(tmp_path):
  report = tmp_path / "stubbed.xml"
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="",
             PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "tests"),
                                         os.environ.get("PYTHONPATH", "")]))
  result = subprocess.run(
      [sys.executable, "-m", "pytest", "-p", "stubs", "-p", "no:cacheprovider",
       "-p", "no:xdist", "-q", "-m", "", f"--junitxml={report}", *GUARDS],
      cwd=ROOT, env=env, capture_output=True, text=True,
      timeout=900, check=False)
  assert report.exists(), result.stdout[-3000:] + result.stderr[-3000:]
  cases = ElementTree.parse(report).getroot().iter("testcase")
  outcomes = {f"{case.get('classname')}::{case.get('name')}":
              [child.tag for child in case] for case in cases}
  assert outcomes, result.stdout[-3000:]
  passed = [name for name, tags in outcomes.items()
            if not {"failure", "error"} & set(tags)]
  assert not passed, f"passed under the stubs: {passed}"
  for guard in GUARDS:
    module, _, test = guard.partition("::")
    classname = module[:-len(".py")].replace("/", ".")
    assert any(name.startswith(f"{classname}::{test}") for name in outcomes), (
        f"{guard} collected nothing")
