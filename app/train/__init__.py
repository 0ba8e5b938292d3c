"""Aeolus train layer."""
