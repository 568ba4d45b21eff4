"""The attack stage compiles once per (attack, batch shape): the number and
values of the epsilons change no shape, so they change no compilation count,
and summary.json says how many compilations each attack made (counted from
JAX's own monitoring events)."""

import pytest

from jaxaudit import job_config, pipeline

AUTOATTACK = {"steps": 5, "queries": 50, "num_target_classes": 3}


def _attack_summary(tmp_path, name: str, epsilons: tuple[float, ...],
                    **settings) -> dict:
  config = job_config.digits_config()
  config.stages = "evaluate,attack"
  config.data.num_examples = 24
  config.batch_size = 8
  config.attack.attacks = name
  config.attack[name].epsilons = epsilons
  config.attack[name].update(settings)
  return pipeline.run(config, str(tmp_path))["attack"]


def _compilations(timing: dict) -> dict[str, int]:
  """Compilations per attack, or per sub-attack of a composition."""
  parts = timing.get("sub_attacks", {"": timing})
  return {name: fields["compilations"] for name, fields in parts.items()}


@pytest.mark.parametrize("name,few,many,settings", [
    ("pgd_linf", (4.0,), (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0), {}),
    ("autoattack", (8.0,), (2.0, 4.0, 6.0, 8.0, 10.0, 12.0), AUTOATTACK),
])
def test_compilations_do_not_grow_with_the_epsilons(tmp_path, name, few, many,
                                                    settings):
  one = _attack_summary(tmp_path / "few", name, few, **settings)
  sweep = _attack_summary(tmp_path / "many", name, many, **settings)
  # The sweep really attacked: robust accuracy falls with epsilon.
  accuracy = list(sweep["robust_accuracy"][name].values())
  assert len(accuracy) == len(many)
  assert accuracy[-1] < accuracy[0] <= sweep["clean_accuracy"]
  counts = _compilations(one["timing"]["attacks"][name])
  assert counts == _compilations(sweep["timing"]["attacks"][name])
  # One compilation per attack (per sub-attack of AutoAttack) for the one
  # batch shape, and the stage as a whole compiled as often either way.
  assert set(counts.values()) == {1}
  assert one["timing"]["compilations"] == sweep["timing"]["compilations"]
  if name == "autoattack":
    assert list(counts) == ["apgd_ce", "apgd_t", "fab_t", "square"]
    # Every sub-attack had rows to attack at every epsilon.
    for summary in (one, sweep):
      for after in summary["robust_accuracy_after"][name].values():
        assert min(after.values()) > 0
