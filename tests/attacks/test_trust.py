"""Trust checks: each sign of a broken attack or a masked model gives a warning
with its numbers, and a healthy model and attack give none."""

import jax
import jax.numpy as jnp
import numpy as np

from attack_fixtures import digits
from jaxaudit.attacks import trust


def _results(accs, norms=None):
  eps = np.asarray([1 / 255, 2 / 255])
  summary = {"clean_accuracy": 0.5, "robust_accuracy": {}}
  results = {}
  for name, values in accs.items():
    summary["robust_accuracy"][name] = dict(zip(["1/255", "2/255"], values))
    results[name] = {"eps_labels": ["1/255", "2/255"], "norm_type": "linf",
                     "eps": eps, "norm": np.zeros((4, 2)) if norms is None
                     else norms}
  return summary, results


def test_healthy_attacks_give_no_warning():
  summary, results = _results({"fgsm": (0.3, 0.2), "pgd_linf": (0.2, 0.1)})
  curve = {"fmn_linf": {"norm_type": "linf", "curve": lambda e: 0.0}}
  assert trust.attack_warnings(summary, results, 0.0, curve) == []


def test_attack_warnings_name_their_numbers():
  summary, results = _results({"fgsm": (0.3, 0.4), "pgd_linf": (0.35, 0.2)})
  warnings = trust.attack_warnings(summary, results, 0.0, {})
  assert any("fgsm: robust accuracy increases with epsilon (0.300, 0.400)"
             in w for w in warnings), warnings
  assert any("pgd_linf weaker than fgsm at 1/255 (0.350 > 0.300)" in w
             for w in warnings), warnings
  results["fgsm"]["norm"][0, 1] = 3 / 255
  assert any("fgsm: 1 adversarials outside" in w for w in
             trust.attack_warnings(summary, results, 0.0, {}))
  # Within the tolerance the same numbers pass.
  summary, results = _results({"fgsm": (0.3, 0.4), "pgd_linf": (0.35, 0.2)})
  assert trust.attack_warnings(summary, results, 0.2, {}) == []


def test_a_fixed_epsilon_attack_beating_the_curve_warns():
  summary, results = _results({"pgd_linf": (0.2, 0.1)})
  curve = {"fmn_linf": {"norm_type": "linf",
                        "curve": lambda e: 0.3 if e < 1.5 / 255 else 0.05}}
  warnings = trust.attack_warnings(summary, results, 0.0, curve)
  assert warnings == [
      "pgd_linf beats the minimal-norm curve of fmn_linf at 1/255 (0.200 < "
      "0.300): fmn_linf did not find the smallest adversarials there"]
  # Minimal-norm attacks are not compared with each other's curves.
  curve["deepfool"] = curve["fmn_linf"]
  summary, results = _results({"deepfool": (0.2, 0.1)})
  assert trust.attack_warnings(summary, results, 0.0, curve) == []
  # A curve of another norm is not compared.
  curve["fmn_linf"]["norm_type"] = "l2"
  assert trust.attack_warnings(summary, results, 0.0, curve) == []


def test_square_beating_white_box_warns():
  assert trust.black_box_warnings("autoattack", "square",
                                  {"1/255": 0, "2/255": 3}) == [
      "autoattack at 2/255: the black-box square attack fooled 3 examples "
      "the white-box attacks missed: possible gradient masking"]


def _probe(logits_fn, n=8):
  _, _, images, labels, _ = digits()
  out = jax.jit(lambda x, y: trust.probe(logits_fn, x, y))(images[:n],
                                                           labels[:n])
  return {k: np.asarray(v) for k, v in out.items()}


def test_model_probe_on_a_real_model_and_its_masked_variants():
  model, params, _, _, _ = digits()
  logits_fn = model.logits_fn(params)
  healthy = _probe(logits_fn)
  scale = np.abs(healthy["logits"]).max(-1)
  assert trust.model_warnings(healthy["zero_gradient"],
                              healthy["probability_like"],
                              np.zeros_like(scale), scale) == []
  # Rounded outputs: every input gradient is zero.
  rounded = _probe(lambda x: jnp.round(logits_fn(x)))
  warnings = trust.model_warnings(rounded["zero_gradient"],
                                  rounded["probability_like"],
                                  np.zeros_like(scale), scale)
  assert warnings and "8 of 8 examples (100.0%) have an all-zero input" in (
      warnings[0])
  # A final softmax: probabilities, not logits.
  soft = _probe(lambda x: jax.nn.softmax(logits_fn(x)))
  assert any("look like probabilities" in w for w in trust.model_warnings(
      soft["zero_gradient"], soft["probability_like"], np.zeros(8),
      np.ones(8)))
  # Outputs that changed between two evaluations of the same images.
  change = np.abs(healthy["logits"] - 1.01 * healthy["logits"]).max(-1)
  assert any("not deterministic" in w for w in trust.model_warnings(
      healthy["zero_gradient"], healthy["probability_like"], change, scale))


def test_minimal_norm_attacks_that_stop_early_warn():
  rows = np.array([True, True, True, True, False])
  deepfool = np.array([0.2, 0.3, 0.4, 0.5, np.nan])
  fmn = np.array([0.21, 0.29, 0.41, 0.5, np.nan])
  assert trust.minimal_norm_warnings(
      {"deepfool": ("l2", deepfool), "fmn_l2": ("l2", fmn)}, rows) == []
  cw = np.array([0.3, 0.45, np.inf, np.inf, np.nan])
  warnings = trust.minimal_norm_warnings(
      {"deepfool": ("l2", deepfool), "cw_l2": ("l2", cw),
       "fmn_linf": ("linf", np.full(5, np.inf))}, rows)
  assert warnings == [
      "cw_l2 found adversarials for 2 of 4 images, deepfool for 4 (l2): "
      "cw_l2 has not converged (more steps)",
      "cw_l2's median minimal perturbation is 1.50x deepfool's (over the 2 "
      "images both fooled, l2): cw_l2 did not find the smallest adversarials "
      "(deepfool's are the tighter bound)"]
