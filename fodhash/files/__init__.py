"""The user's files (lock, scratch copy, edits, final write, journal) and fodhash's own folders."""
