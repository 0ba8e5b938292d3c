"""Fixtures of the evaluation tests: a small random network standing in for I3D."""

import pytest
import torch


class TinyVideoNet(torch.nn.Module):
    """A small random stand-in for I3D: (N, 3, T, 224, 224) in [-1, 1] -> (N, 16)."""

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv3d(3, 16, kernel_size=(3, 8, 8), stride=(2, 8, 8))
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=generator) * 0.1)
            self.conv.bias.zero_()

    def forward(self, x, kind="logits"):
        return torch.relu(self.conv(x)).mean(dim=(2, 3, 4))


@pytest.fixture
def tiny_video_net():
    return TinyVideoNet().eval()
