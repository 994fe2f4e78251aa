"""Every module that registers command handlers on the bus: importing this registers them."""

from __future__ import annotations

from command_service import handlers, holds
from command_service.transfer_saga import advance

__all__ = ["advance", "handlers", "holds"]
