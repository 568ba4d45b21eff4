"""The README's Python snippets run as written (in order, in one namespace)."""

import os
import re

import numpy as np

from conftest import ROOT


def _snippets() -> list[str]:
  with open(os.path.join(ROOT, "README.md")) as f:
    text = f.read()
  section = text.split("### Python API", 1)[1].split("\n## ", 1)[0]
  return re.findall(r"```python\n(.*?)```", section, re.S)


def test_python_api_snippets_run(tmp_path, monkeypatch):
  snippets = _snippets()
  assert len(snippets) >= 4
  monkeypatch.chdir(tmp_path)
  namespace = {}
  for code in snippets:
    exec(compile(code, "README.md", "exec"), namespace)  # pylint: disable=exec-used
  assert namespace["result"].summary["evaluate"]["num_examples"] == 8
  assert float(namespace["ig"].completeness_error.max()) < 0.05
  assert len(set(namespace["prototypes"].tolist())) == 2
  assert not set(namespace["criticisms"].tolist()) & set(
      namespace["prototypes"].tolist())
  ranks = namespace["selection"].ranks
  assert ranks.shape == (8, 256) and (np.sort(ranks, -1) == np.arange(256)).all()
