"""PackNet01 ("version 1A") in PyTorch, written from /work/shared/packnet01.md.

Building blocks (spec names): CGE, RU (residual unit), Pack, Unpack, Head, Up2. The module is written so
that PyTorch 1.13's ONNX exporter emits the structure the spec describes: explicit ConstantPad2d before
every "valid" 2-D conv, nn.GroupNorm (exported as Reshape/InstanceNormalization/Reshape/Mul/Add),
space-to-depth as Reshape→Transpose→Reshape, nn.PixelShuffle (DepthToSpace CRD) and nearest Resize.

`width` scales the channel counts for small test variants; the input resolution is free (H and W must be
multiples of 32, five packs deep).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

GN_GROUPS = 16
GN_EPS = 1e-5
MIN_DEPTH = 0.5  # the heads divide sigmoid output by this: inverse depth in (0, 2)


def scaled_channels(base, width):
    """Scale a base channel count by `width`, rounded to a multiple of 32 (at least 32).

    32 rather than 16: Unpack's first CGE outputs cout/2 channels, which GroupNorm(16) must also divide.
    """
    return max(32, int(round(base * width / 32.0)) * 32)


def elu():
    """ELU(alpha=1), in place.

    In place on purpose: the in-place write makes the JIT's common-subexpression pass (run by torch.onnx.export)
    leave alone the two identical Pads that a Head and the next Unpack apply to the same decoder tensor. With
    out-of-place ELU they merge and the graph has 38 Pads instead of the spec's 41 (and 1633 nodes, not 1684).
    """
    return nn.ELU(alpha=1.0, inplace=True)


class CGE(nn.Module):
    """Zero-pad k//2 → Conv2d k×k (valid, bias) → GroupNorm(16) → ELU."""

    def __init__(self, cin, cout, k):
        super().__init__()
        self.pad = nn.ConstantPad2d(k // 2, 0.0)
        self.conv = nn.Conv2d(cin, cout, k, stride=1, padding=0, bias=True)
        self.norm = nn.GroupNorm(GN_GROUPS, cout, eps=GN_EPS, affine=True)
        self.act = elu()

    def forward(self, x):
        return self.act(self.norm(self.conv(self.pad(x))))


class RU(nn.Module):
    """Residual unit: CGE(3) → CGE(3) plus a 1×1 conv shortcut (bias, no norm); sum → GroupNorm → ELU."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = CGE(cin, cout, 3)
        self.conv2 = CGE(cout, cout, 3)
        self.shortcut = nn.Conv2d(cin, cout, 1, bias=True)
        self.norm = nn.GroupNorm(GN_GROUPS, cout, eps=GN_EPS, affine=True)
        self.act = elu()

    def forward(self, x):
        return self.act(self.norm(self.conv2(self.conv1(x)) + self.shortcut(x)))


def space_to_depth(x):
    """[B,C,H,W] → [B,4C,H/2,W/2] with out channel c*4 + dy*2 + dx.

    Deliberately not F.pixel_unshuffle: the spec's graph has Reshape→Transpose[0,1,3,5,2,4]→Reshape here,
    and ONNX SpaceToDepth orders channels differently (dy*2C + dx*C + c).
    """
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // 2, 2, w // 2, 2)
    x = x.permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)


class Conv3dMix(nn.Module):
    """View [B,C,H,W] as a 1-channel volume of depth C, Conv3d 1→8 (3×3×3, pad 1, bias), merge to 8C channels.

    Merged channel = f*C + j (f: Conv3d output channel, j: depth index). No norm, no activation.
    """

    FEATURES = 8

    def __init__(self):
        super().__init__()
        self.conv3d = nn.Conv3d(1, self.FEATURES, 3, stride=1, padding=1, bias=True)

    def forward(self, x):
        x = self.conv3d(x.unsqueeze(1))
        b, f, d, h, w = x.shape
        return x.reshape(b, f * d, h, w)


class Pack(nn.Module):
    """P(C, k): space-to-depth ×2 → Conv3dMix (4C → 32C channels) → CGE(32C → C, k)."""

    def __init__(self, c, k):
        super().__init__()
        self.mix = Conv3dMix()
        self.conv = CGE(4 * c * Conv3dMix.FEATURES, c, k)

    def forward(self, x):
        return self.conv(self.mix(space_to_depth(x)))


class Unpack(nn.Module):
    """U(cin → cout): CGE(cin → cout/2, 3) → Conv3dMix (→ 4·cout channels) → PixelShuffle(2) → [cout, 2H, 2W]."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = CGE(cin, cout // 2, 3)
        self.mix = Conv3dMix()
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        return self.shuffle(self.mix(self.conv(x)))


class Head(nn.Module):
    """H(cin): zero-pad 1 → Conv2d 3×3 cin→1 → sigmoid → / 0.5 (inverse depth in (0, 2))."""

    def __init__(self, cin):
        super().__init__()
        self.pad = nn.ConstantPad2d(1, 0.0)
        self.conv = nn.Conv2d(cin, 1, 3, stride=1, padding=0, bias=True)
        self.act = nn.Sigmoid()

    def forward(self, x):
        return self.act(self.conv(self.pad(x))) / MIN_DEPTH


def up2(x):
    """Nearest ×2 upsampling (exports as Resize with literal scales [1,1,2,2])."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


class PackNet01(nn.Module):
    """PackNet01 (version 1A): [B,3,H,W] → inverse depth [B,1,H,W] (eval) or [disp1..disp4] (train)."""

    def __init__(self, width=1.0):
        super().__init__()
        c1, c2, c3, c4 = (scaled_channels(n, width) for n in (64, 128, 256, 512))
        self.width = width

        # Encoder.
        self.pre_calc = CGE(3, c1, 5)
        self.conv1 = CGE(c1, c1, 7)
        self.pack1 = Pack(c1, 5)
        self.conv2 = nn.Sequential(RU(c1, c1), RU(c1, c1))
        self.pack2 = Pack(c1, 3)
        self.conv3 = nn.Sequential(RU(c1, c2), RU(c2, c2))
        self.pack3 = Pack(c2, 3)
        self.conv4 = nn.Sequential(RU(c2, c3), RU(c3, c3), RU(c3, c3))
        self.pack4 = Pack(c3, 3)
        self.conv5 = nn.Sequential(RU(c3, c4), RU(c4, c4), RU(c4, c4))
        self.pack5 = Pack(c4, 3)

        # Decoder. Concat order: [unpack output, skip, upsampled coarser inverse depth].
        self.unpack5 = Unpack(c4, c4)
        self.iconv5 = CGE(c4 + c3, c4, 3)
        self.unpack4 = Unpack(c4, c3)
        self.iconv4 = CGE(c3 + c2, c3, 3)
        self.disp4 = Head(c3)
        self.unpack3 = Unpack(c3, c2)
        self.iconv3 = CGE(c2 + c1 + 1, c2, 3)
        self.disp3 = Head(c2)
        self.unpack2 = Unpack(c2, c1)
        self.iconv2 = CGE(c1 + c1 + 1, c1, 3)
        self.disp2 = Head(c1)
        self.unpack1 = Unpack(c1, c1)
        self.iconv1 = CGE(c1 + c1 + 1, c1, 3)
        self.disp1 = Head(c1)

    def forward(self, x):
        skip1 = self.pre_calc(x)
        skip2 = self.pack1(self.conv1(skip1))
        skip3 = self.pack2(self.conv2(skip2))
        skip4 = self.pack3(self.conv3(skip3))
        skip5 = self.pack4(self.conv4(skip4))
        x5 = self.pack5(self.conv5(skip5))

        i5 = self.iconv5(torch.cat([self.unpack5(x5), skip5], 1))
        i4 = self.iconv4(torch.cat([self.unpack4(i5), skip4], 1))
        disp4 = self.disp4(i4)
        i3 = self.iconv3(torch.cat([self.unpack3(i4), skip3, up2(disp4)], 1))
        disp3 = self.disp3(i3)
        i2 = self.iconv2(torch.cat([self.unpack2(i3), skip2, up2(disp3)], 1))
        disp2 = self.disp2(i2)
        i1 = self.iconv1(torch.cat([self.unpack1(i2), skip1, up2(disp2)], 1))
        disp1 = self.disp1(i1)

        if self.training:
            return [disp1, disp2, disp3, disp4]
        return disp1


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    print(count_parameters(PackNet01(1.0)))
