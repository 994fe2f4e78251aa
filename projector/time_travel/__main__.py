"""``python -m projector.time_travel STREAM --at POSITION [--format text|json]``."""

from projector.time_travel.cli import main

main()
