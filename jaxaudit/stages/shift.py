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

from jaxaudit import compile_count
from jaxaudit.artifacts import ArtifactSpec, Contract, Need
from jaxaudit.corruptions import metrics, spec
from jaxaudit.data import natural_sets
from jaxaudit.data.dataset import build_dataset
from jaxaudit.data.pixels import unit_images
from jaxaudit.data.tfds_source import TfdsSource
from jaxaudit.errors import ConfigError
from jaxaudit.models.classifier import ModelDims
from jaxaudit.report import shift as report
from jaxaudit.sharding import example_keys
from jaxaudit.stages.base import StageContext, StageOutput, config_field
from jaxaudit.stages.base import local_rows
from jaxaudit.taxonomy import judgement

# Inputs up to this side get CIFAR-10-C's numbers under "auto".
CIFAR_MAX_SIZE = 64


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
      # Natural shift sets read through TFDS (jaxaudit.data.natural_sets):
      # comma-separated name[/config][:split], e.g. "imagenet_v2,imagenet_r".
      "natural": "",
      "natural_examples": 0,  # Per set: 0 = all, N = the first N.
      "natural_data_dir": "",  # "" = config.data.tfds_data_dir.
  })


def parameter_set(config: ml_collections.ConfigDict, input_size: int) -> str:
  """The resolved `config.shift.parameter_set`."""
  chosen = config.shift.parameter_set
  if chosen == "auto":
    return "cifar" if input_size <= CIFAR_MAX_SIZE else "imagenet"
  return chosen


def corruption_names(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The selected corruptions, none for "" (raises ConfigError naming the
  field)."""
  if not config.shift.corruptions.strip():
    return ()
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
  if not names and not natural_sets.parse(cfg.natural):
    raise ConfigError("config.shift: neither corruptions nor natural sets "
                      "(config.shift.corruptions, config.shift.natural)")
  if cfg.natural_examples < 0:
    raise ConfigError("config.shift.natural_examples must be >= 0")
  for entry in natural_sets.parse(cfg.natural):
    _natural_source(config, entry)  # Its metadata only: refused early.
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
  names = corruption_names(config)
  shape = (len(names), len(severities(config)))
  return Contract(
      consumes=(Need("evaluate.prediction"), Need("evaluate.top5_probs")),
      produces=(ArtifactSpec("shift.prediction", shape, "int64"),)
      if names else ())


def corruption_key(rng: jax.Array, name: str) -> jax.Array:
  """The stage key of one corruption (its images' keys fold in their ids)."""
  return jax.random.fold_in(rng, zlib.crc32(name.encode()))


def corrupted_levels(entry: spec.CorruptionSpec, built, images: jax.Array,
                     keys: jax.Array, chosen: jax.Array) -> jax.Array:
  """[B, S, S, 3] images in [0, 1] -> float [len(chosen), B, S, S, 3]: the
  corrupted images rounded down to 8 bits, as the references store them."""
  out = spec.corrupt(entry, built, images, keys, chosen)
  return spec.to_levels(out).astype(jnp.float32) / 255


def _scores(logits: jax.Array, labels: jax.Array) -> dict[str, jax.Array]:
  """logits [..., K] and labels [...] (broadcastable; -1 unlabelled) ->
  the top-1 class, its probability and log p(label) (unlabelled: of class
  0, masked later), each [...]."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  label = jnp.broadcast_to(jnp.maximum(labels, 0), logp.shape[:-1])
  return {"prediction": jnp.argmax(logp, -1).astype(jnp.int32),
          "confidence": jnp.exp(jnp.max(logp, -1)),
          "label_logprob": jnp.take_along_axis(logp, label[..., None],
                                               -1)[..., 0]}


def _step(model, entry: spec.CorruptionSpec):
  """The compiled step of one corruption: predictions at every severity."""

  def step(state, batch):
    params, built, rng, chosen = state
    images = unit_images(batch["image"])
    keys = example_keys(rng, batch["id"])
    corrupted = corrupted_levels(entry, built, images, keys, chosen)
    s, b = corrupted.shape[:2]
    logits = model.logits(params, corrupted.reshape(
        (s * b,) + corrupted.shape[2:]))
    scores = _scores(logits.reshape(s, b, -1), batch["label"][None])
    return {k: v.T for k, v in scores.items()}

  return step


def _run_corruptions(ctx: StageContext, names, chosen, size: int
                     ) -> tuple[dict[str, np.ndarray], dict]:
  """Every corruption over this process's examples, one compiled step each.

  (One step for all, a `lax.switch` on the corruption, would compile the
  model once; measured on XLA:CPU, the loops inside a conditional's branch
  run far slower: glass blur took 500 s for 8 ImageNet images, not 3 s.)

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


def _corruption_summary(ctx: StageContext, taxonomy, names, chosen
                        ) -> tuple[dict, dict, list]:
  """The corruptions' summary, this process's records and the gallery."""
  size = ctx.model.input_size
  set_name = parameter_set(ctx.config, size)
  local, timing = _run_corruptions(ctx, names, chosen, size)
  gathered = ctx.executor.gather(
      {"label": ctx.data.labels, "clean": ctx.artifacts["evaluate.prediction"],
       "clean_confidence": ctx.artifacts["evaluate.top5_probs"][:, 0]}
      | local)
  sets = taxonomy.label_sets(ctx.data, gathered["id"])
  bins = int(ctx.config.shift.calibration_bins)
  points, accepted = metrics.per_point(gathered, names, chosen, taxonomy,
                                       sets, bins)
  clean = metrics.clean_point(gathered, taxonomy, sets, bins)
  baseline, notes = metrics.baseline_scores(
      points, names, chosen, clean["top1"], ctx.labels.kind, set_name)
  flips = metrics.first_flips(gathered["prediction"], gathered["clean"],
                              chosen)
  summary = {
      "parameter_set": set_name, "corruptions": list(names),
      "severities": list(chosen),
      "families": {n: spec.CORRUPTIONS[n].family for n in names},
      "num_examples": int((gathered["label"] >= 0).sum()),
      "clean": clean, **points,
      **metrics.aggregates(points, names, chosen), **baseline,
      "notes": notes, "timing": {"corruptions": timing},
  }
  rows = local_rows(gathered["id"], ctx.data.ids)
  records = _records(ctx, gathered, accepted, flips, names, rows)
  gallery = _gallery(ctx, gathered, flips, names, chosen, set_name)
  return summary, records, gallery


def _natural_step(model):
  """The forward pass of a natural set, the prediction among the classes
  the set can show (`mask`)."""

  def step(state, batch):
    params, mask = state
    logits = model.logits(params, unit_images(batch["image"]))
    return _scores(jnp.where(mask, logits.astype(jnp.float32), -jnp.inf),
                   batch["label"])

  return step


def _natural_source(config: ml_collections.ConfigDict,
                    entry: natural_sets.Entry) -> TfdsSource:
  """The set's prepared TFDS split (its metadata read, no record); a
  ConfigError naming config.shift.natural, with the `tfds build` command,
  when it is absent."""
  return TfdsSource(
      entry.tfds_name, entry.split,
      config.shift.natural_data_dir or config.data.tfds_data_dir,
      fields=("config.shift.natural", "config.shift.natural",
              "config.shift.natural_data_dir"))


def _natural(ctx: StageContext, taxonomy, entry: natural_sets.Entry
             ) -> dict:
  """One natural shift set read through TFDS, forwarded and scored."""
  cfg = ctx.config.shift
  source = _natural_source(ctx.config, entry)
  data = build_dataset(
      ml_collections.ConfigDict({
          "num_examples": cfg.natural_examples,
          "decode_threads": ctx.config.data.decode_threads,
          "skip_bad": ctx.config.data.skip_bad}),
      source, ctx.data.prep, ctx.labels)
  mask = natural_sets.logit_mask(entry, ctx.labels)
  executor = ctx.executor.for_examples(data.ids, f"natural.{entry.label}")
  logging.info("shift: natural set %s (%s), %d examples here",
               entry.tfds_name, entry.split, len(data))
  with compile_count.counting() as stats:
    local = executor.run("forward", _natural_step(ctx.model),
                         (ctx.params, jnp.asarray(mask)),
                         {"image": data.images,
                          "label": data.labels.astype(np.int32)},
                         batch_size=ctx.batch_size)
  logging.info("shift %s: %s", entry.label, stats.line())
  gathered = executor.gather({"label": data.labels} | local)
  labels = gathered["label"]
  accepted = metrics.accepted_by(taxonomy, labels, gathered["prediction"],
                                 None)
  point = metrics.score_point(
      labels, gathered["prediction"], gathered["confidence"],
      gathered["label_logprob"], accepted, int(cfg.calibration_bins))
  return {"tfds_name": entry.tfds_name, "split": entry.split,
          "num_examples": int((labels >= 0).sum()),
          "classes": int(mask.sum()), **point, "timing": stats.as_dict()}


def run(ctx: StageContext) -> StageOutput:
  """Corruptions and natural sets; see the module docstring."""
  names, chosen = corruption_names(ctx.config), severities(ctx.config)
  with config_field("config.taxonomy"):
    taxonomy = judgement.build(ctx.config.taxonomy, ctx.labels, ctx.data)
  summary, records, gallery = {"notes": []}, {"id": ctx.data.ids}, []
  artifacts = {}
  if names:
    summary, records, gallery = _corruption_summary(ctx, taxonomy, names,
                                                    chosen)
    artifacts["shift.prediction"] = np.stack(
        [records[f"{n}_prediction"] for n in names], axis=1)
  natural = {entry.label: _natural(ctx, taxonomy, entry)
             for entry in natural_sets.parse(ctx.config.shift.natural)}
  if natural:
    summary["natural"] = natural
  summary["judgement_sources"] = taxonomy.sources()
  summary["notes"] += taxonomy.notes()
  return StageOutput(summary=summary, records=records,
                     sections=report.sections(summary, gallery),
                     artifacts=artifacts)


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
