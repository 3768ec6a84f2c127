"""Auto-tuning: the :class:`Tuner` (ask/tell) and :class:`CacheReplay` (Kernel Tuner caches).

See ``docs/tuner.md``; the Kernel Tuner strategy is in :mod:`energycore.integrations.kernel_tuner`.
"""

from __future__ import annotations

from energycore.learn.cache import CacheReplay
from energycore.learn.tuner import Tuner

__all__ = ["CacheReplay", "Tuner"]
