"""Campaign: profile a workload over a planned sample of a space, crash-safe.

- :class:`Campaign`: plans (random, Latin hypercube, D-optimal), an fsynced JSONL journal,
  resume, local or Ray execution;
- :func:`read_journal`: the journal's header and records.
"""

from __future__ import annotations

from energycore.campaign.campaign import EXECUTORS, PLANS, Campaign, read_journal

__all__ = ["EXECUTORS", "PLANS", "Campaign", "read_journal"]
