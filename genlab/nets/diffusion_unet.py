"""The noise-prediction UNet of DDPM (Ho et al. 2020), sized by ``base_channels`` and ``channel_mults``.

Sinusoidal time embedding → MLP; residual blocks (GroupNorm, SiLU, conv) that add the time
embedding between their two convolutions; a down path and an up path joined by skip
connections; self-attention at the resolutions listed in ``attention_resolutions``. A
conditional net (``num_classes`` > 0) adds a learned class embedding to the time embedding;
class index ``num_classes`` is the "null" class used for classifier-free guidance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.errors import GenlabError


def sinusoidal_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """(N,) timesteps → (N, dim) features [sin(t·ω_k), cos(t·ω_k)], ω_k = max_period^(−k/(dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, + projected time embedding, GroupNorm-SiLU-dropout-conv, + skip."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = _norm(in_ch, groups)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, out_ch)
        self.norm2 = _norm(out_ch, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb_proj(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over the H·W positions, with a residual connection."""

    def __init__(self, channels: int, groups: int, heads: int = 1) -> None:
        super().__init__()
        self.norm = _norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.heads = heads

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        attn = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(attn.transpose(-1, -2).reshape(n, c, h, w))


class DiffusionUNet(nn.Module):
    """ε_θ(x_t, t[, y]): predicts the noise in x_t; output has the input's shape.

    Args:
        in_channels: image channels.
        image_size: side of the (square) images; must be divisible by 2^(len(channel_mults) − 1).
        base_channels: width of the first level; level i has ``base_channels * channel_mults[i]``.
        channel_mults: width multipliers, one per resolution level (each but the last halves H, W).
        num_res_blocks: residual blocks per level on the down path (the up path has one more).
        attention_resolutions: resolutions (in pixels) with a self-attention layer after each block.
        dropout: dropout inside residual blocks.
        num_classes: > 0 for a class-conditional net (embedding table with one extra "null" class).
        groups: GroupNorm groups.
        heads: attention heads.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        base_channels: int = 32,
        channel_mults: Sequence[int] = (1, 2, 2),
        num_res_blocks: int = 1,
        attention_resolutions: Sequence[int] = (8,),
        dropout: float = 0.0,
        num_classes: int = 0,
        groups: int = 8,
        heads: int = 1,
    ) -> None:
        super().__init__()
        levels = len(channel_mults)
        if levels < 1 or base_channels < 1 or num_res_blocks < 1:
            raise GenlabError("the diffusion UNet needs base_channels ≥ 1, num_res_blocks ≥ 1 and channel_mults.")
        if image_size % 2 ** (levels - 1):
            raise GenlabError(
                f"image_size={image_size} is not divisible by 2^{levels - 1}: channel_mults={list(channel_mults)} "
                "halves the resolution that many times. Use fewer channel_mults or another image_size."
            )
        self.base_channels = base_channels
        self.num_classes = num_classes
        emb_dim = 4 * base_channels
        self.time_mlp = nn.Sequential(nn.Linear(base_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_emb = nn.Embedding(num_classes + 1, emb_dim) if num_classes > 0 else None

        def block(i: int, o: int) -> ResBlock:
            return ResBlock(i, o, emb_dim, groups, dropout)

        attn_at = set(attention_resolutions)
        self.conv_in = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        # Down path: state size base·mult_i × (image_size / 2^i)², one skip per block and per downsample.
        self.down = nn.ModuleList()
        skips = [base_channels]
        ch, res = base_channels, image_size
        for level, mult in enumerate(channel_mults):
            for _ in range(num_res_blocks):
                layer = nn.ModuleList([block(ch, base_channels * mult)])
                ch = base_channels * mult
                if res in attn_at:
                    layer.append(SelfAttention(ch, groups, heads))
                self.down.append(layer)
                skips.append(ch)
            if level < levels - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                skips.append(ch)
                res //= 2
        # Middle: res-attention-res at the lowest resolution.
        self.mid1 = block(ch, ch)
        self.mid_attn = SelfAttention(ch, groups, heads)
        self.mid2 = block(ch, ch)
        # Up path: each block takes one skip; the last block of a level is followed by 2× upsampling.
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mults))):
            for i in range(num_res_blocks + 1):
                layer = nn.ModuleList([block(ch + skips.pop(), base_channels * mult)])
                ch = base_channels * mult
                if res in attn_at:
                    layer.append(SelfAttention(ch, groups, heads))
                if level > 0 and i == num_res_blocks:
                    layer.append(Upsample(ch))
                    res *= 2
                self.up.append(layer)
        self.norm_out = _norm(ch, groups)
        self.conv_out = nn.Conv2d(ch, in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def embed(self, t: Tensor, labels: Tensor | None) -> Tensor:
        """Time embedding, plus the class embedding for a conditional net (None → the null class)."""
        emb = self.time_mlp(sinusoidal_embedding(t, self.base_channels))
        if self.class_emb is not None:
            if labels is None:
                labels = torch.full_like(t, self.num_classes, dtype=torch.long)
            emb = emb + self.class_emb(labels)
        return emb

    def forward(self, x: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        emb = self.embed(t, labels)
        h = self.conv_in(x)
        hs = [h]
        for layer in self.down:
            for module in layer:
                h = module(h, emb) if isinstance(module, ResBlock) else module(h)
            hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for layer in self.up:
            h = torch.cat([h, hs.pop()], dim=1)
            for module in layer:
                h = module(h, emb) if isinstance(module, ResBlock) else module(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Upsample(nn.Module):
    """Nearest-neighbour 2× upsampling followed by a 3×3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
