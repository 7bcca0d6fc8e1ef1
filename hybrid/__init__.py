"""Learned operators and hybrid solver loops (the only layer that imports torch), and the ``hybrid`` CLI."""

__version__ = "0.1.0"
