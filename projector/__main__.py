"""``python -m projector``."""

from projector.bootstrap import main

main()
