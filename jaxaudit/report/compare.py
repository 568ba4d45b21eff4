"""The comparison's report: the models side by side, then per example.

Tables: each headline metric with one column per model; each pair's right and
wrong counts with the McNemar p-value; adversarial transfer rates; SIS
overlap against chance. Galleries: examples one model gets right and the other
not, adversarials of one model that fool another, and two models' SIS on the
same image.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from jaxaudit.data import pixels
from jaxaudit.report import items as rs

Fetch = Callable[[np.ndarray], np.ndarray]  # global ids [k] -> uint8 [k, S, S, 3]
_ROW = 6


@dataclasses.dataclass
class Disagreement:
  """Examples `right` classifies correctly and `wrong` not: ids, labels and
  `wrong`'s predictions, int [k]."""
  right: str
  wrong: str
  ids: np.ndarray
  labels: np.ndarray
  predictions: np.ndarray


@dataclasses.dataclass
class TransferExample:
  """`source`'s adversarials (float [k, S, S, 3] in [0, 1]) that fool
  `target`, with their ids and `target`'s predictions [k]."""
  attack: str
  source: str
  target: str
  ids: np.ndarray
  images: np.ndarray
  predictions: np.ndarray


@dataclasses.dataclass
class OverlapExample:
  """Two models' SIS (bool [k, F_a], [k, F_b] over their feature grids) on
  the same examples, with their ids and IoU [k]."""
  a: str
  b: str
  ids: np.ndarray
  iou: np.ndarray
  mask_a: np.ndarray
  mask_b: np.ndarray


def _grid(mask: np.ndarray) -> np.ndarray:
  side = int(round(mask.shape[-1] ** 0.5))
  return mask.reshape(side, side).astype(np.float32)


def _rows(tiles: list[rs.Tile]) -> list[list[rs.Tile]]:
  return [tiles[k:k + _ROW] for k in range(0, len(tiles), _ROW)]


def _models(summary: dict, report_links: bool) -> list[rs.Item]:
  items: list[rs.Item] = [rs.Table(summary["table"], title="Side by side")]
  for name, members in summary["ensembles"].items():
    items.append(rs.Text(f"{name} is the ensemble of {', '.join(members)}: "
                         "the mean of their probabilities."))
  if report_links:
    items += [rs.Link(f"{name}: every stage's report",
                      f"models/{name}/report.html")
              for name in summary["models"]]
  return items


def _pairs(summary: dict) -> rs.Table:
  rows = []
  for pair, p in summary["pairs"].items():
    a, b = pair.split(" vs ")
    rows.append({"pair": pair, "labelled": p["labelled"],
                 "accuracy of first": p["accuracy"][a],
                 "accuracy of second": p["accuracy"][b],
                 "both right": p["both_right"], "only first": p["only_a"],
                 "only second": p["only_b"], "both wrong": p["both_wrong"],
                 "McNemar p": p["mcnemar_p"],
                 "same prediction": p["agreement"]})
  return rs.Table(rows, title="Right and wrong, per pair of models "
                              "(exact McNemar test of equal accuracy)")


def _transfer(summary: dict) -> list[rs.Item]:
  rows = []
  for attack, entry in summary["transfer"].items():
    for key, value in entry.items():
      if key != "epsilon":
        rows.append({"attack": attack, "epsilon": entry["epsilon"],
                     "source -> target": key,
                     "transfer rate": value["rate"],
                     "examples": value["examples"]})
  if not rows:
    return []
  return [rs.Text("Each model run on the other models' adversarials at the "
                  "attack's largest epsilon (resized to its input): the "
                  "share of the source's successful adversarials that also "
                  "fool the target, on examples both classify correctly."),
          rs.Table(rows, title="Adversarial transfer")]


def _overlap(summary: dict) -> list[rs.Item]:
  rows = [{"pair": pair, "SIS IoU (mean)": v["sis_iou_mean"],
           "examples with both SIS": v["sis_examples"],
           f"top {v['fraction']:.0%} IoU (mean)": v["top_iou_mean"],
           "chance IoU": v["chance_iou"]}
          for pair, v in summary["subset_overlap"].items()]
  return [rs.Table(rows, title="SIS overlap (intersection over union on the "
                               "finer of the two feature grids)")] if rows else []


def sections(summary: dict, disagreements: list[Disagreement],
             transfers: list[TransferExample], overlaps: list[OverlapExample],
             fetch: Fetch, class_names: tuple[str, ...],
             report_links: bool = True) -> list[rs.Section]:
  """Args:
    summary: the `compare` summary.
    disagreements, transfers, overlaps: the galleries' examples.
    fetch: decodes examples by global id (the first model's preprocessing).
    class_names: the models' shared classes.
    report_links: link each model's own report (models/<name>/report.html).
  """
  side = _models(summary, report_links) + [
      _pairs(summary), rs.Text(f"Oracle top-1 (some model right): "
                               f"{summary['oracle_top1']}")]
  out = [rs.Section("Models compared", side)]
  per_example: list[rs.Item] = []
  for d in disagreements:
    if len(d.ids):
      tiles = [rs.Tile(img, f"#{i} {class_names[y]}\n{d.wrong}: "
                            f"{class_names[p]}")
               for img, i, y, p in zip(fetch(d.ids), d.ids, d.labels,
                                       d.predictions)]
      per_example.append(rs.Gallery(f"{d.right} right, {d.wrong} wrong",
                                    _rows(tiles)))
  per_example += _transfer(summary)
  for t in transfers:
    if len(t.ids):
      tiles = [rs.Tile(img, f"#{i} {t.target}: {class_names[p]}")
               for img, i, p in zip(pixels.to_uint8(t.images), t.ids,
                                    t.predictions)]
      per_example.append(rs.Gallery(
          f"{t.attack} adversarials of {t.source} that fool {t.target}",
          _rows(tiles)))
  per_example += _overlap(summary)
  for o in overlaps:
    tiles = []
    for img, i, iou, ma, mb in zip(fetch(o.ids), o.ids, o.iou, o.mask_a,
                                   o.mask_b):
      tiles += [rs.Tile(img, f"#{i}"), rs.Tile(_grid(ma), f"{o.a} SIS"),
                rs.Tile(_grid(mb), f"{o.b} SIS (IoU {iou:.2f})")]
    per_example.append(rs.Gallery(f"SIS of {o.a} and {o.b}", _rows(tiles)))
  out.append(rs.Section("Per example", per_example))
  return out
