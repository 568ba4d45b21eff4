"""The attack stage's report: robust accuracy tables and curves, the
plausibility of the flipped labels, trust checks and the adversarial gallery."""

from __future__ import annotations

import numpy as np

from jaxaudit.data.pixels import to_uint8
from jaxaudit.report import items as rs


def _accuracy_plots(summary: dict, results: dict,
                    names: list[str]) -> list[rs.Plot]:
  plots = []
  for norm, unit in (("linf", "L-inf epsilon (1/255)"),
                     ("l2", "L2 epsilon")):
    series = {}
    for name in names:
      result = results[name]
      if result["norm_type"] != norm:
        continue
      scale = 255.0 if norm == "linf" else 1.0
      xs = [0.0] + [float(v) * scale for v in result["eps"]]
      clean = summary["clean_accuracy"]
      plain = summary["robust_accuracy"][name]
      plausible = summary["plausible_robust_accuracy"][name]
      series[name] = (xs, [clean] + [plain[e] for e in result["eps_labels"]])
      series[f"{name} (plausible)"] = (
          xs, [summary["plausible_clean_accuracy"]]
          + [plausible[e] for e in result["eps_labels"]])
    scale = 255.0 if norm == "linf" else 1.0
    for name, curve in summary["minimal_norm_curve"].items():
      if curve["norm"] == norm:
        series[f"{name} (minimal-norm curve)"] = (
            [e * scale for e in curve["epsilons"]], curve["robust_accuracy"])
    if series:
      plots.append(rs.Plot(f"Robust accuracy vs {norm} epsilon", series,
                           xlabel=unit, ylabel="accuracy"))
  return plots


def _composition_tables(summary: dict) -> list[rs.Item]:
  """Robust accuracy after each sub-attack of a composition (AutoAttack)."""
  items: list[rs.Item] = []
  for name, by_eps in summary["robust_accuracy_after"].items():
    rows = [{"epsilon": eps, "after": sub, "robust accuracy": acc}
            for eps, after in by_eps.items() for sub, acc in after.items()]
    items.append(rs.Table(rows, title=f"{name}: robust accuracy after each "
                          "attack (each runs on what the previous left "
                          "robust)"))
  return items


def _timing_table(summary: dict) -> rs.Table:
  """Compilations and seconds per attack (and sub-attack)."""
  timings = {
      f"{name} {sub}".strip(): fields
      for name, timing in summary["timing"]["attacks"].items()
      for sub, fields in timing.get("sub_attacks", {"": timing}).items()}
  return rs.timing_table(timings, "attack",
                         "Compilations and seconds per attack")


def sections(summary: dict, results: dict, names: list[str],
             gallery: list[list[rs.Tile]], gallery_title: str
             ) -> list[rs.Section]:
  """Accuracy table, accuracy-vs-epsilon plots, warnings and the gallery."""
  rows = []
  for name in names:
    for eps_label in results[name]["eps_labels"]:
      rows.append({"attack": name, "epsilon": eps_label,
                   "robust accuracy": summary["robust_accuracy"][name][eps_label],
                   "plausible robust accuracy":
                       summary["plausible_robust_accuracy"][name][eps_label]})
  items: list[rs.Item] = [
      rs.Table([{"examples": summary["num_examples"],
                 "clean accuracy": summary["clean_accuracy"],
                 "plausible clean accuracy":
                     summary["plausible_clean_accuracy"],
                 "misclassified before the attack (reported apart)":
                     summary["misclassified_before_attack"]}]),
      rs.Table(rows, title="Robust accuracy (plausible: an adversarial label a "
                           "person accepts counts as robust)"),
  ]
  if summary["median_min_perturbation"]:
    items.append(rs.Table(
        [{"attack": k, "median minimal perturbation": v["median"],
          "found for": v["found"]}
         for k, v in summary["median_min_perturbation"].items()],
        title="Minimal adversarial perturbations (clean-correct examples)"))
  items.extend(_composition_tables(summary))
  items.extend(_accuracy_plots(summary, results, names))
  flips = [{"attack": name, "epsilon": eps, **shares}
           for name, by_eps in summary["plausibility_of_flips"].items()
           for eps, shares in by_eps.items()]
  if flips:
    items.append(rs.Table(flips, title="Flipped labels a person would accept "
                                       "(shares of the flips of correctly "
                                       "classified images, by reason)"))
  for note in summary.get("notes", []):
    items.append(rs.Text(note))
  if summary["warnings"]:
    items.append(rs.Text("Trust checks failed: "
                         + "; ".join(summary["warnings"])))
  if gallery:
    items.append(rs.Gallery(gallery_title, gallery))
  items.append(_timing_table(summary))
  return [rs.Section("Adversarial robustness", items)]


def gallery_rows(clean: np.ndarray, adversarial: np.ndarray,
                 labels: np.ndarray, clean_classes: np.ndarray,
                 adv_classes: np.ndarray,
                 class_names: tuple[str, ...]) -> list[list[rs.Tile]]:
  """Rows of (clean, adversarial, amplified perturbation) tiles.

  Args:
    clean, adversarial: float [G, H, W, 3] in [0, 1].
    labels, clean_classes, adv_classes: int [G].
    class_names: the model's class names.
  """
  rows = []
  for x, a, y, c, k in zip(clean, adversarial, labels, clean_classes,
                           adv_classes):
    delta = a - x
    peak = max(float(np.abs(delta).max()), 1e-12)
    amplified = 0.5 + 0.5 * delta / peak
    rows.append([
        rs.Tile(to_uint8(x), f"clean: {class_names[c]}\n(true: "
                             f"{class_names[y] if y >= 0 else '?'})"),
        rs.Tile(to_uint8(a), f"adversarial: {class_names[k]}"),
        rs.Tile(to_uint8(amplified),
                f"perturbation x{0.5 / peak:.0f} (max {peak * 255:.2f}/255)"),
    ])
  return rows
