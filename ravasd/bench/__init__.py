"""Benchmarks that print figures: video, audio (real-time factor, end-to-end latency), batch throughput, and soak runs of the daemon."""
