"""API quota: a balance per organization, orders, and atomic consumption."""
