"""Explanations: attribution maps, their faithfulness, and nearest neighbours.

For every example, each method in `config.explain.methods` (see
`jaxaudit.explain.METHODS`) attributes the target-class logit (the predicted class
by default) to the input pixels; the per-pixel maps (sum over channels of
|attribution|) are ranked to draw deletion and insertion curves of the target
probability, next to a random pixel order. Integrated gradients also reports its
completeness error. Nearest neighbours in penultimate features, among the
evaluated examples of the predicted and of the true class, give an example-based
explanation. When the attack stage ran earlier in the job, the adversarials of
`config.explain.adversarial_attack` (its stored `attack.adversarial.<attack>`,
read batch by batch: no attack is run again) are explained too, beside the
clean ones.

Artifacts: `explain.map.<method>` [N, S, S] and `explain.adversarial_map.
<method>` [N, S, S], on disk (the shard folders of the job).
"""

from __future__ import annotations

from typing import Callable
import zlib

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaudit import compile_count, sharding
from jaxaudit.artifacts import ArtifactSpec, Contract, Need
from jaxaudit.data.pixels import to_uint8, unit_images
from jaxaudit.errors import ConfigError
from jaxaudit.explain import METHODS
from jaxaudit.explain import baselines as baselines_lib
from jaxaudit.explain import faithfulness
from jaxaudit.explain import neighbours as neighbours_lib
from jaxaudit.explain.attribution import AttributionFn, pixel_map
from jaxaudit.models.classifier import ModelDims
from jaxaudit.report import explain as report
from jaxaudit.sharding import example_keys
from jaxaudit.stages.base import NO_FEATURES, StageContext, StageOutput
from jaxaudit.stages.base import config_field

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
      # Explained too when the attack stage ran before: its adversarials of
      # this attack (at the attack's largest epsilon) by these methods.
      "adversarial_attack": "pgd_linf",  # "" = none.
      "adversarial_methods": "integrated_gradients",
      "gallery_size": 8,
  })


def _methods(config: ml_collections.ConfigDict) -> tuple[list[str], list[str]]:
  cfg = config.explain
  return (METHODS.parse(cfg.methods, "config.explain.methods"),
          METHODS.parse(cfg.adversarial_methods,
                        "config.explain.adversarial_methods", allow_empty=True))


def check_config(config: ml_collections.ConfigDict, dims: ModelDims) -> None:
  """Method names, the target, faithfulness settings, and every method's
  parameters (traced abstractly on a tiny input)."""
  cfg = config.explain
  names, adversarial = _methods(config)
  if not -1 <= cfg.target < dims.num_classes:
    raise ConfigError(f"config.explain.target must be -1 (predicted class) or "
                      f"a class in [0, {dims.num_classes}), got {cfg.target}")
  if cfg.faithfulness.steps < 1:
    raise ConfigError("config.explain.faithfulness.steps must be >= 1, got "
                      f"{cfg.faithfulness.steps}")
  for field in ("deletion_baseline", "insertion_baseline"):
    if cfg.faithfulness[field] not in baselines_lib.KINDS:
      raise ConfigError(f"config.explain.faithfulness.{field}: unknown "
                        f"'{cfg.faithfulness[field]}'; valid: "
                        + ", ".join(baselines_lib.KINDS))
  images = jax.ShapeDtypeStruct((1, 4, 4, 3), jnp.float32)
  logits_fn = lambda x: jnp.zeros((x.shape[0], dims.num_classes)) + x.mean()
  for name in dict.fromkeys(names + adversarial):
    with config_field("config.explain"):
      method = METHODS.get(name)(cfg)
      jax.eval_shape(lambda x, t, k, method=method: method(logits_fn, x, t, k),
                     images, jnp.zeros((1,), jnp.int32),
                     jax.random.split(jax.random.key(0), 1))


def contract(config: ml_collections.ConfigDict, dims: ModelDims) -> Contract:
  names, adversarial = _methods(config)
  size = dims.input_size
  consumes = [Need("evaluate.prediction"), Need("evaluate.top5_probs")]
  if config.explain.neighbours > 0:
    consumes.append(Need("evaluate.features", optional=True))
  attack = config.explain.adversarial_attack
  if attack and adversarial:
    consumes.append(Need(f"attack.adversarial.{attack}", optional=True))
  produces = [ArtifactSpec(f"explain.map.{n}", (size, size), "float32",
                           large=True) for n in names]
  produces += [ArtifactSpec(f"explain.adversarial_map.{n}", (size, size),
                            "float32", large=True) for n in adversarial]
  return Contract(consumes=tuple(consumes), produces=tuple(produces))


def _method_step(ctx: StageContext, method: AttributionFn):
  """A pure `(state, batch) -> {map [B, S, S], scalars [B]}` for the
  executor: one method's attributions of the batch's targets. The same step
  serves clean images and adversarials (one compile for both)."""
  model = ctx.model

  def step(state, batch):
    params, rng = state
    attribution = method(model.logits_fn(params), unit_images(batch["image"]),
                         batch["target"], example_keys(rng, batch["id"]))
    return dict(attribution.scalars, map=pixel_map(attribution.attributions))

  return step


def _faithfulness_step(ctx: StageContext, num_methods: int):
  """A pure step drawing the deletion and insertion curves [B, M + 1, K + 1]
  of the M methods' maps (inputs `map_0`..) and of a random pixel order (the
  last), all in one compiled program (a `lax.map` over the orders)."""
  model, cfg = ctx.model, ctx.config.explain
  faith = cfg.faithfulness

  def step(state, batch):
    params, random_rng, faith_rng = state
    images = unit_images(batch["image"])
    logits_fn = model.logits_fn(params)
    random_maps = faithfulness.random_scores(
        example_keys(random_rng, batch["id"]), images.shape[1:3])
    maps = jnp.stack([batch[f"map_{k}"] for k in range(num_methods)]
                     + [random_maps])
    faith_keys = example_keys(faith_rng, batch["id"])
    deletion_base, insertion_base = (
        baselines_lib.make_baseline(faith[f], images, faith_keys,
                                    cfg.blur_sigma, f"faithfulness.{f}")
        for f in ("deletion_baseline", "insertion_baseline"))
    curves = jax.lax.map(
        lambda m: faithfulness.deletion_insertion(
            logits_fn, images, faithfulness.pixel_ranks(m), batch["target"],
            deletion_base, insertion_base, faith.steps), maps)
    return {"deletion": jnp.moveaxis(curves.deletion, 0, 1),
            "insertion": jnp.moveaxis(curves.insertion, 0, 1)}

  return step


def _method_rng(ctx: StageContext, name: str) -> jax.Array:
  return jax.random.fold_in(ctx.rng, zlib.crc32(name.encode()))


def _targets(ctx: StageContext, adversarials=None) -> np.ndarray:
  """int [n] the class each example's maps explain: `config.explain.target`,
  else the model's prediction on the clean images (the evaluate stage's) or
  on `adversarials` [n, S, S, 3]."""
  cfg, n = ctx.config.explain, len(ctx.data.ids)
  if cfg.target >= 0:
    return np.full(n, cfg.target, np.int32)
  if adversarials is None:
    return ctx.artifacts["evaluate.prediction"].astype(np.int32)
  model = ctx.model

  def step(params, batch):
    logits = model.logits_fn(params)(unit_images(batch["image"]))
    return {"target": jnp.argmax(logits, -1).astype(jnp.int32)}

  return ctx.executor.run("adversarial_targets", step, ctx.params,
                          {"image": adversarials},
                          batch_size=ctx.batch_size)["target"]


def _timed(timing: dict, name: str, run: Callable[[], dict]) -> dict:
  """`run()`, its compilations and seconds logged and put in `timing`."""
  with compile_count.counting() as stats, config_field("config.explain"):
    out = run()
  logging.info("explain %s: %s", name, stats.line())
  timing[name] = stats.as_dict()
  return out


def _attribute(ctx: StageContext, name: str, step, images,
               targets: np.ndarray, timing: dict) -> dict:
  """One method's maps and scalars over the local examples' `images`."""
  inputs = {"image": images, "id": ctx.data.ids.astype(np.int32),
            "target": targets}
  out = _timed(timing, name, lambda: ctx.executor.run(
      name, step, (ctx.params, _method_rng(ctx, name)), inputs,
      batch_size=ctx.batch_size, keep_on_disk=("map",)))
  out["target"] = targets
  return out


def _faithfulness(ctx: StageContext, results: dict, names: list[str],
                  targets: np.ndarray, timing: dict) -> None:
  """Deletion / insertion curves and their AUCs into `results[name]` for
  every method and the random order (`RANDOM`)."""
  inputs = {"image": ctx.data.images, "id": ctx.data.ids.astype(np.int32),
            "target": targets,
            **{f"map_{k}": results[n]["map"] for k, n in enumerate(names)}}
  state = (ctx.params, _method_rng(ctx, RANDOM),
           jax.random.fold_in(ctx.rng, 0))
  out = _timed(timing, "faithfulness", lambda: ctx.executor.run(
      "faithfulness", _faithfulness_step(ctx, len(names)), state, inputs,
      batch_size=ctx.batch_size))
  results[RANDOM] = {"target": targets}
  for k, name in enumerate(names + [RANDOM]):
    for curve in ("deletion", "insertion"):
      results[name][curve] = out[curve][:, k]
      results[name][f"{curve}_auc"] = np.asarray(
          faithfulness.area_under_curve(out[curve][:, k]))


def _neighbours(ctx: StageContext, features: np.ndarray,
                prediction: np.ndarray) -> dict[str, np.ndarray]:
  """Global ids and similarities of each local example's neighbours among
  all examples, the references sharded over the mesh where they lie."""
  labels, ids = ctx.data.labels, ctx.data.ids
  reference = (
      sharding.shard_rows(features, ctx.mesh),
      sharding.shard_rows(np.where(labels >= 0, labels, prediction), ctx.mesh,
                          fill=-2),
      sharding.shard_rows(ids.astype(np.int32), ctx.mesh, fill=-1))
  k = min(ctx.config.explain.neighbours,
          int(ctx.executor.reduce(float(len(ids)))))

  def step(state, batch):
    out = {}
    for kind in ("predicted", "true"):
      found, similarity = neighbours_lib.nearest_in_class_sharded(
          batch["features"], batch[kind], batch["id"], *state, k, ctx.mesh,
          sharding.DATA_AXIS)
      out[f"neighbours_{kind}"] = found
      out[f"similarity_{kind}"] = similarity
    return out

  return ctx.executor.run("neighbours", step, reference, {
      "features": features, "id": ids.astype(np.int32),
      "predicted": prediction, "true": labels},
      batch_size=ctx.config.batch_size)


def run(ctx: StageContext) -> StageOutput:
  """Explains every example; see the module docstring."""
  cfg = ctx.config.explain
  names, adversarial_names = _methods(ctx.config)
  steps = {name: _method_step(ctx, METHODS.get(name)(cfg))
           for name in dict.fromkeys(names + adversarial_names)}
  targets, timing = _targets(ctx), {}
  results = {name: _attribute(ctx, name, steps[name], ctx.data.images, targets,
                              timing)
             for name in names}
  _faithfulness(ctx, results, names, targets, timing)
  adversarials = ctx.artifacts.get(
      f"attack.adversarial.{cfg.adversarial_attack}")
  if adversarials is not None and adversarial_names:
    adversarial_targets = _targets(ctx, adversarials)
    for name in adversarial_names:
      results[f"adversarial_{name}"] = _attribute(
          ctx, f"adversarial_{name}", steps[name], adversarials,
          adversarial_targets, timing)
  records = {"id": ctx.data.ids, "target": results[RANDOM]["target"]}
  for name, out in results.items():
    for key, value in out.items():
      if isinstance(value, np.ndarray) and value.ndim == 1 and key != "target":
        records[f"{name}/{key}"] = value
    if name.startswith("adversarial_"):
      records[f"{name}/target"] = out["target"]
  features = ctx.artifacts.get("evaluate.features")
  forward = {"label": ctx.data.labels,
             "prediction": ctx.artifacts["evaluate.prediction"],
             "top1_prob": ctx.artifacts["evaluate.top5_probs"][:, 0]}
  notes = []
  if cfg.neighbours > 0 and features is not None:
    records.update(_neighbours(ctx, features, forward["prediction"]))
  elif cfg.neighbours > 0:
    notes.append("no nearest neighbours: " + NO_FEATURES)
  curves = {f"{name}/{key}": out[key] for name, out in results.items()
            for key in ("deletion", "insertion") if key in out}
  gathered = ctx.executor.gather(dict(records, **curves, **forward))
  summary = _summary(gathered, list(results))
  summary["timing"] = {"methods": timing}
  if notes:
    summary["notes"] = notes
  shown = report.gallery_ids(gathered, cfg.gallery_size)
  maps = {"id": shown}
  for name, out in results.items():
    if "map" in out:
      maps[f"{name}/map"] = ctx.executor.rows_of(out["map"], shown)
  if adversarials is not None and adversarial_names:
    maps["adversarial/image"] = to_uint8(ctx.executor.rows_of(adversarials,
                                                              shown))
  artifacts = {f"explain.map.{name}": results[name]["map"] for name in names}
  artifacts.update({f"explain.adversarial_map.{name}":
                    results[f"adversarial_{name}"]["map"]
                    for name in adversarial_names
                    if f"adversarial_{name}" in results})
  return StageOutput(summary=summary, records=records, artifacts=artifacts,
                     sections=report.sections(gathered, maps, summary,
                                              ctx.model.class_names,
                                              ctx.data.fetch))


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
