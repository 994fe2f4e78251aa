"""Rebuilding a projection beside the live one, verifying it, and swapping it in.

``python -m projector.rebuild <name>`` (``make rebuild PROJECTION=<name>``) and
``POST /admin/projections/{name}/rebuild`` on the projector run the same
:class:`~projector.rebuild.rebuilder.Rebuild`. See its module for the steps,
:mod:`projector.rebuild.swap` for the swap and :mod:`projector.rebuild.retired`
for rollback and dropping the replaced tables.
"""
