"""Shortcuts of shape-only counts, each proven equal to the plain count: the keyer, replays, the memo, folds."""
