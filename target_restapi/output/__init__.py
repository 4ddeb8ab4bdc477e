"""Output.

What leaves the target besides requests (STATE, error file, response files, progress,
redaction).
"""
