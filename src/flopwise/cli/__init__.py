"""The command line, on top of every other layer: `flopwise MODEL` (main.py) and `flopwise compare` (compare.py).

Inside the package imports point one way: main → compare → common → load → load_hf → inputs, spec → errors.
"""

from .main import main

__all__ = ["main"]
