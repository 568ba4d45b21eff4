"""Calibration: how far a classifier's confidence is from its accuracy.

`binning` holds the expected calibration error over equal-width and
equal-mass bins, its bootstrap interval and the reliability diagram's points
(NumPy, over gathered per-example confidences); `scores` the per-example
proper scores (negative log-likelihood, Brier) and the log-likelihood of the
label at a grid of temperatures, from which `scores.best_temperature` picks
the temperature that minimises the NLL (reported, never applied to the
model's outputs).
"""
