"""The command line, on top of every other layer: `flopwise [MODEL]` (model_command.py), `flopwise compare`
(compare.py) and `flopwise diff` (diff.py), entered through main.py, which parses with options.py and terminal.py
only (no torch) and imports the command's module afterwards.

Inside the package imports point one way: model_command → compare → common → load → load_hf → inputs, spec →
options → budget, terminal, errors.
"""

from .main import main

__all__ = ["main"]
