"""Evaluation: the model's forward pass on every example, top-1/top-5, per-class
accuracy and the most frequent confusions.

The forward pass runs here and only here: its logits, predictions and features
are this stage's artifacts, which every later stage consumes.
"""

from __future__ import annotations

import collections

import ml_collections
import numpy as np

from jaxaudit.artifacts import ArtifactSpec, Contract
from jaxaudit.data.pixels import unit_images
from jaxaudit.errors import ConfigError
from jaxaudit.models.classifier import ModelDims
from jaxaudit.report import evaluate as report
from jaxaudit.stages.base import StageContext, StageOutput

TOP = 5


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      "num_confusions": 20,  # most frequent (true, predicted) pairs reported.
      "gallery_size": 24,  # mistakes shown in the report.
  })


def check_config(config: ml_collections.ConfigDict, dims: ModelDims) -> None:
  del dims
  for field in ("num_confusions", "gallery_size"):
    if config.evaluate[field] < 0:
      raise ConfigError(f"config.evaluate.{field} must be >= 0, got "
                        f"{config.evaluate[field]}")


def contract(config: ml_collections.ConfigDict, dims: ModelDims) -> Contract:
  del config
  k, top = dims.num_classes, min(TOP, dims.num_classes)
  produces = [ArtifactSpec("evaluate.logits", (k,), "float32"),
              ArtifactSpec("evaluate.prediction", (), "int64"),
              ArtifactSpec("evaluate.top5", (top,), "int64"),
              ArtifactSpec("evaluate.top5_probs", (top,), "float32")]
  if dims.feature_dim is not None:
    produces.append(ArtifactSpec("evaluate.features", (dims.feature_dim,),
                                 "float32"))
  return Contract(produces=tuple(produces))


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


def _softmax_top(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(top-5 classes int64 [n, 5], their probabilities float32 [n, 5])."""
  logits = logits.astype(np.float64)
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  top = np.argsort(-logits, axis=-1, kind="stable")[:, :TOP].astype(np.int64)
  return top, np.take_along_axis(probs, top, -1).astype(np.float32)


def run(ctx: StageContext) -> StageOutput:
  """The forward pass and its accuracy; see the module docstring."""
  model = ctx.model

  def step(params, batch):
    logits, features = model.logits_and_features(params,
                                                 unit_images(batch["image"]))
    out = {"logits": logits}
    if features is not None:
      out["features"] = features
    return out

  local = ctx.executor.run("forward", step, ctx.params,
                           {"image": ctx.data.images},
                           batch_size=ctx.config.batch_size)
  logits = local["logits"].astype(np.float32)
  top5, top5_probs = _softmax_top(logits)
  gathered = ctx.executor.gather({"label": ctx.data.labels, "top5": top5,
                                  "top1_prob": top5_probs[:, 0]})
  gathered["prediction"] = gathered["top5"][:, 0]
  names = model.class_names
  metrics = accuracy_metrics(gathered["label"], gathered["top5"], names,
                             ctx.config.evaluate.num_confusions)
  name_array = np.asarray(names, dtype=object)
  labels = ctx.data.labels
  records = {
      "id": ctx.data.ids,
      "file": ctx.data.files,
      "label": labels,
      "label_name": [names[l] if l >= 0 else "" for l in labels],
      "prediction": top5[:, 0],
      "prediction_name": name_array[top5[:, 0]],
      "top5": top5,
      "top5_probs": top5_probs,
      "correct": top5[:, 0] == labels,
  }
  artifacts = {"evaluate.logits": logits, "evaluate.prediction": top5[:, 0],
               "evaluate.top5": top5, "evaluate.top5_probs": top5_probs}
  if "features" in local:
    artifacts["evaluate.features"] = local["features"].astype(np.float32)
  return StageOutput(
      summary=metrics, records=records, artifacts=artifacts,
      sections=report.sections(metrics, gathered, names, ctx.data.fetch,
                               ctx.config.evaluate.gallery_size))
