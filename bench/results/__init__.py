"""Results: result files (the reader is public), provenance, verify, reproduce, statistics, compare.

Owns: the JSON schema of a result, its per-query sidecar, and the checks that a result is sound.
May import: evaluation, model, data, core and the public modules; never training, runs or the cli.

Public: :func:`read_result` (one file, checked) and :func:`read_results` (a directory).
"""

from bench.results.files import read_result, read_results

__all__ = ["read_result", "read_results"]
