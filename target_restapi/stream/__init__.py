"""One stream's sink, in parts: requests in the making, and their delivery and outcome."""
