"""The sis stage's report: subset accuracy, confidence curves, SIS triplets."""

from __future__ import annotations

from typing import Callable

import numpy as np

from jaxaudit.report import items as rs

MAX_CLASS_ROWS = 20


def _triplets(gathered: dict, picked: np.ndarray, ranks: np.ndarray,
              expand: Callable[[np.ndarray], np.ndarray], baseline: np.ndarray,
              class_names, fetch) -> list[list[rs.Tile]]:
  rows = []
  for image, i, rank in zip(fetch(gathered["id"][picked]), picked, ranks):
    keep = (rank < gathered["sis_size"][i]).astype(np.float32)
    pixel = expand(keep)
    kept = image * pixel + np.round(baseline * 255.0) * (1 - pixel)
    rows.append([
        rs.Tile(image, f"predicted: {class_names[gathered['target'][i]]}"),
        rs.Tile(pixel[..., 0], f"SIS: {gathered['sis_size'][i]} features"),
        rs.Tile(kept.astype(np.uint8), "SIS pixels only"),
    ])
  return rows


def _confidence(metrics: dict, names: list[str]) -> rs.Table:
  """p(full-image prediction) on full images and top-ranked subsets, overall
  and per predicted class (the most frequent classes first)."""
  rows = [{"predicted class": "all", "images": sum(
      c["images"] for c in metrics["confidence_by_class"].values()),
           "full image": metrics["full_confidence"]}
          | {f"top {n}": metrics["subset_confidence"][n] for n in names}]
  by_class = sorted(metrics["confidence_by_class"].items(),
                    key=lambda item: (-item[1]["images"], item[0]))
  for name, c in by_class[:MAX_CLASS_ROWS]:
    rows.append({"predicted class": name, "images": c["images"],
                 "full image": c["full"]} | {f"top {n}": c[n] for n in names})
  return rs.Table(rows, title="Confidence on top-ranked subsets against full "
                  f"images (per class: the {MAX_CLASS_ROWS} most predicted)")


def _exact(comparison: dict, names: list[str]) -> rs.Table:
  """Exact backward selection against BGSIS on the same images and grid."""
  rows = []
  for method, label in (("exact", "exact backward selection"),
                        ("bgsis", "batched gradient (BGSIS)")):
    m = comparison[method]
    rows.append({"selection": label,
                 "median SIS fraction": m["sis_fraction_median"]}
                | {f"top {n} accuracy": m["subset_accuracy"][n] for n in names}
                | {f"top {n} confidence": m["subset_confidence"][n]
                   for n in names})
  rows.append({"selection": "overlap of the two",
               "median SIS fraction": comparison["sis_jaccard_median"]}
              | {f"top {n} accuracy": comparison["top_overlap"][n]
                 for n in names})
  return rs.Table(rows, title=(
      f"Exact backward selection against BGSIS: {comparison['num_examples']} "
      f"images, {comparison['num_features']} features of "
      f"{comparison['block_size']} px ({comparison['forward_passes_per_image']}"
      " forward passes an image); last row: SIS Jaccard and shared top-ranked "
      "features"))


def sections(metrics: dict, gathered: dict, kept: np.ndarray, block: int,
             picked: np.ndarray, ranks: np.ndarray,
             expand: Callable[[np.ndarray], np.ndarray], baseline: np.ndarray,
             class_names, fetch) -> list[rs.Section]:
  """Args:
    metrics: the stage summary.
    gathered: `id`, `target`, `sis_size`, `curve` [N, T], sorted by id.
    kept: int [T] features kept at each step of the curves.
    block: feature side in pixels.
    picked: rows of `gathered` shown as triplets; ranks: their ranks [P, F].
    expand: a feature mask [F] -> pixel mask [S, S, 1].
    baseline: float [3] the removed-pixel value.
    class_names: the model's classes; fetch: decodes images by global id.
  """
  names = list(metrics["subset_accuracy"])
  headline = rs.Table([{
      "threshold": metrics["threshold"], "features": metrics["num_features"],
      "feature block (px)": block,
      "full image below threshold": metrics["below_threshold_share"],
      "SIS found": metrics["sis_found_share"],
      "median SIS fraction": metrics["sis_fraction_median"],
      "median border share": metrics["border_share_median"],
      "uniform border share": metrics["border_share_uniform"]}])
  accuracy = rs.Table([{
      "kept": n, "top-ranked accuracy": metrics["subset_accuracy"][n],
      "random accuracy": metrics["random_subset_accuracy"][n],
      "top-ranked agreement": metrics["subset_agreement"][n],
      "random agreement": metrics["random_subset_agreement"][n]}
                       for n in names])
  bars = rs.Plot("Accuracy on feature subsets", {
      "top-ranked": (names, [metrics["subset_accuracy"][n] for n in names]),
      "random": (names, [metrics["random_subset_accuracy"][n] for n in names])},
                 ylabel="accuracy", kind="bar")
  x = (kept / metrics["num_features"]).tolist()
  series = {"median": (x, np.median(gathered["curve"], 0).tolist())}
  for i in range(min(5, len(gathered["id"]))):
    series[f"id {gathered['id'][i]}"] = (x, gathered["curve"][i].tolist())
  curves = rs.Plot("Confidence along the ranking", series,
                   xlabel="fraction of features kept",
                   ylabel="p(predicted class)")
  items = [headline, accuracy, bars, curves, _confidence(metrics, names)]
  if "exact_comparison" in metrics:
    items.append(_exact(metrics["exact_comparison"], names))
  rows = _triplets(gathered, picked, ranks, expand, baseline, class_names,
                   fetch)
  if rows:
    items.append(rs.Gallery("Image / SIS mask / SIS pixels only", rows))
  return [rs.Section("Overinterpretation (sufficient input subsets)", items)]
