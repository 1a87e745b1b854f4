"""The vocabulary every room shares, with no I/O: invocation and reply types, settings,
translations (the locale ContextVar), text helpers, identity hashing and the flood guard.
"""
