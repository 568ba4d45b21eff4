"""The comparison of several models audited on the same examples.

After every model (the ensemble included) has run the job's stages
(`<workdir>/models/<name>/`), this step joins them per example by id, through
the artifacts it declares (`contract`):
  - a side-by-side table of each model's headline metrics, from their
    summaries (accuracy, calibration, rectified accuracy, robust accuracy,
    minimal norms, SIS size, subset accuracy and confidence);
  - for each pair of models: the examples each gets right and the other not
    (exact McNemar test), how often they agree, and a gallery of both kinds;
  - adversarial transfer: each model run on each other model's stored
    adversarials (resized to its input), the share of the source's successful
    adversarials that also fool it, on examples both classified correctly;
  - SIS overlap: intersection over union of two models' SIS (where both
    found one) and of their top-ranked subsets, against chance.
It returns the `compare` summary, one record per example and report sections.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import ml_collections
import numpy as np

from jaxaudit.artifacts import Contract, Need
from jaxaudit.calibration import binning as binning_lib
from jaxaudit.comparison import agreement, overlap, transfer
from jaxaudit.data.dataset import Dataset
from jaxaudit.executor import Executor
from jaxaudit.models.classifier import Classifier, Params
from jaxaudit.report import compare as report
from jaxaudit.sis import subsets
from jaxaudit.stages.base import StageOutput

_PREDICTION = "evaluate.prediction"
_CHUNK = 1024  # Process-local rows of SIS ranks read at a time.


@dataclasses.dataclass
class ModelRun:
  """One model's finished stages, as the comparison sees them.

  Attributes:
    name: the model's name.
    classifier, params: the model (transfer runs it on others' adversarials).
    data: this process's examples, preprocessed the model's way (the same
      ids for every model).
    artifacts: name -> process-local rows of what `contract` declares that
      this model's stages produced.
    summary: its summary.json.
    members: an ensemble's member names (empty for a single model).
  """
  name: str
  classifier: Classifier
  params: Params
  data: Dataset
  artifacts: dict[str, Any]
  summary: dict
  members: tuple[str, ...] = ()


def contract(produced: set[str]) -> Contract:
  """What the comparison consumes of every model's stages: the predictions
  (required: `evaluate` must run) and, where the job produces them, attack
  successes and adversarials and the SIS ranks, sizes and found flags."""
  wanted = sorted(n for n in produced if n.startswith(
      ("attack.success.", "attack.adversarial.", "sis.ranks", "sis.size",
       "sis.found")))
  return Contract(consumes=(Need(_PREDICTION),)
                  + tuple(Need(n, optional=True) for n in wanted))


def _pairs(runs: list[ModelRun]) -> list[tuple[ModelRun, ModelRun]]:
  return list(itertools.combinations(runs, 2))


def _get(tree: dict, *path: str) -> Any:
  for key in path:
    if not isinstance(tree, dict) or key not in tree:
      return None
    tree = tree[key]
  return tree


def metrics_table(runs: list[ModelRun]) -> list[dict[str, Any]]:
  """Rows {"metric", <model>: value} of every headline metric some model's
  summary holds (None where a model lacks it)."""
  summaries = {r.name: r.summary for r in runs}
  rows: list[tuple[str, tuple[str, ...]]] = [
      ("top-1", ("evaluate", "top1")), ("top-5", ("evaluate", "top5")),
      ("mean per-class accuracy", ("evaluate", "mean_per_class_accuracy"))]
  for binning in binning_lib.BINNINGS:
    rows.append((f"ECE ({binning.replace('_', '-')} bins)",
                 ("evaluate", "calibration", "ece", binning)))
  rows += [("NLL", ("evaluate", "calibration", "nll")),
           ("Brier", ("evaluate", "calibration", "brier")),
           ("NLL-optimal temperature",
            ("evaluate", "calibration", "temperature", "value"))]

  def keys(*path: str) -> list[str]:
    found: list[str] = []
    for summary in summaries.values():
      for key in _get(summary, *path) or {}:
        if key not in found:
          found.append(key)
    return found

  for source in keys("mistakes", "rectified_top1"):
    rows.append((f"rectified top-1 ({source})",
                 ("mistakes", "rectified_top1", source)))
  for attack in keys("attack", "robust_accuracy"):
    for eps in keys("attack", "robust_accuracy", attack):
      rows.append((f"robust accuracy {attack} @ {eps}",
                   ("attack", "robust_accuracy", attack, eps)))
  for attack in keys("attack", "median_min_perturbation"):
    rows.append((f"median minimal perturbation ({attack})",
                 ("attack", "median_min_perturbation", attack, "median")))
  rows += [("SIS found share", ("sis", "sis_found_share")),
           ("SIS size, median (features)", ("sis", "sis_size_median")),
           ("SIS share of features, median", ("sis", "sis_fraction_median"))]
  for fraction in keys("sis", "subset_accuracy"):
    rows += [(f"{fraction} subset accuracy",
              ("sis", "subset_accuracy", fraction)),
             (f"{fraction} subset confidence",
              ("sis", "subset_confidence", fraction)),
             (f"{fraction} random-subset accuracy",
              ("sis", "random_subset_accuracy", fraction))]
  table = []
  for label, path in rows:
    values = {name: _get(s, *path) for name, s in summaries.items()}
    if any(isinstance(v, (int, float)) for v in values.values()):
      table.append({"metric": label} | values)
  return table


def _accuracy_pairs(runs: list[ModelRun], gathered: dict[str, np.ndarray]
                    ) -> dict[str, dict]:
  labelled = gathered["label"] >= 0
  label = gathered["label"][labelled]
  out = {}
  for a, b in _pairs(runs):
    right_a = gathered[f"prediction.{a.name}"][labelled] == label
    right_b = gathered[f"prediction.{b.name}"][labelled] == label
    counts = agreement.pair_counts(right_a, right_b)
    agree = (gathered[f"prediction.{a.name}"]
             == gathered[f"prediction.{b.name}"])
    out[f"{a.name} vs {b.name}"] = counts | {
        "labelled": int(labelled.sum()),
        "accuracy": {a.name: float(right_a.mean()) if len(label) else None,
                     b.name: float(right_b.mean()) if len(label) else None},
        "mcnemar_p": agreement.mcnemar_p(counts["only_a"], counts["only_b"]),
        "agreement": float(agree.mean()) if len(agree) else None}
  return out


def _largest_epsilon(run: ModelRun, attack: str) -> str | None:
  """The label of the largest epsilon of an attack (the one whose
  adversarials the attack stage stores)."""
  epsilons = _get(run.summary, "attack", "epsilons", attack) or {}
  return max(epsilons, key=epsilons.get) if epsilons else None


def _transfer(runs: list[ModelRun], executor: Executor, batch_size: int,
              labels: np.ndarray, records: dict[str, np.ndarray], gallery: int
              ) -> tuple[dict, list[report.TransferExample]]:
  """Every model on every other model's adversarials: the summary, and the
  gallery's examples (the first attack's, `gallery` per pair)."""
  attacks = sorted({n.split(".", 2)[2] for r in runs for n in r.artifacts
                    if n.startswith("attack.adversarial.")})
  summary: dict[str, dict] = {}
  shown: list[report.TransferExample] = []
  correct = {r.name: np.asarray(r.artifacts[_PREDICTION]) == labels
             for r in runs}
  for attack in attacks:
    name = f"attack.adversarial.{attack}"
    sources = [r for r in runs if name in r.artifacts]
    entry: dict[str, Any] = {"epsilon": _largest_epsilon(sources[0], attack)}
    for src, dst in itertools.permutations(runs, 2):
      if src not in sources:
        continue
      success = np.asarray(src.artifacts[f"attack.success.{attack}"])[:, -1]
      out = executor.run(
          f"transfer_{attack}_{src.name}_to_{dst.name}",
          transfer.predict_step(dst.classifier), dst.params,
          {"image": src.artifacts[name]}, batch_size=batch_size)
      eligible = success & correct[src.name] & correct[dst.name]
      fooled = eligible & (out["prediction"] != labels)
      counts = executor.sum_counts(np.asarray(
          [eligible.sum(), fooled.sum()], np.int64))
      entry[f"{src.name} -> {dst.name}"] = {
          "examples": int(counts[0]),
          "rate": counts[1] / counts[0] if counts[0] else None}
      records[f"transfer_{attack}_{src.name}_to_{dst.name}"] = np.where(
          eligible, fooled.astype(np.int8), np.int8(-1))
      if attack == attacks[0] and gallery:
        picked = executor.gather({"fooled": fooled,
                                  "prediction": out["prediction"]})
        rows = np.flatnonzero(picked["fooled"])[:gallery]
        ids = picked["id"][rows]
        shown.append(report.TransferExample(
            attack, src.name, dst.name, ids,
            executor.rows_of(src.artifacts[name], ids),
            picked["prediction"][rows]))
    summary[attack] = entry
  return summary, shown


def _side(ranks: Any) -> int:
  return int(round(ranks.shape[1] ** 0.5))


def _sis_overlap(runs: list[ModelRun], executor: Executor, fraction: float,
                 records: dict[str, np.ndarray], gallery: int
                 ) -> tuple[dict[str, dict], list[report.OverlapExample]]:
  """IoU of each pair's SIS (both found) and top-ranked `fraction` subsets;
  the gallery's examples (`gallery` per pair with both SIS)."""
  with_sis = [r for r in runs if "sis.ranks" in r.artifacts]
  out, shown = {}, []
  for a, b in _pairs(with_sis):
    ranks_a, ranks_b = a.artifacts["sis.ranks"], b.artifacts["sis.ranks"]
    size_a, size_b = a.artifacts["sis.size"], b.artifacts["sis.size"]
    n = ranks_a.shape[0]
    sis_iou, top_iou = np.full(n, np.nan), np.zeros(n)
    both = (np.asarray(a.artifacts["sis.found"])
            & np.asarray(b.artifacts["sis.found"]))
    count_a = subsets.subset_counts((fraction,), ranks_a.shape[1])[0]
    count_b = subsets.subset_counts((fraction,), ranks_b.shape[1])[0]
    for lo in range(0, n, _CHUNK):
      hi = min(lo + _CHUNK, n)
      ra, rb = np.asarray(ranks_a[lo:hi]), np.asarray(ranks_b[lo:hi])
      sis_iou[lo:hi] = overlap.iou(overlap.ranked_subset(ra, size_a[lo:hi]),
                                   overlap.ranked_subset(rb, size_b[lo:hi]))
      top_iou[lo:hi] = overlap.iou(overlap.ranked_subset(ra, count_a),
                                   overlap.ranked_subset(rb, count_b))
    sis_iou[~both] = np.nan
    records[f"sis_iou_{a.name}_{b.name}"] = sis_iou
    records[f"top_iou_{a.name}_{b.name}"] = top_iou
    gathered = executor.gather({"sis": sis_iou, "top": top_iou,
                                "size_a": size_a, "size_b": size_b})
    found = ~np.isnan(gathered["sis"])
    out[f"{a.name} vs {b.name}"] = {
        "sis_examples": int(found.sum()),
        "sis_iou_mean": float(gathered["sis"][found].mean()) if found.any()
                        else None,
        "fraction": fraction,
        "top_iou_mean": float(gathered["top"].mean()) if len(gathered["top"])
                        else None,
        "chance_iou": overlap.chance_iou_across(
            count_a, _side(ranks_a), count_b, _side(ranks_b))}
    rows = np.flatnonzero(found)[:gallery]
    if len(rows):
      ids = gathered["id"][rows]
      shown.append(report.OverlapExample(
          a.name, b.name, ids, gathered["sis"][rows],
          overlap.ranked_subset(executor.rows_of(ranks_a, ids),
                                gathered["size_a"][rows]),
          overlap.ranked_subset(executor.rows_of(ranks_b, ids),
                                gathered["size_b"][rows])))
  return out, shown


def _disagreements(runs: list[ModelRun], gathered: dict[str, np.ndarray],
                   gallery: int) -> list[report.Disagreement]:
  """For each pair, the first `gallery` labelled examples (by id) one model
  gets right and the other not, each way."""
  label = gathered["label"]
  out = []
  for a, b in _pairs(runs):
    pred_a = gathered[f"prediction.{a.name}"]
    pred_b = gathered[f"prediction.{b.name}"]
    for right, wrong, p_right, p_wrong in ((a, b, pred_a, pred_b),
                                           (b, a, pred_b, pred_a)):
      rows = np.flatnonzero((label >= 0) & (p_right == label)
                            & (p_wrong != label))[:gallery]
      out.append(report.Disagreement(right.name, wrong.name,
                                     gathered["id"][rows], label[rows],
                                     p_wrong[rows]))
  return out


def run(config: ml_collections.ConfigDict, runs: list[ModelRun],
        executor: Executor) -> StageOutput:
  """Compares `runs` per example (see the module docstring).

  Args:
    config: the job config (`compare`, `sis.subset_fractions`, batch size).
    runs: every model's finished stages, in the job's order.
    executor: runs the transfer passes (`<workdir>/shards/compare`).

  Returns:
    The `compare` summary, per-example records and the report's sections.
  """
  labels = runs[0].data.labels
  predictions = {f"prediction.{r.name}": np.asarray(r.artifacts[_PREDICTION])
                 for r in runs}
  gathered = executor.gather(predictions | {"label": labels})
  labelled = gathered["label"] >= 0
  any_right = np.zeros(int(labelled.sum()), bool)
  for r in runs:
    any_right |= gathered[f"prediction.{r.name}"][labelled] == gathered[
        "label"][labelled]
  records: dict[str, np.ndarray] = {"id": runs[0].data.ids, "label": labels}
  for r in runs:
    records[f"{r.name}_prediction"] = predictions[f"prediction.{r.name}"]
    records[f"{r.name}_correct"] = predictions[f"prediction.{r.name}"] == labels
  gallery = int(config.compare.gallery)
  transfers, transferred = _transfer(runs, executor, int(config.batch_size),
                                     labels, records, gallery)
  overlaps, overlapping = _sis_overlap(
      runs, executor, float(config.sis.subset_fractions[0]), records, gallery)
  summary = {
      "models": [r.name for r in runs],
      "ensembles": {r.name: list(r.members) for r in runs if r.members},
      "examples": int(len(gathered["label"])),
      "labelled": int(labelled.sum()),
      "table": metrics_table(runs),
      "pairs": _accuracy_pairs(runs, gathered),
      "oracle_top1": float(any_right.mean()) if len(any_right) else None,
      "transfer": transfers,
      "subset_overlap": overlaps,
  }
  sections = report.sections(
      summary, _disagreements(runs, gathered, gallery),
      transferred, overlapping, runs[0].data.fetch,
      runs[0].data.label_space.names)
  return StageOutput(summary=summary, records=records, sections=sections)
