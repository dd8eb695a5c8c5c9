"""Evaluation: embeddings of a split, the retrieval metrics, ranks, per-query outcomes, protocols.

Owns: every number a result reports (mAP@10, R@k, ranks) and the embedding cache behind it.
May import: model, data, core and the public modules; never training, results, runs or the cli.
"""
