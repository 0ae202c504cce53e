"""User accounts, one-time tokens and personal API tokens."""
