"""The transfer saga (process manager): moves the money of every requested transfer.

Run it as ``python -m command_service.transfer_saga``. It follows the event
store's log, so it survives a crash of itself or of the command service at
any step, and never doubles a leg (see :mod:`.steps`).
"""
