"""The sis stage's report: subset accuracy, confidence curves, SIS triplets."""

from __future__ import annotations

from typing import Callable

import numpy as np

from jaxaudit.report import items as rs


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
      "feature block (px)": block, "SIS found": metrics["sis_found_share"],
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
  items = [headline, accuracy, bars, curves]
  rows = _triplets(gathered, picked, ranks, expand, baseline, class_names,
                   fetch)
  if rows:
    items.append(rs.Gallery("Image / SIS mask / SIS pixels only", rows))
  return [rs.Section("Overinterpretation (sufficient input subsets)", items)]
