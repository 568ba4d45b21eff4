"""Seeded mutations of real weight files, drawn by hypothesis.

A `Seed` is a real file plus where its structure lies (pickles, headers, zip
members); `mutate(seed, draw)` applies 1-4 mutations drawn with hypothesis's
`draw`: generic byte edits (flips, truncations, insertions, deletions) aimed
mostly at the structural bytes, and format-aware edits that keep the file
parseable enough to reach the deeper checks: integer fields of the pickles
(storage sizes, offsets, shapes, strides) set to boundary values, pickle opcodes
swapped, legacy storage counts, zip members dropped, renamed or resized, .npy
header shapes and dtypes, safetensors header lengths, shapes and offsets.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import json
import pickletools
import struct
import warnings
import zipfile
from typing import Callable

from hypothesis import strategies as st

INTERESTING = (0, 1, 2, 3, 7, 255, 256, 4095, 4096, 65535, 2**22, 2**31 - 1,
               2**31, 2**32, 2**40, 10**12, 2**62, 2**63 - 1, -1, -2, -2**31,
               -2**63)
NPY_DTYPES = ("<f4", "<f8", ">f4", "|b1", "|u1", "<c8", "|O", "|V8", "<U4",
              "<i8", "<f2", "[('a', '<f4')]")
SAFETENSORS_DTYPES = ("F32", "F64", "F16", "BF16", "I64", "BOOL", "U8", "C64",
                      "F8_E4M3", "U64", "XYZ")
_OPCODES = [op.code.encode("latin1") for op in pickletools.opcodes]
_INT_OPS = {"BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG"}

Draw = Callable[[st.SearchStrategy], object]


@dataclasses.dataclass(frozen=True)
class Seed:
  """A real weight file to mutate.

  Attributes:
    name: the case name (and the file suffix decides the reader).
    data: the file's bytes.
    kind: "legacy", "zip", "npz" or "safetensors".
    regions: [(start, end)] structural byte ranges, where most generic edits
      land (storage data is mostly inert).
  """
  name: str
  data: bytes
  kind: str
  regions: tuple[tuple[int, int], ...]


def _genops(stream: io.BytesIO):
  """`pickletools.genops`, quiet about the escapes of mutated STRING opcodes."""
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    yield from pickletools.genops(stream)


def _pickle_spans(data: bytes, start: int = 0) -> list[tuple[int, int]]:
  """[start, end) of consecutive pickles beginning at `start` (a valid seed)."""
  spans, position = [], start
  stream = io.BytesIO(data)
  while position < len(data):
    stream.seek(position)
    try:
      for _ in _genops(stream):
        pass
    except Exception:  # pylint: disable=broad-except  (a mutated file)
      break
    spans.append((position, stream.tell()))
    position = stream.tell()
    if data[position:position + 1] != b"\x80":
      break
  return spans


def make_seed(name: str, data: bytes, kind: str) -> Seed:
  """A `Seed` with the structural regions of its format found."""
  if kind == "legacy":
    spans = _pickle_spans(data)
    regions = tuple(spans) + ((spans[-1][1], spans[-1][1] + 64),)
  elif kind == "msgpack":
    regions = ((0, len(data)),)
  elif kind == "safetensors":
    (length,) = struct.unpack_from("<Q", data)
    regions = ((0, 8 + length),)
  else:  # zip: headers are in the first and last bytes of every member.
    archive = zipfile.ZipFile(io.BytesIO(data))
    regions = tuple((info.header_offset, info.header_offset + 128)
                    for info in archive.infolist())
    regions += ((max(0, len(data) - 1024), len(data)),)
  return Seed(name, data, kind, regions)


def _position(seed_data: bytes, seed: Seed, draw: Draw) -> int:
  if not seed_data:
    return 0
  if draw(st.booleans()):
    start, end = draw(st.sampled_from(seed.regions))
    end = min(end, len(seed_data))
    if start < end:
      return draw(st.integers(start, end - 1))
  return draw(st.integers(0, len(seed_data) - 1))


def _flip(data: bytes, seed: Seed, draw: Draw) -> bytes:
  i = _position(data, seed, draw)
  if not data:
    return data
  return data[:i] + bytes([data[i] ^ (1 << draw(st.integers(0, 7)))]) + data[i + 1:]


def _truncate(data: bytes, seed: Seed, draw: Draw) -> bytes:
  return data[:_position(data, seed, draw)]


def _insert(data: bytes, seed: Seed, draw: Draw) -> bytes:
  i = _position(data, seed, draw)
  return data[:i] + draw(st.binary(min_size=1, max_size=16)) + data[i:]


def _delete(data: bytes, seed: Seed, draw: Draw) -> bytes:
  i = _position(data, seed, draw)
  return data[:i] + data[i + draw(st.integers(1, 64)):]


def _encode_int(value: int) -> bytes:
  if 0 <= value < 256:
    return b"K" + bytes([value])
  if -2**31 <= value < 2**31:
    return b"J" + struct.pack("<i", value)
  raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
  return b"\x8a" + bytes([len(raw)]) + raw


def _int_value(old: int, draw: Draw) -> int:
  return draw(st.one_of(st.sampled_from(INTERESTING),
                        st.sampled_from((old + 1, old - 1, old * 2, old * 1000,
                                         -old)),
                        st.integers(-2**64, 2**64)))


def _edit_pickle(blob: bytes, draw: Draw) -> bytes:
  """One integer argument or one opcode of the pickle(s) in `blob` changed."""
  ops = []
  for start, _ in _pickle_spans(blob):
    stream = io.BytesIO(blob)
    stream.seek(start)
    previous = None
    for op, arg, position in _genops(stream):
      if previous is not None:
        ops.append(previous + (position,))
      previous = (op, arg, position)
    ops.append(previous + (stream.tell(),))
  if not ops:
    return blob
  if draw(st.integers(0, 3)) == 0:  # Swap an opcode.
    _, _, position, _ = draw(st.sampled_from(ops))
    return (blob[:position] + draw(st.sampled_from(_OPCODES))
            + blob[position + 1:])
  ints = [o for o in ops if o[0].name in _INT_OPS and isinstance(o[1], int)]
  if not ints:
    return blob
  _, old, position, end = draw(st.sampled_from(ints))
  return blob[:position] + _encode_int(_int_value(old, draw)) + blob[end:]


def _legacy_field(data: bytes, seed: Seed, draw: Draw) -> bytes:
  """An integer in the object pickle, or a storage's element count."""
  if draw(st.booleans()):
    return _edit_pickle(data, draw)
  end = seed.regions[-1][0]  # After the key-list pickle: the first storage.
  if end + 8 > len(data):
    return data
  value = _int_value(struct.unpack_from("<q", data, end)[0], draw)
  return data[:end] + struct.pack("<q", max(-2**63, min(2**63 - 1, value))) + data[end + 8:]


def _rezip(members: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
  out = io.BytesIO()
  with zipfile.ZipFile(out, "w") as archive:
    for info, raw in members:
      archive.writestr(info, raw)
  return out.getvalue()


def _zip_members(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]] | None:
  try:
    archive = zipfile.ZipFile(io.BytesIO(data))
    return [(info, archive.read(info)) for info in archive.infolist()]
  except Exception:  # pylint: disable=broad-except  (already mutated: skip)
    return None


def _npy_edit(raw: bytes, draw: Draw) -> bytes:
  """A .npy member's header with its shape, dtype or order changed."""
  try:
    major = raw[6]
    header_len = (struct.unpack_from("<H", raw, 8)[0] if major == 1
                  else struct.unpack_from("<I", raw, 8)[0])
    start = 10 if major == 1 else 12
    header = ast.literal_eval(raw[start:start + header_len].decode("latin1"))
    shape = list(header["shape"]) or [1]
  except Exception:  # pylint: disable=broad-except  (already mutated: skip)
    return raw
  body = raw[start + header_len:]
  field = draw(st.sampled_from(("shape", "descr", "fortran_order")))
  if field == "shape":
    k = draw(st.integers(0, len(shape) - 1))
    shape[k] = draw(st.sampled_from(INTERESTING))
    if draw(st.booleans()):
      shape.append(draw(st.integers(0, 8)))
    header["shape"] = tuple(shape)
  elif field == "descr":
    header["descr"] = draw(st.sampled_from(NPY_DTYPES))
  else:
    header["fortran_order"] = not header["fortran_order"]
  text = repr(header).encode("latin1")
  text += b" " * ((-len(text) - start - 1) % 64) + b"\n"
  prefix = raw[:8] + (struct.pack("<H", len(text)) if major == 1
                      else struct.pack("<I", len(text)))
  return prefix + text + body


def _zip_field(data: bytes, seed: Seed, draw: Draw) -> bytes:
  """Re-zips with one member dropped, renamed, resized or its content edited."""
  members = _zip_members(data)
  if not members:
    return data
  k = draw(st.integers(0, len(members) - 1))
  info, raw = members[k]
  action = draw(st.sampled_from(("drop", "rename", "shrink", "grow", "edit")))
  if action == "drop":
    del members[k]
  elif action == "rename":
    info = zipfile.ZipInfo(info.filename + draw(st.sampled_from(("x", "/0",
                                                                 ".npy"))))
    members[k] = (info, raw)
  elif action == "shrink":
    members[k] = (info, raw[:draw(st.integers(0, max(0, len(raw) - 1)))])
  elif action == "grow":
    members[k] = (info, raw + draw(st.binary(min_size=1, max_size=64)))
  elif info.filename.endswith(".pkl"):
    members[k] = (info, _edit_pickle(raw, draw))
  elif info.filename.endswith(".npy"):
    members[k] = (info, _npy_edit(raw, draw))
  else:
    members[k] = (info, _flip(raw, Seed("", raw, "raw", ((0, len(raw)),)), draw))
  return _rezip(members)


def _safetensors_field(data: bytes, seed: Seed, draw: Draw) -> bytes:
  """The header length, or one tensor's dtype, shape or offsets, changed."""
  (length,) = struct.unpack_from("<Q", data) if len(data) >= 8 else (0,)
  if draw(st.integers(0, 3)) == 0 or len(data) < 8 + length:
    value = _int_value(length, draw) % 2**64
    return struct.pack("<Q", value) + data[8:]
  try:
    header = json.loads(data[8:8 + length])
  except ValueError:
    return data
  if not isinstance(header, dict):
    return data
  names = sorted(k for k in header if k != "__metadata__")
  if not names:
    return data
  entry = header[draw(st.sampled_from(names))]
  field = draw(st.sampled_from(("dtype", "shape", "data_offsets")))
  if not isinstance(entry, dict) or (field != "dtype" and not isinstance(
      entry.get(field), list)):
    return data  # Already mutated out of shape.
  if field == "dtype":
    entry["dtype"] = draw(st.sampled_from(SAFETENSORS_DTYPES))
  else:
    values = list(entry[field]) or [0]
    values[draw(st.integers(0, len(values) - 1))] = _int_value(0, draw)
    entry[field] = values
  text = json.dumps(header).encode()
  return struct.pack("<Q", len(text)) + text + data[8 + length:]


def _msgpack_field(data: bytes, seed: Seed, draw: Draw) -> bytes:
  """One array record of a Flax msgpack file with its shape, dtype or data
  changed, or one map re-packed with a non-string key."""
  import msgpack  # pylint: disable=g-import-not-at-top
  try:
    tree = msgpack.unpackb(data, raw=False, strict_map_key=False,
                           ext_hook=lambda code, raw: msgpack.ExtType(code, raw))
  except Exception:  # pylint: disable=broad-except  (already mutated: skip)
    return data
  records = []
  pending = [tree]
  while pending:
    node = pending.pop()
    if isinstance(node, dict):
      records.extend((node, k) for k, v in node.items()
                     if isinstance(v, msgpack.ExtType))
      pending.extend(v for v in node.values() if isinstance(v, dict))
  if not records:
    return data
  parent, key = draw(st.sampled_from(records))
  record = parent[key]
  if draw(st.integers(0, 4)) == 0:
    parent[draw(st.sampled_from((1, 2.5, b"k")))] = record  # Non-string key.
  else:
    try:
      shape, dtype, raw = msgpack.unpackb(record.data, raw=True)
    except Exception:  # pylint: disable=broad-except
      return data
    field = draw(st.sampled_from(("shape", "dtype", "data", "code")))
    if field == "shape":
      shape = list(shape) or [1]
      shape[draw(st.integers(0, len(shape) - 1))] = draw(
          st.sampled_from(INTERESTING))
    elif field == "dtype":
      dtype = draw(st.sampled_from((b"object", b"complex64", b"float64",
                                    b"bfloat16", b"V8", b"<U3", b"int4")))
    elif field == "data":
      raw = raw[:draw(st.integers(0, len(raw)))] + draw(st.binary(max_size=8))
    code = draw(st.sampled_from((1, 2, 3, 7))) if field == "code" else (
        record.code)
    parent[key] = msgpack.ExtType(code, msgpack.packb((shape, dtype, raw)))
  try:
    return msgpack.packb(tree)
  except Exception:  # pylint: disable=broad-except
    return data


GENERIC = (_flip, _truncate, _insert, _delete)
FIELD_EDITS = {"legacy": _legacy_field, "zip": _zip_field, "npz": _zip_field,
               "safetensors": _safetensors_field, "msgpack": _msgpack_field}


def mutate(seed: Seed, draw: Draw) -> bytes:
  """1-4 mutations of the seed's bytes (each drawn through `draw`)."""
  data = seed.data
  for _ in range(draw(st.integers(1, 4))):
    edits = GENERIC + (FIELD_EDITS[seed.kind],) * 4
    data = draw(st.sampled_from(edits))(data, seed, draw)
  return data



def _json_field(data: bytes, draw: Draw) -> bytes:
  """A number or string somewhere in a JSON file replaced by a boundary value."""
  try:
    tree = json.loads(data)
  except ValueError:
    return data
  slots, pending = [], [tree]
  while pending:
    node = pending.pop()
    items = (node.items() if isinstance(node, dict)
             else enumerate(node) if isinstance(node, list) else ())
    for k, v in items:
      if isinstance(v, (dict, list)):
        pending.append(v)
      else:
        slots.append((node, k))
  if not slots:
    return data
  node, key = draw(st.sampled_from(slots))
  node[key] = draw(st.one_of(st.sampled_from(INTERESTING),
                             st.sampled_from(("", "object", "float32", "<f4",
                                              "../../etc/passwd", None))))
  return json.dumps(tree).encode()


def mutate_tree(files: dict[str, bytes], draw: Draw) -> dict[str, bytes]:
  """1-3 mutations of a checkpoint folder {relative path: bytes}: one file's
  bytes edited (JSON fields in JSON files), truncated or removed."""
  files = dict(files)
  for _ in range(draw(st.integers(1, 3))):
    if not files:
      break
    name = draw(st.sampled_from(sorted(files)))
    action = draw(st.sampled_from(("edit", "edit", "edit", "remove")))
    if action == "remove":
      del files[name]
      continue
    data = files[name]
    seed = Seed(name, data, "raw", ((0, min(len(data), 4096)),))
    if data[:1] in (b"{", b"[") and draw(st.booleans()):
      files[name] = _json_field(data, draw)
    else:
      files[name] = draw(st.sampled_from(GENERIC))(data, seed, draw)
  return files
