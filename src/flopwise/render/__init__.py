"""Renderers turn a Report into text or data; counting itself never prints."""
