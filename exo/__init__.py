"""exo: a git-native governance kernel for AI coding agents."""

__version__ = "0.1.0"
