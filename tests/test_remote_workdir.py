"""A job whose workdir is on an object store, not a local disk.

`FakeObjectStore` is an in-process fsspec file system registered as
`fakeobj://` that behaves like GCS or S3 where it matters: files are objects
(no fileno, so nothing can be memory-mapped), folders are only prefixes, and a
rename is a copy then a delete, not atomic. A real job (the shipped digits
model on 64 digits, 16-example shards) writes to `fakeobj://bucket/...` the
same summary, records and report as to a local folder. Killed between a
shard's data files and its manifest, it resumes: the rerun recomputes exactly
the shards no manifest lists, keeps every committed shard's objects untouched,
and ends with the same summary. Large artifacts are read back from remote
shards by row ranges (`resume.RemoteNpy`), through the executor as stages do;
report images, a checkpoint and the converted-weights cache live there too.
"""

import io
import json
import re

import fsspec
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.utils import stringify_path
import jax
import ml_collections
import numpy as np
import pandas as pd
import pytest

from conftest import assert_same_summary, without_timing
from configs import digits as digits_config
from digits_model import model_and_params
from jaxaudit import api
from jaxaudit import artifacts
from jaxaudit import executor as executor_lib
from jaxaudit import files
from jaxaudit import pipeline
from jaxaudit import resume
from jaxaudit import sharding
from jaxaudit import storage
from jaxaudit.models import digits_cnn
from jaxaudit.models import load_model
from jaxaudit.report import html as report_html
from jaxaudit.report import items as rs

PROTOCOL = "fakeobj"


class FakeObjectStore(MemoryFileSystem):
  """An object store in memory: `fakeobj://bucket/key`.

  Its own `store` (MemoryFileSystem's is shared by every subclass); `moves`
  records each rename, which is a copy then a delete, as on GCS or S3.
  """

  protocol = PROTOCOL
  store = {}
  pseudo_dirs = [""]
  moves = []

  @classmethod
  def _strip_protocol(cls, path):
    path = stringify_path(path).removeprefix(f"{PROTOCOL}://").strip("/")
    return "/" + path if path else ""

  def mv(self, path1, path2, recursive=False, maxdepth=None, **kwargs):
    self.moves.append((path1, path2))
    self.copy(path1, path2, recursive=recursive, maxdepth=maxdepth)
    self.rm(path1, recursive=recursive)


class Killed(BaseException):
  """The injected crash (a BaseException: nothing in the product catches it)."""


@pytest.fixture
def bucket():
  """`fakeobj://bucket`, empty, registered for the test."""
  fsspec.register_implementation(PROTOCOL, FakeObjectStore, clobber=True)
  FakeObjectStore.store.clear()
  FakeObjectStore.pseudo_dirs[:] = [""]
  FakeObjectStore.moves.clear()
  yield f"{PROTOCOL}://bucket"
  FakeObjectStore.store.clear()


def _config():
  """`configs/digits.py:fast`, evaluate only (the other stages' compile times
  would dominate), in four shards of 16 digits."""
  config = digits_config.get_config("fast")
  config.update_from_flattened_dict({"stages": "evaluate", "batch_size": 16,
                                     "resume.shard_size": 16})
  return config


def _run(workdir):
  return pipeline.run(_config(), workdir, model=model_and_params())


def _objects(prefix):
  """{key: the object} of every object under a `fakeobj://` prefix."""
  key = FakeObjectStore._strip_protocol(prefix) + "/"
  return {k: v for k, v in FakeObjectStore.store.items() if k.startswith(key)}


def _commits(monkeypatch, workdir, kill_at=None):
  """Records each shard `ShardStore.save` commits, as "<computation>/<k>";
  with `kill_at`, raises `Killed` at that commit after the shard's data files
  are written and before its manifest is."""
  saved = []
  save, write_json = resume.ShardStore.save, files.write_json

  def recording_save(self, shard, ids, arrays):
    paths = save(self, shard, ids, arrays)
    saved.append(f"{storage.relpath(self.root, workdir)}/{shard}")
    return paths

  def failing_write_json(path, value, **kwargs):
    if "/manifest-" in str(path) and len(saved) == kill_at:
      raise Killed(path)
    write_json(path, value, **kwargs)

  monkeypatch.setattr(resume.ShardStore, "save", recording_save)
  monkeypatch.setattr(files, "write_json", failing_write_json)
  return saved


def _summary_at(workdir) -> dict:
  """summary.json (local or remote) without its timing: every other field
  equal to the last digit."""
  return without_timing(json.loads(storage.read_bytes(f"{workdir}/summary.json")))


def _records(workdir):
  return api.AuditResult(workdir=str(workdir), summary={}).records("evaluate")


def test_remote_workdir_matches_local_and_resumes(bucket, tmp_path,
                                                  monkeypatch):
  """A job on the object store, whole and killed then resumed, writes what a
  local job writes; the resumed run recomputes only uncommitted shards."""
  local = tmp_path / "local"
  want = _run(str(local))

  # A whole job on the object store: the same outputs, no rename relied on.
  remote = f"{bucket}/run"
  with monkeypatch.context() as m:
    all_commits = _commits(m, remote)
    assert_same_summary(_run(remote), want)
  assert len(all_commits) >= 4, all_commits
  assert _summary_at(remote) == _summary_at(local)
  pd.testing.assert_frame_equal(_records(remote), _records(local))
  assert storage.read_bytes(f"{remote}/report.html") == (
      local / "report.html").read_bytes()
  assert not FakeObjectStore.moves

  # Killed between a shard's files and its manifest, from halfway on, at a
  # computation's later shard (so its manifest holds the earlier ones).
  killed = f"{bucket}/killed"
  kill_at = next(i for i in range(len(all_commits) // 2, len(all_commits))
                 if int(all_commits[i].rsplit("/", 1)[1]) > 0)
  with monkeypatch.context() as m:
    _commits(m, killed, kill_at=kill_at)
    with pytest.raises(Killed):
      _run(killed)
  assert not storage.exists(f"{killed}/summary.json")
  lost = all_commits[kill_at]  # Files written, never committed.
  computation, shard = lost.rsplit("/", 1)
  lost_folder = f"{killed}/{computation}/shard-{int(shard):05d}-p00000"
  assert "__ids__.npy" in storage.listdir(lost_folder)
  manifest = storage.read_text(f"{killed}/{computation}/manifest-p00000.json")
  assert f"shard-{int(shard):05d}" not in manifest
  lost_key = FakeObjectStore._strip_protocol(lost_folder)
  before = _objects(f"{killed}/shards")
  committed = {k: v for k, v in before.items()
               if not k.startswith(lost_key) and "/manifest-" not in k}
  assert committed

  with monkeypatch.context() as m:
    recomputed = _commits(m, killed)
    assert_same_summary(_run(killed), want)
  assert recomputed == all_commits[kill_at:]
  after = _objects(f"{killed}/shards")
  # Committed shards' objects were not rewritten; the lost shard's were.
  assert all(after[k] is v for k, v in committed.items())
  assert all(after[k] is not v for k, v in before.items()
             if k.startswith(lost_key))
  assert _summary_at(killed) == _summary_at(local)
  pd.testing.assert_frame_equal(_records(killed), _records(local))
  assert not FakeObjectStore.moves


def test_large_outputs_are_read_from_remote_shards_by_row_ranges(bucket):
  """`keep_on_disk` outputs of a remote workdir: nothing memory-mapped, each
  slice read by a byte range of one shard file; the run's stored artifact
  (`artifacts.read_stored`) read back whole."""
  ids = 10 + np.arange(13)
  x = np.arange(13 * 3 * 2, dtype=np.float32).reshape(13, 3, 2)
  workdir = f"{bucket}/run"
  executor = executor_lib.Executor(sharding.make_mesh(), ids,
                                   f"{workdir}/shards/stage", shard_size=5)
  out = executor.run("double", lambda _, batch: {"y": batch["x"] * 2}, None,
                     {"x": x}, batch_size=4, keep_on_disk=("y",))["y"]
  assert isinstance(out, resume.ShardedArray) and out.shape == (13, 3, 2)
  assert all(isinstance(resume.open_npy(path), resume.RemoteNpy)
             for _, _, path in out.parts)
  np.testing.assert_array_equal(out[3:12], 2 * x[3:12])
  np.testing.assert_array_equal(out[12:20], 2 * x[12:])
  assert out[4:4].shape == (0, 3, 2)
  files.write_json(f"{workdir}/artifacts-p00000.json", {"stage.y": [
      [a, b, storage.relpath(p, workdir)] for a, b, p in out.parts]})
  stored_ids, stored = artifacts.read_stored(workdir, "stage.y")
  np.testing.assert_array_equal(stored_ids, ids)
  np.testing.assert_array_equal(stored, 2 * x)


def test_remote_npy_reads_what_write_npy_wrote(bucket):
  """Any array `files.write_npy` takes, C-ordered or not, reads back by row
  ranges exactly as `np.load` reads the whole file."""
  rows = np.arange(30, dtype=np.int16).reshape(5, 3, 2).transpose(0, 2, 1)
  path = f"{bucket}/x/rows.npy"
  files.write_npy(path, rows)
  array = resume.open_npy(path)
  assert (array.shape, array.dtype) == ((5, 2, 3), np.int16)
  np.testing.assert_array_equal(array[1:4], rows[1:4])
  np.testing.assert_array_equal(
      np.load(io.BytesIO(storage.read_bytes(path))), rows)


def test_report_images_on_a_remote_workdir(bucket, tmp_path):
  """report.html and its plot and gallery PNGs, written to the object store,
  are the local ones byte for byte."""
  tiles = [rs.Tile(np.full((8, 8, 3), 40 * i, np.uint8), f"tile {i}")
           for i in range(2)] + [rs.Tile(np.eye(8, dtype=np.float32), "map")]
  sections = [rs.Section("s", [
      rs.Plot("p", {"a": ([1, 2, 3], [0.1, 0.5, 0.2])}),
      rs.Gallery("g", [tiles])])]
  remote = f"{bucket}/run"
  for workdir in (remote, str(tmp_path)):
    report_html.render(workdir, "t", [rs.Text("x")], sections)
  page = storage.read_text(f"{remote}/report.html")
  assets = re.findall(r'src="(report_assets/[^"]+)"', page)
  assert len(assets) == 4
  assert page == (tmp_path / "report.html").read_text()
  for asset in assets:
    assert storage.read_bytes(f"{remote}/{asset}") == (
        tmp_path / asset).read_bytes()


def test_checkpoint_and_converted_weights_cache_on_the_store(bucket):
  """`config.model.checkpoint` read from the store, and torch weights'
  conversion cached there (`config.model.cache_dir`) and read back."""
  checkpoint = f"{bucket}/weights/digits_cnn.msgpack"
  files.write_bytes(checkpoint, storage.read_bytes(digits_cnn.WEIGHTS))
  _, params = load_model(ml_collections.ConfigDict(
      {"name": "digits_cnn", "checkpoint": checkpoint}))
  for a, b in zip(jax.tree.leaves(params),
                  jax.tree.leaves(model_and_params()[1])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

  config = ml_collections.ConfigDict({"name": "efficientnet_lite0",
                                      "checkpoint": "",
                                      "cache_dir": f"{bucket}/cache"})
  _, converted = load_model(config)
  cached = storage.listdir(f"{bucket}/cache")
  assert len(cached) == 1 and cached[0].startswith("efficientnet_lite0-")
  _, reloaded = load_model(config)
  for a, b in zip(jax.tree.leaves(converted), jax.tree.leaves(reloaded)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
