"""Overinterpretation: sufficient input subsets by batched gradient backward selection.

Carter et al., "Overinterpretation reveals image classification model
pathologies" (NeurIPS 2021). For each image, BGSIS (`jaxaudit.sis.bgsis`) ranks
every feature (a pixel, or a block of pixels on large inputs) for the model's
predicted class; the stage reports how accurate the model is on the top-ranked
5% / 10% of features alone against as many random ones, the size of the
sufficient input subset (SIS) and how much of it lies in the image border.

An SIS exists only where the full image meets `config.sis.threshold` (the
share below it is reported). The stage also reports the confidence the
top-ranked subsets keep in the full-image prediction, overall and per predicted
class, and, with `config.sis.exact.num_examples`, exact backward selection
(`jaxaudit.sis.exact`) against BGSIS on the same images and feature grid.

Artifacts: `sis.ranks` [N, F] (the rank of each feature, 0 = most important;
on disk), `sis.size` [N] (features in the SIS) and `sis.found` [N] (whether
the image has one).
"""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaudit.artifacts import ArtifactSpec, Contract
from jaxaudit.data.pixels import unit_images
from jaxaudit.errors import ConfigError, DataError
from jaxaudit.models.classifier import ModelDims
from jaxaudit.report import human as human_report
from jaxaudit.report import sis as report
from jaxaudit.sis import bgsis
from jaxaudit.sis import masks
from jaxaudit.sis import subsets
from jaxaudit.stages.base import StageContext, StageOutput, config_field
from jaxaudit.stages.base import local_rows, study_rows
from jaxaudit.study import metrics as study_metrics
from jaxaudit.study.metrics import Study


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      # People's judgements of the study's subset tasks (comma-separated
      # files or folders from python -m jaxaudit.annotate's page), scored
      # into a finished run: jaxaudit.study_inputs.
      "judgements": "",
      # p(predicted class) the SIS must keep (the paper: 0.99 on CIFAR-10).
      "threshold": 0.9,
      # Feature side in pixels: 1 = single pixels, as Carter et al. select
      # (ranked by the gradient, 10% ImageNet subsets of 7 x 7 blocks keep 1
      # of 64 predictions, of pixels 31: README); 0 = about a 32 x 32 grid
      # (the largest divisor of the size up to size // 32: 224 -> 7, 240 ->
      # 6, 260 -> 5).
      "block_size": 1,
      # Each selection step removes step_fraction of the remaining features,
      # at least min_step_fraction of all (0 and 0.01: 100 equal steps).
      "step_fraction": 0.1,
      "min_step_fraction": 0.005,
      "baseline": "mean",  # mean (zero after normalisation) | black | gray.
      "subset_fractions": (0.05, 0.1),
      "random_seeds": 3,  # Random subsets per image and fraction.
      "border_fraction": 0.1,  # Border band width / image side.
      "batch_size": 0,  # 0 = config.batch_size.
      "gallery_size": 12,
      # Exact backward selection (every remaining feature's removal scored
      # by a forward pass, F (F + 1) / 2 passes an image) beside BGSIS on the
      # same grid, for the first num_examples images (0 = off).
      "exact": ml_collections.ConfigDict({
          "num_examples": 0,
          # Feature side in pixels; 0 = about a 16 x 16 grid (the largest
          # divisor of the size up to size // 16: 2 x 2 pixels on CIFAR-10).
          "block_size": 0,
          "chunk": 32,  # Candidates per forward pass and image.
          "batch_size": 8,  # Images per step (each scores `chunk` at once).
      }),
  })


def _grid(block_size: int, image_size: int, field: str) -> tuple[int, int]:
  """(block side, features F) of a grid of `block_size` blocks (0 = the
  default of `masks.resolve_block_size`) on `image_size` inputs; a bad size
  raises ConfigError naming `field`."""
  with config_field(field):
    block = masks.resolve_block_size(block_size, image_size)
  side = masks.grid_side(image_size, block)
  return block, side * side


def _exact_grid(config: ml_collections.ConfigDict, image_size: int
                ) -> tuple[int, int]:
  """The grid of `config.sis.exact` (0 = about 16 x 16:
  `masks.default_block_size(image_size, 16)`)."""
  return _grid(config.sis.exact.block_size
               or masks.default_block_size(image_size, 16),
               image_size, "config.sis.exact")


def check_config(config: ml_collections.ConfigDict, dims: ModelDims) -> None:
  """Raises ConfigError naming the bad `config.sis` field."""
  cfg = config.sis
  if not 0.0 < cfg.threshold <= 1.0:
    raise ConfigError(f"config.sis.threshold must be in (0, 1], got "
                      f"{cfg.threshold}")
  if not 0.0 <= cfg.step_fraction <= 1.0:
    raise ConfigError("config.sis.step_fraction must be in [0, 1], got "
                      f"{cfg.step_fraction}")
  if not 0.0 <= cfg.min_step_fraction <= 1.0:
    raise ConfigError("config.sis.min_step_fraction must be in [0, 1], got "
                      f"{cfg.min_step_fraction}")
  fractions = tuple(cfg.subset_fractions)
  if not fractions or not all(0.0 < f <= 1.0 for f in fractions):
    raise ConfigError("config.sis.subset_fractions must be fractions in (0, 1],"
                      f" got {fractions}")
  if cfg.random_seeds < 1:
    raise ConfigError(f"config.sis.random_seeds must be >= 1, got "
                      f"{cfg.random_seeds}")
  if cfg.baseline not in masks.BASELINES:
    raise ConfigError(f"config.sis.baseline: unknown '{cfg.baseline}'; valid: "
                      + ", ".join(masks.BASELINES))
  exact_cfg = cfg.exact
  for field in ("num_examples", "block_size"):
    if exact_cfg[field] < 0:
      raise ConfigError(f"config.sis.exact.{field} must be >= 0, got "
                        f"{exact_cfg[field]}")
  for field in ("chunk", "batch_size"):
    if exact_cfg[field] < 1:
      raise ConfigError(f"config.sis.exact.{field} must be >= 1, got "
                        f"{exact_cfg[field]}")
  _exact_grid(config, dims.input_size)
  block, _ = _grid(config.sis.block_size, dims.input_size, "config.sis")
  with config_field("config.sis"):
    masks.border_band(masks.grid_side(dims.input_size, block), block,
                      cfg.border_fraction)


def contract(config: ml_collections.ConfigDict, dims: ModelDims) -> Contract:
  _, num_features = _grid(config.sis.block_size, dims.input_size,
                          "config.sis")
  return Contract(produces=(
      ArtifactSpec("sis.ranks", (num_features,), "int32", large=True),
      ArtifactSpec("sis.size", (), "int32"),
      ArtifactSpec("sis.found", (), "bool")))


def fraction_name(fraction: float) -> str:
  """0.05 -> "5%"."""
  return f"{100 * fraction:g}%"


_mean = subsets.mean_or_nan
_median = subsets.median_or_nan


def _metrics(arrays: dict, fractions: tuple[float, ...], threshold: float,
             num_features: int, uniform_share: float,
             class_names: tuple[str, ...]) -> dict:
  label = arrays["label"]
  labelled = label >= 0
  names = [fraction_name(f) for f in fractions]
  subset = arrays["subset_prediction"]
  confidence = arrays["subset_confidence"]
  random = arrays["random_prediction"]
  target = arrays["target"]
  found = arrays["sis_found"]
  full = arrays["curve"][:, 0]
  by_class = {}
  for k in np.unique(target):
    rows = target == k
    by_class[class_names[k]] = {"images": int(rows.sum()),
                                "full": _mean(full[rows])} | {
        n: _mean(confidence[rows, c]) for c, n in enumerate(names)}
  return {
      "threshold": threshold,
      "num_features": num_features,
      "subset_accuracy": {n: _mean(subset[labelled, c] == label[labelled])
                          for c, n in enumerate(names)},
      "random_subset_accuracy": {
          n: _mean(random[labelled, :, c] == label[labelled, None])
          for c, n in enumerate(names)},
      "subset_agreement": {n: _mean(subset[:, c] == target)
                           for c, n in enumerate(names)},
      "random_subset_agreement": {n: _mean(random[:, :, c] == target[:, None])
                                  for c, n in enumerate(names)},
      # Images whose prediction the top-ranked / random subsets keep (counts).
      "subset_kept": {n: int((subset[:, c] == target).sum())
                      for c, n in enumerate(names)},
      "random_subset_kept": {
          n: float((random[:, :, c] == target[:, None]).mean(1).sum())
          for c, n in enumerate(names)},
      # p(full-image prediction): on the full images, on the top-ranked
      # subsets; per class of the full-image prediction.
      "full_confidence": _mean(full),
      "subset_confidence": {n: _mean(confidence[:, c])
                            for c, n in enumerate(names)},
      "confidence_by_class": by_class,
      # An SIS exists only where the full image meets the threshold.
      "below_threshold_share": _mean(~found),
      "sis_found_share": _mean(found),
      "sis_size_median": _median(arrays["sis_size"][found]),
      "sis_fraction_median": _median(arrays["sis_size"][found]) / num_features,
      "border_share_median": _median(arrays["border_share"][found]),
      "border_share_uniform": uniform_share,
  }


def exact_settings(config: ml_collections.ConfigDict, image_size: int
                   ) -> subsets.ExactSettings:
  """The exact-vs-BGSIS comparison's settings on `image_size` inputs: the
  `config.sis.exact` grid, with `config.sis`'s removal schedule, threshold and
  subset fractions (what the stage runs, and what
  `scripts/record_sis_exact.py` records)."""
  cfg = config.sis
  block, num_features = _exact_grid(config, image_size)
  fractions = tuple(float(f) for f in cfg.subset_fractions)
  return subsets.ExactSettings(
      block_size=block, num_features=num_features, chunk=int(cfg.exact.chunk),
      removals=tuple(bgsis.removal_schedule(
          num_features, cfg.step_fraction, cfg.min_step_fraction).tolist()),
      threshold=float(cfg.threshold),
      counts=subsets.subset_counts(fractions, num_features))


def _compare_exact(ctx: StageContext, fractions: tuple[float, ...],
                   baseline: np.ndarray) -> tuple[dict, dict]:
  """Exact selection and BGSIS on the first `config.sis.exact.num_examples`
  images. Returns (summary, process-local per-example columns by local row)."""
  cfg = ctx.config.sis
  settings = exact_settings(ctx.config, ctx.model.input_size)
  rows = int(np.searchsorted(ctx.data.ids, cfg.exact.num_examples))
  ids = ctx.data.ids[:rows]
  model = ctx.model

  def step(params, batch):
    return subsets.compare_exact(model.logits_fn(params),
                                 unit_images(batch["image"]),
                                 jnp.asarray(baseline), settings)

  local = ctx.executor.run("exact", step, ctx.params,
                           {"image": ctx.data.images[:rows]},
                           batch_size=int(cfg.exact.batch_size), ids=ids)
  columns = {k: v for k, v in local.items() if not k.endswith("_ranks")}
  gathered = ctx.executor.gather(
      columns | {"label": ctx.data.labels[:rows]}, ids=ids)
  names = [fraction_name(f) for f in fractions]
  return subsets.summarize_exact(gathered, names, settings), local


def _exact_records(local: dict, num_local: int,
                   fractions: tuple[float, ...]) -> dict[str, np.ndarray]:
  """Per-example exact-vs-BGSIS columns over all local rows: -1 / NaN where
  an example was not compared (the compared ones are the first rows)."""
  rows = len(local["target"])

  def column(values, dtype, fill):
    out = np.full((num_local,), fill, dtype)
    out[:rows] = values
    return out

  columns = {
      "exact_sis_size": column(local["exact_sis_size"], np.int32, -1),
      "bgsis_grid_sis_size": column(local["bgsis_sis_size"], np.int32, -1),
      "exact_bgsis_spearman": column(local["spearman"], np.float32, np.nan)}
  for c, fraction in enumerate(fractions):
    name = fraction_name(fraction).rstrip("%")
    columns[f"exact_bgsis_top{name}pct_overlap"] = column(
        local["top_overlap"][:, c], np.float32, np.nan)
  return columns


def _human(study: Study, gathered: dict, fractions: tuple[float, ...]
           ) -> tuple[dict, dict[str, np.ndarray]]:
  """People's accuracy on the study's pixel subsets against the model's
  (`study.metrics.subset_metrics`) and, per example, float [N] columns: the
  share of annotators naming the label from the SIS and the random pixels
  (NaN: not judged)."""
  matches = [c for c, f in enumerate(fractions)
             if np.isclose(f, study.key.subset_fraction)]
  if not matches:
    raise DataError(f"the study's subsets keep {study.key.subset_fraction} "
                    "of the features, not one of config.sis.subset_fractions "
                    "(config.study.key)")
  c = matches[0]
  tasks = study.key.ids("subset")
  rows = study_rows(gathered["id"],
                    [study.key.tasks[t].example_id for t in tasks])
  label = gathered["label"][rows]
  subset = gathered["subset_prediction"][rows, c]
  random = (gathered["random_prediction"][rows, :, c]
            == label[:, None]).mean(axis=1)
  sis = [study.key.tasks[t].variant == "sis" for t in tasks]
  summary, scores = study_metrics.subset_metrics(
      study, labels=dict(zip(tasks, label.tolist())),
      model_correct=dict(zip(tasks, np.where(sis, subset == label,
                                             random).tolist())),
      model_prediction=dict(zip(tasks, subset.tolist())))
  columns = {f"human_{v}_subset_correct": np.full(len(gathered["id"]), np.nan)
             for v in ("sis", "random")}
  for task, row in zip(tasks, rows):
    if task in scores:
      variant = study.key.tasks[task].variant
      columns[f"human_{variant}_subset_correct"][row] = scores[task]
  return summary, columns


def run(ctx: StageContext) -> StageOutput:
  """BGSIS on every example; see the module docstring."""
  cfg = ctx.config.sis
  image_size = ctx.model.input_size
  block, num_features = _grid(cfg.block_size, image_size, "config.sis")
  side = masks.grid_side(image_size, block)
  fractions = tuple(float(f) for f in cfg.subset_fractions)
  settings = subsets.SisSettings(
      block_size=block,
      removals=tuple(bgsis.removal_schedule(
          num_features, cfg.step_fraction, cfg.min_step_fraction).tolist()),
      threshold=float(cfg.threshold),
      counts=subsets.subset_counts(fractions, num_features),
      num_random=int(cfg.random_seeds))
  baseline = masks.baseline_pixel(ctx.model, cfg.baseline)
  band = masks.border_band(side, block, cfg.border_fraction)
  model = ctx.model

  def step(state, batch):
    params, rng = state
    return subsets.analyse(model.logits_fn(params), unit_images(batch["image"]),
                           batch["id"], rng, jnp.asarray(baseline),
                           jnp.asarray(band), settings)

  local = ctx.executor.run("bgsis", step, (ctx.params, ctx.rng),
                           {"image": ctx.data.images, "id": ctx.data.ids},
                           batch_size=ctx.batch_size, keep_on_disk=("ranks",))
  gathered = ctx.executor.gather(
      {k: v for k, v in local.items() if k != "ranks"}
      | {"label": ctx.data.labels})
  kept = bgsis.kept_counts(np.asarray(settings.removals))
  metrics = _metrics(gathered, fractions, settings.threshold, num_features,
                     float(band.sum() / image_size ** 2),
                     ctx.model.class_names)
  metrics.update(block_size=block, num_steps=len(settings.removals),
                 curve_fractions=(kept / num_features).tolist())
  records = {"id": ctx.data.ids, "target": local["target"],
             "full_confidence": local["curve"][:, 0],
             "sis_size": local["sis_size"], "sis_found": local["sis_found"],
             "sis_fraction": local["sis_size"] / num_features,
             "border_share": local["border_share"], "curve": local["curve"]}
  labels = ctx.data.labels
  for c, fraction in enumerate(fractions):
    name = fraction_name(fraction).rstrip("%")
    records[f"subset_{name}pct_correct"] = (
        local["subset_prediction"][:, c] == labels)
    records[f"subset_{name}pct_confidence"] = local["subset_confidence"][:, c]
    records[f"random_{name}pct_accuracy"] = (
        local["random_prediction"][:, :, c] == labels[:, None]).mean(-1)
  if cfg.exact.num_examples:
    metrics["exact_comparison"], exact_local = _compare_exact(
        ctx, fractions, baseline)
    records.update(_exact_records(exact_local, len(ctx.data.ids), fractions))
  if ctx.study is not None:
    metrics["human"], per_example = _human(ctx.study, gathered, fractions)
    rows = local_rows(gathered["id"], ctx.data.ids)
    records.update({k: v[rows] for k, v in per_example.items()})
  picked = np.flatnonzero(gathered["sis_found"])[:cfg.gallery_size]
  ranks = ctx.executor.rows_of(local["ranks"], gathered["id"][picked])
  expand = lambda keep: np.asarray(masks.expand(keep[None], block))[0]
  sections = report.sections(metrics, gathered, kept, block, picked, ranks,
                             expand, baseline, ctx.model.class_names,
                             ctx.data.fetch)
  if ctx.study is not None:
    sections.append(human_report.subset_section(metrics["human"]))
  return StageOutput(summary=metrics, records=records, sections=sections,
                     artifacts={"sis.ranks": local["ranks"],
                                "sis.size": local["sis_size"].astype(np.int32),
                                "sis.found": np.asarray(local["sis_found"],
                                                        bool)})
