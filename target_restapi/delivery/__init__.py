"""Delivery.

Sending requests (transport, retries, pacing, concurrency, deadlines, dry run). Knows nothing
of Singer.
"""
