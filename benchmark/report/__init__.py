"""From result cells to what people read: scoring against gold, the leaderboard schema, renderers, claims."""
