"""Coat Tail Capital stream job: ``coattail-stream-job run | reprocess | load-history | submit``."""

__version__ = "0.1.0"
