"""Frame-renderer quality on held-out footage: PSNR and SSIM of rendered vs. true frames.

For every pair (I_0, I_t, F_t, W) of the 'val' split of a pairs folder (app/data/pairs.py; clips
the renderer never trained on) each renderer turns I_0 and the flow F_t into a frame, compared
with the frame I_t the video really shows:

    render-backward-warp  grid_sample at p - F_t(p): the forward flow negated stands in for the
                          backward flow (a standard approximation, exact only where the flow is
                          locally constant; app.render.splat.backward_warp_torch)
    render-avg-fill       average splatting + pull-push hole filling
    render-softmax-fill   softmax splatting with importance alpha * W(p) + hole filling (the
                          classical renderer of app/render/frames.py)
    render-learned        the learned renderer (app/render/net.py), with --weights

Results are averaged per pair within groups of t: near (t <= 8), mid (15 <= t <= 30),
far (t >= 60), and all. SSIM is the usual Gaussian-window SSIM (11 x 11, sigma 1.5,
K1 = 0.01, K2 = 0.03, data range 1) averaged over the RGB channels; PSNR over RGB in [0, 1].

    python -m app.eval.render_eval --data PAIRS_DIR [--weights renderer.safetensors] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
import torch.nn.functional as F

T_GROUPS = {"near": (0, 8), "mid": (15, 30), "far": (60, 10_000)}
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


# --- metrics -------------------------------------------------------------------------------------


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image of (N, C, H, W) in [0, 1] -> (N,); identical images give inf."""
    mse = (prediction.float() - target.float()).square().mean(dim=(1, 2, 3))
    return 10 * torch.log10(1.0 / mse)  # 1 / 0 = inf


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Normalized 1-D Gaussian (size,)."""
    coordinates = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    window = torch.exp(-coordinates.square() / (2 * sigma * sigma))
    return window / window.sum()


def ssim_map(prediction: torch.Tensor, target: torch.Tensor, window_size: int = SSIM_WINDOW,
             sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """SSIM of every valid window position, (N, C, H - s + 1, W - s + 1), images (N, C, H, W) in [0, 1].

    Local means, variances and covariance are Gaussian-weighted (separable convolution, no padding).
    A window larger than the image shrinks to fit.
    """
    x, y = prediction.float(), target.float()
    channels = x.shape[1]
    window_size = min(window_size, x.shape[2], x.shape[3])
    window = gaussian_window(window_size, sigma).to(x.device)
    horizontal = window.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)  # (C, 1, 1, s)
    vertical = window.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)  # (C, 1, s, 1)

    def blur(image):
        return F.conv2d(F.conv2d(image, horizontal, groups=channels), vertical, groups=channels)

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mean_x, mean_y = blur(x), blur(y)
    variance_x = blur(x * x) - mean_x.square()
    variance_y = blur(y * y) - mean_y.square()
    covariance = blur(x * y) - mean_x * mean_y
    return ((2 * mean_x * mean_y + c1) * (2 * covariance + c2)) / \
        ((mean_x.square() + mean_y.square() + c1) * (variance_x + variance_y + c2))


def ssim(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image of (N, C, H, W) in [0, 1] -> (N,); identical images give 1."""
    return ssim_map(prediction, target).mean(dim=(1, 2, 3))


# --- renderers under test ------------------------------------------------------------------------


def classical_renderers(alpha: float) -> dict:
    """name -> function(image0 (B, 3, H, W), flow (B, 2, H, W), weight (B, 1, H, W)) -> (B, 3, H, W)."""
    from app.render.splat import backward_warp_torch, splat_frames

    def backward_warp(image0, flow, weight):
        return backward_warp_torch(image0, flow)

    def average_splat(image0, flow, weight):
        return torch.cat([splat_frames(image0[i:i + 1], flow[i:i + 1], None, mode="avg", fill=True)
                          for i in range(len(flow))])

    def softmax_splat(image0, flow, weight):
        return torch.cat([splat_frames(image0[i:i + 1], flow[i:i + 1], alpha * weight[i:i + 1],
                                       mode="softmax", fill=True) for i in range(len(flow))])

    return {"render-backward-warp": backward_warp, "render-avg-fill": average_splat,
            "render-softmax-fill": softmax_splat}


def t_group(t: int) -> str | None:
    for name, (low, high) in T_GROUPS.items():
        if low <= t <= high:
            return name
    return None


def evaluate(pairs_dir: str, renderers: dict, split: str = "val", batch_size: int = 8,
             device: str = "cpu", progress: bool = True) -> list[dict]:
    """Mean PSNR/SSIM per renderer and t group: [{"name", "t", "psnr", "ssim", "pairs"}]."""
    from tqdm import tqdm

    from app.data.pairs import PairDataset

    dataset = PairDataset(pairs_dir, split, augment=False)
    if len(dataset) == 0:
        raise ValueError(f"The pairs folder '{pairs_dir}' has no '{split}' pairs.")
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    scores = {name: {"psnr": [], "ssim": [], "t": []} for name in renderers}
    with torch.inference_mode():
        for batch in tqdm(loader, desc="eval", unit="batch", disable=not progress):
            image0, target = batch["image0"].to(device), batch["image_t"].to(device)
            flow, weight = batch["flow"].to(device), batch["weight"].to(device)
            for name, render in renderers.items():
                frames = render(image0, flow, weight).clamp(0, 1)
                scores[name]["psnr"] += psnr(frames, target).tolist()
                scores[name]["ssim"] += ssim(frames, target).tolist()
                scores[name]["t"] += batch["t"].tolist()

    rows = []
    for name, values in scores.items():
        for group in list(T_GROUPS) + ["all"]:
            chosen = [i for i, t in enumerate(values["t"]) if group == "all" or t_group(t) == group]
            if not chosen:
                continue
            rows.append({
                "name": name, "t": group,
                "psnr": round(sum(values["psnr"][i] for i in chosen) / len(chosen), 3),
                "ssim": round(sum(values["ssim"][i] for i in chosen) / len(chosen), 4),
                "pairs": len(chosen),
            })
    return rows


def format_table(rows: list[dict]) -> str:
    """Renderers down, t groups across: 'PSNR / SSIM' per cell (markdown)."""
    groups = [g for g in list(T_GROUPS) + ["all"] if any(r["t"] == g for r in rows)]
    names = list(dict.fromkeys(r["name"] for r in rows))
    counts = {r["t"]: r["pairs"] for r in rows}
    lines = ["| renderer | " + " | ".join(f"{g} (n={counts[g]})" for g in groups) + " |",
             "|---|" + "---|" * len(groups)]
    for name in names:
        cells = []
        for group in groups:
            row = next((r for r in rows if r["name"] == name and r["t"] == group), None)
            cells.append(f"{row['psnr']:.2f} dB / {row['ssim']:.3f}" if row else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from app.render.frames import DEFAULT_ALPHA, resolve_device

    parser = argparse.ArgumentParser(prog="python -m app.eval.render_eval",
                                     description="PSNR/SSIM of frame renderers on held-out frame pairs.")
    parser.add_argument("--data", required=True, help="pairs folder (python -m app.data.pairs)")
    parser.add_argument("--weights", help="learned renderer .safetensors to evaluate too")
    parser.add_argument("--split", default="val", choices=["val", "train", "all"])
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="softmax importance scale of the classical splat")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    try:
        device = resolve_device(args.device)
        renderers = classical_renderers(args.alpha)
        if args.weights:
            from app.render.net import load_renderer

            model = load_renderer(args.weights, device)
            renderers["render-learned"] = model
        rows = evaluate(args.data, renderers, args.split, args.batch, device, progress=not args.json)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        for row in rows:
            print(json.dumps({**row, "device": str(device.type)}))
    else:
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
