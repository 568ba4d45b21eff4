"""artifacts.plan: every need met by an earlier stage, or an error naming the
stage to add or move; and each producer told which of its artifacts are used."""

import re

import pytest

from jaxaudit.artifacts import ArtifactSpec, Contract, Need, plan
from jaxaudit.errors import ConfigError

LOGITS = ArtifactSpec("evaluate.logits", (10,), "float32")
FEATURES = ArtifactSpec("evaluate.features", (64,), "float32")
ADVERSARIAL = ArtifactSpec("attack.adversarial.pgd", (32, 32, 3), "float32",
                           large=True)
MAPS = ArtifactSpec("explain.map.ig", (32, 32), "float32", large=True)


def _contracts(**consumes):
  """evaluate -> logits, attack -> adversarial, explain -> maps; each stage
  consuming the given needs."""
  produces = {"evaluate": (LOGITS,), "attack": (ADVERSARIAL,),
              "explain": (MAPS,)}
  return {stage: Contract(consumes=tuple(consumes.get(stage, ())),
                          produces=specs)
          for stage, specs in produces.items()}


def _raises(message):
  return pytest.raises(ConfigError, match=re.escape(message))


def test_consumer_before_its_producer_says_what_to_move():
  contracts = _contracts(explain=[Need("evaluate.logits")])
  with _raises("'explain' uses evaluate.logits from 'evaluate', which runs "
               "after it; move 'evaluate' before 'explain'"):
    plan(["explain", "evaluate"], contracts)


def test_missing_producer_says_what_to_add():
  contracts = _contracts(explain=[Need("attack.adversarial.pgd")])
  with _raises("'explain' needs attack.adversarial.pgd; add 'attack' before "
               "'explain'"):
    plan(["evaluate", "explain"], contracts)


def test_producer_that_does_not_produce_it_with_this_config():
  contracts = _contracts(explain=[Need("evaluate.features")])
  with _raises("'explain' needs evaluate.features, which 'evaluate' does not "
               "produce with this config"):
    plan(["evaluate", "explain"], contracts)


def test_optional_need_may_go_unmet_but_not_run_first():
  contracts = _contracts(attack=[Need("evaluate.features", optional=True),
                                 Need("explain.map.ig", optional=True)])
  # Producer absent, or listed but not producing it: the need is dropped.
  assert plan(["evaluate", "attack"], contracts) == {
      "evaluate": frozenset(), "attack": frozenset()}
  # Producer listed after the consumer: it must run first.
  with _raises("move 'explain' before 'attack'"):
    plan(["attack", "explain"], contracts)
  # Producer listed before: the artifact is used.
  assert plan(["explain", "attack"], contracts)["explain"] == {"explain.map.ig"}


def test_plan_names_the_artifacts_later_stages_consume():
  both = Contract(produces=(LOGITS, FEATURES))
  contracts = _contracts(attack=[Need("evaluate.logits")],
                         explain=[Need("evaluate.logits"),
                                  Need("attack.adversarial.pgd")])
  contracts["evaluate"] = both
  needed = plan(["evaluate", "attack", "explain"], contracts)
  assert needed == {"evaluate": frozenset({"evaluate.logits"}),
                    "attack": frozenset({"attack.adversarial.pgd"}),
                    "explain": frozenset()}
  assert plan(["evaluate"], contracts) == {"evaluate": frozenset()}
