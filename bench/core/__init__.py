"""Core: configuration, the plugin registry, options, atomic writes, caches' locations, progress.

Owns: the foundations every other layer stands on; nothing here knows about training or metrics.
May import: the public modules (``bench.errors``, ``bench.options``, ``bench.hookspecs``, ...) only.
"""
