"""Gradient attacks in pixel space, one module per attack, and their registry.

Every attack has the signature
`attack(logits_fn, images [B, H, W, 3], labels [B], epsilons [E], keys [B],
**settings) -> AttackResult` and is pure (jit it, or call it inside a jitted
function). `ATTACKS` maps each name `config.attack.attacks` lists to its
`AttackSpec`: the function, its threat model, whether it searches minimal
perturbations, its config section with the attack stage's defaults, and how
the stage runs it.

Epsilon units in the config sections: L-inf epsilons in 1/255 (`1.0` = one
grey level), L2 epsilons in [0, 1]-pixel units.
"""

import functools

from jaxaudit.attacks import runners
from jaxaudit.attacks.common import AttackResult
from jaxaudit.attacks.spec import AttackSpec
from jaxaudit.registry import Registry

# A few steps from the image beat FGSM; random starts need more steps.
_PGD = dict(steps=3, rel_stepsize=0.5, restarts=1, random_start=False,
            loss="ce", targeted=False)
_LINF = (0.25, 0.5, 1.0)
_L2 = (0.05, 0.1, 0.25)
# AutoAttack's sub-attacks in its standard order.
SUBATTACKS = ("apgd_ce", "apgd_t", "fab_t", "square")

ATTACKS = Registry("attack", "config.attack.attacks", {
    "fgsm": AttackSpec("jaxaudit.attacks.fgsm:fgsm", {"epsilons": _LINF},
                       norm="linf"),
    "pgd_linf": AttackSpec("jaxaudit.attacks.pgd:pgd_linf",
                           dict(_PGD, epsilons=_LINF), norm="linf",
                           targeted=True),
    "pgd_l2": AttackSpec("jaxaudit.attacks.pgd:pgd_l2",
                         dict(_PGD, epsilons=_L2), norm="l2", targeted=True),
    # DeepFool stops once a batch is fooled, so 50 steps cost what the
    # slowest example needs.
    "deepfool": AttackSpec(
        "jaxaudit.attacks.deepfool:deepfool",
        {"epsilons": _L2, "norm": "l2", "steps": 50, "candidates": 4,
         "overshoot": 0.02}, minimal=True),
    # C&W's Adam moves every pixel by about `stepsize` per step: 1e-4 suits
    # 224 x 224 images (0.01, Foolbox's default, oversteps a minimal
    # perturbation there tenfold).
    "cw_l2": AttackSpec(
        "jaxaudit.attacks.cw:cw_l2",
        {"epsilons": _L2, "binary_search_steps": 2, "steps": 40,
         "stepsize": 1e-4, "confidence": 0.0, "initial_const": 1.0},
        norm="l2", minimal=True),
    "fmn_linf": AttackSpec("jaxaudit.attacks.fmn:fmn_linf",
                           {"epsilons": _LINF, "steps": 20}, norm="linf",
                           minimal=True),
    "fmn_l2": AttackSpec("jaxaudit.attacks.fmn:fmn_l2",
                         {"epsilons": _L2, "steps": 20}, norm="l2",
                         minimal=True),
    "apgd_ce": AttackSpec("jaxaudit.attacks.apgd:apgd_ce",
                          {"epsilons": _LINF, "norm": "linf", "steps": 100,
                           "restarts": 1}),
    "apgd_t": AttackSpec("jaxaudit.attacks.apgd:apgd_t",
                         {"epsilons": _LINF, "norm": "linf", "steps": 100,
                          "restarts": 1, "num_target_classes": 9}),
    "fab_t": AttackSpec("jaxaudit.attacks.fab:fab_t",
                        {"epsilons": _LINF, "norm": "linf", "steps": 100,
                         "restarts": 1, "num_target_classes": 9}),
    "square": AttackSpec("jaxaudit.attacks.square:square",
                         {"epsilons": _LINF, "norm": "linf", "queries": 5000,
                          "restarts": 1}),
    # Standard AutoAttack: each sub-attack on what the previous left robust.
    "autoattack": AttackSpec(
        "jaxaudit.attacks.autoattack:autoattack",
        {"epsilons": (0.5, 1.0), "norm": "linf",
         "attacks": ",".join(SUBATTACKS), "steps": 100, "restarts": 1,
         "num_target_classes": 9, "queries": 5000},
        runner=functools.partial(runners.sequence,
                                 plan="jaxaudit.attacks.autoattack:plan"),
        keeps_adversarials=False),
})

__all__ = ["ATTACKS", "AttackResult", "AttackSpec", "SUBATTACKS"]
