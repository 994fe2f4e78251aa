"""Every module that registers command handlers on the bus: importing this registers them."""

from __future__ import annotations

from command_service import handlers

__all__ = ["handlers"]
