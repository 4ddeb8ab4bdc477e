"""Shaping: pure functions that turn records into request bodies. No I/O, no Singer, no SDK."""
