"""Shortcuts of shape-only counts, equal to the plain count by construction: one keyer, replays, the memo."""
