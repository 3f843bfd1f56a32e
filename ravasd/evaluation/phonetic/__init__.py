"""The phonetic corpus (speaker families, espeak-ng labels), the phone model recipe and its scores."""
