"""The command bus (:mod:`.bus`): handlers by command type, behaviours, one unit of work."""
