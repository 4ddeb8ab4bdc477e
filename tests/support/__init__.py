"""Test helpers shared by test modules: running the target in-process, generating input."""
