"""The allow-list torch reader: real checkpoints load, malicious ones run nothing."""

import os
import pickle
import struct

import numpy as np
import pytest

from conftest import CIFAR_DIR, require_shared
from jaxaudit.errors import DataError
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
