"""Streaming engine: typed frames, stage protocols, the fail-closed stream runner, the supervisor."""
