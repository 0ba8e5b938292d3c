"""Aeolus ui layer."""
