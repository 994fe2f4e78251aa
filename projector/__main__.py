"""``python -m projector``: once PostgreSQL and Redis answer, serve.

The check comes first: the imports of the process take seconds, and a process
that cannot start should say why at once (:mod:`shared_kernel.startup`).
"""

from projector.settings import ProjectorSettings
from shared_kernel.startup import checked_settings

settings = checked_settings("projector", ProjectorSettings)

from projector.bootstrap import main  # noqa: E402

main(settings)
