"""Organizations, their email domains, authorization letters and employees."""
