"""Renders report.html: every stage's tables, plots and galleries, offline.

Images and plots are written as PNG files under `report_assets/` next to the page
and referenced by relative paths, so the folder can be copied and opened anywhere.
"""

from __future__ import annotations

import html
from typing import Any

from matplotlib import colormaps
import numpy as np
from PIL import Image

from jaxaudit import files
from jaxaudit import storage
from jaxaudit.report import plots
from jaxaudit.report import items as rs

ASSETS = "report_assets"
_MIN_TILE = 112

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
th { background: #f3f3f3; }
.row { display: flex; flex-wrap: wrap; gap: 8px; margin: 6px 0; }
figure { margin: 0; width: 170px; } figure img { width: 160px; height: auto;
  image-rendering: pixelated; border: 1px solid #ccc; }
figcaption { font-size: 0.75em; white-space: pre-line; }
.plot img { max-width: 560px; }
"""


def _tile_image(image: np.ndarray) -> Image.Image:
  image = np.asarray(image)
  if image.ndim == 2:
    values = image.astype(np.float64)
    span = values.max() - values.min()
    values = (values - values.min()) / span if span > 0 else values * 0
    image = (colormaps["inferno"](values)[..., :3] * 255).astype(np.uint8)
  pil = Image.fromarray(image.astype(np.uint8))
  if pil.width < _MIN_TILE:
    scale = -(-_MIN_TILE // pil.width)
    pil = pil.resize((pil.width * scale, pil.height * scale),
                     Image.Resampling.NEAREST)
  return pil


def _format(value: Any) -> str:
  if isinstance(value, float):
    return f"{value:.4f}"
  if isinstance(value, (list, dict)):
    return html.escape(str(value))
  return html.escape(str(value))


class _Writer:
  """Accumulates HTML and writes assets with unique names."""

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.assets = storage.join(workdir, ASSETS)
    storage.makedirs(self.assets)
    self.count = 0
    self.parts: list[str] = []

  def asset(self, prefix: str) -> tuple[str, str]:
    self.count += 1
    name = f"{prefix}-{self.count:04d}.png"
    return storage.join(self.assets, name), f"{ASSETS}/{name}"

  def item(self, item: rs.Item) -> None:
    if isinstance(item, rs.Text):
      self.parts.append(f"<p>{html.escape(item.text)}</p>")
    elif isinstance(item, rs.Link):
      self.parts.append(f'<p><a href="{html.escape(item.href)}">'
                        f"{html.escape(item.text)}</a></p>")
    elif isinstance(item, rs.Table):
      if item.title:
        self.parts.append(f"<h3>{html.escape(item.title)}</h3>")
      if not item.rows:
        self.parts.append("<p><i>none</i></p>")
        return
      columns = list(item.rows[0])
      head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
      body = "".join(
          "<tr>" + "".join(f"<td>{_format(row.get(c, ''))}</td>" for c in columns)
          + "</tr>" for row in item.rows)
      self.parts.append(f"<table><tr>{head}</tr>{body}</table>")
    elif isinstance(item, rs.Plot):
      path, rel = self.asset("plot")
      plots.save_plot(item, path)
      self.parts.append(f'<div class="plot"><img src="{rel}" '
                        f'alt="{html.escape(item.title)}"></div>')
    elif isinstance(item, rs.Gallery):
      self.parts.append(f"<h3>{html.escape(item.title)}</h3>")
      for row in item.rows:
        cells = []
        for tile in row:
          path, rel = self.asset("tile")
          image = _tile_image(tile.image)
          files.write_with(path, lambda f, image=image: image.save(f, "PNG"))
          cells.append(f'<figure><img src="{rel}" alt=""><figcaption>'
                       f"{html.escape(tile.caption)}</figcaption></figure>")
        self.parts.append('<div class="row">' + "".join(cells) + "</div>")
    else:
      raise TypeError(f"unknown report item {type(item).__name__}")


def render(workdir: str, title: str, header: list[rs.Item],
           stage_sections: list[rs.Section],
           filename: str = "report.html") -> str:
  """Writes `workdir/<filename>` (+ assets) and returns its path (`workdir`
  a local folder or a URL, `jaxaudit.storage`)."""
  writer = _Writer(workdir)
  writer.parts.append(f"<h1>{html.escape(title)}</h1>")
  for item in header:
    writer.item(item)
  for section in stage_sections:
    writer.parts.append(f"<h2>{html.escape(section.title)}</h2>")
    for item in section.items:
      writer.item(item)
  page = ("<!doctype html><html><head><meta charset='utf-8'>"
          f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
          "<body>" + "\n".join(writer.parts) + "</body></html>\n")
  path = storage.join(workdir, filename)
  files.write_text(path, page)
  return path
