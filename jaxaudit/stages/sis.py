"""Overinterpretation: sufficient input subsets by batched gradient backward selection.

Carter et al., "Overinterpretation reveals image classification model
pathologies" (NeurIPS 2021). For each image, BGSIS (`jaxaudit.sis.bgsis`) ranks
every feature (a pixel, or a block of pixels on large inputs) for the model's
predicted class; the stage reports how accurate the model is on the top-ranked
5% / 10% of features alone against as many random ones, the size of the
sufficient input subset (SIS) and how much of it lies in the image border.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaudit import sharding
from jaxaudit.errors import ConfigError
from jaxaudit.report import sections as rs
from jaxaudit.sis import bgsis
from jaxaudit.sis import masks
from jaxaudit.sis import subsets
from jaxaudit.stages import forward
from jaxaudit.stages.base import StageContext, StageOutput


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


def check_config(cfg: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the bad `config.sis` field."""
  if not 0.0 < cfg.threshold <= 1.0:
    raise ConfigError(f"config.sis.threshold must be in (0, 1], got {cfg.threshold}")
  if not 0.0 <= cfg.step_fraction <= 1.0:
    raise ConfigError("config.sis.step_fraction must be in [0, 1], got "
                      f"{cfg.step_fraction}")
  if not 0.0 <= cfg.min_step_fraction <= 1.0:
    raise ConfigError("config.sis.min_step_fraction must be in [0, 1], got "
                      f"{cfg.min_step_fraction}")
  fractions = tuple(cfg.subset_fractions)
  if not fractions or not all(0.0 < f <= 1.0 for f in fractions):
    raise ConfigError("config.sis.subset_fractions must be fractions in (0, 1], "
                      f"got {fractions}")
  if cfg.random_seeds < 1:
    raise ConfigError(f"config.sis.random_seeds must be >= 1, got {cfg.random_seeds}")


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


def _triplets(ctx: StageContext, arrays: dict, block: int,
              baseline: np.ndarray) -> list[list[rs.Tile]]:
  names = ctx.model.class_names
  picked = np.flatnonzero(arrays["sis_found"])[:ctx.config.sis.gallery_size]
  images = ctx.data.fetch(arrays["id"][picked])
  rows = []
  for image, i in zip(images, picked):
    keep = (arrays["ranks"][i] < arrays["sis_size"][i]).astype(np.float32)
    pixel = np.asarray(masks.expand(keep[None], block))[0]
    kept = image * pixel + np.round(baseline * 255.0) * (1 - pixel)
    rows.append([
        rs.Tile(image, f"predicted: {names[arrays['target'][i]]}"),
        rs.Tile(pixel[..., 0], f"SIS: {arrays['sis_size'][i]} features"),
        rs.Tile(kept.astype(np.uint8), "SIS pixels only"),
    ])
  return rows


def _sections(ctx: StageContext, arrays: dict, metrics: dict, kept: np.ndarray,
              block: int, baseline: np.ndarray) -> list[rs.Section]:
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
  series = {"median": (x, np.median(arrays["curve"], 0).tolist())}
  for i in range(min(5, len(arrays["id"]))):
    series[f"id {arrays['id'][i]}"] = (x, arrays["curve"][i].tolist())
  curves = rs.Plot("Confidence along the ranking", series,
                   xlabel="fraction of features kept",
                   ylabel="p(predicted class)")
  items = [headline, accuracy, bars, curves]
  rows = _triplets(ctx, arrays, block, baseline)
  if rows:
    items.append(rs.Gallery("Image / SIS mask / SIS pixels only", rows))
  return [rs.Section("Overinterpretation (sufficient input subsets)", items)]


def _write_masks(ctx: StageContext, local: dict, block: int) -> None:
  """records/sis/_masks-part-*.npz (the `_` keeps Parquet readers off it)."""
  folder = os.path.join(ctx.workdir, "records", "sis")
  os.makedirs(folder, exist_ok=True)
  name = (f"_masks-part-{jax.process_index():05d}-of-"
          f"{jax.process_count():05d}.npz")
  path = os.path.join(folder, name)
  tmp = f"{path}.tmp.npz"
  np.savez_compressed(tmp, id=ctx.data.ids, ranks=local["ranks"],
                      sis_size=local["sis_size"], block_size=block)
  os.replace(tmp, path)


def run(ctx: StageContext) -> StageOutput:
  """BGSIS on every example; see the module docstring."""
  cfg = ctx.config.sis
  check_config(cfg)
  image_size = ctx.model.preprocessing.image_size
  block = masks.resolve_block_size(cfg.block_size, image_size)
  side = masks.grid_side(image_size, block)
  num_features = side * side
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
    return subsets.analyse(model.logits_fn(params),
                           forward.unit_images(batch["image"]), batch["id"],
                           rng, jnp.asarray(baseline), jnp.asarray(band),
                           settings)

  local = ctx.map_batches("bgsis", step, (ctx.params, ctx.rng),
                          {"image": ctx.data.images, "id": ctx.data.ids},
                          batch_size=cfg.batch_size or None)
  _write_masks(ctx, local, block)
  arrays = sharding.gather_to_all(dict(local, label=ctx.data.labels),
                                  ctx.data.ids)
  kept = bgsis.kept_counts(np.asarray(settings.removals))
  metrics = _metrics(arrays, fractions, settings.threshold, num_features,
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
  return StageOutput(summary=metrics, records=records,
                     sections=_sections(ctx, arrays, metrics, kept, block,
                                        baseline))
