"""The research application: recordings through the live converters offline (one file, a local batch, or Ray tasks), avatar replays, and voices measured through a real call."""
