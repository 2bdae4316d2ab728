"""User-facing errors: the command line prints these as one line, no traceback."""


class CinnError(Exception):
    """A problem with user input (a file, an image, a size, a config)."""
