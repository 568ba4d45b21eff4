"""Explanations: attribution maps, their faithfulness, and nearest neighbours.

For every example, each method in `config.explain.methods` (see
`jaxaudit.explain.METHODS`) attributes the target-class logit (the predicted class
by default) to the input pixels; the per-pixel maps (sum over channels of
|attribution|) are ranked to draw deletion and insertion curves of the target
probability, next to a random pixel order. Integrated gradients also reports its
completeness error. Nearest neighbours in penultimate features, among the
evaluated examples of the predicted and of the true class, give an example-based
explanation. When the attack stage ran earlier in the job, the adversarials of
its gallery attack at the largest epsilon (`config.attack.gallery_attack`) are
explained too, beside the clean ones: they are found again batch by batch, with
the attack stage's per-example keys, so no stage holds every adversarial image.

Outputs: `records/explain/part-*.parquet` (per-example scalars) and
`records/explain/_maps-part-*.npz` (maps [n, H, W] and curves [n, K + 1] per
method; the leading `_` keeps Parquet readers of the folder from opening it).
"""

from __future__ import annotations

import os
import zlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaudit import sharding
from jaxaudit.errors import ConfigError
from jaxaudit.explain import METHODS
from jaxaudit.explain import baselines as baselines_lib
from jaxaudit.explain import faithfulness
from jaxaudit.explain import neighbours as neighbours_lib
from jaxaudit.explain import sections as sections_lib
from jaxaudit.explain.attribution import AttributionFn, pixel_map
from jaxaudit.stages import attack as attack_stage
from jaxaudit.stages import forward
from jaxaudit.stages.base import StageContext, StageOutput, stage_rng

RANDOM = "random"  # The random-order reference in the faithfulness results.


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      "methods": "integrated_gradients,saliency,gradient_x_input,smoothgrad",
      "target": -1,  # -1: each example's predicted class; else a class index.
      "batch_size": 8,  # Global batch (IG evaluates batch * ig.chunk images).
      "blur_sigma": 0.05,  # Blurred baselines: Gaussian sigma / image height.
      "ig": {
          "steps": 32,
          "chunk": 8,  # Path points per gradient batch; memory ~ chunk.
          "method": "gausslegendre",  # Or riemann_{left,right,middle,trapezoid}.
          "baseline": "black",  # black | uniform | blurred.
          # > 0: probe the logit at probes + 1 points first (forward passes
          # only) and use a midpoint rule on cells of equal logit change (see
          # adaptive_nodes); 0 = the plain rule, as Captum.
          "probes": 64,
      },
      "smoothgrad": {"samples": 8, "noise": 0.15},
      "faithfulness": {
          "steps": 16,  # Points K of the deletion / insertion curves.
          "deletion_baseline": "black",  # What removed pixels become.
          "insertion_baseline": "blurred",  # What insertion starts from.
      },
      "neighbours": 5,  # Nearest neighbours per class (0 = off).
      "adversarial_methods": "integrated_gradients",  # On attack outputs.
      "gallery_size": 8,
      "save_maps": True,
  })


def _names(field: str, value: str) -> list[str]:
  names = [s.strip() for s in value.split(",") if s.strip()]
  for name in names:
    METHODS.check(name)
  if len(set(names)) != len(names):
    raise ConfigError(f"{field} lists a method twice: {value}")
  return names


def _check(cfg: ml_collections.ConfigDict, num_classes: int) -> None:
  if not -1 <= cfg.target < num_classes:
    raise ConfigError(f"config.explain.target must be -1 (predicted class) or "
                      f"a class in [0, {num_classes}), got {cfg.target}")
  if cfg.faithfulness.steps < 1:
    raise ConfigError("config.explain.faithfulness.steps must be >= 1, got "
                      f"{cfg.faithfulness.steps}")
  for field in ("deletion_baseline", "insertion_baseline"):
    if cfg.faithfulness[field] not in baselines_lib.KINDS:
      raise ConfigError(f"config.explain.faithfulness.{field}: unknown "
                        f"'{cfg.faithfulness[field]}'; valid: "
                        + ", ".join(baselines_lib.KINDS))


def _step(ctx: StageContext, method: AttributionFn | None, adversarial: bool):
  """A pure `(state, batch) -> per-example outputs` for `map_batches`.

  `method=None` ranks pixels at random (the faithfulness reference). Clean
  images get deletion / insertion curves; `adversarial=True` instead explains
  the attack stage's gallery adversarials of the batch (attacked away from the
  label, or from the prediction when unlabelled) and returns them as uint8
  `adv_image` [B, H, W, C] for the report.
  """
  model, cfg = ctx.model, ctx.config.explain
  faith = cfg.faithfulness
  attack_rng = stage_rng(ctx.config.seed, "attack")

  def step(state, batch):
    params, method_rng, faith_rng = state
    images = batch["image"]
    if images.dtype == jnp.uint8:
      images = forward.unit_images(images)
    logits_fn = model.logits_fn(params)
    out = {}
    if adversarial:
      labels = jnp.where(batch["label"] >= 0, batch["label"],
                         jnp.argmax(logits_fn(images), -1))
      adversary = attack_stage.gallery_adversary(ctx.config.attack, logits_fn,
                                                 attack_rng)
      images, _ = adversary(images, labels, batch["id"])
      out["adv_image"] = jnp.round(images * 255).astype(jnp.uint8)
    if cfg.target < 0:
      targets = jnp.argmax(logits_fn(images), -1)
    else:
      targets = jnp.full(images.shape[:1], cfg.target)
    keys = sharding.example_keys(method_rng, batch["id"])
    out["target"] = targets
    if method is None:
      maps = faithfulness.random_scores(keys, images.shape[1:3])
    else:
      attribution = method(logits_fn, images, targets, keys)
      maps = pixel_map(attribution.attributions)
      out.update(attribution.scalars, map=maps)
    if not adversarial:
      faith_keys = sharding.example_keys(faith_rng, batch["id"])
      deletion_base, insertion_base = (
          baselines_lib.make_baseline(faith[f], images, faith_keys,
                                      cfg.blur_sigma,
                                      f"config.explain.faithfulness.{f}")
          for f in ("deletion_baseline", "insertion_baseline"))
      curves = faithfulness.deletion_insertion(
          logits_fn, images, faithfulness.pixel_ranks(maps), targets,
          deletion_base, insertion_base, faith.steps)
      out.update(deletion=curves.deletion, insertion=curves.insertion)
    return out

  return step


def _attribute(ctx: StageContext, name: str, method: AttributionFn | None,
               adversarial: bool = False) -> dict[str, np.ndarray]:
  """Runs one method (or the random order) over the local examples; on their
  adversarials (no faithfulness curves) when `adversarial`."""
  rng = jax.random.fold_in(ctx.rng, zlib.crc32(name.encode()))
  state = (ctx.params, rng, jax.random.fold_in(ctx.rng, 0))
  batch = {"image": ctx.data.images, "id": ctx.data.ids.astype(np.int32)}
  if adversarial:
    batch["label"] = ctx.data.labels.astype(np.int32)
  out = ctx.map_batches(name, _step(ctx, method, adversarial),
                        state, batch, batch_size=ctx.config.explain.batch_size)
  if not adversarial:
    out["deletion_auc"] = np.asarray(
        faithfulness.area_under_curve(out["deletion"]))
    out["insertion_auc"] = np.asarray(
        faithfulness.area_under_curve(out["insertion"]))
  return out


def _explains_adversarials(ctx: StageContext) -> bool:
  """Whether the attack stage ran earlier in this job with a gallery attack."""
  cfg = ctx.config.attack
  return ("attack" in ctx.outputs
          and cfg.gallery_attack in attack_stage.attack_names(cfg))


def _neighbours(ctx: StageContext, arrays: dict[str, np.ndarray],
                rows: np.ndarray) -> dict[str, np.ndarray]:
  """Global ids and similarities of each local example's neighbours."""
  k = min(ctx.config.explain.neighbours, len(arrays["id"]))
  reference_classes = np.where(arrays["label"] >= 0, arrays["label"],
                               arrays["prediction"])
  state = (arrays["features"], reference_classes, arrays["id"])

  def step(state, batch):
    features, classes, ids = state
    out = {}
    for kind in ("predicted", "true"):
      found = neighbours_lib.nearest_in_class(
          batch["features"], batch[kind], batch["id"], features, classes, ids,
          k)
      out[f"neighbours_{kind}"] = jnp.where(found.index >= 0,
                                            ids[found.index], -1)
      out[f"similarity_{kind}"] = found.similarity
    return out

  return ctx.map_batches("neighbours", step, state, {
      "features": arrays["features"][rows], "id": ctx.data.ids,
      "predicted": arrays["prediction"][rows], "true": arrays["label"][rows]})


def _save_maps(ctx: StageContext, results: dict[str, dict]) -> None:
  """Writes this process's maps and curves atomically (tmp + rename)."""
  folder = os.path.join(ctx.workdir, "records", "explain")
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, f"_maps-part-{jax.process_index():05d}-of-"
                              f"{jax.process_count():05d}.npz")
  arrays = {"id": ctx.data.ids}
  for name, out in results.items():
    for key in ("map", "deletion", "insertion"):
      if key in out:
        arrays[f"{key}_{name}"] = out[key]
  with open(f"{path}.tmp", "wb") as f:
    np.savez(f, **arrays)
  os.replace(f"{path}.tmp", path)


def run(ctx: StageContext) -> StageOutput:
  """Explains every example; see the module docstring."""
  cfg = ctx.config.explain
  names = _names("config.explain.methods", cfg.methods)
  adversarial_names = _names("config.explain.adversarial_methods",
                             cfg.adversarial_methods)
  _check(cfg, ctx.model.num_classes)
  arrays = forward.forward(ctx)
  position = {int(i): k for k, i in enumerate(arrays["id"])}
  rows = np.asarray([position[int(i)] for i in ctx.data.ids], np.int64)
  results = {name: _attribute(ctx, name, METHODS.get(name)(cfg))
             for name in names}
  results[RANDOM] = _attribute(ctx, RANDOM, None)
  if _explains_adversarials(ctx):
    for name in adversarial_names:
      results[f"adversarial_{name}"] = _attribute(
          ctx, f"adversarial_{name}", METHODS.get(name)(cfg), adversarial=True)
  records = {"id": ctx.data.ids, "target": results[RANDOM]["target"]}
  for name, out in results.items():
    for key, value in out.items():
      if value.ndim == 1 and key != "target":
        records[f"{name}/{key}"] = value
    if name.startswith("adversarial_"):
      records[f"{name}/target"] = out["target"]
  with_neighbours = cfg.neighbours > 0 and "features" in arrays
  if with_neighbours:
    records.update(_neighbours(ctx, arrays, rows))
  if cfg.save_maps:
    _save_maps(ctx, results)
  curves = {f"{name}/{key}": out[key] for name, out in results.items()
            for key in ("deletion", "insertion") if key in out}
  gathered = sharding.gather_to_all(dict(records, **curves), ctx.data.ids)
  summary = _summary(gathered, list(results))
  if cfg.neighbours > 0 and not with_neighbours:
    summary["notes"] = ["no nearest neighbours: " + forward.NO_FEATURES]
  shown = sections_lib.gallery_ids(arrays, cfg.gallery_size)
  local = np.isin(ctx.data.ids, shown)
  shown_arrays = {f"{name}/map": out["map"][local]
                  for name, out in results.items() if "map" in out}
  shown_arrays.update({"adversarial/image": out["adv_image"][local]
                       for out in results.values() if "adv_image" in out})
  maps = sharding.gather_to_all(shown_arrays, ctx.data.ids[local])
  sections = sections_lib.explain_sections(ctx, arrays, gathered, maps,
                                           summary)
  return StageOutput(summary=summary, records=records, sections=sections)


def _summary(gathered: dict[str, np.ndarray], names: list[str]) -> dict:
  """Medians of IG completeness, mean deletion / insertion AUC per method."""
  summary = {"num_examples": int(len(gathered["id"])),
             "deletion_auc": {}, "insertion_auc": {}}
  for name in names:
    if f"{name}/deletion_auc" in gathered:
      summary["deletion_auc"][name] = round(float(
          gathered[f"{name}/deletion_auc"].mean()), 4)
      summary["insertion_auc"][name] = round(float(
          gathered[f"{name}/insertion_auc"].mean()), 4)
    if f"{name}/completeness_error" in gathered:
      prefix = "ig" if name == "integrated_gradients" else name
      # 4 decimals (here and for the AUCs), so float rounding that differs
      # between device layouts rarely shows in summary.json.
      summary[f"{prefix}_completeness_error_median"] = round(float(
          np.median(gathered[f"{name}/completeness_error"])), 4)
  return summary
