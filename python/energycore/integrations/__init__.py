"""Bridges to other tools (imported on demand; their packages are optional)."""
