"""Memory-lean inference for :class:`~hybrid.operators.unet.UNet`: the same function, under half the memory.

A plain forward pass holds, on the finest grid, the skip connection, the upsampled tensor, their
concatenation and each layer's output and the library's reordered copies at once: 1.2 GB for the
Helmholtz network (8 channels) at ``2049^2``, a fifth of the learned solve's peak at n = 2048
(``scripts/helmholtz_net_memory.py``). Here every convolution runs over strips of
rows with a one-row halo and writes into one preallocated output, the concatenation is never formed (each
strip concatenates its own slices), GroupNorm statistics are reduced over the whole plane and the
normalization and activation are applied strip by strip in place, and each tensor is released as soon
as the next one exists. The finest-level peak is the skip, the upsampled input and one block output.

Written here because torch has no out-of-core or strip-wise execution of a module; the arithmetic is
torch's own (``F.conv2d``, the block's own activation; GroupNorm written out as ``(x - mean) * rstd *
weight + bias`` because its statistics span strips), so outputs agree with :meth:`UNet.forward` to float32
rounding (tested). Inference only: nothing here records gradients. Measured by
``scripts/helmholtz_net_memory.py`` (``bench/results/helmholtz-net-memory.json``).
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .mgno import coordinate_channels

#: rows per strip: large enough that each convolution call stays efficient, small enough that the
#: strip's temporaries are a few percent of a plane at 2049^2
ROWS = 16
#: activations applied element by element (so strip by strip)
ELEMENTWISE = (nn.GELU, nn.ReLU, nn.SiLU, nn.LeakyReLU, nn.Tanh, nn.Identity)


def is_standard_block(block) -> bool:
    """Whether ``block`` is the U-Net's ``conv, GroupNorm, activation`` x 2 with 3x3 'same' convolutions."""
    kinds = (nn.Conv2d, nn.GroupNorm, ELEMENTWISE) * 2
    if not isinstance(block, nn.Sequential) or len(block) != 6:
        return False
    if not all(isinstance(m, k) for m, k in zip(block, kinds)):
        return False
    return all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.padding_mode == "zeros" and c.stride == (1, 1)
               and c.dilation == (1, 1)
               and c.groups == 1 for c in (block[0], block[3]))


def layout(x: torch.Tensor) -> torch.memory_format:
    """The memory format of a 4-D tensor, which new planes keep (``channels_last``: see
    :func:`hybrid.operators.unet.cpu_layout`)."""
    cl = torch.channels_last
    return cl if x.is_contiguous(memory_format=cl) and not x.is_contiguous() else torch.contiguous_format


def _empty(like: torch.Tensor, shape) -> torch.Tensor:
    return torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=layout(like))


def conv3x3_strips(conv: nn.Conv2d, inputs: list[torch.Tensor], rows: int = ROWS) -> torch.Tensor:
    """``conv(torch.cat(inputs, 1))`` for a 3x3 convolution with zero padding 1, strip by strip, without
    forming the concatenation."""
    b, _, h, w = inputs[0].shape
    out = _empty(inputs[0], (b, conv.out_channels, h, w))
    for i0 in range(0, h, rows):
        i1 = min(h, i0 + rows)
        a0, a1 = max(0, i0 - 1), min(h, i1 + 1)
        xs = torch.cat([t[:, :, a0:a1] for t in inputs], 1) if len(inputs) > 1 else inputs[0][:, :, a0:a1]
        xs = F.pad(xs, (1, 1, 1 if i0 == 0 else 0, 1 if i1 == h else 0))
        out[:, :, i0:i1] = F.conv2d(xs, conv.weight, conv.bias)
    return out


def norm_act_(x: torch.Tensor, norm: nn.GroupNorm, act: nn.Module, rows: int = ROWS) -> torch.Tensor:
    """``act(norm(x))`` in place: statistics over the whole plane, then strip by strip."""
    b, c, h, w = x.shape
    g = norm.num_groups
    # group statistics from the channels' first two moments, summed strip by strip in float64 (any memory
    # format, no plane-sized temporary; torch.var_mean took a third of the pass at 1025^2)
    s1 = x.new_zeros((b, c), dtype=torch.float64)
    s2 = x.new_zeros((b, c), dtype=torch.float64)
    for i0 in range(0, h, 4 * rows):
        s = x[:, :, i0:i0 + 4 * rows].double()
        s1 += s.sum((2, 3))
        s2 += s.square_().sum((2, 3))
    mean = s1.view(b, g, -1).sum(-1) / (h * w * (c // g))
    var = (s2.view(b, g, -1).sum(-1) / (h * w * (c // g)) - mean**2).clamp_(min=0.0)
    mean, rstd = mean.to(x.dtype), torch.rsqrt(var + norm.eps).to(x.dtype)
    scale = rstd.repeat_interleave(c // g, dim=1)                       # (b, c)
    shift = -mean.repeat_interleave(c // g, dim=1) * scale
    if norm.affine:
        shift = shift * norm.weight + norm.bias
        scale = scale * norm.weight
    scale, shift = scale[:, :, None, None], shift[:, :, None, None]
    for i0 in range(0, h, rows):
        s = x[:, :, i0:i0 + rows]
        s.copy_(act(s * scale + shift))
    return x


def block_lean(block: nn.Sequential, inputs: list[torch.Tensor], rows: int = ROWS) -> torch.Tensor:
    """A standard block (:func:`is_standard_block`) on ``torch.cat(inputs, 1)``; empties ``inputs`` (the
    caller's references are its own) so the inputs can be freed after the first convolution."""
    y = norm_act_(conv3x3_strips(block[0], inputs, rows), block[1], block[2], rows)
    inputs.clear()
    z = norm_act_(conv3x3_strips(block[3], [y], rows), block[4], block[5], rows)
    return z


def up2_strips(up: nn.ConvTranspose2d, x: torch.Tensor, rows: int = ROWS) -> torch.Tensor:
    """``up(x)`` for a 2x2, stride-2 transposed convolution, strip by strip (input row ``i`` makes output
    rows ``2i`` and ``2i + 1`` alone, so strips need no halo); a single call holds a second, reordered
    copy of its full-resolution output."""
    b, _, h, w = x.shape
    out = _empty(x, (b, up.out_channels, 2 * h, 2 * w))
    for i0 in range(0, h, rows // 2):
        i1 = min(h, i0 + rows // 2)
        out[:, :, 2 * i0:2 * i1] = up(x[:, :, i0:i1])
    return out


def is_standard_up(up) -> bool:
    return (isinstance(up, nn.ConvTranspose2d) and up.kernel_size == (2, 2) and up.stride == (2, 2)
            and up.padding == (0, 0) and up.output_padding == (0, 0) and up.dilation == (1, 1) and up.groups == 1)


def supports_lean(unet) -> bool:
    return (all(is_standard_block(b) for b in (*unet.down, unet.bottom, *unet.dec))
            and all(is_standard_up(u) for u in unet.up))


@torch.no_grad()  # not inference_mode: a caller under no_grad gets ordinary tensors, as from forward
def unet_forward_lean(unet, x: torch.Tensor, rows: int = ROWS) -> torch.Tensor:
    """:meth:`UNet.forward` (same stages, same result) with the memory profile described above."""
    if unet.config.coordinates:
        x = coordinate_channels(x)
    ny, nx = x.shape[-2:]
    m = 2**unet.config.depth
    fmt = layout(unet.down[0][0].weight)  # the module's layout (channels_last after cpu_layout)
    x = F.pad(x, (0, (-nx) % m, 0, (-ny) % m), mode="replicate").contiguous(memory_format=fmt)
    skips = []
    for block in unet.down:
        x = block_lean(block, [x], rows)
        skips.append(x)
        x = F.max_pool2d(x, 2)
    x = unet.bottleneck(block_lean(unet.bottom, [x], rows))
    for up, dec in zip(unet.up, unet.dec):
        inputs = [up2_strips(up, x, rows), skips.pop()]
        del x
        x = block_lean(dec, inputs, rows)
    out = _empty(x, (x.shape[0], unet.head.out_channels, ny, nx))
    for i0 in range(0, ny, rows):
        out[:, :, i0:i0 + rows] = unet.head(x[:, :, i0:min(ny, i0 + rows), :nx])
    return out
