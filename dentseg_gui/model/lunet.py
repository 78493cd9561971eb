"""LU-Net: the U-Net with convolutional skip paths of DESIGN.md, plus a landmark head.

Layout (``widths=(16, 32, 64, 128)``: four resolution levels, three 2x2 poolings)::

    encoder level k : [3x3 conv + BN + ReLU] x 2, then 2x2 max-pool stride 2
    bottleneck      : [3x3 conv + BN + ReLU] x 2 at the coarsest level
    skip path k     : [3x3 conv + BN + ReLU] x 2 on the encoder features (LU-Net's
                      feature fusion; ``PlainUNet`` passes them through unchanged)
    decoder level k : 2x2 transposed conv (stride 2), concatenate with skip path k,
                      [3x3 conv + BN + ReLU] x 2
    segmentation    : 1x1 conv -> 3 logits {background, PAB, enamel}; softmax -> probabilities
    landmarks       : 3x3 conv + BN + ReLU, 1x1 conv -> 3 heatmap logits
                      {CEJ_labial, CEJ_palatal, apex}; a spatial softmax turns each into a
                      probability map over the pixels (training loss and ``landmarks.py``).

The network is fully convolutional: any input whose sides are a multiple of
``model.size_multiple`` (8 for four levels) works, so inference runs on whole
slices and on crops alike. BatchNorm (not GroupNorm) is used because it folds
into the preceding convolution for inference (``fuse_batchnorm``), which matters
on a clinic laptop CPU; fine-tuning on a handful of cases keeps the learned
BatchNorm statistics frozen (``freeze_batchnorm``) so tiny batches cannot
corrupt them. docs/model.md gives the numbers behind these choices.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from .labels import CLASSES, LANDMARK_NAMES  # noqa: F401 - re-exported

DEFAULT_WIDTHS = (16, 32, 64, 128)


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def double_conv(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 conv + BN + ReLU: the unit of every encoder, decoder and skip block."""
    return nn.Sequential(*_conv_bn_relu(cin, cout), *_conv_bn_relu(cout, cout))


class LUNet(nn.Module):
    """LU-Net segmentation + landmark network; ``forward`` returns (seg_logits, heatmap_logits)."""

    arch_name = "LUNet"
    display_name = "LU-Net"
    skip_convs = True

    def __init__(self, in_channels: int = 1, num_classes: int = len(CLASSES),
                 num_landmarks: int = len(LANDMARK_NAMES),
                 widths: tuple[int, ...] | list[int] = DEFAULT_WIDTHS) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2 or any(w <= 0 for w in widths):
            raise ValueError(f"widths must be at least two positive channel counts, got {widths}")
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.num_landmarks = int(num_landmarks)
        self.widths = widths

        self.encoders = nn.ModuleList()
        cin = self.in_channels
        for w in widths[:-1]:
            self.encoders.append(double_conv(cin, w))
            cin = w
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bottleneck = double_conv(widths[-2], widths[-1])
        self.skips = nn.ModuleList(
            double_conv(w, w) if self.skip_convs else nn.Identity() for w in widths[:-1])
        self.upsamples = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for k in reversed(range(len(widths) - 1)):
            self.upsamples.append(nn.ConvTranspose2d(widths[k + 1], widths[k], 2, stride=2))
            self.decoders.append(double_conv(2 * widths[k], widths[k]))
        self.seg_head = nn.Conv2d(widths[0], self.num_classes, 1)
        self.landmark_head = nn.Sequential(*_conv_bn_relu(widths[0], widths[0]),
                                           nn.Conv2d(widths[0], self.num_landmarks, 1))

    # ------------------------------------------------------------------ info
    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this (one factor 2 per pooling)."""
        return 2 ** (len(self.widths) - 1)

    def constructor_args(self) -> dict[str, Any]:
        """What ``build_model`` needs to rebuild this exact architecture (stored in the card)."""
        return {"in_channels": self.in_channels, "num_classes": self.num_classes,
                "num_landmarks": self.num_landmarks, "widths": list(self.widths)}

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.size_multiple
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"input height and width must be multiples of {m}, got {tuple(x.shape[-2:])}")
        skips = []
        for enc, skip in zip(self.encoders, self.skips):
            x = enc(x)
            skips.append(skip(x))
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, dec, s in zip(self.upsamples, self.decoders, reversed(skips)):
            x = dec(torch.cat([up(x), s], dim=1))
        return self.seg_head(x), self.landmark_head(x)


class PlainUNet(LUNet):
    """The benchmark baseline: LU-Net's depth, widths and heads, without the skip-path convs."""

    arch_name = "PlainUNet"
    display_name = "plain U-Net"
    skip_convs = False


class MonaiBasicUNet(nn.Module):
    """MONAI's ``BasicUNet`` (2-D, default features) with LU-Net's two outputs, for the benchmark.

    Optional: needs ``pip install monai --no-deps``. One output map of
    classes + landmarks is split into (seg_logits, heatmap_logits) so the same
    training loop, inference and weights files serve it.
    """

    arch_name = "MonaiBasicUNet"
    display_name = "MONAI BasicUNet"
    size_multiple = 16

    def __init__(self, in_channels: int = 1, num_classes: int = len(CLASSES),
                 num_landmarks: int = len(LANDMARK_NAMES)) -> None:
        super().__init__()
        try:
            from monai.networks.nets import BasicUNet
        except ImportError:
            raise ValueError("MONAI is not installed (pip install monai --no-deps)") from None
        self.in_channels, self.num_classes, self.num_landmarks = int(in_channels), int(num_classes), int(num_landmarks)
        self.net = BasicUNet(spatial_dims=2, in_channels=self.in_channels,
                             out_channels=self.num_classes + self.num_landmarks)

    def constructor_args(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "num_classes": self.num_classes,
                "num_landmarks": self.num_landmarks}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(x)
        return out[:, :self.num_classes], out[:, self.num_classes:]


ARCHITECTURES: dict[str, type[nn.Module]] = {
    cls.arch_name: cls for cls in (LUNet, PlainUNet, MonaiBasicUNet)}


def build_model(arch: str, args: dict[str, Any]) -> LUNet:
    """Rebuild a network from its architecture name and constructor arguments (model card)."""
    cls = ARCHITECTURES.get(arch)
    if cls is None:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    return cls(**args)


def count_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


# --------------------------------------------------------------------------- landmark maps


def soft_argmax(prob: torch.Tensor) -> torch.Tensor:
    """Expected (x, y) pixel position of each probability map: (B, C, 2)."""
    b, c, h, w = prob.shape
    xs = torch.arange(w, dtype=prob.dtype, device=prob.device)
    ys = torch.arange(h, dtype=prob.dtype, device=prob.device)
    x = (prob.sum(dim=2) * xs).sum(dim=-1)
    y = (prob.sum(dim=3) * ys).sum(dim=-1)
    return torch.stack([x, y], dim=-1)


# --------------------------------------------------------------------------- inference helpers


def freeze_batchnorm(model: nn.Module) -> None:
    """Put every BatchNorm in eval mode (use stored statistics); call after ``model.train()``."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


def fuse_batchnorm(model: LUNet) -> LUNet:
    """A copy of ``model`` (in eval mode) with each BatchNorm folded into the conv before it.

    Same outputs up to float rounding, ~20-30 % faster on CPU. Only for inference.
    """
    fused = copy.deepcopy(model).eval()

    def fuse_seq(seq: nn.Sequential) -> None:
        mods = list(seq)
        for i in range(len(mods) - 1):
            conv, bn = mods[i], mods[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                                stride=conv.stride, padding=conv.padding, bias=True)
                with torch.no_grad():
                    new.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
                    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                    new.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
                seq[i] = new
                seq[i + 1] = nn.Identity()

    for m in list(fused.modules()):
        if isinstance(m, nn.Sequential):
            fuse_seq(m)
    return fused
