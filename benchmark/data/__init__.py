"""Helpers of dataset sources, above the core's DatasetSource and GroupDataset: local copies and
the Hub, decoding images, sampling, task grids, `data check`."""
