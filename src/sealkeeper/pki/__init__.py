"""The certificate authority as a domain area: CA keys and certificates, seal
certificates, revocation, CRLs, OCSP and time-stamps, over the key store."""
