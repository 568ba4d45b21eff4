"""What the explain stage shows in report.html: faithfulness, overlays, neighbours."""

from __future__ import annotations

from matplotlib import colormaps
import numpy as np

from jaxaudit.report import sections as rs
from jaxaudit.stages.base import StageContext

_RANDOM = "random"


def gallery_ids(arrays: dict[str, np.ndarray], size: int) -> np.ndarray:
  """Ids of the examples shown: mistakes first (most confident first), then the
  rest, `size` in all.

  Args:
    arrays: the forward pass (`id`, `label`, `prediction`, `top5_probs`).
    size: how many.

  Returns:
    int [<= size] global ids.
  """
  wrong = (arrays["label"] >= 0) & (arrays["prediction"] != arrays["label"])
  order = np.lexsort((-arrays["top5_probs"][:, 0], ~wrong))
  return arrays["id"][order[:size]]


def overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
  """A heat map blended over its image.

  Args:
    image: uint8 [H, W, 3].
    heat: float [H, W] (non-negative importance).

  Returns:
    uint8 [H, W, 3]; the map is scaled to its 99th percentile.
  """
  top = np.percentile(heat, 99)
  scaled = np.clip(heat / top, 0, 1) if top > 0 else np.zeros_like(heat)
  colour = colormaps["inferno"](scaled)[..., :3] * 255
  blended = 0.4 * image.astype(np.float64) + 0.6 * colour
  return blended.astype(np.uint8)


def _faithfulness(gathered: dict, summary: dict, names: list[str]) -> list:
  rows = []
  for name in names:
    row = {"method": name,
           "deletion AUC (lower is better)": summary["deletion_auc"][name],
           "insertion AUC (higher is better)": summary["insertion_auc"][name]}
    errors = gathered.get(f"{name}/completeness_error")
    row["completeness error (median)"] = (float(np.median(errors))
                                          if errors is not None else "")
    rows.append(row)
  items = [rs.Table(rows, title="Faithfulness of the attributions")]
  for kind in ("deletion", "insertion"):
    series = {}
    for name in names:
      curve = gathered[f"{name}/{kind}"].mean(0)
      series[name] = (np.linspace(0, 1, len(curve)).tolist(), curve.tolist())
    items.append(rs.Plot(f"{kind.capitalize()} curves (mean over examples)",
                         series, xlabel=f"fraction of pixels {kind[:-3]}ed",
                         ylabel="target-class probability"))
  return items


def _overlays(ctx: StageContext, arrays: dict, gathered: dict, maps: dict,
              names: list[str]) -> rs.Gallery:
  class_names = ctx.model.class_names
  index = {int(i): k for k, i in enumerate(arrays["id"])}
  row_of = {int(i): k for k, i in enumerate(gathered["id"])}
  rows = []
  for image, i, m in zip(ctx.data.fetch(maps["id"]), maps["id"],
                         range(len(maps["id"]))):
    a = index[int(i)]
    label = arrays["label"][a]
    target = gathered["target"][row_of[int(i)]]
    tiles = [rs.Tile(image, f"true: {class_names[label] if label >= 0 else '?'}"
                            f"\npredicted: {class_names[arrays['prediction'][a]]}"
                            f" ({arrays['top5_probs'][a, 0]:.2f})")]
    for name in names:
      caption = f"{name}\ntarget: {class_names[target]}"
      error = gathered.get(f"{name}/completeness_error")
      if error is not None:
        caption += f"\ncompleteness err {error[row_of[int(i)]]:.3g}"
      tiles.append(rs.Tile(overlay(image, maps[f"{name}/map"][m]), caption))
    rows.append(tiles)
  return rs.Gallery("Attributions (mistakes first)", rows)


def _adversarial(ctx: StageContext, gathered: dict, maps: dict,
                 names: list[str]) -> list:
  methods = [n[len("adversarial_"):] for n in names
             if n.startswith("adversarial_")]
  if not methods:
    return []
  row_of = {int(i): k for k, i in enumerate(gathered["id"])}
  class_names = ctx.model.class_names
  rows = []
  for image, i, m in zip(ctx.data.fetch(maps["id"]), maps["id"],
                         range(len(maps["id"]))):
    adv = maps["adversarial/image"][m]
    r = row_of[int(i)]
    tiles = [rs.Tile(image, f"clean: {class_names[gathered['target'][r]]}")]
    tiles += [rs.Tile(overlay(image, maps[f"{n}/map"][m]), f"{n} (clean)")
              for n in methods if f"{n}/map" in maps]
    adv_target = gathered[f"adversarial_{methods[0]}/target"][r]
    tiles.append(rs.Tile(adv, f"adversarial: {class_names[adv_target]}"))
    tiles += [rs.Tile(overlay(adv, maps[f"adversarial_{n}/map"][m]),
                      f"{n} (adversarial)") for n in methods]
    rows.append(tiles)
  return [rs.Gallery("Clean and adversarial images, side by side", rows)]


def _neighbours(ctx: StageContext, arrays: dict, gathered: dict,
                shown: np.ndarray) -> list:
  if "neighbours_predicted" not in gathered:
    return []
  class_names = ctx.model.class_names
  index = {int(i): k for k, i in enumerate(arrays["id"])}
  row_of = {int(i): k for k, i in enumerate(gathered["id"])}
  rows = []
  for image, i in zip(ctx.data.fetch(shown), shown):
    a, r = index[int(i)], row_of[int(i)]
    label = arrays["label"][a]
    tiles = [rs.Tile(image, f"query\npredicted: "
                            f"{class_names[arrays['prediction'][a]]}\ntrue: "
                            f"{class_names[label] if label >= 0 else '?'}")]
    for kind in ("predicted", "true"):
      ids = gathered[f"neighbours_{kind}"][r]
      sims = gathered[f"similarity_{kind}"][r]
      found = ids >= 0
      if found.any():
        for img, sim in zip(ctx.data.fetch(ids[found]), sims[found]):
          tiles.append(rs.Tile(img, f"{kind}-class neighbour\ncos {sim:.2f}"))
    rows.append(tiles)
  return [rs.Text("Nearest neighbours in penultimate features among the "
                  "evaluated examples of the predicted class, then of the "
                  "true class."),
          rs.Gallery("Nearest neighbours", rows)]


def explain_sections(ctx: StageContext, arrays: dict, gathered: dict,
                     maps: dict, summary: dict) -> list[rs.Section]:
  """The stage's report section.

  Args:
    ctx: the stage context (model class names, `data.fetch`, attack outputs).
    arrays: the forward pass, sorted by id.
    gathered: global per-example records and curves (`<method>/<field>`).
    maps: per-pixel maps `<method>/map` [n, H, W] of the shown examples.
    summary: the stage summary.

  Returns:
    One section.
  """
  names = list(summary["deletion_auc"])
  map_names = [n for n in names if n != _RANDOM]
  items = [rs.Text(
      "Attributions explain the target-class logit (the predicted class unless "
      "config.explain.target is set). Deletion replaces the most important "
      "pixels first with the deletion baseline; insertion restores them into a "
      "blurred copy. 'random' ranks pixels at random.")]
  items += _faithfulness(gathered, summary, names)
  if len(maps["id"]):
    items.append(_overlays(ctx, arrays, gathered, maps, map_names))
    adversarial = [k[:-len("/map")] for k in maps
                   if k.startswith("adversarial_")]
    items += _adversarial(ctx, gathered, maps, adversarial)
  items += _neighbours(ctx, arrays, gathered, maps["id"])
  return [rs.Section("Explanations", items)]
