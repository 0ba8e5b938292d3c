"""The viewport's non-GL preview: backward warp on the CPU, softmax splatting on CUDA."""

import numpy as np
import pytest
import torch

from app.core.procedural import BrushSettings, brush_motion
from app.core.spectral import band_factors
from app.render.warp import backward_warp
from app.ui.viewport import PreviewFrameRenderer


def scene():
    image = np.random.default_rng(0).integers(0, 255, (40, 64, 3), dtype=np.uint8)
    motion = brush_motion(np.ones((40, 64), np.float32), BrushSettings(amplitude_px=3.0, seed=2))
    return image, motion


def test_cpu_preview_is_the_backward_warp_of_the_displacement_at_that_time():
    image, motion = scene()
    renderer = PreviewFrameRenderer(image, motion, device="cpu")
    factors = band_factors(motion.num_bands, motion.num_frames, 17.0)
    from app.core.spectral import displacement_at

    np.testing.assert_allclose(renderer.displacement(factors), displacement_at(motion, 17.0), atol=1e-4)
    np.testing.assert_array_equal(renderer.render(factors), backward_warp(image, renderer.displacement(factors)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: the quality preview runs there")
def test_cuda_preview_equals_the_cpu_softmax_splat():
    from app.render.splat import importance_from_motion, mean_motion_magnitude, splat_frames

    image, motion = scene()
    renderer = PreviewFrameRenderer(image, motion, device="cuda")
    factors = band_factors(motion.num_bands, motion.num_frames, 17.0)
    on_cuda = renderer.render(factors).astype(int)
    image_tensor = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255
    flow = torch.from_numpy(renderer.displacement(factors))[None]
    importance = importance_from_motion(mean_motion_magnitude(motion), 1.0)
    on_cpu = (splat_frames(image_tensor, flow, importance)[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    assert np.abs(on_cuda - on_cpu.astype(int)).max() <= 1
