"""The result cache: true hashes per FOD and platform on disk, and the file format between machines."""
