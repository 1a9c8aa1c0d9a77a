"""cortexlang: an interpreter and optimising compiler for recursive deep-learning models."""

__version__ = "0.1.0"
