"""gotor: a Tor client in Python, built simulation-first."""

__version__ = "0.1.0"
