"""Aeolus eval layer."""
