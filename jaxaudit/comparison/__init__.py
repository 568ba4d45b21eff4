"""Comparing models on the same examples, per example.

`agreement` counts which of two models gets each labelled example right and
tests the difference (exact McNemar); `overlap` puts two models' feature
subsets (their SIS, their top-ranked 5%) on one grid and measures how much
they share; `transfer` runs one model on another's adversarials.
"""
