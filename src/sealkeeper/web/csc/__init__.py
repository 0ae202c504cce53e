"""The CSC API (Cloud Signature Consortium, v1.0.4.0 and v2.0.0.2) at
``/csc/v1/`` and ``/csc/v2/``: ``build_router()`` gives the routes, whose
errors are answered the CSC way by :class:`~sealkeeper.web.csc.errors.CscRoute`."""

from sealkeeper.web.csc.routes import build_router

__all__ = ["build_router"]
