"""One module per command, each a thin function that runs it and returns its exit code."""
