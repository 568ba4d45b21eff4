"""Natural shift set entries: parsed as TFDS names, configs and splits; the
200-class sets' logits are exactly their authors' classes."""

import numpy as np
import pytest

from jaxaudit import classes
from jaxaudit.data import natural_sets
from jaxaudit.errors import ConfigError

IMAGENET = classes.LabelSpace.of(classes.class_names("imagenet1k"))


def test_entries_give_name_config_and_split():
  v2, corrupted, other = natural_sets.parse(
      "imagenet_v2, imagenet2012_corrupted/gaussian_noise_3:validation[:100],"
      "imagenet_sketch")
  assert (v2.tfds_name, v2.split) == ("imagenet_v2", "test")
  assert corrupted.tfds_name == "imagenet2012_corrupted/gaussian_noise_3"
  assert corrupted.split == "validation[:100]"
  assert corrupted.label == ("imagenet2012_corrupted_gaussian_noise_3_"
                             "validation__100_")
  assert (other.split, other.known.subset) == ("test", "")
  assert natural_sets.parse("imagenet2012_corrupted/fog_1")[0].split == (
      "validation")


@pytest.mark.parametrize("entry", ["ImageNet-R", "imagenet_r/", "a b"])
def test_malformed_entries_name_the_field(entry):
  with pytest.raises(ConfigError, match="config.shift.natural"):
    natural_sets.parse(entry)


def test_200_class_sets_keep_their_authors_classes():
  r = natural_sets.logit_mask(natural_sets.parse("imagenet_r")[0], IMAGENET)
  a = natural_sets.logit_mask(natural_sets.parse("imagenet_a")[0], IMAGENET)
  assert r.sum() == a.sum() == 200 and (r & a).sum() == 86
  wnids = [w for w, _ in classes.imagenet1k_classes()]
  # ImageNet-A's first classes in its authors' thousand_k_to_200: 6, 11, 13.
  assert np.flatnonzero(a)[:3].tolist() == [6, 11, 13]
  assert wnids[np.flatnonzero(r)[0]] == "n01443537"  # goldfish.
  assert natural_sets.logit_mask(natural_sets.parse("imagenet_v2")[0],
                                 IMAGENET).all()
  with pytest.raises(ConfigError, match="none of them a class of the model"):
    natural_sets.logit_mask(natural_sets.parse("imagenet_r")[0],
                            classes.LabelSpace.of(classes.CIFAR10_NAMES))
