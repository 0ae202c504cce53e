"""All cryptography of sealkeeper: digests, key stores, X.509/CA, CMS, PAdES,
RFC 3161, OCSP/CRL and Merkle proofs. Nothing outside this package imports
``cryptography.hazmat`` or ``asn1crypto`` directly."""
