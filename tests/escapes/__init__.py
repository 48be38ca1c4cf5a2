"""Escape corpus for pairproxy: see README.md."""
