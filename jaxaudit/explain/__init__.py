"""Attribution methods, keyed by the names `config.explain.methods` lists.

Each entry is a factory `from_config(config.explain) -> AttributionFn`, where an
`AttributionFn(logits_fn, images, targets, keys)` returns an `Attribution`.
"""

from jaxaudit.registry import Registry

METHODS = Registry("attribution method", "config.explain.methods", {
    "integrated_gradients":
        "jaxaudit.explain.integrated_gradients:from_config",
    "saliency": "jaxaudit.explain.saliency:vanilla_from_config",
    "gradient_x_input":
        "jaxaudit.explain.saliency:gradient_x_input_from_config",
    "smoothgrad": "jaxaudit.explain.smoothgrad:from_config",
})
