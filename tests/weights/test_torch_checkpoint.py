"""The allow-list torch reader: real checkpoints load, malicious ones run nothing."""

import os
import pickle
import struct

import numpy as np
import pytest

from conftest import CIFAR_DIR, require_shared
import crafted
from jaxaudit.errors import DataError, WeightsError
from jaxaudit.models import efficientnet_lite
from jaxaudit.weights import load_state_dict, load_torch_checkpoint
from jaxaudit.weights import UnsafeCheckpointError


class _Payload:
  """Unpickling this runs `os.system(touch <marker>)` under plain pickle."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f"touch {self.marker}",))


def _legacy_file(path, obj):
  """Writes `obj` in torch's legacy layout (magic, protocol, sysinfo, obj, keys)."""
  with open(path, "wb") as f:
    for part in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
      pickle.dump(part, f, protocol=2)
    pickle.dump(obj, f, protocol=2)
    pickle.dump([], f, protocol=2)


def test_malicious_legacy_pickle_is_refused_and_runs_nothing(tmp_path):
  marker = tmp_path / "pwned"
  path = tmp_path / "evil.pth"
  _legacy_file(path, {"state_dict": _Payload(marker)})
  with pytest.raises(UnsafeCheckpointError) as err:
    load_torch_checkpoint(path)
  assert str(path) in str(err.value)
  assert "system" in str(err.value)
  assert not marker.exists()


def test_malicious_zip_pickle_is_refused_and_runs_nothing(tmp_path):
  import zipfile
  marker = tmp_path / "pwned"
  path = tmp_path / "evil.pt"
  with zipfile.ZipFile(path, "w") as z:
    z.writestr("archive/data.pkl", pickle.dumps(_Payload(marker), protocol=2))
  with pytest.raises(UnsafeCheckpointError, match="evil.pt"):
    load_torch_checkpoint(path)
  assert not marker.exists()


def test_refusal_surfaces_through_load_state_dict(tmp_path):
  path = tmp_path / "evil.pth"
  _legacy_file(path, _Payload(tmp_path / "x"))
  with pytest.raises(UnsafeCheckpointError):
    load_state_dict(str(path))


def test_reads_the_shipped_lite0_legacy_pickle():
  state = load_torch_checkpoint(efficientnet_lite.default_checkpoint())
  assert len(state) == 296
  assert state["_fc.weight"].shape == (1000, 1280)
  assert state["_fc.weight"].dtype == np.float32
  assert np.isfinite(state["_conv_stem.weight"]).all()


def test_reads_cifar_checkpoint_with_prefix_stripped():
  path = require_shared(os.path.join(CIFAR_DIR, "resnet20.th"))
  raw = load_torch_checkpoint(path)
  assert abs(float(raw["best_prec1"]) - 91.78) < 0.01
  state = load_state_dict(path)
  assert state["conv1.weight"].shape == (16, 3, 3, 3)


def test_matches_torch_load_on_zip_and_legacy_files(tmp_path):
  torch = pytest.importorskip("torch")
  gen = torch.Generator().manual_seed(0)
  tensors = {"w": torch.randn(4, 3, generator=gen),
             "view": torch.randn(6, 5, generator=gen)[1:, ::2],
             "i": torch.arange(7), "h": torch.randn(3, generator=gen).half()}
  for legacy in (False, True):
    path = tmp_path / f"ckpt{int(legacy)}.pth"
    torch.save(tensors, path, _use_new_zipfile_serialization=not legacy)
    loaded = load_torch_checkpoint(path)
    for key, value in tensors.items():
      np.testing.assert_array_equal(loaded[key], value.numpy())


def test_npz_and_safetensors(tmp_path):
  from safetensors.numpy import save_file
  arrays = {"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3)}
  np.savez(tmp_path / "w.npz", **arrays)
  save_file(arrays, str(tmp_path / "w.safetensors"))
  for name in ("w.npz", "w.safetensors"):
    np.testing.assert_array_equal(load_state_dict(str(tmp_path / name))["a.weight"],
                                  arrays["a.weight"])


def test_truncated_and_missing_files_name_the_file(tmp_path):
  path = tmp_path / "cut.pth"
  path.write_bytes(struct.pack("<q", 1) + b"\x80\x02")
  with pytest.raises(DataError, match="cut.pth"):
    load_state_dict(str(path))
  with pytest.raises(DataError, match="nope.pth"):
    load_state_dict(str(tmp_path / "nope.pth"))


# Crafted headers: every bound is checked before a byte is read.

_ONE_FLOAT = {"0": struct.pack("<f", 1.5)}


@pytest.mark.parametrize("claimed", [4096, 2**22, 10**12])
@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_tensor_overrunning_its_storage_is_refused_by_name(tmp_path, claimed,
                                                         layout):
  tensors = {"weight": crafted.Tensor("0", 0, (claimed,), (1,))}
  write = crafted.legacy_bytes if layout == "legacy" else crafted.zip_bytes
  path = tmp_path / "overrun.pth"
  path.write_bytes(write(tensors, _ONE_FLOAT))
  with pytest.raises(WeightsError) as err:
    load_torch_checkpoint(path)
  message = str(err.value)
  assert str(path) in message and "'weight'" in message
  assert "inside the storage" in message
  with pytest.raises(WeightsError, match="'weight'"):
    load_state_dict(str(path))


@pytest.mark.parametrize("field, view", [
    ("offset", crafted.Tensor("0", 1, (1,), (1,))),
    ("stride", crafted.Tensor("0", 0, (2, 1), (1, 0))),
    ("negative size", crafted.Tensor("0", 0, (-1,), (1,))),
    ("negative stride", crafted.Tensor("0", 0, (1,), (-1,))),
    ("negative offset", crafted.Tensor("0", -1, (1,), (1,))),
    ("rank mismatch", crafted.Tensor("0", 0, (1, 1), (1,))),
])
def test_every_view_field_is_bounded(tmp_path, field, view):
  path = tmp_path / "view.pth"
  path.write_bytes(crafted.legacy_bytes({"w": view}, _ONE_FLOAT))
  with pytest.raises(WeightsError, match=r"tensor 'w'"):
    load_torch_checkpoint(path)


def test_huge_stride_zero_view_is_refused_before_allocating(tmp_path):
  # In bounds (stride 0 repeats element 0) but 4 TB to materialise.
  path = tmp_path / "broadcast.pth"
  view = crafted.Tensor("0", 0, (10**6, 10**6), (0, 0))
  path.write_bytes(crafted.legacy_bytes({"w": view}, _ONE_FLOAT))
  with pytest.raises(WeightsError, match="more than the file can hold"):
    load_torch_checkpoint(path)


def test_strided_view_inside_its_storage_loads_the_right_elements(tmp_path):
  values = np.arange(12, dtype=np.float32)
  path = tmp_path / "strided.pth"
  view = crafted.Tensor("0", 1, (2, 3), (6, 2))
  for write in (crafted.legacy_bytes, crafted.zip_bytes):
    path.write_bytes(write({"w": view}, {"0": values.tobytes()}))
    loaded = load_torch_checkpoint(path)["w"]
    np.testing.assert_array_equal(loaded, values[1:].reshape(
        -1)[np.add.outer(np.arange(2) * 6, np.arange(3) * 2)])
    assert loaded.flags.owndata


def test_storage_sizes_must_equal_the_bytes_present(tmp_path):
  view = crafted.Tensor("0", 0, (2,), (1,))
  path = tmp_path / "sizes.pth"
  # The pickle and the legacy stream claim 2 elements, 1 is present.
  path.write_bytes(crafted.legacy_bytes({"w": view}, _ONE_FLOAT,
                                        numels={"0": 2}))
  with pytest.raises(WeightsError, match="storage '0'"):
    load_torch_checkpoint(path)
  # A zip member shorter than its storage declares.
  path.write_bytes(crafted.zip_bytes({"w": view}, _ONE_FLOAT, numels={"0": 2}))
  with pytest.raises(WeightsError, match=r"member 'archive/data/0' holds 4"):
    load_torch_checkpoint(path)


def test_unknown_storage_key_and_missing_member_are_weights_errors(tmp_path):
  view = crafted.Tensor("0", 0, (1,), (1,))
  path = tmp_path / "keys.pth"
  path.write_bytes(crafted.legacy_bytes({"w": view}, _ONE_FLOAT,
                                        keys=["0", "ghost"]))
  with pytest.raises(WeightsError, match="ghost"):
    load_torch_checkpoint(path)
  path.write_bytes(crafted.zip_bytes({"w": view}, _ONE_FLOAT,
                                     skip_members=("0",)))
  with pytest.raises(WeightsError, match="no member 'archive/data/0'"):
    load_torch_checkpoint(path)


_GOOD = crafted.legacy_bytes({"w": crafted.Tensor("0", 0, (1,), (1,))},
                             _ONE_FLOAT)


@pytest.mark.parametrize("data", [
    pytest.param(pickle.dumps(12345, protocol=2) + _GOOD[15:],
                 id="wrong magic number"),
    *(pytest.param(_GOOD[:n], id=f"cut at {n}")
      for n in (0, 1, 10, 40, 200, len(_GOOD) - 1)),
])
def test_wrong_magic_truncation_and_early_end_are_weights_errors(tmp_path,
                                                                 data):
  path = tmp_path / "broken.pth"
  path.write_bytes(data)
  with pytest.raises(WeightsError, match="broken.pth"):
    load_torch_checkpoint(path)


def test_trailing_bytes_after_the_last_storage_are_refused(tmp_path):
  view = crafted.Tensor("0", 0, (1,), (1,))
  path = tmp_path / "tail.pth"
  path.write_bytes(crafted.legacy_bytes({"w": view}, _ONE_FLOAT) + b"junk")
  with pytest.raises(WeightsError, match="4 unexpected bytes"):
    load_torch_checkpoint(path)


def test_storage_types_outside_the_allow_list_are_refused(tmp_path):
  view = crafted.Tensor("0", 0, (1,), (1,), storage_type="ComplexFloatStorage")
  path = tmp_path / "complex.pth"
  path.write_bytes(crafted.legacy_bytes({"w": view}, {"0": b"\0" * 8}))
  with pytest.raises(WeightsError, match="ComplexFloatStorage"):
    load_torch_checkpoint(path)


def test_shipped_fixtures_equal_what_torch_wrote():
  torch = pytest.importorskip("torch")
  for name in ("small_zip.pt", "small_legacy.pt"):
    path = os.path.join(os.path.dirname(__file__), "data", name)
    ours = load_torch_checkpoint(path)
    theirs = torch.load(path, weights_only=True)
    assert ours["epoch"] == theirs["epoch"] == 3
    for key, value in theirs["state_dict"].items():
      expected = value.float().numpy() if value.dtype == torch.bfloat16 else (
          value.numpy())
      np.testing.assert_array_equal(
          np.asarray(ours["state_dict"][key], expected.dtype), expected)
    assert list(ours["optimizer"]["state"]) == [0]
