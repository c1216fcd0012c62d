"""One module per format, each declaring FORMAT (a registry.Format): adding a format is adding a file."""
