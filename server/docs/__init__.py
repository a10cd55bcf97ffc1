"""Reference documents generated from the code: ``python -m server.docs``.

``docs/contract.md`` keeps its prose by hand; the blocks between
``<!-- generated: NAME -->`` and ``<!-- end generated -->`` are rewritten from the
route registry, the pydantic models, the socket close codes and the error codes
raised in ``server/``. ``docs/settings.md`` is generated whole from
:class:`server.settings.Settings`. A test regenerates both and fails when the
committed files differ, so they cannot drift from the code.
"""
