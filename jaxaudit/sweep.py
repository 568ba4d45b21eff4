"""Sweeps declared in config files, and the index of a finished sweep.

A config file may define, next to `get_config(arg)`, a `get_sweep(arg)` returning a
list of runs, each a dict of field overrides (`{"model.name": "cifar_resnet56"}`).
`product` and `zip_axes` build such lists from axes, as big_vision's `hyper` does.
`launch/sweep.py` runs each override set in its own subfolder; `write_index` then
gathers every run's headline metrics into one table (Parquet and HTML) and plots
them across the swept axis.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
from typing import Any

import pandas as pd

from jaxaudit import files
from jaxaudit import storage
from jaxaudit.errors import ConfigError
from jaxaudit.report import html as report_html
from jaxaudit.report import items as rs

Run = dict[str, Any]


def product(*axes: tuple[str, list]) -> list[Run]:
  """Every combination of the axes' values: `product(("a", [1, 2]), ("b", [3]))`."""
  names = [name for name, _ in axes]
  return [dict(zip(names, values))
          for values in itertools.product(*[values for _, values in axes])]


def zip_axes(*axes: tuple[str, list]) -> list[Run]:
  """Values taken together: run i sets every axis to its i-th value."""
  lengths = {len(values) for _, values in axes}
  if len(lengths) != 1:
    raise ConfigError(f"zip_axes needs equal-length axes, got {sorted(lengths)}")
  return [dict(zip([n for n, _ in axes], values))
          for values in zip(*[v for _, v in axes])]


def load_sweep(config_path: str) -> list[Run]:
  """The runs a config file declares (`path.py` or `path.py:arg`)."""
  path, _, arg = config_path.partition(":")
  spec = importlib.util.spec_from_file_location("_sweep_config", path)
  if spec is None or not os.path.isfile(path):
    raise ConfigError(f"--config: no such file: {path}")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_sweep"):
    raise ConfigError(f"{path} declares no sweep (define get_sweep(arg))")
  runs = module.get_sweep(arg) if arg else module.get_sweep()
  if not runs or not all(isinstance(r, dict) for r in runs):
    raise ConfigError(f"{path}: get_sweep must return a non-empty list of dicts")
  return runs


def run_name(index: int, run: Run) -> str:
  """A folder name: run-003-model.name=cifar_resnet56 (sanitised, bounded)."""
  label = ",".join(f"{k}={v}" for k, v in run.items())
  label = re.sub(r"[^A-Za-z0-9_.=,+-]", "_", label)[:80]
  return f"run-{index:03d}-{label}" if label else f"run-{index:03d}"


def overrides_as_flags(run: Run) -> list[str]:
  """{"attack.eps": 0.1} -> ["--config.attack.eps=0.1"]."""
  return [f"--config.{key}={value}" for key, value in run.items()]


def headline_metrics(summary: dict) -> dict[str, float]:
  """Scalar metrics of a summary, flattened (`attack.robust_accuracy.pgd_linf.0.01`);
  per-class tables, lists and per-group selections are left out."""
  flat: dict[str, float] = {}

  def visit(value, prefix):
    if isinstance(value, dict):
      if prefix.rsplit(".", 1)[-1] in ("per_class_accuracy", "prototypes",
                                       "criticisms", "mmd2"):
        return
      for key, item in value.items():
        visit(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
      flat[prefix] = float(value)

  visit(summary, "")
  return flat


def _curves(summary: dict) -> dict[str, tuple[list, list]]:
  """Per-attack robust accuracy vs eps, if the run has an attack summary."""
  curves = {}
  robust = summary.get("attack", {}).get("robust_accuracy", {})
  for attack, by_eps in robust.items():
    if isinstance(by_eps, dict) and len(by_eps) > 1:
      points = sorted((float(e), a) for e, a in by_eps.items() if a is not None)
      curves[attack] = ([p[0] for p in points], [p[1] for p in points])
  return curves


def write_index(sweep_dir: str, runs: list[Run]) -> pd.DataFrame:
  """Writes `sweep_index.parquet` and `sweep_index.html` for finished runs
  (`sweep_dir` a local folder or a URL, `jaxaudit.storage`).

  Returns:
    One row per run: its folder, the swept fields, status and headline metrics.
  """
  rows, plots = [], {}
  for i, run in enumerate(runs):
    name = run_name(i, run)
    path = storage.join(sweep_dir, name, "summary.json")
    row = {"run": name, **{k: str(v) for k, v in run.items()}}
    if storage.isfile(path):
      summary = json.loads(storage.read_text(path))
      row["status"] = "done"
      row.update(headline_metrics(summary))
      for attack, curve in _curves(summary).items():
        plots.setdefault(attack, {})[",".join(f"{k}={v}" for k, v in run.items())
                                    or name] = curve
    else:
      row["status"] = "missing"
    rows.append(row)
  table = pd.DataFrame(rows)
  files.write_with(storage.join(sweep_dir, "sweep_index.parquet"),
                   table.to_parquet)
  items: list[rs.Item] = [rs.Table(rows=[{k: v for k, v in r.items()}
                                         for r in rows], title="Runs")]
  swept = [k for k in runs[0]] if runs else []
  for metric in [c for c in table.columns if c.endswith("top1")][:4]:
    if swept and table[metric].notna().any():
      items.append(rs.Plot(f"{metric} per run", {
          metric: ([str(v) for v in table["run"]],
                   [float(v) for v in table[metric].fillna(0)])}, kind="bar",
          ylabel=metric))
  for attack, series in plots.items():
    items.append(rs.Plot(f"{attack}: robust accuracy vs epsilon", series,
                         xlabel="epsilon", ylabel="robust accuracy"))
  report_html.render(sweep_dir, "jaxaudit sweep", [],
                     [rs.Section("Sweep index", items)], filename="sweep_index.html")
  return table
