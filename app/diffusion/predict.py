"""One photo -> a Motion: the whole diffusion pipeline (CFG, optional loop guidance, VAE, denormalize).

API
    predict_motion(image uint8 (H, W, 3), model: MotionModel | PixelMotionModel, num_steps=25, guidance=None, loop=False,
                   seed=0, device="cpu", callback=None, loop_weight=200.0, recurrence=2, eta=0.0) -> Motion
        callback(step, num_steps, x, x0_pred) -> bool | None: True cancels (raises SamplingCancelled)

A PixelMotionModel (app.diffusion.pixel) is sampled by predict_pixel_motion with the same options.

Steps (latent model): the photo is resized to the model size (width x height, aspect not kept), all K latent slices
are sampled jointly as one (K, 4, h, w) batch (the U-Net's frequency attention sees them together),
with classifier-free guidance of weight `guidance` (None: the model's own; paper: 1.75) and, when loop=True, motion
self-guidance (u = loop_weight, `recurrence` self-recurrence iterations per step). The latents are
decoded by the VAE, denormalized with the model's per-band scales into a spectrum at the model size,
and resized to the photo's size (displacements scale with the grid).

The models are moved to `device` in place. Deterministic per seed on CPU: all noise comes from a CPU
torch.Generator seeded with `seed`.
"""

from __future__ import annotations

import numpy as np
import torch

from app.core.normalize import denormalize_spectrum_torch
from app.core.spectral import Motion, resize_motion
from app.diffusion.guidance import loop_guided_denoiser
from app.diffusion.sampler import cfg_denoiser, ddim_sample, with_preview
from app.diffusion.pixel import model_image
from app.diffusion.weights import MotionModel

# 25 steps: 2.6 s on 2 idle CPU cores with the starter model, spectrum error 0.98 against 0.93 at 250
# steps (python -m app bench predict); 50 steps took 5.1 s, just over the 5 s target.
DEFAULT_STEPS = 25


def predict_motion(image: np.ndarray, model: MotionModel, num_steps: int = DEFAULT_STEPS,
                   guidance: float | None = None, loop: bool = False, seed: int = 0, device="cpu",
                   callback=None, loop_weight: float = 200.0, recurrence: int = 2, eta: float = 0.0,
                   preview=None, preview_every: int = 5, guidance_top: float | None = None) -> Motion:
    """Sample a spectral volume for a photo; returns a Motion at the photo's size.

    guidance None: the model's own weight (model.guidance: 1.75 for the latent model, measured per
    pixel model and stored in its file). A pixel model weighs each band on its own: `guidance` is
    band 1's weight and guidance_top the top band's (None: the model's own tilt; app.diffusion.pixel.band_guidance);
    the latent model ignores guidance_top.
    preview(motion): called every `preview_every` steps (and at the last) with the motion decoded
    from the current prediction of the clean latents, at the photo's size: a live preview.
    """
    from app.diffusion.pixel import PixelMotionModel, predict_pixel_motion

    if isinstance(model, PixelMotionModel):
        return predict_pixel_motion(image, model, num_steps=num_steps, guidance=guidance, loop=loop, seed=seed,
                                    device=device, callback=callback, loop_weight=loop_weight,
                                    recurrence=recurrence, eta=eta, preview=preview, preview_every=preview_every,
                                    guidance_top=guidance_top)
    photo_height, photo_width = np.asarray(image).shape[:2]
    height, width, num_bands = model.height, model.width, model.num_bands
    pixels = model_image(image, width, height)
    model.to(device).eval()
    vae, unet = model.vae, model.unet
    scales = torch.as_tensor(model.scales, dtype=torch.float32, device=device)
    alphas_cumprod = model.alphas_cumprod

    image_tensor = torch.from_numpy(pixels.transpose(2, 0, 1).copy())[None].to(device)  # (1, 3, H, W)
    bands = torch.arange(num_bands, device=device)  # (K,)
    latent_height, latent_width = model.latent_size
    shape = (num_bands, vae.config.latent_channels, latent_height, latent_width)  # (K, 4, h, w)

    def model_call(x, t, conditional):
        repeats = x.shape[0] // num_bands  # 1, or 2 for a batched CFG call
        return unet(x, t, bands.repeat(repeats), image_tensor.expand(repeats, -1, -1, -1),
                    num_bands=num_bands, drop_image=~conditional)

    def decode_latents_to_spectrum(latents):
        normalized = vae.decode_latents(latents, size=(height, width))  # (B*K, 4, H, W)
        normalized = normalized.reshape(-1, num_bands, *normalized.shape[1:])  # (B, K, 4, H, W)
        return denormalize_spectrum_torch(normalized, scales)  # (B, K, 2, H, W) complex

    denoise = cfg_denoiser(model_call, model.guidance if guidance is None else guidance)
    if loop:
        denoise = loop_guided_denoiser(denoise, decode_latents_to_spectrum, model.config.num_frames,
                                       alphas_cumprod, weight_u=loop_weight)
    def to_motion(latents) -> Motion:
        spectrum = decode_latents_to_spectrum(latents)[0]  # (K, 2, H, W)
        motion = Motion(spectrum.cpu().numpy().astype(np.complex64), model.config.num_frames, model.config.fps)
        return resize_motion(motion, photo_height, photo_width)

    on_step = with_preview(callback, preview, preview_every, to_motion)
    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        latents = ddim_sample(denoise, shape, alphas_cumprod, num_steps, generator=generator, eta=eta,
                              callback=on_step, recurrence_steps=recurrence if loop else 1, device=device)
        return to_motion(latents)
