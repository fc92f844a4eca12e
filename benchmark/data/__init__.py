"""Group datasets: the in-memory dataset, its sources and caches, decoding, splits, augmentation, `data check`."""
