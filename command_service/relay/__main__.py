"""``python -m command_service.relay``: once PostgreSQL and Redis answer, serve.

The check comes first: the imports of the process take seconds, and a process
that cannot start should say why at once (:mod:`shared_kernel.startup`).
"""

from command_service.settings import RelaySettings
from shared_kernel.startup import checked_settings

settings = checked_settings("relay", RelaySettings)

from command_service.relay.bootstrap import main  # noqa: E402

main(settings)
