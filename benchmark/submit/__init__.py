"""Submitting a method: ``unlearn-bench validate`` checks a plugin (``check``), ``unlearn-bench
submit`` runs it over the grid and writes its leaderboard entry (``entry``), which the
leaderboard build merges beside the store's result cells."""
