"""The engine that runs a model under counting: the dispatch mode, the module stack, activation memory, higher-order
operators, the mask census, what a count runs the model with, and the model's state restored."""
