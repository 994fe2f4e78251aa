"""``python -m command_service.relay``."""

from command_service.relay.bootstrap import main

main()
