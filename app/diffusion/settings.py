"""Architecture settings (the config dataclasses) as JSON-ready dicts and back, for model files."""

from __future__ import annotations

from dataclasses import asdict, fields


def settings_dict(settings) -> dict:
    """A settings dataclass as a dict, its tuples as lists (as JSON holds them)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(settings).items()}


def settings_from_dict(cls, data: dict, what: str):
    """cls(**data); a ValueError names the settings cls does not know ("Unknown VAE settings: x.")."""
    unknown = set(data) - {field.name for field in fields(cls)}
    if unknown:
        raise ValueError(f"Unknown {what} settings: {', '.join(sorted(unknown))}.")
    return cls(**data)
