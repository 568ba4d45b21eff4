"""Gradient attacks in pixel space, one module per attack.

Every attack has the signature
`attack(logits_fn, images [B, H, W, 3], labels [B], epsilons [E], keys [B],
**hyperparameters) -> AttackResult` and is pure (jit it, or call it inside a
jitted function). `ATTACKS` maps the names `config.attack.attacks` lists to
them; `NORMS` gives each one's threat model.
"""

from jaxaudit.attacks.common import AttackResult
from jaxaudit.registry import Registry

ATTACKS = Registry("attack", "config.attack.attacks", {
    "fgsm": "jaxaudit.attacks.fgsm:fgsm",
    "pgd_linf": "jaxaudit.attacks.pgd:pgd_linf",
    "pgd_l2": "jaxaudit.attacks.pgd:pgd_l2",
    "deepfool": "jaxaudit.attacks.deepfool:deepfool",
    "cw_l2": "jaxaudit.attacks.cw:cw_l2",
    "fmn_linf": "jaxaudit.attacks.fmn:fmn_linf",
    "fmn_l2": "jaxaudit.attacks.fmn:fmn_l2",
    "apgd_ce": "jaxaudit.attacks.apgd:apgd_ce",
    "apgd_t": "jaxaudit.attacks.apgd:apgd_t",
    "fab_t": "jaxaudit.attacks.fab:fab_t",
    "square": "jaxaudit.attacks.square:square",
    "autoattack": "jaxaudit.attacks.autoattack:autoattack",
})

# Norm of each attack's perturbations (the others': their `norm` setting).
NORMS = {"fgsm": "linf", "pgd_linf": "linf", "pgd_l2": "l2", "cw_l2": "l2",
         "fmn_linf": "linf", "fmn_l2": "l2"}

# Attacks that search for the smallest adversarial perturbation: their
# per-example minimal norms give the whole robust-accuracy-vs-epsilon curve.
MINIMAL = ("deepfool", "cw_l2", "fmn_linf", "fmn_l2")

__all__ = ["ATTACKS", "AttackResult", "MINIMAL", "NORMS"]
