"""jaxaudit: audits image classifiers beyond their accuracy, in JAX.

The public API:
  Classifier, Normalization: wrap a Flax linen or NNX module, or any
    `apply_fn(params, images) -> logits`, with its input size, pixel
    normalisation and class names.
  audit(classifier, params, images=..., labels=..., stages=...): a whole job
    from Python (summary, records, report), as `python -m jaxaudit.main` runs it.
  write_study(result, ...): a finished audit's human study page, as
    `python -m jaxaudit.annotate` writes it.
The pure methods live in their packages: `jaxaudit.attacks` (fgsm, pgd,
deepfool, cw), `jaxaudit.explain` (integrated gradients, SmoothGrad, ...),
`jaxaudit.criticism` (MMD-critic), `jaxaudit.sis` (BGSIS).

The names are imported on first use, so `import jaxaudit.weights` (say) does
not pull in JAX and the whole pipeline.
"""

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "audit": "jaxaudit.api",
    "AuditResult": "jaxaudit.api",
    "Classifier": "jaxaudit.models.classifier",
    "Normalization": "jaxaudit.models.classifier",
    "write_study": "jaxaudit.api",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
  if name in _EXPORTS:
    return getattr(importlib.import_module(_EXPORTS[name]), name)
  raise AttributeError(f"module 'jaxaudit' has no attribute '{name}'")


def __dir__() -> list[str]:
  return sorted(list(globals()) + __all__)
