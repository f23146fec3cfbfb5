"""The resolution protocol (docs/design.md): what a run knows of each site, and its stages, one a module."""
