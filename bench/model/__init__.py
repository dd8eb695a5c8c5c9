"""The model: the dual encoder assembled from plugins, its devices, DDP helpers and checkpoints.

Owns: the network a run trains and scores, where it runs, and how it is saved and loaded.
May import: data, core and the public modules (contracts); never evaluation, training or above.
"""
