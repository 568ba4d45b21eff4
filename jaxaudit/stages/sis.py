"""Overinterpretation: sufficient input subsets by batched gradient backward selection.

Carter et al., "Overinterpretation reveals image classification model
pathologies" (NeurIPS 2021). For each image, BGSIS (`jaxaudit.sis.bgsis`) ranks
every feature (a pixel, or a block of pixels on large inputs) for the model's
predicted class; the stage reports how accurate the model is on the top-ranked
5% / 10% of features alone against as many random ones, the size of the
sufficient input subset (SIS) and how much of it lies in the image border.

Artifacts: `sis.ranks` [N, F] (the rank of each feature, 0 = most important;
on disk) and `sis.size` [N] (features in the SIS).
"""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaudit.artifacts import ArtifactSpec, Contract
from jaxaudit.data.pixels import unit_images
from jaxaudit.errors import ConfigError
from jaxaudit.models.classifier import ModelDims
from jaxaudit.report import sis as report
from jaxaudit.sis import bgsis
from jaxaudit.sis import masks
from jaxaudit.sis import subsets
from jaxaudit.stages.base import StageContext, StageOutput, config_field


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      # p(predicted class) the SIS must keep (the paper: 0.99 on CIFAR-10).
      "threshold": 0.9,
      # Feature side in pixels; 0 = image_size // 32: single pixels on 32x32
      # inputs, 7x7 blocks (a 32x32 grid) on 224x224 inputs.
      "block_size": 0,
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
  })


def _grid(config: ml_collections.ConfigDict, image_size: int
          ) -> tuple[int, int]:
  """(block side, features F) of `config.sis` on `image_size` inputs."""
  with config_field("config.sis"):
    block = masks.resolve_block_size(config.sis.block_size, image_size)
  side = masks.grid_side(image_size, block)
  return block, side * side


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
  block, _ = _grid(config, dims.input_size)
  with config_field("config.sis"):
    masks.border_band(masks.grid_side(dims.input_size, block), block,
                      cfg.border_fraction)


def contract(config: ml_collections.ConfigDict, dims: ModelDims) -> Contract:
  _, num_features = _grid(config, dims.input_size)
  return Contract(produces=(
      ArtifactSpec("sis.ranks", (num_features,), "int32", large=True),
      ArtifactSpec("sis.size", (), "int32")))


def fraction_name(fraction: float) -> str:
  """0.05 -> "5%"."""
  return f"{100 * fraction:g}%"


def _metrics(arrays: dict, fractions: tuple[float, ...], threshold: float,
             num_features: int, uniform_share: float) -> dict:
  label = arrays["label"]
  labelled = label >= 0
  names = [fraction_name(f) for f in fractions]

  def mean(values):
    return float(values.mean()) if values.size else float("nan")

  subset = arrays["subset_prediction"]
  random = arrays["random_prediction"]
  target = arrays["target"]
  found = arrays["sis_found"]
  return {
      "threshold": threshold,
      "num_features": num_features,
      "subset_accuracy": {n: mean(subset[labelled, c] == label[labelled])
                          for c, n in enumerate(names)},
      "random_subset_accuracy": {
          n: mean(random[labelled, :, c] == label[labelled, None])
          for c, n in enumerate(names)},
      "subset_agreement": {n: mean(subset[:, c] == target)
                           for c, n in enumerate(names)},
      "random_subset_agreement": {n: mean(random[:, :, c] == target[:, None])
                                  for c, n in enumerate(names)},
      "sis_found_share": mean(found),
      "sis_size_median": (float(np.median(arrays["sis_size"][found]))
                          if found.any() else float("nan")),
      "sis_fraction_median": (float(np.median(arrays["sis_size"][found]))
                              / num_features if found.any() else float("nan")),
      "border_share_median": (float(np.median(arrays["border_share"][found]))
                              if found.any() else float("nan")),
      "border_share_uniform": uniform_share,
  }


def run(ctx: StageContext) -> StageOutput:
  """BGSIS on every example; see the module docstring."""
  cfg = ctx.config.sis
  image_size = ctx.model.input_size
  block, num_features = _grid(ctx.config, image_size)
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
                     float(band.sum() / image_size ** 2))
  metrics.update(block_size=block, num_steps=len(settings.removals),
                 curve_fractions=(kept / num_features).tolist())
  records = {"id": ctx.data.ids, "target": local["target"],
             "sis_size": local["sis_size"], "sis_found": local["sis_found"],
             "sis_fraction": local["sis_size"] / num_features,
             "border_share": local["border_share"], "curve": local["curve"]}
  labels = ctx.data.labels
  for c, fraction in enumerate(fractions):
    name = fraction_name(fraction).rstrip("%")
    records[f"subset_{name}pct_correct"] = (
        local["subset_prediction"][:, c] == labels)
    records[f"random_{name}pct_accuracy"] = (
        local["random_prediction"][:, :, c] == labels[:, None]).mean(-1)
  picked = np.flatnonzero(gathered["sis_found"])[:cfg.gallery_size]
  ranks = ctx.executor.rows_of(local["ranks"], gathered["id"][picked])
  expand = lambda keep: np.asarray(masks.expand(keep[None], block))[0]
  sections = report.sections(metrics, gathered, kept, block, picked, ranks,
                             expand, baseline, ctx.model.class_names,
                             ctx.data.fetch)
  return StageOutput(summary=metrics, records=records, sections=sections,
                     artifacts={"sis.ranks": local["ranks"],
                                "sis.size": local["sis_size"].astype(np.int32)})
