"""Plumbing shared by every layer: column validation, JSON persistence, shared numerics.

The bottom layer: it imports nothing from energycore but ``_core``, ``errors`` and itself.
"""
