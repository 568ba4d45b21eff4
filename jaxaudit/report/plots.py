"""Renders `sections.Plot` to PNG with matplotlib (Agg, no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

from jaxaudit import files  # pylint: disable=wrong-import-position
from jaxaudit.report.items import Plot  # pylint: disable=wrong-import-position


def save_plot(plot: Plot, path: str) -> None:
  """Draws a line or bar plot into `path` (PNG)."""
  fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=100)
  if plot.kind == "bar":
    width = 0.8 / max(1, len(plot.series))
    for k, (label, (xs, ys)) in enumerate(plot.series.items()):
      positions = [i + k * width for i in range(len(xs))]
      ax.bar(positions, ys, width=width, label=label)
      ax.set_xticks([i + width * (len(plot.series) - 1) / 2
                     for i in range(len(xs))])
      ax.set_xticklabels([str(x) for x in xs], rotation=20, ha="right")
  else:
    for label, (xs, ys) in plot.series.items():
      ax.plot(xs, ys, marker="o", markersize=3, label=label)
    ax.set_xscale(plot.xscale)
  ax.set_title(plot.title)
  ax.set_xlabel(plot.xlabel)
  ax.set_ylabel(plot.ylabel)
  ax.grid(alpha=0.3)
  if len(plot.series) > 1 or plot.kind == "bar":
    ax.legend(fontsize=8)
  fig.tight_layout()
  files.write_with(path, lambda f: fig.savefig(f, format="png"))
  plt.close(fig)
