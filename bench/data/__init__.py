"""Data: audio decoding and resampling, items and batches, datasets, validation and audio caches.

Owns: everything between a dataset's files on disk and a batch of waveforms and captions.
May import: core and the public modules only.
"""
