"""Several models in one job (`config.models`, `config.ensemble`): each bad
input is refused before any compute with an error naming its own field (a
name unfit for a folder, an ensemble of an unknown model, of one model or
named as a model, a checkpoint or built-in that does not exist, models of
different class lists, human-study judgements), a model declaring no class
names beside named ones takes theirs (a nameless one of another class count
is refused), and the digits comparison's models load in name order with
their ensemble last: its params the members' own and its logits the log of
their mean probability."""

import dataclasses
import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import without_timing
import digits_model
import user_model
from jaxaudit import job_config
from jaxaudit import model_set
from jaxaudit import pipeline
from jaxaudit.errors import ConfigError, DataError
from jaxaudit.models import Classifier

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _two_digits_models(**ensemble):
  """base_config with `shipped` (digits_cnn) and `early` (digits_cnn_early)
  and `ensemble`'s fields set."""
  config = job_config.base_config()
  config.models.shipped = job_config.model_section(name="digits_cnn")
  config.models.early = job_config.model_section(name="digits_cnn_early")
  config.ensemble.update(ensemble)
  return config


def _digits_job(tmp_path, **models):
  """16 test digits, evaluate only, the given model sections."""
  config = job_config.base_config()
  config.data.builtin = "digits"
  config.data.split = "test"
  config.data.num_examples = 16
  config.stages = "evaluate"
  for name, section in models.items():
    config.models[name] = section
  return config, str(tmp_path / "work")


def _compare_config():
  spec = importlib.util.spec_from_file_location(
      "digits_compare", os.path.join(ROOT, "configs", "digits_compare.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config("fast")


@pytest.mark.parametrize("name", [
    "bad name", "1st", "_lead", "slash/es", "naïve", "", "x" * 65])
def test_a_name_unfit_for_a_folder(name):
  # ConfigDict itself refuses dotted keys; any other string is a key.
  config = _two_digits_models()
  config.models[name] = job_config.model_section(name="digits_cnn")
  with pytest.raises(ConfigError) as e:
    model_set.check_names(config)
  assert str(e.value).startswith(f"config.models.{name}: a model name is")


def test_names_are_sorted_and_the_longest_fits():
  config = _two_digits_models()
  config.models["A-1_" + "x" * 60] = job_config.model_section(name="digits_cnn")
  assert model_set.check_names(config) == ["A-1_" + "x" * 60, "early",
                                           "shipped"]


def test_an_ensemble_member_not_in_the_models():
  config = _two_digits_models(members="shipped, earlyy")
  with pytest.raises(ConfigError, match=r"^config\.ensemble\.members: earlyy "
                     r"not in config\.models \(early, shipped\)$"):
    model_set.check_names(config)
  config.models = job_config.base_config().models  # None at all.
  with pytest.raises(ConfigError, match=r"members: shipped, earlyy not in "
                     r"config\.models \(none\)"):
    model_set.check_names(config)


@pytest.mark.parametrize("members, message", [
    ("shipped", "an ensemble needs at least two different models"),
    (" early ,", "an ensemble needs at least two different models"),
    ("shipped,shipped", "shipped named twice"),
    ("early,shipped,early", "early named twice")])
def test_an_ensemble_of_one_model_or_naming_one_twice(members, message):
  config = _two_digits_models(members=members)
  with pytest.raises(ConfigError, match=r"^config\.ensemble\.members: "
                     + message):
    model_set.load_members(config)


def test_an_ensemble_named_as_one_of_the_models():
  config = _two_digits_models(members="early,shipped", name="shipped")
  with pytest.raises(ConfigError, match=r"^config\.ensemble\.name: 'shipped' "
                     r"is also in config\.models"):
    model_set.load_members(config)
  config.ensemble.name = "the ensemble"
  with pytest.raises(ConfigError, match=r"^config\.ensemble\.name: 'the "
                     "ensemble' is not a model name"):
    model_set.load_members(config)


def test_no_ensemble_is_no_ensemble():
  config = _two_digits_models(members=" , ")
  assert model_set.ensemble_members(config) == []
  assert [m.name for m in model_set.load_members(config)] == ["early",
                                                              "shipped"]


def test_a_missing_checkpoint_names_the_models_field(tmp_path):
  missing = str(tmp_path / "none.msgpack")
  config = _two_digits_models()
  config.models.early.checkpoint = missing
  # A file that is not there is a data error (WeightsError), as for
  # config.model; its field is the model's own.
  with pytest.raises(DataError) as e:
    model_set.load_members(config)
  message = str(e.value)
  assert message.startswith("config.models.early.checkpoint: ")
  assert missing in message and "config.model." not in message


def test_an_unknown_built_in_names_the_models_field():
  config = _two_digits_models()
  config.models.shipped.name = "digits_cnnn"
  with pytest.raises(ConfigError) as e:
    model_set.load_members(config)
  message = str(e.value)
  assert message.startswith("config.models.shipped.name: unknown model "
                            "'digits_cnnn'")
  assert "config.model." not in message and "digits_cnn_early" in message


def test_a_missing_factory_file_names_the_models_field(tmp_path):
  config = _two_digits_models()
  config.models.early.name = f"{tmp_path}/nowhere.py:make"
  with pytest.raises(ConfigError, match=r"^config\.models\.early\.name: no "
                     "such file"):
    model_set.load_members(config)


def test_an_ensemble_of_different_sizes_needs_its_input_size():
  model, params = digits_model.model_and_params()

  def from_24(p, x):  # Takes 24 x 24 inputs.
    return model.apply_fn(p, jax.image.resize(x, x.shape[:1] + (16, 16, 3),
                                              "bilinear", antialias=True))

  bigger = dataclasses.replace(model, apply_fn=from_24, input_size=24,
                               features_fn=None)
  config = _two_digits_models(members="early,shipped")
  given = {"early": (bigger, params), "shipped": (model, params)}
  with pytest.raises(ConfigError, match=r"^config\.ensemble\.input_size: the "
                     r"members take inputs of \[16, 24\] pixels"):
    model_set.load_members(config, given)
  config.ensemble.input_size = 16
  members = model_set.load_members(config, given)
  assert members[-1].classifier.input_size == 16
  # Given models are used as given, under their config names.
  assert members[0].classifier.input_size == 24
  assert members[0].params is params
  assert [m.classifier.name for m in members] == ["early", "shipped",
                                                  "ensemble"]


def test_the_digits_comparison_loads_in_name_order_with_the_ensemble_last():
  config = _compare_config()
  members = model_set.load_members(config)
  assert [m.name for m in members] == ["early", "shipped", "ensemble"]
  assert [m.field for m in members] == [
      "config.models.early", "config.models.shipped", "config.ensemble"]
  assert [m.members for m in members] == [(), (), ("early", "shipped")]
  assert [m.classifier.name for m in members] == ["early", "shipped",
                                                  "ensemble"]
  early, shipped, ensemble = members
  # The shipped member is the committed digits_cnn.
  _, reference = digits_model.model_and_params()
  jax.tree.map(np.testing.assert_array_equal, shipped.params, reference)
  assert isinstance(ensemble.params, tuple) and len(ensemble.params) == 2
  assert ensemble.params[0] is early.params
  assert ensemble.params[1] is shipped.params
  _, _, images, labels, _ = digits_model.digits(24)
  probs = [jax.nn.softmax(m.classifier.logits(m.params, images), -1)
           for m in (early, shipped)]
  # Two different checkpoints: their probabilities differ.
  assert float(jnp.abs(probs[0] - probs[1]).max()) > 0.1
  got = ensemble.classifier.logits(ensemble.params, images)
  np.testing.assert_allclose(got, jnp.log((probs[0] + probs[1]) / 2),
                             atol=1e-5)
  assert ensemble.classifier.class_names == shipped.classifier.class_names
  assert (np.asarray(jnp.argmax(got, -1)) == np.asarray(labels)).mean() >= 0.8


def test_models_of_different_class_lists_name_both(tmp_path):
  factory = f"{user_model.write(tmp_path)}:make"  # 7 classes, zero ... six.
  for first, second in (("digits", "mine"), ("aaa", "digits")):
    config, workdir = _digits_job(tmp_path / first, **{
        first: job_config.model_section(
            name="digits_cnn" if first == "digits" else factory),
        second: job_config.model_section(
            name="digits_cnn" if second == "digits" else factory)})
    with pytest.raises(ConfigError) as e:
      pipeline.run(config, workdir)
    message = str(e.value)
    assert message.startswith(f"config.models.{first} and config.models."
                              f"{second} have different class lists")
    assert (("10 classes" in message and "vs 7:" in message)
            or ("7 classes" in message and "vs 10:" in message))
    assert not os.path.exists(os.path.join(workdir, "summary.json"))
    assert not os.path.exists(os.path.join(workdir, "config.json"))


@pytest.mark.parametrize("stage", ["mistakes", "attack", "sis"])
def test_human_study_judgements_are_refused(tmp_path, stage):
  config, workdir = _digits_job(
      tmp_path, shipped=job_config.model_section(name="digits_cnn"),
      early=job_config.model_section(name="digits_cnn_early"))
  config[stage].judgements = "x.json"
  with pytest.raises(ConfigError, match=rf"^config\.{stage}\.judgements: a "
                     "human study scores a single model's run"):
    pipeline.run(config, workdir)
  assert not os.path.exists(os.path.join(workdir, "summary.json"))


def test_two_models_evaluate_side_by_side(tmp_path):
  config, workdir = _digits_job(
      tmp_path, shipped=job_config.model_section(name="digits_cnn"),
      early=job_config.model_section(name="digits_cnn_early"))
  summary = pipeline.run(config, workdir)
  assert sorted(summary["models"]) == ["early", "shipped"]
  for name in ("early", "shipped"):
    assert os.path.exists(os.path.join(workdir, "models", name,
                                       "summary.json"))
  assert os.path.exists(os.path.join(workdir, "summary.json"))


def test_a_nameless_model_beside_named_ones_takes_their_classes(tmp_path):
  model, params = digits_model.model_and_params()
  config, workdir = _digits_job(
      tmp_path, named=job_config.model_section(name="digits_cnn"),
      nameless=job_config.model_section(name="digits_cnn"))
  # digits_cnn's own 10 logits, declaring no names (Classifier.from_linen's
  # default), given in memory as jaxaudit.audit(models=...) would.
  nameless = dataclasses.replace(model, class_names=None)
  summary = pipeline.run(config, workdir,
                         models={"nameless": (nameless, params)})
  assert sorted(summary["models"]) == ["named", "nameless"]
  assert without_timing(summary["models"]["named"]) == without_timing(
      summary["models"]["nameless"])


def test_a_nameless_model_of_another_class_count_is_refused(tmp_path):
  """A nameless model beside named ones must output as many logits as they
  have classes: 7 logits beside digits_cnn's 10 names the nameless one."""
  config, workdir = _digits_job(
      tmp_path, named=job_config.model_section(name="digits_cnn"),
      short=job_config.model_section(name="digits_cnn"))
  nameless = Classifier(apply_fn=lambda p, x: x.mean((1, 2)) @ p["w"],
                        input_size=16)
  cut = {"w": jnp.zeros((3, 7))}
  with pytest.raises(ConfigError, match=r"^config\.models\.short\.name: the "
                     "model outputs 7 logits and declares no class names; the "
                     "models beside it have 10 classes"):
    pipeline.run(config, workdir, models={"short": (nameless, cut)})
  assert not os.path.exists(os.path.join(workdir, "summary.json"))


def test_a_comparison_without_evaluate_is_refused(tmp_path):
  """The comparison joins the models' predictions: a job of several models
  without the evaluate stage is refused before anything is written."""
  config, workdir = _digits_job(
      tmp_path, a=job_config.model_section(name="digits_cnn"),
      b=job_config.model_section(name="digits_cnn_early"))
  config.stages = "sis"
  with pytest.raises(ConfigError, match=r"'compare' needs evaluate\.prediction; "
                     r"add 'evaluate' before 'compare'"):
    pipeline.run(config, workdir)
  assert not os.path.exists(workdir)
