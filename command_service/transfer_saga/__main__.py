"""``python -m command_service.transfer_saga``: once PostgreSQL answers, serve.

The check comes first: the imports of the process take seconds, and a process
that cannot start should say why at once (:mod:`shared_kernel.startup`).
"""

from command_service.settings import TransferSagaSettings
from shared_kernel.startup import checked_settings

settings = checked_settings("transfer_saga", TransferSagaSettings, uses_redis=False)

from command_service.transfer_saga.bootstrap import main  # noqa: E402

main(settings)
