"""The feed: steering in plain language (steer), saved preferences (prefs), ranking (rank), one browse (browse).

Importing this package loads no model and no heavy library: numpy, torch and MiniLM load inside the calls that
need them. The ranking function is `sora_cli.feed.rank.rank` (not re-exported here, so that
`sora_cli.feed.rank` stays the module).
"""

from __future__ import annotations

from sora_cli.feed.prefs import Preferences, SavedSteer
from sora_cli.feed.rank import FeedItem, Ranked
from sora_cli.feed.steer import Facet, Steering, parse

__all__ = ["Facet", "FeedItem", "Preferences", "Ranked", "SavedSteer", "Steering", "parse"]
