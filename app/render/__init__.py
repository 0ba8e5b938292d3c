"""Aeolus render layer."""
