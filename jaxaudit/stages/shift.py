"""Shift: the model under common corruptions (ImageNet-C, CIFAR-10-C),
generated on the device, scored as the clean images are.

Each selected corruption (`jaxaudit.corruptions.spec`) is one compiled step:
the batch's images at every selected severity (a vmap over the severity, so
one program serves all of them), rounded to 8 bits as the references store
them, and the model's forward pass on all of them at once. An image's
corruption draws from the key of (the stage, the corruption, its global id,
the severity): the same on any device layout and process count.

Per corruption and severity the summary holds top-1, the rectified top-1
under the job's one judgement (`config.taxonomy`: an error a person would
accept counts as correct), the share of errors so accepted, the expected
calibration error, NLL, and the flip rate (prediction differs from the clean
prediction, labelled or not); per corruption the mean error over severities,
and for an ImageNet model on ImageNet parameters at all five severities the
corruption errors, mCE and relative mCE against AlexNet
(`jaxaudit.corruptions.scores`); means per family and per severity.
"""

from __future__ import annotations

import functools
import zlib

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaudit import classes
from jaxaudit import compile_count
from jaxaudit.artifacts import ArtifactSpec, Contract, Need
from jaxaudit.calibration import binning
from jaxaudit.corruptions import scores, spec
from jaxaudit.data.pixels import unit_images
from jaxaudit.errors import ConfigError
from jaxaudit.models.classifier import ModelDims
from jaxaudit.report import shift as report
from jaxaudit.sharding import example_keys
from jaxaudit.stages.base import StageContext, StageOutput, config_field
from jaxaudit.stages.base import local_rows
from jaxaudit.taxonomy import judgement

# Inputs up to this side get CIFAR-10-C's numbers under "auto".
CIFAR_MAX_SIZE = 64
SAMPLE_NOTE = ("mCE and relative mCE compare with AlexNet's errors on the "
               "whole ImageNet validation set: on a sample easier than it "
               "(fewer errors when clean) they come out lower than the "
               "model's published numbers")


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      # Comma-separated corruption names, or "all" (ImageNet-C's 15 and the
      # 4 extra), "imagenet_c" (the 15) or "extra".
      "corruptions": "all",
      "severities": (1, 2, 3, 4, 5),
      # "imagenet" (imagecorruptions' numbers), "cifar" (make_cifar_c.py's),
      # or "auto": "cifar" for inputs of at most 64 pixels.
      "parameter_set": "auto",
      "calibration_bins": 15,  # Equal-width bins of the ECE.
      "gallery_corruptions": 4,  # Corruptions shown in the report gallery.
      "gallery_size": 6,  # Flipped images shown per corruption.
      "batch_size": 0,  # 0 = config.batch_size (images; x severities).
  })


def parameter_set(config: ml_collections.ConfigDict, input_size: int) -> str:
  """The resolved `config.shift.parameter_set`."""
  chosen = config.shift.parameter_set
  if chosen == "auto":
    return "cifar" if input_size <= CIFAR_MAX_SIZE else "imagenet"
  return chosen


def corruption_names(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The selected corruptions (raises ConfigError naming the field)."""
  try:
    return spec.select(config.shift.corruptions)
  except ValueError as e:
    raise ConfigError(f"config.shift.corruptions: {e}") from e


def severities(config: ml_collections.ConfigDict) -> tuple[int, ...]:
  """The selected severities, ascending (raises ConfigError)."""
  values = config.shift.severities
  if isinstance(values, (int, float)):
    values = (values,)
  if (not len(values) or any(int(v) != v or not 1 <= v <= spec.SEVERITIES
                             for v in values)
      or len(set(values)) != len(values)):
    raise ConfigError("config.shift.severities: distinct integers in 1-"
                      f"{spec.SEVERITIES}, got {tuple(values)}")
  return tuple(sorted(int(v) for v in values))


def check_config(config: ml_collections.ConfigDict, dims: ModelDims) -> None:
  cfg = config.shift
  if cfg.parameter_set not in ("auto", *spec.PARAMETER_SETS):
    raise ConfigError(f"config.shift.parameter_set: unknown "
                      f"'{cfg.parameter_set}'; valid: auto, "
                      + ", ".join(spec.PARAMETER_SETS))
  severities(config)
  for field in ("calibration_bins",):
    if cfg[field] < 1:
      raise ConfigError(f"config.shift.{field} must be >= 1")
  for field in ("gallery_corruptions", "gallery_size", "batch_size"):
    if cfg[field] < 0:
      raise ConfigError(f"config.shift.{field} must be >= 0")
  names = corruption_names(config)
  if dims is not None:
    chosen = parameter_set(config, dims.input_size)
    for name in names:
      _tables(name, chosen, dims.input_size)


def _tables(name: str, chosen: str, size: int) -> dict[str, np.ndarray]:
  """One corruption's tables for `size` x `size` images (its ConfigError,
  e.g. frost's, names the corruption)."""
  try:
    return spec.CORRUPTIONS[name].build(name, chosen, size, size)
  except ConfigError as e:
    raise ConfigError(f"config.shift.corruptions: {name}: {e}") from e


def contract(config: ml_collections.ConfigDict, dims: ModelDims) -> Contract:
  shape = (len(corruption_names(config)), len(severities(config)))
  return Contract(
      consumes=(Need("evaluate.prediction"), Need("evaluate.top5_probs")),
      produces=(ArtifactSpec("shift.prediction", shape, "int64"),))


def corruption_key(rng: jax.Array, name: str) -> jax.Array:
  """The stage key of one corruption (its images' keys fold in their ids)."""
  return jax.random.fold_in(rng, zlib.crc32(name.encode()))


def corrupted_levels(entry: spec.CorruptionSpec, built, images: jax.Array,
                     keys: jax.Array, chosen: jax.Array) -> jax.Array:
  """[B, S, S, 3] images in [0, 1] -> float [len(chosen), B, S, S, 3]: the
  corrupted images rounded down to 8 bits, as the references store them."""
  out = spec.corrupt(entry, built, images, keys, chosen)
  return spec.to_levels(out).astype(jnp.float32) / 255


def _step(model, entry: spec.CorruptionSpec):
  """The compiled step of one corruption: predictions at every severity."""

  def step(state, batch):
    params, built, rng, chosen = state
    images = unit_images(batch["image"])
    keys = example_keys(rng, batch["id"])
    corrupted = corrupted_levels(entry, built, images, keys, chosen)
    s, b = corrupted.shape[:2]
    logits = model.logits(params, corrupted.reshape(
        (s * b,) + corrupted.shape[2:])).astype(jnp.float32)
    logp = jax.nn.log_softmax(logits.reshape(s, b, -1), axis=-1)
    label = jnp.maximum(batch["label"], 0)
    label_logp = jnp.take_along_axis(
        logp, jnp.broadcast_to(label[None, :, None], (s, b, 1)), -1)[..., 0]
    return {"prediction": jnp.argmax(logp, -1).T.astype(jnp.int32),
            "confidence": jnp.exp(jnp.max(logp, -1)).T,
            "label_logprob": label_logp.T}

  return step


def _run_corruptions(ctx: StageContext, names, chosen, size: int
                     ) -> tuple[dict[str, np.ndarray], dict]:
  """Every corruption over this process's examples.

  Returns:
    ({prediction, confidence, label_logprob} each [n, C, S]), timing per
    corruption.
  """
  set_name = parameter_set(ctx.config, ctx.model.input_size)
  inputs = {"image": ctx.data.images, "id": ctx.data.ids.astype(np.int32),
            "label": ctx.data.labels.astype(np.int32)}
  outputs, timing = {}, {}
  for name in names:
    entry = spec.CORRUPTIONS[name]
    logging.info("shift %s: severities %s", name, list(chosen))
    with compile_count.counting() as stats:
      built = jax.tree.map(jnp.asarray, _tables(name, set_name, size))
      state = (ctx.params, built, corruption_key(ctx.rng, name),
               jnp.asarray(chosen, jnp.int32))
      outputs[name] = ctx.executor.run(
          name, _step(ctx.model, entry), state, inputs,
          batch_size=ctx.batch_size)
    logging.info("shift %s: %s", name, stats.line())
    timing[name] = stats.as_dict()
  stacked = {k: np.stack([outputs[n][k] for n in names], axis=1)
             for k in ("prediction", "confidence", "label_logprob")}
  return stacked, timing


def _mean(values: np.ndarray) -> float:
  return float(values.mean()) if values.size else float("nan")


def score_point(labels: np.ndarray, prediction: np.ndarray,
                confidence: np.ndarray, label_logprob: np.ndarray,
                clean: np.ndarray, accepted: np.ndarray, bins: int) -> dict:
  """The metrics of one corruption at one severity.

  Args:
    labels: int [N] (-1 unlabelled: only the flip rate counts it).
    prediction, confidence, label_logprob: [N] under the corruption.
    clean: int [N] the clean predictions.
    accepted: bool [N] the judgement accepts the prediction for the label.
    bins: equal-width bins of the ECE.
  """
  labelled = labels >= 0
  correct = (prediction == labels)[labelled]
  errors = ~correct
  return {
      "top1": _mean(correct),
      "rectified_top1": _mean(correct | accepted[labelled]),
      "accepted_errors": _mean(accepted[labelled][errors]),
      "num_errors": int(errors.sum()),
      "ece": (binning.ece(confidence[labelled], correct, bins, "equal_width")
              if labelled.any() else float("nan")),
      "nll": _mean(-label_logprob[labelled]),
      "flip_rate": _mean(prediction != clean),
  }


def analyse(gathered: dict, names, chosen, taxonomy: judgement.Taxonomy,
            sets, bins: int) -> tuple[dict, dict]:
  """Metrics from every process's outputs (sorted by id).

  Args:
    gathered: `label`, `clean` [N]; `prediction`, `confidence`,
      `label_logprob` [N, C, S].
    names, chosen: the corruptions and severities.
    taxonomy, sets: the job's judgement and its label sets of [N].
    bins: ECE bins.

  Returns:
    (per-point metrics {metric: {corruption: {severity: value}}}, columns
    `accepted` bool [N, C, S]).
  """
  labels, clean = gathered["label"], gathered["clean"]
  accepted = np.zeros(gathered["prediction"].shape, bool)
  points: dict[str, dict] = {}
  for c, name in enumerate(names):
    for s, severity in enumerate(chosen):
      pred = gathered["prediction"][:, c, s]
      accepted[:, c, s] = (taxonomy.judge(labels, pred, sets)["plausible"]
                           & (labels >= 0))
      point = score_point(labels, pred, gathered["confidence"][:, c, s],
                          gathered["label_logprob"][:, c, s], clean,
                          accepted[:, c, s], bins)
      for metric, value in point.items():
        points.setdefault(metric, {}).setdefault(name, {})[
            str(severity)] = value
  return points, {"accepted": accepted}


def _aggregates(points: dict, names, chosen) -> dict:
  """Means over corruptions per severity, and per family over severities."""
  metrics = ("top1", "rectified_top1", "ece", "flip_rate")
  per_severity = {m: {str(s): float(np.mean([points[m][n][str(s)]
                                             for n in names]))
                      for s in chosen} for m in metrics}
  families: dict[str, list[str]] = {}
  for name in names:
    families.setdefault(spec.CORRUPTIONS[name].family, []).append(name)
  per_family = {f: {m: float(np.mean([v for n in members
                                      for v in points[m][n].values()]))
                    for m in metrics} for f, members in families.items()}
  return {"mean_over_corruptions": per_severity, "family": per_family}


def _baseline_scores(points: dict, names, chosen, clean_top1: float,
                     label_space: str, set_name: str) -> tuple[dict, list]:
  """Corruption errors, mCE and relative mCE, where they mean something."""
  why = []
  if label_space != classes.IMAGENET1K:
    why.append(f"the model's classes are {label_space}, not ImageNet's")
  if set_name != "imagenet":
    why.append(f"the corruptions use the {set_name} parameters")
  if tuple(chosen) != tuple(range(1, spec.SEVERITIES + 1)):
    why.append("not all five severities ran")
  if why:
    return {}, ["no mCE against AlexNet: " + "; ".join(why)]
  errors = {n: [1 - points["top1"][n][str(s)] for s in chosen] for n in names}
  out = scores.corruption_scores(
      errors, 1 - clean_top1,
      {n: spec.CORRUPTIONS[n].family for n in names})
  notes = [SAMPLE_NOTE]
  if np.isnan(out["mce"]):
    notes.append("mCE needs all 15 ImageNet-C corruptions "
                 "(config.shift.corruptions)")
  return out, notes


def _clean(gathered: dict, taxonomy, sets, bins: int) -> dict:
  labels, clean = gathered["label"], gathered["clean"]
  labelled = labels >= 0
  correct = (clean == labels)[labelled]
  accepted = taxonomy.judge(labels, clean, sets)["plausible"][labelled]
  return {"top1": _mean(correct),
          "rectified_top1": _mean(correct | accepted),
          "ece": (binning.ece(gathered["clean_confidence"][labelled], correct,
                              bins, "equal_width")
                  if labelled.any() else float("nan"))}


def first_flips(prediction: np.ndarray, clean: np.ndarray,
                chosen) -> np.ndarray:
  """int [N, C]: the lowest severity whose prediction differs from the
  clean one (0: none does), from predictions [N, C, S]."""
  flipped = prediction != clean[:, None, None]
  first = np.argmax(flipped, axis=-1)
  return np.where(flipped.any(-1), np.asarray(chosen)[first], 0)


def run(ctx: StageContext) -> StageOutput:
  """Corruptions, their metrics, records and report; see the module doc."""
  cfg = ctx.config.shift
  names, chosen = corruption_names(ctx.config), severities(ctx.config)
  size = ctx.model.input_size
  set_name = parameter_set(ctx.config, size)
  with config_field("config.taxonomy"):
    taxonomy = judgement.build(ctx.config.taxonomy, ctx.labels, ctx.data)
  local, timing = _run_corruptions(ctx, names, chosen, size)
  gathered = ctx.executor.gather(
      {"label": ctx.data.labels, "clean": ctx.artifacts["evaluate.prediction"],
       "clean_confidence": ctx.artifacts["evaluate.top5_probs"][:, 0]}
      | local)
  sets = taxonomy.label_sets(ctx.data, gathered["id"])
  bins = int(cfg.calibration_bins)
  points, columns = analyse(gathered, names, chosen, taxonomy, sets, bins)
  clean = _clean(gathered, taxonomy, sets, bins)
  baseline, notes = _baseline_scores(points, names, chosen, clean["top1"],
                                     ctx.labels.kind, set_name)
  flips = first_flips(gathered["prediction"], gathered["clean"], chosen)
  summary = {
      "parameter_set": set_name, "corruptions": list(names),
      "severities": list(chosen),
      "families": {n: spec.CORRUPTIONS[n].family for n in names},
      "num_examples": int((gathered["label"] >= 0).sum()),
      "clean": clean, **points,
      "mean_error": {n: float(np.mean([1 - v for v in
                                       points["top1"][n].values()]))
                     for n in names},
      **_aggregates(points, names, chosen), **baseline,
      "judgement_sources": taxonomy.sources(),
      "notes": notes + taxonomy.notes(),
      "timing": {"corruptions": timing},
  }
  rows = local_rows(gathered["id"], ctx.data.ids)
  gallery = _gallery(ctx, gathered, flips, names, chosen, set_name)
  return StageOutput(
      summary=summary,
      records=_records(ctx, gathered, columns["accepted"], flips, names,
                       rows),
      sections=report.sections(summary, gallery),
      artifacts={"shift.prediction": local["prediction"].astype(np.int64)})


def _records(ctx, gathered, accepted, flips, names, rows) -> dict:
  """Per clean example: its clean prediction and, per corruption, the
  predictions, confidences and acceptance at each severity [S], and the
  first severity that flips it."""
  records = {"id": ctx.data.ids, "label": ctx.data.labels,
             "clean_prediction": gathered["clean"][rows]}
  for c, name in enumerate(names):
    records[f"{name}_prediction"] = gathered["prediction"][rows, c].astype(
        np.int64)
    records[f"{name}_confidence"] = gathered["confidence"][rows, c]
    records[f"{name}_accepted"] = accepted[rows, c]
    records[f"{name}_first_flip"] = flips[rows, c]
  return records


def _gallery(ctx: StageContext, gathered, flips, names, chosen,
             set_name: str) -> list[report.Flipped]:
  """The examples whose prediction flips at the lowest severity, for the
  corruptions that flip most there, with their corrupted versions (made
  again from the same keys on process 0's first device)."""
  cfg = ctx.config.shift
  if jax.process_index() != 0 or not cfg.gallery_size:
    return []
  lowest = chosen[0]
  at_lowest = flips == lowest
  order = np.argsort(-at_lowest.sum(0), kind="stable")
  out = []
  labels, clean = gathered["label"], gathered["clean"]
  for c in order[:cfg.gallery_corruptions]:
    hit = np.flatnonzero(at_lowest[:, c])
    if not len(hit):
      continue
    # Clean-correct images first: their flips are new errors.
    hit = hit[np.argsort(clean[hit] != labels[hit], kind="stable")]
    hit = hit[:cfg.gallery_size]
    ids = gathered["id"][hit]
    name = names[c]
    device = jax.local_devices()[0]
    images = jax.device_put(ctx.data.fetch(ids).astype(np.float32) / 255,
                            device)
    built = jax.device_put(
        _tables(name, set_name, ctx.model.input_size), device)
    keys = example_keys(corruption_key(jax.device_put(ctx.rng, device), name),
                        jax.device_put(ids.astype(np.int32), device))
    corrupt = jax.jit(functools.partial(corrupted_levels,
                                        spec.CORRUPTIONS[name]))
    corrupted = np.asarray(corrupt(built, images, keys,
                                   jnp.asarray([lowest], jnp.int32))[0])
    out.append(report.Flipped(
        name, lowest, np.asarray(images), corrupted, labels[hit], clean[hit],
        gathered["prediction"][hit, c, 0], ctx.model.class_names))
  return out
