"""Aeolus diffusion layer."""
