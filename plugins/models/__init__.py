"""Built-in retrieval models (``bench eval --model NAME``): finished audio-text models with their own projections."""
