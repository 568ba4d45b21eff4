"""The study page's HTML, without a browser: run text cannot end the data
block, the CSP admits only the page's own script and style and data: images,
images decode to the given pixels, and orders and overlay conditions follow
the design."""

import base64
import hashlib
import io
import json
import re

import numpy as np
from PIL import Image
import pytest

from jaxaudit.errors import ParameterError
from jaxaudit.study import design
from jaxaudit.study import judgements
from jaxaudit.study import page

SEED = 3
ANNOTATORS = ["ann-a", "ann-b", "ann-c"]
SCRIPT_END = "</script><script>window.__pwned=2</script>"
IMG_TAG = '<img src=x onerror="window.__pwned=1">'
DATA_BLOCK = re.compile(
    r'<script type="application/json" id="study-data">(.*?)</script>', re.S)


def _image(seed, shape=(6, 5, 3)):
  return np.random.RandomState(seed).randint(0, 256, shape).astype(np.uint8)


def _tasks():
  return [
      page.Task("err-0", "error", _image(0), [(3, "cat"), (5, IMG_TAG)]),
      page.Task(SCRIPT_END, "error", _image(1), [(1, "dog & <b>")]),
      *[page.Task(f"adv-{i}", "adversarial", _image(10 + i),
                  adversarial_class=f"class {IMG_TAG} {i}",
                  overlay=_image(20 + i, (7, 4, 3))) for i in range(5)],
      page.Task("sub-0", "subset", _image(2),
                [(i, f"c{i}") for i in range(10)]),
  ]


def _render(**kwargs):
  args = dict(run_id="run<&>" + SCRIPT_END, seed=SEED, annotators=ANNOTATORS,
              title="Study " + SCRIPT_END)
  args.update(kwargs)
  return page.render_page(_tasks(), **args)


def _data(text):
  blocks = DATA_BLOCK.findall(text)
  assert len(blocks) == 1
  return blocks[0], json.loads(blocks[0])


def _decode(uri):
  prefix = "data:image/png;base64,"
  assert uri.startswith(prefix)
  return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):]))))


def test_run_text_cannot_end_the_data_block():
  text = _render()
  raw, data = _data(text)
  assert not set("<>&") & set(raw)
  # The page's only elements are its own: one data block, one script.
  assert text.count("</script>") == 2 and text.count("<script") == 2
  assert "<img" not in text.replace(IMG_TAG, "")
  assert data["run_id"] == "run<&>" + SCRIPT_END
  assert data["title"] == "Study " + SCRIPT_END
  assert [t["id"] for t in data["tasks"]] == [t.id for t in _tasks()]
  assert data["tasks"][0]["options"] == [[3, "cat"], [5, IMG_TAG]]
  assert data["tasks"][2]["label"] == f"class {IMG_TAG} 0"
  assert "<title>Study &lt;/script&gt;&lt;script&gt;" in text


def test_csp_admits_only_the_pages_own_script_and_style():
  text = _render()
  csp = re.search(r'<meta http-equiv="Content-Security-Policy" '
                  r'content="([^"]*)">', text)
  assert csp and text.index(csp.group(0)) < text.index("<script")
  policy = dict(d.strip().split(" ", 1) for d in csp.group(1).split(";"))
  script = re.search(r"<script>(.*?)</script>", text, re.S).group(1)
  style = re.search(r"<style>(.*?)</style>", text, re.S).group(1)

  def digest(body):
    return ("'sha256-" + base64.b64encode(
        hashlib.sha256(body.encode()).digest()).decode() + "'")

  assert policy == {"default-src": "'none'", "script-src": digest(script),
                    "style-src": digest(style), "img-src": "data:",
                    "base-uri": "'none'", "form-action": "'none'"}
  assert "innerHTML" not in script and "insertAdjacentHTML" not in script
  assert "</script" not in script.lower() and "</style" not in style.lower()


def test_images_decode_to_the_given_pixels():
  _, data = _data(_render())
  for task, shown in zip(_tasks(), data["tasks"]):
    np.testing.assert_array_equal(_decode(shown["image"]), task.image)
    if task.kind == "adversarial":
      np.testing.assert_array_equal(_decode(shown["heatmap"]), task.overlay)
  tiny = page.Task("t", "subset", np.full((1, 1, 3), 7, np.uint8), [(0, "a")])
  shown = _data(page.render_page([tiny], run_id="r", seed=0, annotators=[]))[1]
  np.testing.assert_array_equal(_decode(shown["tasks"][0]["image"]),
                                tiny.image)


def test_embedded_orders_and_conditions_follow_the_design():
  tasks = _tasks()
  ids = [t.id for t in tasks]
  adversarial = [t.id for t in tasks if t.kind == "adversarial"]
  _, data = _data(_render())
  conditions = design.overlay_conditions(adversarial, ANNOTATORS, SEED)
  assert [a["id"] for a in data["annotators"]] == ANNOTATORS
  for a in data["annotators"]:
    assert a["slot"] == design.annotator_slot(a["id"], ANNOTATORS)
    assert [ids[i] for i in a["order"]] == design.task_order(ids, SEED,
                                                             a["id"])
    assert {t["id"]: t["overlay"][a["slot"]] for t in data["tasks"]
            if t["kind"] == "adversarial"} == conditions[a["id"]]
  assert data["seed"] == str(SEED)


def test_page_order_of_undeclared_ids_sorts_by_digest():
  ids = [t.id for t in _tasks()]
  for a in ANNOTATORS:
    assert page.page_order(ids, SEED, a, ANNOTATORS) == design.task_order(
        ids, SEED, a)
  order = page.page_order(ids, SEED, "newcomer", ANNOTATORS)
  assert sorted(order) == sorted(ids)
  keys = [hashlib.sha256(f"{SEED}\nnewcomer\n{t}".encode()).hexdigest()
          for t in order]
  assert keys == sorted(keys)


def test_task_specs_accept_the_pages_answers():
  tasks = _tasks()
  specs = page.task_specs(tasks, seed=SEED, annotators=ANNOTATORS)
  assert specs["err-0"] == judgements.TaskSpec("error", frozenset({3, 5}))
  assert specs["sub-0"].candidates == frozenset(range(10))
  adversarial = [t.id for t in tasks if t.kind == "adversarial"]
  for a in ANNOTATORS + ["newcomer"]:
    want = design.annotator_conditions(adversarial, a, SEED, ANNOTATORS)
    assert {t: specs[t].overlay(a) for t in adversarial} == want


def test_write_page_to_a_path_or_a_file(tmp_path):
  args = dict(run_id="r", seed=1, annotators=["x"], title="T")
  page.write_page(tmp_path / "a.html", _tasks(), **args)
  buffer = io.StringIO()
  page.write_page(buffer, _tasks(), **args)
  assert (tmp_path / "a.html").read_text(encoding="utf-8") == buffer.getvalue()
  assert buffer.getvalue() == page.render_page(_tasks(), **args)


@pytest.mark.parametrize("tasks,match", [
    ([page.Task("a", "error", _image(0), [(1, "x")])] * 2, "repeats"),
    ([page.Task("", "error", _image(0), [(1, "x")])], "id"),
    ([page.Task("a", "other", _image(0), [(1, "x")])], "kind"),
    ([page.Task("a", "error", _image(0).astype(float), [(1, "x")])], "uint8"),
    ([page.Task("a", "error", _image(0)[..., 0], [(1, "x")])], "uint8"),
    ([page.Task("a", "error", _image(0))], "candidate"),
    ([page.Task("a", "subset", _image(0), [(1, "x"), (1, "y")])], "repeat"),
    ([page.Task("a", "subset", _image(0), [(True, "x")])], "index"),
    ([page.Task("a", "subset", _image(0), [(-1, "x")])], "index"),
    ([page.Task("a", "subset", _image(0), [(1, 2)])], "name"),
    ([page.Task("a", "adversarial", _image(0), adversarial_class="x")],
     "overlay"),
    ([page.Task("a", "adversarial", _image(0), overlay=_image(1))],
     "adversarial_class"),
    ([page.Task("a", "error", _image(0), [(1, "x")], overlay=_image(1))],
     "overlay"),
])
def test_malformed_tasks_are_refused(tasks, match):
  with pytest.raises(ParameterError, match=match):
    page.render_page(tasks, run_id="r", seed=0, annotators=[])


def test_malformed_study_parameters_are_refused():
  tasks = _tasks()[:1]
  with pytest.raises(ParameterError, match="run_id"):
    page.render_page(tasks, run_id="", seed=0, annotators=[])
  with pytest.raises(ParameterError, match="seed"):
    page.render_page(tasks, run_id="r", seed=-1, annotators=[])
  for annotators in (["a\nb"], [""], ["x" * 65]):
    with pytest.raises(ParameterError, match="annotators"):
      page.render_page(tasks, run_id="r", seed=0, annotators=annotators)
  with pytest.raises(ParameterError, match="annotators"):
    page.render_page(tasks, run_id="r", seed=0, annotators=["a", "a"])
