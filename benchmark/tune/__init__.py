"""Tuning: every method's hyper-parameters searched with the same Optuna budget on tuning seeds
and VAL rows the leaderboard never reports (``unlearn-bench tune``)."""
