"""The base class of the errors a user can fix; the CLIs print these in one line.

Any other exception is a bug (ours or a library's) and keeps its traceback.
"""


class UserError(Exception):
    """The message names what the user set or passed and how to fix it."""


class InputError(UserError, ValueError):
    """A flag or argument holds a value that cannot be used (not a config field)."""


class DataError(UserError, ValueError):
    """The data a config asks for is not available; the message says how to provide it."""
