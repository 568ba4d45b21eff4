"""JPEG compression as Pillow does it (libjpeg-turbo), in integer arithmetic.

The references save the image with Pillow at a quality (4:2:0 chroma
subsampling, the islow DCT) and decode it again. Everything the pixels go
through is reproduced with libjpeg's own fixed-point formulas, so the result
is that of the library: RGB -> YCbCr (jccolor.c), 2 x 2 chroma averaging
with alternating rounding bias (jcsample.c), the islow forward DCT
(jfdctint.c), quantisation with the quality-scaled Annex K tables (jcparam.c,
jcdctmgr.c), then the islow inverse DCT (jidctint.c), the "fancy" triangle
chroma upsampling (jdsample.c) and YCbCr -> RGB (jdcolor.c). The entropy
coding in between is lossless and skipped. Images whose sides are not
multiples of 16 are padded by repeating their edge, as libjpeg pads them.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Params = Mapping[str, jax.Array]

# The Annex K tables in natural (row-major) order.
_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])
_CHROMA = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99])

# libjpeg's fixed-point constants: FIX(x) = round(x * 2^13) for the DCTs,
# round(x * 2^16) for the colour conversions.
_CONST_BITS, _PASS1_BITS, _SCALE_BITS = 13, 2, 16
_F0298, _F0390, _F0541, _F0765 = 2446, 3196, 4433, 6270
_F0899, _F1175, _F1501, _F1847 = 7373, 9633, 12299, 15137
_F1961, _F2053, _F2562, _F3072 = 16069, 16819, 20995, 25172


def quant_tables(quality: int) -> np.ndarray:
  """libjpeg's `jpeg_set_quality(quality, force_baseline=TRUE)`: the Annex
  K tables scaled and clamped to [1, 255] -> int32 [2, 8, 8] (luma,
  chroma)."""
  quality = min(max(int(quality), 1), 100)
  scale = 5000 // quality if quality < 50 else 200 - 2 * quality
  tables = [np.clip((t * scale + 50) // 100, 1, 255) for t in (_LUMA,
                                                              _CHROMA)]
  return np.stack(tables).reshape(2, 8, 8).astype(np.int32)


def params(rows: Sequence[int], height: int, width: int
           ) -> dict[str, np.ndarray]:
  """{"quant": int32 [5, 2, 8, 8]}: each severity's quality as tables."""
  del height, width
  return {"quant": np.stack([quant_tables(q) for q in rows])}


def _descale(x: jax.Array, bits: int) -> jax.Array:
  return (x + (1 << (bits - 1))) >> bits


def _fdct_1d(d: Sequence[jax.Array], last: bool) -> list[jax.Array]:
  """One pass of jfdctint.c over 8 int32 arrays (the 8 samples of a row or
  column); the first pass keeps PASS1_BITS of extra precision."""
  tmp0, tmp7 = d[0] + d[7], d[0] - d[7]
  tmp1, tmp6 = d[1] + d[6], d[1] - d[6]
  tmp2, tmp5 = d[2] + d[5], d[2] - d[5]
  tmp3, tmp4 = d[3] + d[4], d[3] - d[4]
  tmp10, tmp13 = tmp0 + tmp3, tmp0 - tmp3
  tmp11, tmp12 = tmp1 + tmp2, tmp1 - tmp2
  shift = _CONST_BITS + _PASS1_BITS if last else _CONST_BITS - _PASS1_BITS
  out = [None] * 8
  if last:
    out[0] = _descale(tmp10 + tmp11, _PASS1_BITS)
    out[4] = _descale(tmp10 - tmp11, _PASS1_BITS)
  else:
    out[0] = (tmp10 + tmp11) << _PASS1_BITS
    out[4] = (tmp10 - tmp11) << _PASS1_BITS
  z1 = (tmp12 + tmp13) * _F0541
  out[2] = _descale(z1 + tmp13 * _F0765, shift)
  out[6] = _descale(z1 - tmp12 * _F1847, shift)
  z1, z2, z3, z4 = tmp4 + tmp7, tmp5 + tmp6, tmp4 + tmp6, tmp5 + tmp7
  z5 = (z3 + z4) * _F1175
  z1, z2 = -z1 * _F0899, -z2 * _F2562
  z3, z4 = -z3 * _F1961 + z5, -z4 * _F0390 + z5
  out[7] = _descale(tmp4 * _F0298 + z1 + z3, shift)
  out[5] = _descale(tmp5 * _F2053 + z2 + z4, shift)
  out[3] = _descale(tmp6 * _F3072 + z2 + z3, shift)
  out[1] = _descale(tmp7 * _F1501 + z1 + z4, shift)
  return out


def _idct_1d(c: Sequence[jax.Array], last: bool) -> list[jax.Array]:
  """One pass of jidctint.c over 8 int32 arrays (columns first, then rows:
  `last`, which descales by 3 more bits and re-centres on 128)."""
  z1 = (c[2] + c[6]) * _F0541
  tmp2, tmp3 = z1 - c[6] * _F1847, z1 + c[2] * _F0765
  tmp0 = (c[0] + c[4]) << _CONST_BITS
  tmp1 = (c[0] - c[4]) << _CONST_BITS
  tmp10, tmp13 = tmp0 + tmp3, tmp0 - tmp3
  tmp11, tmp12 = tmp1 + tmp2, tmp1 - tmp2
  t0, t1, t2, t3 = c[7], c[5], c[3], c[1]
  z1, z2, z3, z4 = t0 + t3, t1 + t2, t0 + t2, t1 + t3
  z5 = (z3 + z4) * _F1175
  z1, z2 = -z1 * _F0899, -z2 * _F2562
  z3, z4 = -z3 * _F1961 + z5, -z4 * _F0390 + z5
  t0 = t0 * _F0298 + z1 + z3
  t1 = t1 * _F2053 + z2 + z4
  t2 = t2 * _F3072 + z2 + z3
  t3 = t3 * _F1501 + z1 + z4
  shift = (_CONST_BITS + _PASS1_BITS + 3 if last
           else _CONST_BITS - _PASS1_BITS)
  out = [tmp10 + t3, tmp11 + t2, tmp12 + t1, tmp13 + t0,
         tmp13 - t0, tmp12 - t1, tmp11 - t2, tmp10 - t3]
  out = [_descale(o, shift) for o in out]
  if last:
    out = [jnp.clip(o + 128, 0, 255) for o in out]
  return out


def _blocks(plane: jax.Array) -> jax.Array:
  """[B, H, W] -> [B, H/8, W/8, 8, 8] (8 x 8 blocks, row-major inside)."""
  b, h, w = plane.shape
  return plane.reshape(b, h // 8, 8, w // 8, 8).transpose(0, 1, 3, 2, 4)


def _unblocks(blocks: jax.Array) -> jax.Array:
  b, nh, nw = blocks.shape[:3]
  return blocks.transpose(0, 1, 3, 2, 4).reshape(b, nh * 8, nw * 8)


def _separable(blocks: jax.Array, pass_1d, rows_first: bool) -> jax.Array:
  """Applies a 1-D transform over the rows then the columns of each block
  (`rows_first`), or columns then rows."""
  axes = (4, 3) if rows_first else (3, 4)
  for i, axis in enumerate(axes):
    parts = pass_1d([jnp.take(blocks, k, axis=axis) for k in range(8)],
                    last=i == 1)
    blocks = jnp.stack(parts, axis=axis)
  return blocks


def _round_trip(plane: jax.Array, quant: jax.Array) -> jax.Array:
  """One component [B, H, W] of int32 samples through FDCT, quantisation,
  dequantisation and IDCT -> int32 samples."""
  blocks = _separable(_blocks(plane - 128), _fdct_1d, rows_first=True)
  divisor = quant << 3  # The islow DCT's output is 8x the true DCT.
  magnitude = (jnp.abs(blocks) + (divisor >> 1)) // divisor
  levels = jnp.where(blocks < 0, -magnitude, magnitude)
  return _unblocks(_separable(levels * quant, _idct_1d, rows_first=False))


def _rgb_to_ycc(rgb: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
  half, offset = 1 << (_SCALE_BITS - 1), 128 << _SCALE_BITS
  y = (19595 * r + 38470 * g + 7471 * b + half) >> _SCALE_BITS
  cb = (-11059 * r - 21709 * g + 32768 * b + offset + half - 1) >> _SCALE_BITS
  cr = (32768 * r - 27439 * g - 5329 * b + offset + half - 1) >> _SCALE_BITS
  return y, cb, cr


def _downsample(plane: jax.Array) -> jax.Array:
  """2 x 2 means with libjpeg's bias 1, 2, 1, 2, ... along each row."""
  b, h, w = plane.shape
  sums = plane.reshape(b, h // 2, 2, w // 2, 2).sum(axis=(2, 4))
  bias = 1 + (jnp.arange(w // 2) % 2)
  return (sums + bias) >> 2


def _upsample(plane: jax.Array) -> jax.Array:
  """jdsample.c's h2v2 "fancy" upsampling: each output sample 9/16 of the
  nearest input, 3/16 of each side neighbour, 1/16 of the diagonal one,
  edges repeated, with libjpeg's rounding (+8 even, +7 odd columns)."""
  padded = jnp.pad(plane, ((0, 0), (1, 1), (0, 0)), mode="edge")
  above = 3 * plane + padded[:, :-2]  # Output rows 2i: row i-1 is nearer.
  below = 3 * plane + padded[:, 2:]
  rows = jnp.stack([above, below], axis=2).reshape(
      plane.shape[0], -1, plane.shape[2])
  side = jnp.pad(rows, ((0, 0), (0, 0), (1, 1)), mode="edge")
  left = (3 * rows + side[:, :, :-2] + 8) >> 4
  right = (3 * rows + side[:, :, 2:] + 7) >> 4
  return jnp.stack([left, right], axis=3).reshape(rows.shape[0],
                                                  rows.shape[1], -1)


def _ycc_to_rgb(y: jax.Array, cb: jax.Array, cr: jax.Array) -> jax.Array:
  half = 1 << (_SCALE_BITS - 1)
  cb, cr = cb - 128, cr - 128
  r = y + ((91881 * cr + half) >> _SCALE_BITS)
  g = y + ((-22554 * cb - 46802 * cr + half) >> _SCALE_BITS)
  b = y + ((116130 * cb + half) >> _SCALE_BITS)
  return jnp.clip(jnp.stack([r, g, b], -1), 0, 255)


def jpeg_compression(images: jax.Array, keys: jax.Array, p: Params
                     ) -> jax.Array:
  """Pillow's save(quality) and reload; `p["quant"]` [2, 8, 8] the luma and
  chroma quantisation tables."""
  del keys
  height, width = images.shape[1:3]
  pad_h, pad_w = -height % 16, -width % 16
  rgb = jnp.round(jnp.clip(images, 0, 1) * 255).astype(jnp.int32)
  rgb = jnp.pad(rgb, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
  y, cb, cr = _rgb_to_ycc(rgb)
  quant = p["quant"].astype(jnp.int32)
  y = _round_trip(y, quant[0])
  cb = _upsample(_round_trip(_downsample(cb), quant[1]))
  cr = _upsample(_round_trip(_downsample(cr), quant[1]))
  rgb = _ycc_to_rgb(y, cb, cr)[:, :height, :width]
  return rgb.astype(jnp.float32) / 255
