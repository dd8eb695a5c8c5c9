"""Leaderboard: the markdown tables, the plots and the HTML site derived from result files.

Owns: everything a reader of the leaderboard sees; nothing here is hand-edited or trains.
May import: results, evaluation, core and the public modules; never training, runs or the cli.
"""
