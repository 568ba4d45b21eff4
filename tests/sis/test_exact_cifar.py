"""Exact backward selection against BGSIS on 32 CIFAR-10 ResNet-20 images:
the recorded comparison (scripts/record_sis_exact.py, 32,896 forward passes an
image, too slow for CI) and a re-run of its first image that must match it."""

import numpy as np
import pytest

from benchmarks import peer_references as refs
from conftest import require_shared
from jaxaudit.sis import subsets
from scripts import record_sis_exact

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def record():
  return refs.load(record_sis_exact.NAME)


def _flatten(tree: dict, prefix: str = "") -> dict[str, float]:
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out |= _flatten(value, f"{prefix}{key}.")
    else:
      out[prefix + key] = float(value)
  return out


def _results(record) -> dict[str, np.ndarray]:
  return {k: np.asarray(v) for k, v in record["results"].items()}


def test_record_is_of_these_inputs_and_settings(record):
  require_shared(refs.CIFAR_IMAGES)
  images, labels = refs.cifar_inputs(record["summary"]["num_examples"])
  assert record["inputs_sha256"] == refs.sha256_inputs(images, labels)
  assert record["weights_sha256"] == refs.sha256_file(refs.CIFAR_WEIGHTS)
  settings, _, _ = record_sis_exact.settings_from_config()
  assert record["settings"]["removals"] == list(settings.removals)
  assert record["settings"]["threshold"] == settings.threshold


def test_first_image_reproduces_the_record(record):
  require_shared(refs.CIFAR_IMAGES)
  images, _ = refs.cifar_inputs(1)
  out = record_sis_exact.compare(images, batch=1)
  recorded = _results(record)
  # Near-ties (log p equal to the last bits) may swap a pair of neighbours.
  assert np.mean(out["exact_ranks"][0] == recorded["exact_ranks"][0]) > 0.95
  assert np.mean(out["bgsis_ranks"][0] == recorded["bgsis_ranks"][0]) > 0.95
  assert out["exact_sis_size"][0] == recorded["exact_sis_size"][0]
  assert out["target"][0] == recorded["target"][0]


def test_exact_selection_against_bgsis_on_32_images(record):
  summary = record["summary"]
  results = _results(record)
  assert summary["num_examples"] >= 32 and summary["num_features"] == 256
  # The summary is what `summarize_exact` makes of the recorded outputs.
  settings, names, _ = record_sis_exact.settings_from_config()
  again = subsets.summarize_exact(results, names, settings)
  # (to the rounding of the recorded per-image values).
  flat_again, flat = _flatten(again), _flatten(summary)
  assert flat_again.keys() == flat.keys()
  np.testing.assert_allclose([flat_again[k] for k in flat],
                             list(flat.values()), atol=1e-5)
  exact, approx = summary["exact"], summary["bgsis"]
  # Greedy on the true confidence keeps the prediction on small subsets at
  # least as often as greedy on its gradient, and with more confidence.
  for n in names:
    assert exact["subset_agreement"][n] >= approx["subset_agreement"][n]
    assert exact["subset_confidence"][n] >= approx["subset_confidence"][n]
  found = results["sis_found"]
  assert np.all(results["exact_sis_size"][~found] == 256)
  assert exact["sis_size_median"] <= approx["sis_size_median"]
  # Carter et al.'s finding: 5% of the features suffice for a confident
  # prediction (exact selection; its 10% subsets keep every prediction).
  assert exact["sis_fraction_median"] <= 0.05
  assert exact["subset_agreement"]["10%"] >= 0.9
  # The gradient's order is not the greedy one on 2 x 2 features: the two top
  # 5% overlap at about the rate two random choices would (13 / 256).
  assert summary["top_overlap"]["5%"] < 2 * 13 / 256
  assert abs(summary["spearman_mean"]) < 0.3
