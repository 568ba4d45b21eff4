"""An ensemble of classifiers as one more classifier: the mean of the members'
probabilities.

Its logits are log(mean_i softmax(logits_i)), so its softmax is the mean
probability and every stage (attacks included: their losses see the log of
the mean probability) audits the ensemble as a whole. Its features are the
members' features concatenated (None if a member has none). Each member gets
the ensemble's input, taken back to [0, 1] pixels, resized to the member's
own input size (bilinear, antialiased) where it differs, and normalised the
member's own way. Members must share their class list; members of different
input sizes need a declared common input size, which the report states.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from jaxaudit.data import pixels as pixels_lib
from jaxaudit.errors import ParameterError
from jaxaudit.models.classifier import Classifier, Normalization, Params


def _common_normalization(members: Sequence[Classifier]) -> Normalization:
  """The members' normalization if they all share it, else none (identity)."""
  first = members[0].normalization
  if all(m.normalization == first for m in members):
    return first
  return Normalization()


def make_ensemble(members: Sequence[tuple[Classifier, Params]], *,
                  input_size: int = 0, name: str = "ensemble"
                  ) -> tuple[Classifier, tuple[Params, ...]]:
  """The ensemble of `members`.

  Args:
    members: (classifier, params) pairs, at least two, with equal class
      lists (or all without names).
    input_size: the ensemble's input side; 0 = the members' common one.
    name: the ensemble's name.

  Returns:
    (classifier, params): the params are the members' params, as a tuple.

  Raises:
    ParameterError: fewer than two members, class lists that differ (naming
      both members), or members of different input sizes and no
      `input_size`.
  """
  if len(members) < 2:
    raise ParameterError("members", f"an ensemble needs at least two, got "
                                    f"{len(members)}")
  classifiers = [m for m, _ in members]
  first = classifiers[0]
  for other in classifiers[1:]:
    if other.class_names != first.class_names:
      raise ParameterError("members", f"{first.name} and {other.name} have "
                                      "different class lists")
  sizes = sorted({m.input_size for m in classifiers})
  if not input_size:
    if len(sizes) > 1:
      raise ParameterError(
          "input_size", f"the members take inputs of {sizes} pixels: declare "
                        "the ensemble's common input size")
    input_size = sizes[0]
  normalization = _common_normalization(classifiers)

  def member_outputs(params, images):
    pixels = images * jnp.asarray(normalization.std, images.dtype) + (
        jnp.asarray(normalization.mean, images.dtype))
    outputs = []
    for member, member_params in zip(classifiers, params):
      outputs.append(member.logits_and_features(
          member_params, pixels_lib.resize_square(pixels, member.input_size)))
    return outputs

  def apply_fn(params, images):
    outputs = member_outputs(params, images)
    logprobs = jnp.stack([jax.nn.log_softmax(logits.astype(jnp.float32), -1)
                          for logits, _ in outputs])
    logits = jax.nn.logsumexp(logprobs, axis=0) - jnp.log(len(outputs))
    features = [f for _, f in outputs]
    if any(f is None for f in features):
      return logits
    return logits, jnp.concatenate(features, axis=-1)

  return (Classifier(apply_fn=apply_fn, input_size=input_size,
                     class_names=first.class_names,
                     normalization=normalization, name=name),
          tuple(p for _, p in members))
