"""Audio stream: sources (microphone, demo, file), voice converters, sinks."""
