"""What the explain stage shows in report.html: faithfulness, overlays, neighbours."""

from __future__ import annotations

from matplotlib import colormaps
import numpy as np

from jaxaudit.report import items as rs

_RANDOM = "random"


def gallery_ids(arrays: dict[str, np.ndarray], size: int) -> np.ndarray:
  """Ids of the examples shown: mistakes first (most confident first), then the
  rest, `size` in all.

  Args:
    arrays: `id`, `label`, `prediction`, `top1_prob` [N], sorted by id.
    size: how many.

  Returns:
    int [<= size] global ids.
  """
  wrong = (arrays["label"] >= 0) & (arrays["prediction"] != arrays["label"])
  order = np.lexsort((-arrays["top1_prob"], ~wrong))
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


def _overlays(images: np.ndarray, gathered: dict, maps: dict,
              names: list[str], class_names) -> rs.Gallery:
  row_of = {int(i): k for k, i in enumerate(gathered["id"])}
  rows = []
  for image, i, m in zip(images, maps["id"], range(len(maps["id"]))):
    r = row_of[int(i)]
    label, target = gathered["label"][r], gathered["target"][r]
    tiles = [rs.Tile(image, f"true: {class_names[label] if label >= 0 else '?'}"
                            f"\npredicted: {class_names[gathered['prediction'][r]]}"
                            f" ({gathered['top1_prob'][r]:.2f})")]
    for name in names:
      caption = f"{name}\ntarget: {class_names[target]}"
      error = gathered.get(f"{name}/completeness_error")
      if error is not None:
        caption += f"\ncompleteness err {error[r]:.3g}"
      tiles.append(rs.Tile(overlay(image, maps[f"{name}/map"][m]), caption))
    rows.append(tiles)
  return rs.Gallery("Attributions (mistakes first)", rows)


def _adversarial(images: np.ndarray, gathered: dict, maps: dict,
                 names: list[str], class_names) -> list:
  methods = [n[len("adversarial_"):] for n in names
             if n.startswith("adversarial_")]
  if not methods:
    return []
  row_of = {int(i): k for k, i in enumerate(gathered["id"])}
  rows = []
  for image, i, m in zip(images, maps["id"], range(len(maps["id"]))):
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


def _neighbours(images: np.ndarray, gathered: dict, shown: np.ndarray,
                class_names, fetch) -> list:
  if "neighbours_predicted" not in gathered:
    return []
  row_of = {int(i): k for k, i in enumerate(gathered["id"])}
  rows = []
  for image, i in zip(images, shown):
    r = row_of[int(i)]
    label = gathered["label"][r]
    tiles = [rs.Tile(image, f"query\npredicted: "
                            f"{class_names[gathered['prediction'][r]]}\ntrue: "
                            f"{class_names[label] if label >= 0 else '?'}")]
    for kind in ("predicted", "true"):
      ids = gathered[f"neighbours_{kind}"][r]
      sims = gathered[f"similarity_{kind}"][r]
      found = ids >= 0
      if found.any():
        for img, sim in zip(fetch(ids[found]), sims[found]):
          tiles.append(rs.Tile(img, f"{kind}-class neighbour\ncos {sim:.2f}"))
    rows.append(tiles)
  return [rs.Text("Nearest neighbours in penultimate features among the "
                  "evaluated examples of the predicted class, then of the "
                  "true class."),
          rs.Gallery("Nearest neighbours", rows)]


def sections(gathered: dict, maps: dict, summary: dict, class_names,
             fetch) -> list[rs.Section]:
  """The stage's report section.

  Args:
    gathered: global per-example columns (`id`, `label`, `prediction`,
      `top1_prob`, `target`, `<method>/<field>`, curves), sorted by id.
    maps: `id` of the shown examples, their maps `<method>/map` [n, H, W] and
      adversarial images `adversarial/image` [n, H, W, 3] (uint8).
    summary: the stage summary.
    class_names: the model's classes.
    fetch: decodes images by global id.

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
  items += [rs.Text(n) for n in summary.get("notes", [])]
  items += _faithfulness(gathered, summary, names)
  images = fetch(maps["id"])
  if len(maps["id"]):
    items.append(_overlays(images, gathered, maps, map_names, class_names))
    adversarial = [k[:-len("/map")] for k in maps
                   if k.startswith("adversarial_")]
    items += _adversarial(images, gathered, maps, adversarial, class_names)
  items += _neighbours(images, gathered, maps["id"], class_names, fetch)
  methods = summary.get("timing", {}).get("methods", {})
  if methods:
    items.append(rs.timing_table(methods, "computation",
                                 "Compilations and seconds per method"))
  return [rs.Section("Explanations", items)]
