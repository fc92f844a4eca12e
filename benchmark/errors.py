"""The one exception type a user is meant to see."""


class BenchmarkError(Exception):
    """Something the user can fix (a name, a file, a config value).

    The CLI prints its message as a single line and exits non-zero; nothing else in the
    engine turns it into a traceback.
    """
