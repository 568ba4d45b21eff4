"""Evaluation: the model's forward pass on every example, top-1/top-5, per-class
accuracy, the most frequent confusions, and calibration.

Calibration (`jaxaudit.calibration`) is measured on the labelled examples from
the stored logits: expected calibration error over `config.evaluate.
calibration_bins` equal-width and equal-mass bins with bootstrap intervals,
the reliability diagram, NLL and Brier score, and the temperature that would
minimise the NLL with the ECE it would give (reported, not applied).

The forward pass runs here and only here: its logits, predictions and features
are this stage's artifacts, which every later stage consumes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaudit.artifacts import ArtifactSpec, Contract
from jaxaudit.calibration import binning as binning_lib
from jaxaudit.calibration import scores as scores_lib
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
      "calibration_bins": 15,  # Bins of the expected calibration error.
      "bootstrap_samples": 1000,  # Resamples of its intervals.
      "confidence": 0.95,  # The intervals' coverage.
  })


def check_config(config: ml_collections.ConfigDict, dims: ModelDims) -> None:
  del dims
  cfg = config.evaluate
  for field in ("num_confusions", "gallery_size"):
    if cfg[field] < 0:
      raise ConfigError(f"config.evaluate.{field} must be >= 0, got "
                        f"{cfg[field]}")
  for field in ("calibration_bins", "bootstrap_samples"):
    if cfg[field] < 1:
      raise ConfigError(f"config.evaluate.{field} must be >= 1, got "
                        f"{cfg[field]}")
  if not 0 < cfg.confidence < 1:
    raise ConfigError(f"config.evaluate.confidence must be in (0, 1), got "
                      f"{cfg.confidence}")


def contract(config: ml_collections.ConfigDict, dims: ModelDims) -> Contract:
  del config
  k, top = dims.num_classes, min(TOP, dims.num_classes)
  produces = [ArtifactSpec("evaluate.logits", (k,), "float32", large=True),
              ArtifactSpec("evaluate.prediction", (), "int64"),
              ArtifactSpec("evaluate.top5", (top,), "int64"),
              ArtifactSpec("evaluate.top5_probs", (top,), "float32")]
  if dims.feature_dim is not None:
    produces.append(ArtifactSpec("evaluate.features", (dims.feature_dim,),
                                 "float32"))
  return Contract(produces=tuple(produces))


def accuracy_counts(labels: np.ndarray, top5: np.ndarray,
                    num_classes: int) -> np.ndarray:
  """What accuracy needs, as counts that add up over processes.

  Args:
    labels: int [n] true classes, -1 for unlabelled (not counted).
    top5: int [n, 5] predicted classes, best first.
    num_classes: K.

  Returns:
    int64 [K + 3, K]: row t < K is the confusion row of true class t (counts
    of each top-1 prediction); row K the top-5 hits per true class; rows K+1
    and K+2 unused but for [0] (examples, top-1 hits).
  """
  labelled = labels >= 0
  labels, top5 = labels[labelled], top5[labelled]
  counts = np.zeros((num_classes + 3, num_classes), np.int64)
  np.add.at(counts, (labels, top5[:, 0]), 1)
  np.add.at(counts[num_classes], labels[(top5 == labels[:, None]).any(-1)], 1)
  counts[num_classes + 1, 0] = len(labels)
  counts[num_classes + 2, 0] = int((top5[:, 0] == labels).sum())
  return counts


def accuracy_metrics(counts: np.ndarray, class_names: tuple[str, ...],
                     num_confusions: int) -> dict:
  """Top-1/top-5, per-class accuracy and confusions from `accuracy_counts`
  (summed over every process).

  Args:
    counts: int [K + 3, K].
    class_names: K names.
    num_confusions: how many (true, predicted) pairs to list.

  Returns:
    JSON-ready metrics.
  """
  k = len(class_names)
  confusion, top5_hits = counts[:k], counts[k]
  n, top1_hits = int(counts[k + 1, 0]), int(counts[k + 2, 0])
  per_class_n = confusion.sum(1)
  per_class = {class_names[c]: float(confusion[c, c] / per_class_n[c])
               for c in np.flatnonzero(per_class_n)}
  errors = confusion.copy()
  np.fill_diagonal(errors, 0)
  pairs = np.argwhere(errors > 0)
  order = np.lexsort((pairs[:, 1], pairs[:, 0], -errors[tuple(pairs.T)]))
  confusions = [{"true": class_names[t], "predicted": class_names[p],
                 "count": int(errors[t, p])}
                for t, p in pairs[order[:num_confusions]]]
  return {
      "num_examples": n,
      "top1": top1_hits / n if n else float("nan"),
      "top5": int(top5_hits.sum()) / n if n else float("nan"),
      "per_class_accuracy": per_class,
      "mean_per_class_accuracy": (float(np.mean(list(per_class.values())))
                                  if per_class else float("nan")),
      "confusions": confusions,
  }


def softmax_top(logits: jax.Array) -> tuple[jax.Array, jax.Array]:
  """logits [B, K] -> (the top min(5, K) classes [B, 5], best first, ties
  to the lowest class; their probabilities float32 [B, 5])."""
  logits = logits.astype(jnp.float32)
  _, top = jax.lax.top_k(logits, min(TOP, logits.shape[-1]))
  probs = jax.nn.softmax(logits, axis=-1)
  return top, jnp.take_along_axis(probs, top, -1)


def _calibration(ctx: StageContext, logits, top5: np.ndarray
                 ) -> tuple[dict, dict[str, np.ndarray]]:
  """Calibration of the labelled examples (see the module docstring) and the
  process-local per-example scores."""
  cfg = ctx.config.evaluate
  temperatures = scores_lib.TEMPERATURES

  def step(grid, batch):
    return scores_lib.per_example(batch["logits"], batch["label"], grid)

  local = ctx.executor.run(
      "calibration", step, jnp.asarray(temperatures),
      {"logits": logits, "label": ctx.data.labels.astype(np.int32)},
      batch_size=ctx.config.batch_size)
  gathered = ctx.executor.gather(
      {k: local[k] for k in ("confidence", "nll", "brier", "label_logprob",
                             "confidence_t")}
      | {"label": ctx.data.labels, "prediction": top5[:, 0]})
  labelled = gathered["label"] >= 0
  confidence = gathered["confidence"][labelled]
  correct = (gathered["prediction"] == gathered["label"])[labelled]
  rng = np.random.default_rng(
      np.asarray(jax.random.key_data(ctx.rng)).tolist())
  bins = int(cfg.calibration_bins)
  best, best_nll = scores_lib.best_temperature(
      gathered["label_logprob"][labelled])
  scaled = gathered["confidence_t"][labelled][:, max(best, 0)]
  summary = {
      "num_examples": int(labelled.sum()),
      "num_bins": bins,
      "ece": {}, "ece_interval": {}, "reliability": {},
      "nll": float(gathered["nll"][labelled].mean()) if labelled.any()
             else float("nan"),
      "brier": float(gathered["brier"][labelled].mean()) if labelled.any()
               else float("nan"),
      "temperature": {
          "value": float(temperatures[best]) if best >= 0 else float("nan"),
          "nll": best_nll,
          "at_grid_edge": best in (0, len(temperatures) - 1),
          "ece": {}},
  }
  for binning in binning_lib.BINNINGS:
    summary["ece"][binning] = binning_lib.ece(confidence, correct, bins,
                                              binning)
    summary["ece_interval"][binning] = binning_lib.ece_interval(
        confidence, correct, bins, binning, rng=rng,
        samples=int(cfg.bootstrap_samples), level=float(cfg.confidence))
    points = binning_lib.reliability(confidence, correct, bins, binning)
    summary["reliability"][binning] = {k: v.tolist() for k, v in
                                       points._asdict().items()}
    summary["temperature"]["ece"][binning] = binning_lib.ece(
        scaled, correct, bins, binning)
  return summary, local


def run(ctx: StageContext) -> StageOutput:
  """The forward pass and its accuracy; see the module docstring."""
  model = ctx.model

  def step(params, batch):
    logits, features = model.logits_and_features(params,
                                                 unit_images(batch["image"]))
    top, probs = softmax_top(logits)
    out = {"logits": logits.astype(jnp.float32), "top5": top,
           "top5_probs": probs}
    if features is not None:
      out["features"] = features.astype(jnp.float32)
    return out

  # Logits stay on disk (read back by batch where a stage needs them): a host
  # holds [n, 5] of them, not [n, K].
  local = ctx.executor.run("forward", step, ctx.params,
                           {"image": ctx.data.images},
                           batch_size=ctx.config.batch_size,
                           keep_on_disk=("logits",))
  top5 = local["top5"].astype(np.int64)
  top5_probs = local["top5_probs"].astype(np.float32)
  names = model.class_names
  labels = ctx.data.labels
  counts = ctx.executor.sum_counts(accuracy_counts(labels, top5, len(names)))
  metrics = accuracy_metrics(counts, names, ctx.config.evaluate.num_confusions)
  wrong = (labels >= 0) & (top5[:, 0] != labels)
  mistakes = ctx.executor.top(
      {"label": labels, "prediction": top5[:, 0]},
      np.where(wrong, top5_probs[:, 0], -np.inf),
      ctx.config.evaluate.gallery_size)
  mistakes = {k: v[np.isfinite(mistakes["score"])] for k, v in mistakes.items()}
  metrics["calibration"], scores = _calibration(ctx, local["logits"], top5)
  name_array = np.asarray(names, dtype=object)
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
      "confidence": scores["confidence"],
      "nll": np.where(labels >= 0, scores["nll"], np.nan),
      "brier": np.where(labels >= 0, scores["brier"], np.nan),
  }
  artifacts = {"evaluate.logits": local["logits"],
               "evaluate.prediction": top5[:, 0],
               "evaluate.top5": top5, "evaluate.top5_probs": top5_probs}
  if "features" in local:
    artifacts["evaluate.features"] = local["features"]
  return StageOutput(
      summary=metrics, records=records, artifacts=artifacts,
      sections=report.sections(metrics, mistakes, names, ctx.data.fetch))
