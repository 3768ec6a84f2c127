"""Placeholder while the model module is written."""
