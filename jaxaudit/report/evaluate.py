"""The evaluate stage's report: accuracy, worst classes, confusions, mistakes."""

from __future__ import annotations

from typing import Callable

import numpy as np

from jaxaudit.report import items as rs

Fetch = Callable[[np.ndarray], np.ndarray]  # global ids [k] -> uint8 [k, S, S, 3]


def sections(metrics: dict, mistakes: dict[str, np.ndarray],
             class_names: tuple[str, ...], fetch: Fetch) -> list[rs.Section]:
  """Args:
    metrics: the stage summary.
    mistakes: the gallery's mistakes, most confident first: `id`, `label`,
      `prediction` and `score` (the top-1 probability) [k].
    class_names: the model's classes.
    fetch: decodes images by global id.
  """
  headline = rs.Table([{"examples": metrics["num_examples"],
                        "top-1": metrics["top1"], "top-5": metrics["top5"],
                        "mean per-class": metrics["mean_per_class_accuracy"]}])
  worst = sorted(metrics["per_class_accuracy"].items(), key=lambda kv: kv[1])
  per_class = rs.Table([{"class": c, "accuracy": a} for c, a in worst[:20]],
                       title="Least accurate classes")
  confusions = rs.Table(metrics["confusions"], title="Most frequent confusions")
  label, prediction = mistakes["label"], mistakes["prediction"]
  tiles = [rs.Tile(img, f"true: {class_names[label[i]]}\n"
                        f"predicted: {class_names[prediction[i]]} "
                        f"({mistakes['score'][i]:.2f})")
           for i, img in enumerate(fetch(mistakes["id"]))]
  rows = [tiles[k:k + 6] for k in range(0, len(tiles), 6)]
  out = [headline, per_class, confusions] + _calibration(
      metrics["calibration"])
  if rows:
    out.append(rs.Gallery("Most confident mistakes", rows))
  return [rs.Section("Evaluation", out)]


def _calibration(calibration: dict) -> list[rs.Item]:
  """Calibration table and the reliability diagram (`summary.calibration`)."""
  bins = calibration["num_bins"]
  rows = []
  for binning in ("equal_width", "equal_mass"):
    low, high = calibration["ece_interval"][binning]
    rows.append({"ECE": f"{bins} {binning.replace('_', '-')} bins",
                 "value": calibration["ece"][binning],
                 "interval": f"[{low:.4f}, {high:.4f}]",
                 "after temperature scaling":
                     calibration["temperature"]["ece"][binning]})
  temperature = calibration["temperature"]
  scores = rs.Table([{
      "examples": calibration["num_examples"], "NLL": calibration["nll"],
      "Brier": calibration["brier"],
      "optimal temperature": temperature["value"],
      "NLL at it": temperature["nll"]}], title="Calibration")
  series = {"perfect calibration": ([0.0, 1.0], [0.0, 1.0])}
  for binning in ("equal_width", "equal_mass"):
    points = calibration["reliability"][binning]
    series[binning.replace("_", "-") + " bins"] = (points["confidence"],
                                                   points["accuracy"])
  items: list[rs.Item] = [
      scores, rs.Table(rows, title="Expected calibration error"),
      rs.Plot("Reliability diagram", series, xlabel="confidence",
              ylabel="accuracy")]
  if temperature["at_grid_edge"]:
    items.append(rs.Text("The optimal temperature lies at the edge of the "
                         "searched grid (0.05 to 20): the true optimum may be "
                         "beyond it."))
  return items
