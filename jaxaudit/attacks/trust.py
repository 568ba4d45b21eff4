"""Trust checks on attack results, in the manner of AutoAttack's flags.

Signs that an attack is broken or the model masks its gradients, each a
warning with its numbers: adversarials outside their ball; robust accuracy
above clean or rising with epsilon; PGD weaker than FGSM; no label flipped at
the largest epsilon; a minimal-norm curve above a fixed-epsilon attack; a
minimal-norm attack finding fewer or larger adversarials than another of its
norm; the black-box Square finding adversarials the white-box attacks missed;
input gradients that are exactly zero; outputs that look like probabilities
rather than logits; a model whose outputs change between two evaluations.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit.attacks import common

ZERO_GRADIENT_SHARE = 0.01  # Examples with an all-zero input gradient.
DETERMINISM_TOLERANCE = 1e-3  # Relative logit change between evaluations.


def probe(logits_fn: common.LogitsFn, images: jax.Array,
          labels: jax.Array) -> dict[str, jax.Array]:
  """Per-example facts about the model at the clean images.

  Returns:
    `zero_gradient` bool [B] (the cross-entropy's input gradient is all zero),
    `probability_like` bool [B] (outputs in [0, 1] summing to 1), `logits`
    [B, K] (this evaluation, compared with evaluate's for determinism).
  """
  logits, pullback = jax.vjp(logits_fn, images)
  grad_ce = jax.grad(lambda z: jnp.sum(common.cross_entropy(z, labels)))
  grads = pullback(grad_ce(logits))[0]
  zero = jnp.all(grads == 0, axis=(1, 2, 3))
  probability_like = ((logits >= 0).all(-1) & (logits <= 1).all(-1)
                      & (jnp.abs(logits.sum(-1) - 1) < 1e-3))
  return {"zero_gradient": zero, "probability_like": probability_like,
          "logits": logits}


def probe_columns(logits_fn: common.LogitsFn, images: jax.Array,
                  labels: jax.Array, reference: jax.Array
                  ) -> dict[str, jax.Array]:
  """`probe` of a batch as per-example columns [B] for `model_warnings`:
  `zero_gradient`, `probability_like`, and the largest `change` of the logits
  from `reference` [B, K] (the same images evaluated before) with its
  `scale`."""
  out = probe(logits_fn, images, labels)
  return {"zero_gradient": out["zero_gradient"],
          "probability_like": out["probability_like"],
          "change": jnp.abs(out["logits"] - reference).max(-1),
          "scale": jnp.abs(reference).max(-1)}


def model_warnings(zero_gradient: np.ndarray, probability_like: np.ndarray,
                   change: np.ndarray, scale: np.ndarray) -> list[str]:
  """Warnings from `probe` over every example (gathered).

  Args:
    zero_gradient, probability_like: bool [N] from `probe`.
    change: [N] largest |logit difference| between `probe`'s evaluation and
      an earlier one of the same images; scale: [N] largest |logit| there.
  """
  warnings = []
  n = max(len(zero_gradient), 1)
  if zero_gradient.mean() > ZERO_GRADIENT_SHARE:
    warnings.append(f"{int(zero_gradient.sum())} of {n} examples "
                    f"({zero_gradient.mean():.1%}) have an all-zero input "
                    "gradient: gradient-based attacks cannot move them "
                    "(gradient masking?)")
  if len(probability_like) and probability_like.all():
    warnings.append("the model's outputs lie in [0, 1] and sum to 1: they look"
                    " like probabilities, not logits (attacks and the DLR loss"
                    " expect logits; remove the final softmax)")
  change = float(change.max(initial=0.0) / (scale.max(initial=0.0) + 1e-12))
  if change > DETERMINISM_TOLERANCE:
    warnings.append(f"the model is not deterministic: logits changed by "
                    f"{change:.2g} (relative) between two evaluations of the "
                    "same images")
  return warnings


def attack_warnings(summary: dict, results: dict, tolerance: float,
                    curves: dict[str, dict]) -> list[str]:
  """Warnings from the robust accuracies.

  Args:
    summary: the stage summary (`clean_accuracy`, `robust_accuracy`).
    results: per attack: `eps_labels`, `eps` [E], `norm_type`, `norm` [N, E].
    tolerance: slack (accuracy units) before a comparison warns.
    curves: per minimal-norm attack: `norm_type`, `curve(eps) -> robust acc`.
  """
  warnings = []
  clean = summary["clean_accuracy"]
  robust = summary["robust_accuracy"]
  for name, result in results.items():
    accs = [robust[name][e] for e in result["eps_labels"]]
    slack = 1e-4 if result["norm_type"] == "l2" else 1e-6
    outside = result["norm"] > result["eps"][None, :] * (1 + 1e-4) + slack
    if outside.any():
      warnings.append(f"{name}: {int(outside.sum())} adversarials outside "
                      "their epsilon ball")
    if any(a > clean + tolerance for a in accs):
      warnings.append(f"{name}: robust accuracy {max(accs):.3f} exceeds clean "
                      f"accuracy {clean:.3f}")
    if any(b > a + tolerance for a, b in zip(accs, accs[1:])):
      warnings.append(f"{name}: robust accuracy increases with epsilon "
                      f"({', '.join(f'{a:.3f}' for a in accs)}): possible "
                      "gradient masking")
    if clean > 0 and accs and accs[-1] >= clean and result["eps"][-1] > 0:
      warnings.append(f"{name}: no label flipped even at the largest epsilon "
                      f"({result['eps_labels'][-1]}): possible gradient masking")
    for curve_name, curve in curves.items():
      # Fixed-epsilon attacks only: minimal-norm attacks are curves themselves.
      if name in curves or curve["norm_type"] != result["norm_type"]:
        continue
      beaten = [f"{eps_label} ({acc:.3f} < {bound:.3f})"
                for eps, eps_label, acc in zip(result["eps"],
                                               result["eps_labels"], accs)
                if acc < (bound := curve["curve"](float(eps))) - tolerance]
      if beaten:
        warnings.append(f"{name} beats the minimal-norm curve of {curve_name} "
                        f"at {', '.join(beaten)}: {curve_name} did not find "
                        "the smallest adversarials there")
  if "fgsm" in robust and "pgd_linf" in robust:
    for eps_label, fgsm_acc in robust["fgsm"].items():
      pgd_acc = robust["pgd_linf"].get(eps_label)
      if pgd_acc is not None and pgd_acc > fgsm_acc + tolerance:
        warnings.append(f"pgd_linf weaker than fgsm at {eps_label} "
                        f"({pgd_acc:.3f} > {fgsm_acc:.3f}): possible gradient "
                        "masking")
  return warnings


MEDIAN_SLACK = 0.10  # Relative excess of a minimal-norm median that warns.


def minimal_norm_warnings(min_norms: dict[str, tuple[str, np.ndarray]],
                          rows: np.ndarray) -> list[str]:
  """Minimal-norm attacks of one norm checked against each other: each
  should find an adversarial for every image another finds one for, with a
  median perturbation no more than `MEDIAN_SLACK` larger (over the images
  both found). Fewer or larger ones overstate robustness: the attack stopped
  before converging (more steps or binary-search steps), or, like DeepFool's
  linearisation, does not reach the smallest adversarial.

  Args:
    min_norms: per minimal-norm attack, (norm, float [N] smallest
      perturbation found: inf where none, NaN where misclassified before).
    rows: bool [N] the labelled, clean-correct examples.
  """
  warnings = []
  for name, (norm, values) in min_norms.items():
    found = rows & np.isfinite(values)
    for other, (other_norm, other_values) in min_norms.items():
      if other == name or other_norm != norm:
        continue
      other_found = rows & np.isfinite(other_values)
      if found.sum() < other_found.sum():
        warnings.append(
            f"{name} found adversarials for {int(found.sum())} of "
            f"{int(rows.sum())} images, {other} for "
            f"{int(other_found.sum())} ({norm}): {name} has not converged "
            "(more steps)")
      both = found & other_found
      if both.any():
        ratio = float(np.median(values[both]) / np.median(other_values[both]))
        if ratio > 1 + MEDIAN_SLACK:
          warnings.append(
              f"{name}'s median minimal perturbation is {ratio:.2f}x "
              f"{other}'s (over the {int(both.sum())} images both fooled, "
              f"{norm}): {name} did not find the smallest adversarials "
              f"({other}'s are the tighter bound)")
  return warnings


def black_box_warnings(attack: str, sub: str,
                       fooled: dict[str, int]) -> list[str]:
  """AutoAttack's flag: a black-box sub-attack fooled examples every
  white-box attack before it missed ({epsilon label: count})."""
  return [f"{attack} at {eps}: the black-box {sub} attack fooled {count} "
          "examples the white-box attacks missed: possible gradient masking"
          for eps, count in fooled.items() if count > 0]
