"""What a stage asks report.html to show: text, tables, plots and image galleries.

Sections hold data, not HTML: `jaxaudit.report.html` renders them, writing each
gallery image as a thumbnail next to the page so it opens offline.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Union

import numpy as np


@dataclasses.dataclass
class Text:
  text: str


@dataclasses.dataclass
class Link:
  """A link to another page the job wrote (a path relative to the report)."""
  text: str
  href: str


@dataclasses.dataclass
class Table:
  """Rows of {column: value}; columns in the order of the first row."""
  rows: list[dict[str, Any]]
  title: str = ""


@dataclasses.dataclass
class Plot:
  """A line or bar plot.

  Attributes:
    series: label -> (x values, y values); for `kind="bar"`, x are category names.
  """
  title: str
  series: dict[str, tuple[list, list]]
  xlabel: str = ""
  ylabel: str = ""
  kind: str = "line"
  xscale: str = "linear"


@dataclasses.dataclass
class Tile:
  """One gallery cell: an image (uint8 [H, W, 3], or float [H, W] heat map
  shown with a colour map) and its caption."""
  image: np.ndarray
  caption: str


@dataclasses.dataclass
class Gallery:
  """Rows of tiles; each row is shown on one line (e.g. clean / adversarial)."""
  title: str
  rows: list[list[Tile]]


Item = Union[Text, Link, Table, Plot, Gallery]


def timing_table(timings: dict[str, dict[str, Any]], column: str,
                 title: str) -> Table:
  """One row per timed computation: its name under `column`, then its
  fields (compilations, compile and run seconds) as a stage summary holds
  them."""
  return Table([{column: name, **fields} for name, fields in timings.items()],
               title=title)


@dataclasses.dataclass
class Section:
  title: str
  items: list[Item]
