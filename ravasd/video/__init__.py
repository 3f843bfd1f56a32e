"""Video stream: sources (camera, demo, file), converters (anonymizers), sinks."""
