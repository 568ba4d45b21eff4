"""Imports run one way: entry points -> pipeline -> stages -> method packages
-> core, and no stage imports another stage."""

import ast
import os

from conftest import ROOT

PACKAGE = os.path.join(ROOT, "jaxaudit")
METHODS = ("attacks", "explain", "criticism", "sis", "taxonomy", "study",
           "calibration", "comparison", "corruptions")
# Top-level modules above the stages (they wire jobs together).
JOBS = ("main", "pipeline", "api", "job_config", "annotate", "study_inputs",
        "compare", "model_set")


def _layer(module: str) -> int:
  """0 = entry points and jobs, 1 = stages, 2 = method packages, 3 = core."""
  parts = module.split(".")[1:]
  if not parts or parts[0] in JOBS:
    return 0
  if parts[0] == "stages":
    return 1
  if parts[0] in METHODS:
    return 2
  return 3


def _modules():
  for folder, _, names in os.walk(PACKAGE):
    for name in names:
      if name.endswith(".py"):
        path = os.path.join(folder, name)
        rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
        yield rel.removesuffix(".__init__"), path


def _imports(path: str) -> set[str]:
  with open(path) as f:
    tree = ast.parse(f.read())
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      out.add(node.module)
      out.update(f"{node.module}.{a.name}" for a in node.names)
  return {m for m in out if m.startswith("jaxaudit.")}


def _module_of(name: str, known: set[str]) -> str:
  """`jaxaudit.x.y.attr` -> the longest prefix that is a module."""
  while name not in known and "." in name:
    name = name.rsplit(".", 1)[0]
  return name


def test_imports_run_one_way_and_stages_import_no_stage():
  modules = dict(_modules())
  known = set(modules)
  problems = []
  for module, path in modules.items():
    for target in {_module_of(i, known) for i in _imports(path)}:
      if target == "jaxaudit" or target == module:
        continue
      if _layer(target) < _layer(module):
        problems.append(f"{module} (layer {_layer(module)}) imports {target}")
      if (module.startswith("jaxaudit.stages.") and target.startswith(
          "jaxaudit.stages.") and target not in ("jaxaudit.stages",
                                                 "jaxaudit.stages.base")):
        problems.append(f"stage {module} imports stage {target}")
  assert not problems, "\n".join(sorted(problems))


def test_test_modules_have_unique_basenames():
  """The test folders are not packages, so pytest imports each test file by
  its basename: two files of one name stop the whole suite at collection."""
  seen = {}
  for folder, _, names in os.walk(os.path.join(ROOT, "tests")):
    for name in names:
      if name.startswith("test_") and name.endswith(".py"):
        seen.setdefault(name, []).append(os.path.relpath(
            os.path.join(folder, name), ROOT))
  assert not {k: v for k, v in seen.items() if len(v) > 1}
