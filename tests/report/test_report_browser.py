"""report.html renders in headless Chromium with every image loaded, offline."""

import os

import numpy as np
import pytest

from jaxaudit.report import html as report_html
from jaxaudit.report import items as rs
from scripts import report_check


def _sections():
  rng = np.random.RandomState(0)
  tiles = [rs.Tile((rng.rand(32, 32, 3) * 255).astype(np.uint8), "an image"),
           rs.Tile(rng.rand(32, 32), "a heat map")]
  return [rs.Section("Stage", [
      rs.Text("numbers <escaped> & shown"),
      rs.Table([{"metric": "top1", "value": 0.5}], title="table"),
      rs.Plot("curve", {"a": ([0, 1, 2], [1.0, 0.5, 0.2])}, xlabel="eps"),
      rs.Plot("bars", {"share": (["x", "y"], [0.3, 0.7])}, kind="bar"),
      rs.Gallery("gallery", [tiles, tiles[:1]])])]


def test_report_files_are_self_contained(tmp_path):
  page = report_html.render(str(tmp_path), "t", [], _sections())
  text = open(page).read()
  sources = [s.split('"')[0] for s in text.split('src="')[1:]]
  assert len(sources) == 5
  assert all(not s.startswith(("http", "/")) for s in sources)
  assert all((tmp_path / s).is_file() for s in sources)
  assert "numbers &lt;escaped&gt; &amp; shown" in text


def test_every_image_loads_in_chromium(tmp_path):
  if report_check.chromium() is None:
    pytest.skip("needs Chromium (Debian package 'chromium')")
  page = report_html.render(str(tmp_path), "t", [], _sections())
  shot = tmp_path / "shot.png"
  images, broken = report_check.check(page, str(shot), height=900)
  assert (images, broken) == (5, 0)
  assert shot.is_file() and shot.stat().st_size > 10_000
  os.remove(tmp_path / "report_assets" / os.listdir(tmp_path / "report_assets")[0])
  assert report_check.check(page)[1] == 1
