"""Authentication.

Credentials, OAuth2, mTLS and request signing, built per stream from its settings.
"""
