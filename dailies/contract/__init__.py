"""The contract both sides share: settings, the Redis keys, the typed job spec and media.

Imported by the app, the workers and the backends; it imports neither side, nor torch, and
never holds the Hub token beyond `Settings`. Its one look at the backends is the hosted
providers' variable names (backends/hosted_env.py, a module that imports nothing).
"""
