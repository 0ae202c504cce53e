"""HTTP transports: the JSON API, the CSC API, the PKI endpoints, the console."""
