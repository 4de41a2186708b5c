"""Crypto Execution Lab: an execution-first trading lab that never places a live order."""

__version__ = "0.1.0"
