"""jaxaudit: audits image classifiers beyond their accuracy, in JAX."""

__version__ = "0.1.0"
