"""The classifier every stage audits: a pure function of (params, images).

Images enter a `Classifier` as float32 `[B, H, W, 3]` pixels in [0, 1], the space
in which attacks take their epsilons and explanations their baselines, whatever
the model. The classifier applies the model's own pixel normalisation and then
its `apply_fn`. Build one from a Flax linen module (`Classifier.from_linen`), a
Flax NNX module (`Classifier.from_nnx`) or any function
`apply_fn(params, normalised_images) -> logits` (or `(logits, features)`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


Params = Any  # Any pytree of arrays: Flax variables, an NNX state, a dict ...
ApplyFn = Callable[[Params, jax.Array], Any]


@dataclasses.dataclass(frozen=True)
class Normalization:
  """The pixel normalisation a model expects: (x - mean) / std on [0, 1] pixels.

  Attributes:
    mean: per-channel [3] (or one value) in [0, 1] pixel units; also the pixel
      the model sees as zero, which SIS's "mean" baseline uses.
    std: per-channel [3] (or one value).
  """
  mean: tuple[float, ...] = (0.0, 0.0, 0.0)
  std: tuple[float, ...] = (1.0, 1.0, 1.0)

  def __post_init__(self):
    for field in ("mean", "std"):
      value = np.broadcast_to(np.asarray(getattr(self, field), np.float64), (3,))
      object.__setattr__(self, field, tuple(float(v) for v in value))
    if any(s <= 0 for s in self.std):
      raise ValueError(f"Normalization: std must be > 0, got {self.std}")

  def __call__(self, images: jax.Array) -> jax.Array:
    """[..., 3] pixels in [0, 1] -> the model's input space."""
    mean = jnp.asarray(self.mean, images.dtype)
    std = jnp.asarray(self.std, images.dtype)
    return (images - mean) / std

  @property
  def zero_pixel(self) -> np.ndarray:
    """float32 [3]: the [0, 1] pixel the model normalises to zero."""
    return np.asarray(self.mean, np.float32)


@dataclasses.dataclass(frozen=True)
class Preprocessing:
  """How photos of any size become model inputs: resize the short side, crop.

  Attributes:
    image_size: side of the square crop fed to the model.
    resize_size: short side after resizing, before the centre crop (equal to
      `image_size`: no crop margin).
  """
  image_size: int
  resize_size: int


@dataclasses.dataclass(frozen=True)
class ModelDims:
  """What a model's outputs look like, from one trace (`Classifier.dims`).

  Attributes:
    num_classes: K, the logits per image.
    feature_dim: D, the features per image (None: the model gives none).
    input_size: S, the input side.
  """
  num_classes: int
  feature_dim: int | None
  input_size: int


@dataclasses.dataclass(frozen=True)
class Classifier:
  """A classifier as pure functions plus what the stages need to know about it.

  Attributes:
    apply_fn: `(params, images [B, S, S, 3] normalised) -> logits [B, K]`, or
      `(logits [B, K], features [B, D])`.
    input_size: S, the square input side.
    class_names: the K class names in output order, or None to take them from
      the data (class subfolders, TFDS label names, an .npz's `classes`).
    normalization: what the model expects of [0, 1] pixels.
    resize_size: short side photos are resized to before the centre crop
      (None: `input_size`, no margin).
    features_fn: `(params, normalised images) -> features [B, D]` for models
      whose `apply_fn` returns logits only; None and no features from
      `apply_fn`: stages that need features (criticism, nearest neighbours)
      say so instead of running.
    name: shown in reports and records.
    init_fn: `(key) -> params`, for random weights and as the template a
      checkpoint's params must fit.
    convert_state_dict: `(flat {torch-style name: array}) -> params`, for
      checkpoints whose names are not the params' own paths.
    module: the Flax linen module, when built from one (training code uses it).
  """
  apply_fn: ApplyFn
  input_size: int
  class_names: tuple[str, ...] | None = None
  normalization: Normalization = Normalization()
  resize_size: int | None = None
  features_fn: ApplyFn | None = None
  name: str = "classifier"
  init_fn: Callable[[jax.Array], Params] | None = None
  convert_state_dict: Callable[[dict[str, np.ndarray]], Params] | None = None
  module: Any = None

  def __post_init__(self):
    if not callable(self.apply_fn):
      raise TypeError("Classifier: apply_fn must be callable")
    if not isinstance(self.input_size, int) or self.input_size < 1:
      raise TypeError(f"Classifier: input_size must be a positive int, got "
                      f"{self.input_size!r}")
    if self.class_names is not None:
      names = tuple(str(n) for n in self.class_names)
      if not names:
        raise ValueError("Classifier: class_names is empty")
      object.__setattr__(self, "class_names", names)

  @classmethod
  def from_linen(cls, module: Any, *, input_size: int,
                 class_names: Sequence[str] | None = None,
                 normalization: Normalization = Normalization(),
                 apply_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> "Classifier":
    """A classifier from a Flax linen module.

    Args:
      module: `module.apply(variables, x, **apply_kwargs)` returns logits or
        (logits, features) for normalised images x [B, S, S, 3].
      input_size: S.
      class_names: the K names, or None (from the data).
      normalization: the pixel normalisation the module was trained with.
      apply_kwargs: extra keyword arguments of `apply` and `init` (e.g.
        `{"train": False}`).
      **kwargs: other `Classifier` fields (resize_size, features_fn, name,
        convert_state_dict).
    """
    apply_kwargs = dict(apply_kwargs or {})

    def apply_fn(variables, images):
      return module.apply(variables, images, **apply_kwargs)

    def init_fn(key):
      return module.init(key, jnp.zeros((1, input_size, input_size, 3)),
                         **apply_kwargs)

    kwargs.setdefault("name", type(module).__name__)
    return cls(apply_fn=apply_fn, input_size=input_size,
               class_names=None if class_names is None else tuple(class_names),
               normalization=normalization, init_fn=init_fn, module=module,
               **kwargs)

  @classmethod
  def from_nnx(cls, model: Any, *, input_size: int,
               class_names: Sequence[str] | None = None,
               normalization: Normalization = Normalization(),
               **kwargs: Any) -> tuple["Classifier", Params]:
    """A classifier and its params from a Flax NNX module.

    The module is put in evaluation mode (`model.eval()`) and split into its
    graph definition and state; the state is the params pytree that stages
    shard and checkpoints restore.

    Returns:
      (classifier, state).
    """
    from flax import nnx  # pylint: disable=g-import-not-at-top
    if hasattr(model, "eval"):
      model.eval()
    graphdef, state = nnx.split(model)

    def apply_fn(params, images):
      return nnx.merge(graphdef, params)(images)

    kwargs.setdefault("name", type(model).__name__)
    classifier = cls(apply_fn=apply_fn, input_size=input_size,
                     class_names=None if class_names is None
                     else tuple(class_names), normalization=normalization,
                     **kwargs)
    return classifier, state

  @property
  def preprocessing(self) -> Preprocessing:
    return Preprocessing(self.input_size, self.resize_size or self.input_size)

  @property
  def num_classes(self) -> int:
    if self.class_names is None:
      raise ValueError("Classifier: class names not resolved yet")
    return len(self.class_names)

  def with_class_names(self, names: Sequence[str]) -> "Classifier":
    return dataclasses.replace(self, class_names=tuple(names))

  def logits_and_features(self, params: Params, images: jax.Array
                          ) -> tuple[jax.Array, jax.Array | None]:
    """Args: params; images float32 [B, S, S, 3] in [0, 1].

    Returns: logits [B, K] and features [B, D] (None if the model has none).
    """
    x = self.normalization(images)
    out = self.apply_fn(params, x)
    if isinstance(out, (tuple, list)):
      return out[0], out[1]
    features = None if self.features_fn is None else self.features_fn(params, x)
    return out, features

  def logits(self, params: Params, images: jax.Array) -> jax.Array:
    """Logits [B, K] for float32 images [B, S, S, 3] in [0, 1]."""
    return self.logits_and_features(params, images)[0]

  def features(self, params: Params, images: jax.Array) -> jax.Array:
    """Features [B, D] for float32 images [B, S, S, 3] in [0, 1]."""
    features = self.logits_and_features(params, images)[1]
    if features is None:
      raise ValueError(f"Classifier {self.name} has no features")
    return features

  def logits_fn(self, params: Params) -> Callable[[jax.Array], jax.Array]:
    """`images -> logits` with params closed over, for attacks and explanations."""
    return lambda images: self.logits(params, images)

  def dims(self, params: Params) -> ModelDims:
    """K, D and S from one abstract trace (the shapes checked by the caller)."""
    logits, features = self.output_shapes(params)
    return ModelDims(logits[-1], None if features is None else features[-1],
                     self.input_size)

  def output_shapes(self, params: Params) -> tuple[tuple[int, ...],
                                                   tuple[int, ...] | None]:
    """Shapes of (logits, features) for one image, without running the model."""
    x = jax.ShapeDtypeStruct((1, self.input_size, self.input_size, 3),
                             jnp.float32)
    logits, features = jax.eval_shape(self.logits_and_features, params, x)
    return logits.shape, None if features is None else features.shape
