"""``python -m command_service.replay STREAM [--version N] [--format text|json]``."""

from command_service.replay.cli import main

main()
