"""``python -m command_service.transfer_saga``."""

from command_service.transfer_saga.bootstrap import main

main()
