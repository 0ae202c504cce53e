"""Encryption for users and organizations: encryption keys and certificates,
the directory, grants for organization keys, and the cloud key unwrap."""
