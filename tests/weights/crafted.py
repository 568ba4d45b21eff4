"""Hand-assembled torch checkpoints for tests: any tensor header a file could hold.

`torch.save` only writes consistent files; an attacker writes anything. These
helpers emit the pickle opcodes directly, so a test can claim any storage size,
offset, shape or stride, and write the legacy or zip layout around them.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import struct
import zipfile

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


@dataclasses.dataclass
class Tensor:
  """One tensor as a checkpoint describes it.

  Attributes:
    storage_key: the storage it views.
    offset, size, stride: the view (elements).
    storage_type: torch storage class name.
  """
  storage_key: str
  offset: int
  size: tuple[int, ...]
  stride: tuple[int, ...]
  storage_type: str = "FloatStorage"


def _global(module: str, name: str) -> bytes:
  return b"c" + f"{module}\n{name}\n".encode()


def _str(text: str) -> bytes:
  raw = text.encode()
  return b"X" + struct.pack("<I", len(raw)) + raw


def _int(value: int) -> bytes:
  if -2**31 <= value < 2**31:
    return b"J" + struct.pack("<i", value)
  raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
  return b"\x8a" + bytes([len(raw)]) + raw


def _tuple(*parts: bytes) -> bytes:
  return b"(" + b"".join(parts) + b"t"


def object_pickle(tensors: dict[str, Tensor], numels: dict[str, int],
                  legacy: bool) -> bytes:
  """Protocol-2 pickle of {name: tensor}, storages as persistent ids."""
  body = b"\x80\x02}("
  for name, t in tensors.items():
    pid = [_str("storage"), _global("torch", t.storage_type), _str(t.storage_key),
           _str("cpu"), _int(numels[t.storage_key])]
    if legacy:
      pid.append(b"N")
    body += _str(name) + _global("torch._utils", "_rebuild_tensor_v2") + b"("
    body += _tuple(*pid) + b"Q" + _int(t.offset)
    body += _tuple(*map(_int, t.size)) + _tuple(*map(_int, t.stride))
    body += b"\x89" + _global("collections", "OrderedDict") + b")R" + b"tR"
  return body + b"u."


def legacy_bytes(tensors: dict[str, Tensor], storages: dict[str, bytes],
                 numels: dict[str, int] | None = None,
                 keys: list[str] | None = None) -> bytes:
  """A legacy-format checkpoint.

  Args:
    tensors: name -> view.
    storages: key -> the storage's raw bytes (float32 unless the tensor says).
    numels: key -> element count the pickle and the stream declare (default:
      the bytes present / 4).
    keys: the storage key list written after the object (default: storages').
  """
  numels = numels or {k: len(v) // 4 for k, v in storages.items()}
  out = io.BytesIO()
  for part in (LEGACY_MAGIC, 1001, {"little_endian": True}):
    pickle.dump(part, out, protocol=2)
  out.write(object_pickle(tensors, numels, legacy=True))
  pickle.dump(list(storages) if keys is None else keys, out, protocol=2)
  for key, raw in storages.items():
    out.write(struct.pack("<q", numels[key]) + raw)
  return out.getvalue()


def zip_bytes(tensors: dict[str, Tensor], storages: dict[str, bytes],
              numels: dict[str, int] | None = None,
              skip_members: tuple[str, ...] = ()) -> bytes:
  """A zip-format checkpoint (members under `archive/`, stored)."""
  numels = numels or {k: len(v) // 4 for k, v in storages.items()}
  out = io.BytesIO()
  with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
    archive.writestr("archive/data.pkl", object_pickle(tensors, numels, False))
    archive.writestr("archive/byteorder", "little")
    for key, raw in storages.items():
      if key not in skip_members:
        archive.writestr(f"archive/data/{key}", raw)
  return out.getvalue()
