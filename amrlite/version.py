"""The version of amrlite (its own module, so that library modules need not import the package)."""
__version__ = "0.1.0"
