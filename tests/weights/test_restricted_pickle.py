"""Pickles that crash, exhaust or trick CPython's unpickler are refused.

Each file is loaded in an isolated child (time and memory limits), so a defence
that fails shows as a crash, a hang or a MemoryError, not as a dead test run.
"""

import io
import pickle
import struct

import pytest

import crafted
import isolated_load


def _legacy_with_object(object_pickle: bytes) -> bytes:
  """A legacy checkpoint whose object pickle is `object_pickle`, no storages."""
  out = io.BytesIO()
  for part in (crafted.LEGACY_MAGIC, 1001, {"little_endian": True}):
    pickle.dump(part, out, protocol=2)
  out.write(object_pickle)
  pickle.dump([], out, protocol=2)
  return out.getvalue()


_N = 1_000_000
ATTACKS = {
    # The C unpickler sizes its memo array by the largest index: 64 GB here.
    "memo index 2^32 - 1": b"\x80\x02}r\xff\xff\xff\xff.",
    # Even the pure-Python unpickler allocates BYTEARRAY8's claimed length.
    "bytearray claiming 2^40 bytes": (b"\x80\x05\x96"
                                      + struct.pack("<Q", 2**40) + b"."),
    # A key nested a million tuples deep: tuple hashing recurses in C.
    "deeply nested dict key": b"\x80\x02})" + b"\x85" * _N + b"K\x01s.",
    # 64 levels of (t, t): hashing walks 2^64 tuples.
    "shared tuples as a key": (b"\x80\x02}" + b")" + b"q\x000h\x00h\x00\x86"
                               * 64 + b"K\x01s."),
    # A key of a million digits: hashing it is slow, colliding ones are easy.
    "huge integer key": (b"\x80\x02}\x8b" + struct.pack("<i", 10**6)
                         + b"\x01" * 10**6 + b"K\x01s."),
    # A million-element list, then tuple(list) 30,000 times: 240 GB.
    "container amplification": (
        b"\x80\x02cbuiltins\nlist\nq\x00X" + struct.pack("<I", _N)
        + b"a" * _N + b"\x85Rq\x01(" + b"cbuiltins\ntuple\nh\x01\x85R" * 30000
        + b"l."),
    # BUILD on an allow-listed global would rewrite the loader's functions.
    "BUILD on a global": (b"\x80\x02ccollections\nOrderedDict\n}X\x08\x00\x00\x00"
                          b"__call__K\x01sb."),
    # A list a million deep, and one that contains itself.
    "deeply nested lists": b"\x80\x02" + b"(" * _N + b"]" + b"l" * _N + b".",
    "self-containing list": b"\x80\x02]q\x00h\x00a.",
}


# What CPython's own (C) unpickler does with the same bytes, where it is harmed.
HARM = {"memo index 2^32 - 1": ("memory", "crash"),
        "bytearray claiming 2^40 bytes": ("memory",),
        "deeply nested dict key": ("crash",),
        "shared tuples as a key": ("hang",),
        "container amplification": ("memory",)}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_hostile_pickles_are_refused_without_crash_hang_or_allocation(
    tmp_path, name):
  path = tmp_path / "hostile.pth"
  path.write_bytes(_legacy_with_object(ATTACKS[name]))
  raw = tmp_path / "hostile.pkl"
  raw.write_bytes(ATTACKS[name])
  with isolated_load.IsolatedLoader(timeout_s=5, memory_mb=512) as loader:
    outcome = loader.load(str(path), "jaxaudit.weights:load_torch_checkpoint")
    if name in HARM:  # The threat is real: plain pickle fails this way.
      plain = loader.load(str(raw), "harness_probes:plain_unpickle")
      assert plain.kind in HARM[name], plain
  if name == "memo index 2^32 - 1":
    assert outcome.kind == "loaded", outcome  # Harmless once the memo is a dict.
  else:
    assert outcome.kind == "refused", outcome


def test_globals_are_fresh_per_lookup_so_files_cannot_share_state(tmp_path):
  from jaxaudit.weights import restricted_pickle
  first = restricted_pickle.RestrictedUnpickler(b"", "a").find_class(
      "torch", "FloatStorage")
  second = restricted_pickle.RestrictedUnpickler(b"", "b").find_class(
      "torch", "FloatStorage")
  assert first is not second
  with pytest.raises(restricted_pickle.WeightsError):
    first.__setstate__({"dtype": "int8"})
