"""The composition root: reads the settings, builds every object once and runs them.

The only room that may import everything, including `handlers` (to build the registry) and a
concrete storage backend.
"""
