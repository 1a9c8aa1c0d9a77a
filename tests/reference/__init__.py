"""Independent numpy implementations of the example models, for differential tests.

Nothing here imports the interpreter, the checker or the compiler: each model is written
straight from its equations (shared/CORTEX.md and the comments of examples/*.cx), so that a
mistake in the language's semantics shows up as a disagreement.
"""
