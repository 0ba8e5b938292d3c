"""Motion self-guidance for seamless loops: a denoiser wrapper that pushes samples toward loops.

API
    loop_guided_denoiser(denoise, decode_latents_to_spectrum, num_frames, alphas_cumprod,
                         weight_u=200.0) -> denoise
        denoise(x (N, ...), t (N,)) -> eps                        the model call (CFG already composed)
        decode_latents_to_spectrum(x0 (N, ...)) -> complex (B, K, 2, H, W), differentiable
            (VAE decoder + app.core.normalize.denormalize_spectrum_torch in app.diffusion.predict)
    Use with ddim_sample(..., recurrence_steps=2) for the paper's 2 self-recurrence iterations.

At every call (following Generative Image Dynamics, Sec. 5, after universal guidance):
    eps      = denoise(x_t, t)                                      no gradient through the U-Net
    x0_pred  = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)
    L        = sum over volumes of loop_seam_torch(decode(x0_pred), num_frames)
    eps_hat  = eps + u * sqrt(1 - a_t) * dL/dx_t                    u = weight_u (paper: 200)

Choice: eps is held constant in the gradient (the U-Net is not differentiated), so
dL/dx_t = dL/dx0_pred / sqrt(a_t): the gradient goes through the decoder of x0_pred only, as in the
paper's description; it costs one decoder forward + backward per step instead of a U-Net backward.
Raising eps along dL/dx_t lowers x0_pred along it, i.e. a descent step on the seam.

The gradient is taken under torch.enable_grad(), so the sampler may run under torch.no_grad()
(but not torch.inference_mode(), whose tensors cannot enter autograd).
"""

from __future__ import annotations

import torch

from app.core.loop import loop_seam_torch
from app.diffusion.schedule import alpha_bar_at

LOOP_WEIGHT = 200.0
RECURRENCE_STEPS = 2


def loop_guided_denoiser(denoise, decode_latents_to_spectrum, num_frames: int, alphas_cumprod: torch.Tensor,
                         weight_u: float = LOOP_WEIGHT):
    """Wrap denoise so that its eps carries u * sigma_t * (gradient of the loop seam w.r.t. x_t)."""

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps = denoise(x, t)
        if weight_u == 0:
            return eps
        alpha = alpha_bar_at(alphas_cumprod, t, x.float())  # (N, 1, 1, 1) float32
        with torch.enable_grad():
            x_in = x.detach().float().requires_grad_(True)
            x0_pred = (x_in - (1 - alpha).sqrt() * eps.detach().float()) / alpha.sqrt()
            spectrum = decode_latents_to_spectrum(x0_pred)  # (B, K, 2, H, W) complex
            loss = loop_seam_torch(spectrum, num_frames).sum()
            (gradient,) = torch.autograd.grad(loss, x_in)
        return eps + (weight_u * (1 - alpha).sqrt() * gradient).to(eps.dtype)

    return guided
