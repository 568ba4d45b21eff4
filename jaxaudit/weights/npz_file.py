"""Reads `.npz` weight files member by member, each header checked before its data.

`np.load` allocates an array of the shape a member's header claims before it
reads a byte of data, so a 200-byte file whose header claims 10^12 elements
makes it ask for 4 TB. Here each `.npy` member's header is parsed first
(`numpy.lib.format`, which never evaluates code), its dtype checked against the
allow-list (object and structured arrays refused) and its byte count compared
with what the member holds; only then is the data read.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile

import numpy as np

from jaxaudit.errors import WeightsError
from jaxaudit.weights import bounds

MAX_HEADER_BYTES = 10_000  # numpy's own default limit on .npy header size.
# DEFLATE cannot expand data by more than ~1032:1, so a member that claims a
# larger uncompressed size than that lies about its size.
MAX_DEFLATE_RATIO = 1032


def _read_header(member, source: str, key: str) -> tuple[tuple[int, ...], bool,
                                                          np.dtype]:
  try:
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
      return np.lib.format.read_array_header_1_0(
          member, max_header_size=MAX_HEADER_BYTES)
    if version == (2, 0):
      return np.lib.format.read_array_header_2_0(
          member, max_header_size=MAX_HEADER_BYTES)
    raise ValueError(f"unsupported .npy format version {version}")
  except (ValueError, TypeError, SyntaxError, EOFError, OSError,
          struct.error, zipfile.BadZipFile) as e:
    raise WeightsError(f"{source}: tensor '{key}': unreadable .npy header "
                       f"({bounds.describe_error(e)})") from None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str,
                 budget: bounds.Budget) -> tuple[str, np.ndarray]:
  key = info.filename[:-len(".npy")]
  if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
    raise WeightsError(f"{source}: tensor '{key}': unsupported compression")
  if info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 1024:
    raise WeightsError(f"{source}: tensor '{key}': member claims "
                       f"{info.file_size} bytes from {info.compress_size}")
  with archive.open(info) as member:
    shape, fortran_order, dtype = _read_header(member, source, key)
    dtype = bounds.allowed_dtype(dtype, source, key)
    if not isinstance(shape, tuple) or not all(
        isinstance(n, int) and n >= 0 for n in shape) or len(
            shape) > bounds.MAX_RANK:
      raise WeightsError(f"{source}: tensor '{key}': bad shape in header")
    nbytes = math.prod(shape) * dtype.itemsize
    present = info.file_size - member.tell()
    if nbytes != present:
      raise WeightsError(f"{source}: tensor '{key}': header claims {nbytes} "
                         f"bytes of data, the member holds {present}")
    budget.charge(nbytes, key)
    raw = member.read(nbytes)
  if len(raw) != nbytes:
    raise WeightsError(f"{source}: tensor '{key}': data is truncated")
  array = np.frombuffer(raw, dtype).reshape(shape,
                                            order="F" if fortran_order else "C")
  return key, bounds.normalise_bool(
      array.astype(dtype.newbyteorder("="), order="C"))


def load_npz_bytes(data: bytes, source: str) -> dict[str, np.ndarray]:
  """name -> owned array for every `.npy` member of an `.npz` file's bytes.

  Raises:
    WeightsError: not a zip, a member that is not `.npy`, a duplicate name, a
      bad header, a dtype outside the allow-list, or a byte count that differs
      from the header's (the message names the file and the member).
  """
  try:
    archive = zipfile.ZipFile(io.BytesIO(data))
    infos = archive.infolist()
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
      raise WeightsError(f"{source}: duplicate member names")
    budget = bounds.Budget(source, len(data))
    out = {}
    for info in infos:
      if not info.filename.endswith(".npy"):
        raise WeightsError(f"{source}: member '{info.filename[:100]}' is not "
                           "an .npy array")
      key, array = _read_member(archive, info, source, budget)
      out[key] = array
    return out
  except WeightsError:
    raise
  except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError,
          ValueError, NotImplementedError, struct.error) as e:
    raise WeightsError(f"{source}: corrupt .npz file "
                       f"({bounds.describe_error(e)})") from None
