"""Reviewing results: compare revisions, experiments tables, sweeps, the leaderboard and
the docs tables rendered from results/*.json."""
