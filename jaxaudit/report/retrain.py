"""The retrain stage's report: held-out accuracy of models trained on top-ranked
vs random feature subsets."""

from __future__ import annotations

from jaxaudit.report import items as rs

_ABOUT = {"sis": "top-ranked (sis.ranks)", "random": "uniformly random"}


def sections(summary: dict) -> list[rs.Section]:
  """Args: summary: the retrain stage's summary."""
  kept = summary["features_kept"]
  rows = [{"trained and scored on": _ABOUT[v],
           "held-out accuracy (mean)": summary["held_out_accuracy_mean"][v],
           "spread over seeds (max - min)":
               summary["held_out_accuracy_spread"][v],
           "per seed": ", ".join(f"{a:.3f}" for a in
                                 summary["held_out_accuracy"][v]),
           "train accuracy (mean)": summary["train_accuracy_mean"][v]}
          for v in _ABOUT]
  text = (f"Fresh models of the audited architecture, trained on "
          f"{summary['num_train']} images keeping only {kept} of "
          f"{summary['num_features']} features (the rest the baseline pixel) "
          f"and scored on {summary['num_held_out']} held-out images masked the "
          f"same way. Top-ranked minus random: {summary['gap']:+.3f}; the most "
          f"frequent held-out class alone scores "
          f"{summary['chance_accuracy']:.3f}. A large gap means the few "
          "top-ranked features carry the class on their own (Carter et al. "
          "2021, Sec. 4).")
  return [rs.Section("Retraining on sufficient input subsets",
                     [rs.Text(text), rs.Table(rows)])]
