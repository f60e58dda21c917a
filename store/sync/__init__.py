"""Sync: fetch usage summaries from remote endpoints into SQLite, with provenance."""
