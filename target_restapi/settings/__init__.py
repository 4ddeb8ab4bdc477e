"""Settings.

The declared schema, where values come from, and their per-stream resolution and checks.
"""
