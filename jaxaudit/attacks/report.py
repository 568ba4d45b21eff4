"""The attack stage's records (example x attack x epsilon rows) and report."""

from __future__ import annotations

import numpy as np

from jaxaudit.report import sections as rs


def record_rows(ctx, local_rows: np.ndarray, name: str, result: dict, e: int,
                labels: np.ndarray, robust: np.ndarray,
                fields: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """This process's rows for one attack at its e-th epsilon.

  Args:
    ctx: the stage context (for ids and class names).
    local_rows: int [n] positions of the local examples in the global arrays.
    name: the attack.
    result: its gathered results (`success`, `norm`, `adv_class` [N, E],
      `min_norm` [N], `eps` [E], `eps_labels`, `norm_type`).
    e: epsilon index.
    labels: int [N] global labels; robust: bool [N]; fields: plausibility
      columns [N].

  Returns:
    Equal-length columns for the records file.
  """
  n = len(local_rows)
  names = np.asarray(ctx.model.class_names, dtype=object)
  adv = result["adv_class"][local_rows, e]
  columns = {
      "id": ctx.data.ids,
      "attack": np.full(n, name, dtype=object),
      "norm_type": np.full(n, result["norm_type"], dtype=object),
      "epsilon": np.full(n, float(result["eps"][e])),
      "epsilon_label": np.full(n, result["eps_labels"][e], dtype=object),
      "label": labels[local_rows],
      "success": result["success"][local_rows, e],
      "robust": robust[local_rows],
      "norm": result["norm"][local_rows, e].astype(np.float64),
      "min_norm": result["min_norm"][local_rows].astype(np.float64),
      "adv_class": adv.astype(np.int64),
      "adv_class_name": names[adv],
  }
  columns.update({k: v[local_rows] for k, v in fields.items()})
  return columns


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
    if series:
      plots.append(rs.Plot(f"Robust accuracy vs {norm} epsilon", series,
                           xlabel=unit, ylabel="accuracy"))
  return plots


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
                     summary["plausible_clean_accuracy"]}]),
      rs.Table(rows, title="Robust accuracy (plausible: an adversarial label a "
                           "person accepts counts as robust)"),
  ]
  if summary["median_min_perturbation"]:
    items.append(rs.Table(
        [{"attack": k, "median minimal perturbation": v["median"],
          "found for": v["found"]}
         for k, v in summary["median_min_perturbation"].items()],
        title="Minimal adversarial perturbations (clean-correct examples)"))
  items.extend(_accuracy_plots(summary, results, names))
  if summary["warnings"]:
    items.append(rs.Text("Trust checks failed: "
                         + "; ".join(summary["warnings"])))
  if gallery:
    items.append(rs.Gallery(gallery_title, gallery))
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
    to_uint8 = lambda v: np.round(np.clip(v, 0, 1) * 255).astype(np.uint8)
    rows.append([
        rs.Tile(to_uint8(x), f"clean: {class_names[c]}\n(true: "
                             f"{class_names[y] if y >= 0 else '?'})"),
        rs.Tile(to_uint8(a), f"adversarial: {class_names[k]}"),
        rs.Tile(to_uint8(amplified),
                f"perturbation x{0.5 / peak:.0f} (max {peak * 255:.2f}/255)"),
    ])
  return rows
