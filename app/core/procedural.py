"""The motion brush: procedural wind-like motion inside a mask, with no model.

Owns BrushSettings and brush_motion / brush_spectrum. An artist paints a soft mask and gets a
spectral volume (see app.core.spectral for the conventions) that sways like wind-driven plants:

- spectral shape: a resonance bump at dominant_hz over a weaker 1/f^beta tail, or a plain 1/f^beta
  amplitude falloff over the bands when dominant_hz is None;
- space: every random field is white noise filtered with a Gaussian of sigma ~ coherence_px, so
  pixels closer than that move together; band phases also drift slowly across the image and lag
  along the wind direction, like a gust travelling through the scene;
- direction: each band moves mostly along a local direction (main direction plus a smooth random
  angle field), with a small perpendicular part that turns straight sways into thin ellipses;
- amplitude: calibrated so that the 95th percentile of each pixel's peak displacement over the loop,
  inside the full-strength mask, is amplitude_px; the mask multiplies everything at the end, so the
  result is exactly zero where the mask is 0 and feathered where the mask is feathered.

All random fields are generated on a coarse grid (a few cells per coherence length) and upsampled
with cv2.resize, which keeps a 512x288, 16-band brush well under a tenth of a second (coherence
below ~2 px needs full-resolution fields and is several times slower).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from app.core.spectral import (  # noqa: I001
    anchor_first_frame,
    DEFAULT_FPS, DEFAULT_NUM_BANDS, DEFAULT_NUM_FRAMES, Motion, band_frequencies,
)

# Shape of the spectrum around a dominant frequency.
PEAK_WIDTH_FRACTION = 0.1        # Gaussian bump sigma as a fraction of dominant_hz ...
PEAK_WIDTH_MIN_BANDS = 0.6       # ... but never narrower than this many band spacings
TAIL_LEVEL = 0.25                # level of the 1/f^beta tail relative to the peak

# Spatial structure, in units of coherence_px.
GRID_CELLS_PER_COHERENCE = 2.0   # coarse grid resolution: plenty for fields this smooth
PHASE_DRIFT_SCALE = 2.0          # phase drift fields are smoother than the amplitude fields ...
PHASE_DRIFT_RAD = math.pi / 2    # ... with this standard deviation
WIND_SPEED_COHERENCE_PER_S = 8.0  # a gust front crosses this many coherence lengths per second

AMPLITUDE_VARIATION = 0.35       # std of the log of the smooth amplitude field (some parts move more)
PERPENDICULAR_RATIO = 0.2        # perpendicular motion relative to motion along the local direction

CALIBRATION_PERCENTILE = 95.0
MAX_CALIBRATION_PIXELS = 8192    # peak displacements are measured on at most this many pixels


@dataclass(frozen=True)
class BrushSettings:
    """What the artist dials in for one brush stroke."""

    amplitude_px: float = 4.0           # typical peak displacement (95th percentile) inside the mask
    direction_deg: float = 0.0          # main sway direction, 0 = +x (right), 90 = +y (down)
    direction_spread_deg: float = 30.0  # std of the local direction around the main one
    dominant_hz: float | None = 0.8     # resonance peak; None -> 1/f^beta falloff over the bands
    falloff_beta: float = 1.5           # amplitude falloff exponent (of the tail above the peak too)
    coherence_px: float = 24.0          # spatial correlation length: closer pixels move together
    seed: int = 0

    def validate(self) -> None:
        """ValueError with one sentence for the first unusable setting (default bands and timing)."""
        _validate_settings(self, DEFAULT_NUM_BANDS, DEFAULT_NUM_FRAMES, DEFAULT_FPS)


def brush_motion(mask, settings: BrushSettings = BrushSettings(), num_bands: int = DEFAULT_NUM_BANDS,
                 num_frames: int = DEFAULT_NUM_FRAMES, fps: float = DEFAULT_FPS) -> Motion:
    """Procedural motion for a soft (H, W) mask in [0, 1]; zero where the mask is 0."""
    spectrum = brush_spectrum(mask, settings, num_bands, num_frames, fps)
    return Motion(spectrum, num_frames, fps)


def brush_spectrum(mask, settings: BrushSettings = BrushSettings(), num_bands: int = DEFAULT_NUM_BANDS,
                   num_frames: int = DEFAULT_NUM_FRAMES, fps: float = DEFAULT_FPS) -> np.ndarray:
    """Spectral volume complex64 (K, 2, H, W) of the brush; see the module docstring."""
    mask = _validated_mask(mask)
    _validate_settings(settings, num_bands, num_frames, fps)
    height, width = mask.shape
    spectrum = np.zeros((num_bands, 2, height, width), np.complex64)
    if settings.amplitude_px == 0 or not np.any(mask > 0):
        return spectrum

    frequencies = band_frequencies(num_bands, num_frames, fps)  # (K,) Hz
    envelope = band_envelope(frequencies, settings.dominant_hz, settings.falloff_beta)  # (K,), DC = 0

    rng = np.random.default_rng(settings.seed)
    grid = _CoarseGrid(height, width, settings.coherence_px)
    coarse = _coarse_spectrum(grid, rng, settings, frequencies, envelope)  # (K, 2, h, w) complex64
    for k in range(1, num_bands):
        for axis in range(2):
            spectrum[k, axis] = grid.upsample_complex(coarse[k, axis])

    spectrum = anchor_first_frame(spectrum, num_frames)  # frame 0 is the photo; calibrate what will play
    peak = _percentile_peak_displacement(spectrum, mask, num_frames)
    gain = mask * np.float32(settings.amplitude_px / peak) if peak > 0 else mask  # (H, W)
    spectrum *= gain[None, None]
    return spectrum


def band_envelope(frequencies_hz: np.ndarray, dominant_hz: float | None, falloff_beta: float) -> np.ndarray:
    """(K,) relative amplitude of each band, peak 1 (or band 1 = 1 in falloff mode), DC band 0."""
    envelope = np.zeros(len(frequencies_hz))
    f = frequencies_hz[1:]
    if dominant_hz is None:
        envelope[1:] = (f / f[0]) ** -falloff_beta
        return envelope
    band_spacing = frequencies_hz[1]
    width = max(PEAK_WIDTH_FRACTION * dominant_hz, PEAK_WIDTH_MIN_BANDS * band_spacing)
    bump = np.exp(-0.5 * ((f - dominant_hz) / width) ** 2)
    tail_above = (dominant_hz / f) ** falloff_beta   # slower bands of wind energy above the peak
    tail_below = f / dominant_hz                     # gentle rise towards the peak from below
    tail = TAIL_LEVEL * np.where(f > dominant_hz, tail_above, tail_below)
    envelope[1:] = bump + tail
    return envelope


# --- random fields --------------------------------------------------------------------------------


class _CoarseGrid:
    """A grid of about GRID_CELLS_PER_COHERENCE cells per coherence length over an H x W image."""

    def __init__(self, height: int, width: int, coherence_px: float):
        step = max(1.0, coherence_px / GRID_CELLS_PER_COHERENCE)
        self.height, self.width = height, width
        self.coarse_height = min(height, max(2, math.ceil(height / step)))
        self.coarse_width = min(width, max(2, math.ceil(width / step)))
        self.cell_height = height / self.coarse_height  # image pixels per coarse cell
        self.cell_width = width / self.coarse_width

    def pixel_coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """Image-pixel x and y of every coarse cell centre, each (h, w)."""
        x = (np.arange(self.coarse_width) + 0.5) * self.cell_width - 0.5
        y = (np.arange(self.coarse_height) + 0.5) * self.cell_height - 0.5
        return np.meshgrid(x, y)

    def smooth_field(self, rng: np.random.Generator, sigma_px: float) -> np.ndarray:
        """Unit-std Gaussian random field float32 (h, w), correlated over ~sigma_px image pixels
        (at most 4 image sizes: a field correlated over more is the same constant-looking field)."""
        sigma_px = min(float(sigma_px), 4.0 * max(self.height, self.width))
        sigma_x = sigma_px / self.cell_width
        sigma_y = sigma_px / self.cell_height
        kernel_x = _gaussian_kernel(sigma_x)
        kernel_y = _gaussian_kernel(sigma_y)
        pad_x, pad_y = len(kernel_x) // 2, len(kernel_y) // 2
        noise_shape = (self.coarse_height + 2 * pad_y, self.coarse_width + 2 * pad_x)
        noise = rng.standard_normal(noise_shape, dtype=np.float32)
        filtered = cv2.sepFilter2D(noise, cv2.CV_32F, kernel_x, kernel_y, borderType=cv2.BORDER_REFLECT)
        field = filtered[pad_y:pad_y + self.coarse_height, pad_x:pad_x + self.coarse_width]
        # Filtered unit white noise has variance sum(kernel^2): dividing makes it unit std.
        return field / np.float32(math.sqrt(np.sum(kernel_x ** 2) * np.sum(kernel_y ** 2)))

    def upsample_complex(self, plane: np.ndarray) -> np.ndarray:
        """A coarse complex64 (h, w) plane resized to the image: complex64 (H, W)."""
        if plane.shape == (self.height, self.width):
            return plane
        # complex64 is two interleaved float32s: resize it as a 2-channel image.
        channels = plane.view(np.float32).reshape(plane.shape + (2,))  # (h, w, 2) real, imag
        resized = cv2.resize(channels, (self.width, self.height), interpolation=cv2.INTER_CUBIC)
        return resized.view(np.complex64)[:, :, 0]  # (H, W)


def _gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalized 1D Gaussian (n,) float64, reaching 3 sigma; a delta for tiny sigma."""
    radius = max(0, math.ceil(3 * sigma))
    if radius == 0:
        return np.ones(1)
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    return kernel / kernel.sum()


def _coarse_spectrum(grid: _CoarseGrid, rng: np.random.Generator, settings: BrushSettings,
                     frequencies: np.ndarray, envelope: np.ndarray) -> np.ndarray:
    """Unscaled spectrum on the coarse grid: complex64 (K, 2, h, w), DC band zero."""
    coherence = settings.coherence_px
    # Shared by all bands: how much each place moves, and along which local direction.
    amplitude = np.exp(AMPLITUDE_VARIATION * grid.smooth_field(rng, coherence))  # (h, w)
    spread = math.radians(settings.direction_spread_deg)
    angle = math.radians(settings.direction_deg) + spread * grid.smooth_field(rng, coherence)  # (h, w)
    along_x, along_y = np.cos(angle), np.sin(angle)
    across_x, across_y = -along_y, along_x

    # Distance along the main wind direction, for the lag of a travelling gust.
    x, y = grid.pixel_coordinates()
    main = math.radians(settings.direction_deg)
    downwind_px = x * math.cos(main) + y * math.sin(main)  # (h, w)
    wind_speed_px_per_s = WIND_SPEED_COHERENCE_PER_S * coherence

    coarse = np.zeros((len(frequencies), 2, grid.coarse_height, grid.coarse_width), np.complex64)
    for k in range(1, len(frequencies)):
        start_phase = rng.uniform(0, 2 * math.pi)
        drift = PHASE_DRIFT_RAD * grid.smooth_field(rng, PHASE_DRIFT_SCALE * coherence)
        lag = 2 * math.pi * frequencies[k] * downwind_px / wind_speed_px_per_s
        along = envelope[k] * amplitude * np.exp(1j * (start_phase + drift - lag))  # (h, w)
        across_real, across_imag = grid.smooth_field(rng, coherence), grid.smooth_field(rng, coherence)
        across_noise = (across_real + 1j * across_imag) / math.sqrt(2)  # (h, w), unit complex std
        across = PERPENDICULAR_RATIO * envelope[k] * amplitude * across_noise  # (h, w)
        coarse[k, 0] = along * along_x + across * across_x
        coarse[k, 1] = along * along_y + across * across_y
    return coarse


# --- calibration ----------------------------------------------------------------------------------


def _percentile_peak_displacement(spectrum: np.ndarray, mask: np.ndarray, num_frames: int) -> float:
    """95th percentile over full-strength mask pixels of max_t |F_t(p)| (all moving pixels if none)."""
    region = mask >= 0.999
    if not np.any(region):
        region = mask > 0
    indices = np.flatnonzero(region)
    if len(indices) > MAX_CALIBRATION_PIXELS:
        indices = indices[np.linspace(0, len(indices) - 1, MAX_CALIBRATION_PIXELS).astype(np.int64)]
    num_bands = spectrum.shape[0]
    samples = spectrum.reshape(num_bands, 2, -1)[:, :, indices]  # (K, 2, N)
    full = np.zeros((num_frames // 2 + 1,) + samples.shape[1:], np.complex64)
    full[:num_bands] = samples
    texture = np.fft.irfft(full, n=num_frames, axis=0)  # (T, 2, N), as motion_to_texture
    peak = np.sqrt(texture[:, 0] ** 2 + texture[:, 1] ** 2).max(axis=0)  # (N,)
    return float(np.percentile(peak, CALIBRATION_PERCENTILE))


# --- validation -----------------------------------------------------------------------------------


def _validated_mask(mask) -> np.ndarray:
    """The mask as float32 (H, W), or a ValueError saying what is wrong with it."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"A brush mask must be a 2D (H, W) array; got shape {mask.shape}.")
    if mask.shape[0] == 0 or mask.shape[1] == 0:
        raise ValueError(f"A brush mask must not be empty; got shape {mask.shape}.")
    if not (np.issubdtype(mask.dtype, np.number) or mask.dtype == bool):
        raise ValueError(f"A brush mask must be numeric; got dtype {mask.dtype}.")
    mask = mask.astype(np.float32)
    if not np.all(np.isfinite(mask)):
        raise ValueError("A brush mask must not contain NaN or infinite values.")
    if mask.min() < 0 or mask.max() > 1:
        raise ValueError(f"A brush mask must lie in [0, 1]; got values in [{mask.min()}, {mask.max()}].")
    return mask


def _validate_settings(settings: BrushSettings, num_bands: int, num_frames: int, fps: float) -> None:
    """Raise one clear ValueError for the first unusable setting."""
    if not int(num_frames) >= 2:
        raise ValueError(f"A brush needs at least 2 frames; got {num_frames}.")
    if not 2 <= int(num_bands) <= int(num_frames) // 2 + 1:
        raise ValueError(f"A brush needs between 2 and {int(num_frames) // 2 + 1} bands; got {num_bands}.")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive; got {fps}.")
    if not (math.isfinite(settings.amplitude_px) and settings.amplitude_px >= 0):
        raise ValueError(f"amplitude_px must be a finite number >= 0; got {settings.amplitude_px}.")
    if not math.isfinite(settings.direction_deg):
        raise ValueError(f"direction_deg must be finite; got {settings.direction_deg}.")
    if not (math.isfinite(settings.direction_spread_deg) and settings.direction_spread_deg >= 0):
        raise ValueError(
            f"direction_spread_deg must be a finite number >= 0; got {settings.direction_spread_deg}.")
    if not (math.isfinite(settings.falloff_beta) and settings.falloff_beta >= 0):
        raise ValueError(f"falloff_beta must be a finite number >= 0; got {settings.falloff_beta}.")
    if not (math.isfinite(settings.coherence_px) and settings.coherence_px > 0):
        raise ValueError(f"coherence_px must be positive; got {settings.coherence_px}.")
    if isinstance(settings.seed, bool) or not isinstance(settings.seed, (int, np.integer)) \
            or not 0 <= int(settings.seed) < 2**63:
        raise ValueError(f"seed must be a whole number from 0 to 2**63 - 1; got {settings.seed!r}.")
    if settings.dominant_hz is not None:
        highest_hz = (int(num_bands) - 1) * fps / int(num_frames)
        if not (0 < settings.dominant_hz <= highest_hz * (1 + 1e-9)):
            raise ValueError(
                f"dominant_hz must lie in (0, {highest_hz:g}] Hz for {num_bands} bands of a "
                f"{num_frames}-frame loop at {fps:g} fps; got {settings.dominant_hz}.")
