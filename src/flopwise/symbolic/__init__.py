"""Costs as exact polynomials in named sizes: the run with symbolic sizes, the fit, and its report."""
