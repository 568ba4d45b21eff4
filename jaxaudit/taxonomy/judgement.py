"""The job's one taxonomy: which labels a person would accept for an image.

Configured once, in `config.taxonomy`, and used the same way by every stage
that judges labels: the mistakes stage (is a top-1 error forgivable?), the
attack stage (is an adversarial label plausible?) and criticism (superclass
groups). A label is acceptable when it is in the image's multi-label set, in
the true class's superclass, a known near-duplicate class, or within
`fine_grained_distance` WordNet edges of it (`plausibility.plausibility`).
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from jaxaudit import classes
from jaxaudit.taxonomy import label_sets as label_sets_lib
from jaxaudit.taxonomy import plausibility
from jaxaudit.taxonomy import superclasses as superclasses_lib

NO_TAXONOMY = superclasses_lib.NO_TAXONOMY
_MULTILABEL_ABOUT = {"demo": "the demo photos' acceptable classes",
                     "real": "ImageNet ReaL labels (Beyer et al. 2020)",
                     "tfds": "the TFDS record's multi-label field"}


def default_config() -> ml_collections.ConfigDict:
  """`config.taxonomy`."""
  return ml_collections.ConfigDict({
      # auto (metaclasses on ImageNet-1k, the shipped groups on CIFAR-10, none
      # otherwise) | metaclass | wordnet | none | a .json path {class: group}.
      "superclass": "auto",
      "wordnet_depth": 7,  # superclass="wordnet": the ancestor at this depth.
      # Label sets: auto | none | demo | real | tfds | a .json/.csv path
      # (see jaxaudit.taxonomy.label_sets).
      "multilabel": "auto",
      # Largest WordNet distance still acceptable (ImageNet-1k; < 0: none).
      "fine_grained_distance": 4,
  })


@dataclasses.dataclass(frozen=True)
class Taxonomy:
  """Attributes:
    labels: the job's label space (K classes).
    superclasses: the superclass groups, or None.
    multilabel: the resolved label-set source ("demo", "real", "tfds", a
      path), or None.
    max_distance: WordNet distance still acceptable.
  """
  labels: classes.LabelSpace
  superclasses: superclasses_lib.Superclasses | None
  multilabel: str | None
  max_distance: int

  @property
  def class_names(self) -> tuple[str, ...]:
    return self.labels.names

  @property
  def label_space(self) -> str:
    return self.labels.kind

  @property
  def groups(self) -> np.ndarray | None:
    """int [K] superclass of each class, or None."""
    return None if self.superclasses is None else self.superclasses.groups

  @property
  def multilabel_name(self) -> str | None:
    """The label-set source as named in summaries ("file" for a path)."""
    if self.multilabel is None:
      return None
    return (self.multilabel if self.multilabel in label_sets_lib.SOURCES
            else "file")

  def label_sets(self, data, ids: np.ndarray) -> list[list[int]] | None:
    """Per example (global `ids`), every acceptable class; None if no source."""
    if self.multilabel is None:
      return None
    return label_sets_lib.label_sets_for(data, self.multilabel, ids=ids,
                                         labels=self.labels)

  def judge(self, true: np.ndarray, other: np.ndarray,
            sets: list[list[int]] | None) -> dict[str, np.ndarray]:
    """`plausibility.plausibility` of `other` [N] for images labelled `true`."""
    return plausibility.plausibility(true, other, sets, self.groups,
                                     self.label_space, self.max_distance)

  def sources(self) -> dict[str, str]:
    """What each truth source is, for summaries and reports."""
    out = {}
    if self.multilabel is not None:
      out[self.multilabel_name] = _MULTILABEL_ABOUT.get(self.multilabel,
                                                        self.multilabel)
    if self.superclasses is not None:
      out["superclass"] = self.superclasses.about
    if self.label_space == classes.IMAGENET1K and self.max_distance >= 0:
      out["wordnet"] = f"WordNet distance <= {self.max_distance}"
    return out

  def proxy_columns(self) -> dict[str, str]:
    """Each truth source's column of `judge`'s output (the one that says the
    source accepts a label), and "plausible" (any source) when there is one:
    what the human study compares people's verdicts with."""
    columns = {self.multilabel_name: "in_label_set",
               "superclass": "same_superclass", "wordnet": "close_in_wordnet"}
    out = {name: columns[name] for name in self.sources()}
    if out:
      out["plausible"] = "plausible"
    return out

  def notes(self) -> list[str]:
    """What the taxonomy cannot judge on this label set."""
    notes = []
    if self.multilabel is None:
      notes.append("no multi-label truth applies to this data "
                   "(config.taxonomy.multilabel): multi_object is never used")
    if self.superclasses is None:
      notes.append(f"{NO_TAXONOMY}: no superclasses (config.taxonomy."
                   "superclass: a .json of {class: group})")
    if self.label_space != classes.IMAGENET1K:
      notes.append(f"the {self.label_space} label space has no WordNet "
                   "hierarchy or near-duplicate list: fine_grained comes from "
                   "superclasses only, near_duplicate_class needs ImageNet-1k")
    return notes


def build(config: ml_collections.ConfigDict, labels: classes.LabelSpace,
          data) -> Taxonomy:
  """The taxonomy `config.taxonomy` describes for this label space and data.

  Raises:
    ParameterError: naming the `config.taxonomy` field at fault.
    DataError: an unreadable or inconsistent taxonomy file.
  """
  groups = superclasses_lib.resolve(config.superclass, labels,
                                    int(config.wordnet_depth))
  multilabel = label_sets_lib.resolve_source(data, config.multilabel, labels)
  return Taxonomy(labels, groups, multilabel,
                  int(config.fine_grained_distance))
