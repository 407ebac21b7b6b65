"""Values every layer shares: Term, Work, Cost and OpCall; the conventions (the FLOPs rule); the energy table."""
