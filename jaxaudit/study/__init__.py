"""The human study: who sees which task how, what people answered, and the
statistics that turn their answers into metrics with intervals.

`design` orders tasks per annotator and assigns the balanced with/without
explanation conditions of the adversarial tasks; `judgements` reads the answer
files people download from the study page, strictly and within a size cap;
`statistics` holds Fleiss' kappa, bootstrap intervals and a permutation test;
`tasks` turns a run's arrays into judgement tasks (errors, adversarials with
their explanation overlays, SIS and random pixel subsets); `page` writes the
self-contained offline page people answer them on.
Pure NumPy: nothing here needs a model or JAX.
"""
