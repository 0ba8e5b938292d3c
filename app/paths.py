"""Where the app's own files live (one home for every path constant; imports nothing from app)."""

from __future__ import annotations

from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parents[1]
RESOURCES_DIR = ROOT_DIR / "resources"
EXAMPLES_DIR = RESOURCES_DIR / "examples"
ICONS_DIR = RESOURCES_DIR / "icons"
MODELS_DIR = ROOT_DIR / "models"
RENDERER_WEIGHTS = MODELS_DIR / "renderer.safetensors"
MOTION_MODEL_WEIGHTS = MODELS_DIR / "motion_model.safetensors"
