"""What the user sees: the error boundary, the help screens, progress while Nix runs, reports."""
