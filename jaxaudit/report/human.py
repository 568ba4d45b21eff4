"""Report tables of people's judgements, beside the proxies they check.

Each judged stage's `summary["human"]` (`jaxaudit.study.metrics`) becomes a
section: the human number with its interval next to the proxy numbers the
stage already reports (label sets, superclasses, WordNet), how often each
proxy agrees with the people's majority on the judged items, and the
annotators' agreement (Fleiss' kappa).
"""

from __future__ import annotations

import math

from jaxaudit.report import items as rs


def _num(value: float) -> str:
  return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def _interval(interval: list[float]) -> str:
  low, high = interval
  if math.isnan(low) or math.isnan(high):
    return "n/a"
  return f"[{low:.3f}, {high:.3f}]"


def _kappa_text(kappa: dict, what: str) -> rs.Text:
  return rs.Text(
      f"Agreement between the {kappa['annotators']} annotators on {what}: "
      f"Fleiss' kappa {_num(kappa['value'])} {_interval(kappa['interval'])} "
      f"over the {kappa['items']} items all of them answered.")


def _agreement(human: dict, name: str) -> str:
  entry = human["proxy_agreement"].get(name)
  if entry is None:
    return ""
  return f"{_num(entry['agreement'])} ({entry['items']} items)"


def error_section(human: dict, rectified: dict[str, float],
                  intervals: dict[str, list[float]]) -> rs.Section:
  """The mistakes stage's human section.

  Args:
    human: `summary["mistakes"]["human"]`.
    rectified: proxy source -> its rectified top-1 (the stage summary's).
    intervals: proxy source -> its interval.
  """
  rows = [{"truth": "given label", "rectified top-1": _num(human["top1"]),
           "interval": "", "agrees with people": ""}]
  for name, value in rectified.items():
    rows.append({"truth": f"{name} (proxy)", "rectified top-1": _num(value),
                 "interval": _interval(intervals.get(name, [math.nan] * 2)),
                 "agrees with people": _agreement(human, name)})
  if "plausible" in human["proxy_agreement"]:
    rows.append({"truth": "any proxy", "rectified top-1": "",
                 "interval": "",
                 "agrees with people": _agreement(human, "plausible")})
  people = human["rectified_top1"]
  rows.append({"truth": f"people ({len(human['annotators'])} annotators)",
               "rectified top-1": _num(people["value"]),
               "interval": _interval(people["interval"]),
               "agrees with people": ""})
  accepted = human["accepted"]
  items = [
      rs.Table(rows, title="Rectified top-1: proxies and people"),
      rs.Text(f"People judged {human['judged_errors']} of the "
              f"{human['num_errors']} top-1 errors and accepted the "
              f"prediction on {_num(accepted['value'])} "
              f"{_interval(accepted['interval'])} of them (the judged share "
              "stands for all errors); they marked the given label correct "
              f"on {_num(human['label_accepted']['value'])} "
              f"{_interval(human['label_accepted']['interval'])}. A proxy "
              "agrees with people when it accepts exactly the errors most "
              "annotators accept."),
      _kappa_text(human["kappa"], "whether the prediction is correct")]
  return rs.Section("Mistakes: human judgements", items)


def adversarial_section(human: dict, attack: str, epsilon_label: str,
                        proxy_value: float | None) -> rs.Section:
  """The attack stage's human section.

  Args:
    human: `summary["attack"]["human"]`.
    attack: the judged adversarials' attack.
    epsilon_label: their epsilon's label.
    proxy_value: the stage's plausible robust accuracy there (None: no
      proxy).
  """
  plausible = human["human_plausible_robust_accuracy"]
  rows = [{"robust accuracy": "plain", "value": _num(human["robust_accuracy"]),
           "interval": "", "agrees with people": ""}]
  if proxy_value is not None:
    rows.append({"robust accuracy": "plausible (proxy)",
                 "value": _num(proxy_value), "interval": "",
                 "agrees with people": _agreement(human, "plausible")})
  rows.append({"robust accuracy": f"plausible to people "
                                  f"({len(human['annotators'])} annotators)",
               "value": _num(plausible["value"]),
               "interval": _interval(plausible["interval"]),
               "agrees with people": ""})
  effect = human["explanation_effect"]
  effect_rows = [
      {"shown": "with the explanation overlay",
       "acceptance": _num(effect["accepted_with_overlay"]),
       "answers": effect["answers_with_overlay"]},
      {"shown": "without it", "acceptance":
       _num(effect["accepted_without_overlay"]),
       "answers": effect["answers_without_overlay"]}]
  items = [
      rs.Table(rows, title=f"Robust accuracy under {attack} at "
                           f"{epsilon_label}: proxies and people"),
      rs.Text(f"People judged {human['judged_adversarials']} of the "
              f"{human['num_flipped']} flipped images and found the "
              f"adversarial label acceptable on "
              f"{_num(human['accepted']['value'])} "
              f"{_interval(human['accepted']['interval'])} of them."),
      rs.Table(effect_rows, title="Acceptance of adversarial labels with and "
                                  "without the explanation"),
      rs.Text(f"Effect of the explanation: {_num(effect['difference'])} "
              f"{_interval(effect['interval'])}, permutation test p = "
              f"{_num(effect['p_value'])}."),
      _kappa_text(human["kappa"], "whether the adversarial label is "
                                  "acceptable")]
  return rs.Section("Attacks: human judgements", items)


def subset_section(human: dict) -> rs.Section:
  """The sis stage's human section (`summary["sis"]["human"]`)."""
  rows = []
  for variant, shown in (("sis", "SIS pixels"), ("random", "random pixels")):
    people = human["human_accuracy"][variant]
    rows.append({"subset": shown, "people": _num(people["value"]),
                 "interval": _interval(people["interval"]),
                 "model": _num(human["model_accuracy"][variant]),
                 "no class seen": _num(human["none_share"][variant]),
                 "images": people["items"]})
  agree = human["agreement_with_model"]
  items = [
      rs.Table(rows, title=f"Accuracy on {human['fraction']:.0%} pixel "
                           "subsets: people and the model"),
      rs.Text(f"People saw the model's class in its SIS pixels on "
              f"{_num(agree['value'])} {_interval(agree['interval'])} of the "
              "judged images."),
      _kappa_text(human["kappa"], "the class seen")]
  return rs.Section("Overinterpretation: human judgements", items)
