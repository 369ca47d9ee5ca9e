"""The package version, in a module of its own so that setup.cfg and export read it cheaply."""

__version__ = "0.1.0"
