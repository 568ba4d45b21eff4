"""`.npz` and `.safetensors` weights: headers are checked before data is read."""

import io
import json
import struct
import zipfile

import numpy as np
import pytest

import isolated_load
from jaxaudit.errors import WeightsError
from jaxaudit.weights import load_state_dict


def _npy(array: np.ndarray) -> bytes:
  out = io.BytesIO()
  np.save(out, array)
  return out.getvalue()


def _npz(members: dict[str, bytes]) -> bytes:
  out = io.BytesIO()
  with zipfile.ZipFile(out, "w") as archive:
    for name, raw in members.items():
      archive.writestr(name, raw)
  return out.getvalue()


def _safetensors(header: dict, data: bytes) -> bytes:
  text = json.dumps(header).encode()
  return struct.pack("<Q", len(text)) + text + data


def test_npz_round_trip_keeps_values_order_and_dtypes(tmp_path):
  arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3),
            "f": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
            "big_endian": np.arange(3, dtype=">f8"),
            "mask": np.array([True, False])}
  np.savez(tmp_path / "w.npz", **arrays)
  np.savez_compressed(tmp_path / "c.npz", **arrays)
  for name in ("w.npz", "c.npz"):
    loaded = load_state_dict(str(tmp_path / name))
    for key, value in arrays.items():
      np.testing.assert_array_equal(loaded[key], value)
      assert loaded[key].dtype == value.dtype.newbyteorder("=")
      assert loaded[key].flags.owndata


def test_npz_header_claiming_10e12_elements_is_refused_before_allocating(
    tmp_path):
  raw = _npy(np.zeros(2, np.float32)).replace(b"(2,)", b"(1000000000000,)")
  path = tmp_path / "huge.npz"
  path.write_bytes(_npz({"w.npy": raw}))
  with pytest.raises(WeightsError, match=r"tensor 'w': header claims 4000000000000"):
    load_state_dict(str(path))
  # np.load itself would try to allocate 4 TB for this file.
  with isolated_load.IsolatedLoader(timeout_s=10, memory_mb=512) as loader:
    assert loader.load(str(path)).kind == "refused"
    assert loader.load(str(path), "harness_probes:plain_npz").kind == "memory"


def test_npz_object_arrays_and_other_members_are_refused(tmp_path):
  path = tmp_path / "objects.npz"
  np.savez(path, w=np.array([{"a": 1}], dtype=object))
  with pytest.raises(WeightsError, match=r"tensor 'w'.*(allow-list|header)"):
    load_state_dict(str(path))
  path.write_bytes(_npz({"notes.txt": b"hello"}))
  with pytest.raises(WeightsError, match="notes.txt"):
    load_state_dict(str(path))
  path.write_bytes(_npz({"w.npy": _npy(np.zeros(4, np.float32))[:-3]}))
  with pytest.raises(WeightsError, match="the member holds"):
    load_state_dict(str(path))


def test_safetensors_round_trip(tmp_path):
  from safetensors.numpy import save_file
  arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3),
            "mask": np.array([True, False])}
  save_file(arrays, str(tmp_path / "ok.safetensors"))
  loaded = load_state_dict(str(tmp_path / "ok.safetensors"))
  for key, value in arrays.items():
    np.testing.assert_array_equal(loaded[key], value)
    assert loaded[key].flags.owndata


@pytest.mark.parametrize("raw", [
    pytest.param(_safetensors(
        {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
        b"\0" * 8), id="offsets past the file"),
    pytest.param(struct.pack("<Q", 2**40) + b"{}",
                 id="header longer than the file"),
    pytest.param(_safetensors(
        {"w": {"dtype": "F32", "shape": [10**12], "data_offsets": [0, 8]}},
        b"\0" * 8), id="shape beyond its span"),
    pytest.param(_safetensors(
        {"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}},
        b"\0" * 8), id="dtype outside the allow-list"),
])
def test_safetensors_headers_are_bounded_by_the_file(tmp_path, raw):
  path = tmp_path / "bad.safetensors"
  path.write_bytes(raw)
  with pytest.raises(WeightsError, match="bad.safetensors"):
    load_state_dict(str(path))
