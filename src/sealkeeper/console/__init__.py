"""The web console's own domain: server-side sign-in sessions, sign-in
throttling and TOTP second factors. (Domain proofs live in
:mod:`sealkeeper.orgs.domain_proofs`.) No HTTP here: :mod:`sealkeeper.web.console`
is the transport."""
