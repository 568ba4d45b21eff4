"""Evaluation: top-1/top-5, per-class accuracy, the most frequent confusions."""

from __future__ import annotations

import collections

import ml_collections
import numpy as np

from jaxaudit.report import sections as rs
from jaxaudit.stages import forward
from jaxaudit.stages.base import StageContext, StageOutput


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      "num_confusions": 20,  # most frequent (true, predicted) pairs reported.
      "gallery_size": 24,  # mistakes shown in the report.
  })


def accuracy_metrics(labels: np.ndarray, top5: np.ndarray,
                     class_names: tuple[str, ...],
                     num_confusions: int) -> dict:
  """Top-1/top-5, per-class accuracy and confusions over labelled examples.

  Args:
    labels: int [N], -1 for unlabelled (excluded).
    top5: int [N, 5] predicted classes, best first.
    class_names: K names.
    num_confusions: how many (true, predicted) pairs to list.

  Returns:
    JSON-ready metrics.
  """
  labelled = labels >= 0
  labels, top5 = labels[labelled], top5[labelled]
  correct1 = top5[:, 0] == labels
  correct5 = (top5 == labels[:, None]).any(-1)
  per_class = {}
  for c in np.unique(labels):
    members = labels == c
    per_class[class_names[c]] = float(correct1[members].mean())
  pairs = collections.Counter(
      (int(t), int(p)) for t, p in zip(labels[~correct1], top5[~correct1, 0]))
  confusions = [{"true": class_names[t], "predicted": class_names[p],
                 "count": n}
                for (t, p), n in sorted(pairs.items(),
                                        key=lambda kv: (-kv[1], kv[0]))
                [:num_confusions]]
  n = int(labelled.sum())
  return {
      "num_examples": n,
      "top1": float(correct1.mean()) if n else float("nan"),
      "top5": float(correct5.mean()) if n else float("nan"),
      "per_class_accuracy": per_class,
      "mean_per_class_accuracy": (float(np.mean(list(per_class.values())))
                                  if per_class else float("nan")),
      "confusions": confusions,
  }


def _sections(ctx: StageContext, arrays: dict, metrics: dict) -> list[rs.Section]:
  names = ctx.model.class_names
  headline = rs.Table([{"examples": metrics["num_examples"],
                        "top-1": metrics["top1"], "top-5": metrics["top5"],
                        "mean per-class": metrics["mean_per_class_accuracy"]}])
  worst = sorted(metrics["per_class_accuracy"].items(), key=lambda kv: kv[1])
  per_class = rs.Table([{"class": c, "accuracy": a} for c, a in worst[:20]],
                       title="Least accurate classes")
  confusions = rs.Table(metrics["confusions"], title="Most frequent confusions")
  wrong = np.flatnonzero((arrays["label"] >= 0)
                         & (arrays["prediction"] != arrays["label"]))
  wrong = wrong[np.argsort(-arrays["top5_probs"][wrong, 0], kind="stable")]
  wrong = wrong[:ctx.config.evaluate.gallery_size]
  images = ctx.data.fetch(arrays["id"][wrong])
  tiles = [rs.Tile(img, f"true: {names[arrays['label'][i]]}\n"
                        f"predicted: {names[arrays['prediction'][i]]} "
                        f"({arrays['top5_probs'][i, 0]:.2f})")
           for img, i in zip(images, wrong)]
  rows = [tiles[k:k + 6] for k in range(0, len(tiles), 6)]
  items = [headline, per_class, confusions]
  if rows:
    items.append(rs.Gallery("Most confident mistakes", rows))
  return [rs.Section("Evaluation", items)]


def run(ctx: StageContext) -> StageOutput:
  """Scores the model on every example; see `accuracy_metrics`."""
  arrays = forward.forward(ctx)
  metrics = accuracy_metrics(arrays["label"], arrays["top5"],
                             ctx.model.class_names,
                             ctx.config.evaluate.num_confusions)
  position = {int(i): k for k, i in enumerate(arrays["id"])}
  rows = np.asarray([position[int(i)] for i in ctx.data.ids], np.int64)
  names = np.asarray(ctx.model.class_names, dtype=object)
  records = {
      "id": ctx.data.ids,
      "file": ctx.data.files,
      "label": ctx.data.labels,
      "label_name": [names[l] if l >= 0 else "" for l in ctx.data.labels],
      "prediction": arrays["prediction"][rows],
      "prediction_name": names[arrays["prediction"][rows]],
      "top5": arrays["top5"][rows],
      "top5_probs": arrays["top5_probs"][rows],
      "correct": arrays["prediction"][rows] == ctx.data.labels,
  }
  return StageOutput(summary=metrics, records=records,
                     sections=_sections(ctx, arrays, metrics), arrays={})
