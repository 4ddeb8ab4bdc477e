"""Input: Singer lines from stdin (or BATCH files), decoded and validated against their SCHEMA."""
