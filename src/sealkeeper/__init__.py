"""sealkeeper: a self-hostable e-seal and cloud hash-signing service."""

__version__ = "0.1.0"
