"""Aeolus: a cinemagraph studio built on Generative Image Dynamics."""

__version__ = "0.1.0"
