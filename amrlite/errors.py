"""One error type for everything a user can get wrong.

The CLI prints ``str(error)`` as a single line (no traceback) and exits with status 2, so every
message must say *where* (file, line, field) and *what* is wrong.
"""


class AmrliteError(ValueError):
    """A problem with the user's input: a file, an option, a saved model."""


def quote(text, limit=40, *, marks=True) -> str:
    """``text`` (a piece of a user's file, ``str`` or ``bytes``) fit for a one-line message:
    quoted and escaped like ``repr`` (no raw control character or binary ever reaches the
    terminal), and cut to its first ``limit`` characters (bytes) with the full length noted.
    ``marks=False``: escaped and cut, without the quotes (a list of a header's column names).

    >>> print(quote("C-1"), quote("a\\x00b"), quote("SKU-" * 20, limit=8))
    'C-1' 'a\\x00b' 'SKU-SKU-'… (80 characters)
    """
    if not isinstance(text, bytes):
        text = str(text)
    shown = repr(text[:limit]) if marks else printable(text[:limit])
    if len(text) <= limit:
        return shown
    unit = "bytes" if isinstance(text, bytes) else "characters"
    return f"{shown}… ({len(text)} {unit})"


def input_error(path, problem, line=None, field=None):
    """Build an :class:`AmrliteError` reading ``path:line: field 'x': problem``.

    >>> str(input_error("data/train.csv", "not an integer: 'x'", line=3, field="item"))
    "data/train.csv:3: field 'item': not an integer: 'x'"
    """
    where = str(path)
    if line is not None:
        where += f":{line}"
    if field is not None:
        field = str(field)
        where += f": field '{field if len(field) <= 40 else field[:40] + '…'}'"
    return AmrliteError(printable(f"{where}: {problem}"))


def printable(text) -> str:
    """``text`` with every non-printable character (control, NUL, line break) escaped as in
    ``repr``: a message stays one line and never carries raw binary."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def option_error(param, problem):
    """An :class:`AmrliteError` about the value of the Python parameter ``param``, reading
    ``option 'param': problem``. It keeps ``param`` and ``problem`` as attributes, so that the CLI
    names its flag instead (``--features: problem``).

    >>> str(option_error("features", "the model was trained with image, the data set has text"))
    "option 'features': the model was trained with image, the data set has text"
    """
    exc = AmrliteError(printable(f"option '{param}': {problem}"))
    exc.param, exc.problem = param, problem
    return exc
