"""PyTorch peers set up the way the jaxaudit attacks they are compared with run.

torchattacks' `AutoAttack(version="standard")` leaves APGD, APGD-T and FAB at
torchattacks' 10-step defaults; the paper's standard version, which jaxaudit
runs, takes 100 steps, so the composition is built here with those settings.
"""

from __future__ import annotations

import torchattacks


def standard_autoattack(net, norm: str, eps: float, seed: int = 0,
                        n_classes: int = 10) -> torchattacks.MultiAttack:
  """APGD-CE, APGD-T (9 targets), FAB-T (9 targets), 100 steps each, and
  Square (5,000 queries), each on what the previous left robust.

  Args:
    net: a torch classifier on [N, 3, H, W] images in [0, 1].
    norm: "linf" or "l2".
    eps: the radius in [0, 1] pixel units.
    seed: the attacks' seed.
    n_classes: the model's class count (targets: n_classes - 1).
  """
  norm = {"linf": "Linf", "l2": "L2"}[norm]
  return torchattacks.MultiAttack([
      torchattacks.APGD(net, norm=norm, eps=eps, steps=100, n_restarts=1,
                        loss="ce", seed=seed),
      torchattacks.APGDT(net, norm=norm, eps=eps, steps=100, n_restarts=1,
                         n_classes=n_classes, seed=seed),
      torchattacks.FAB(net, norm=norm, eps=eps, steps=100, n_restarts=1,
                       multi_targeted=True, n_classes=n_classes, seed=seed),
      torchattacks.Square(net, norm=norm, eps=eps, n_queries=5000,
                          n_restarts=1, p_init=0.8, loss="margin", seed=seed),
  ])
