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


def input_error(path, problem, line=None, field=None, *, names=()):
    """Build an :class:`AmrliteError` reading ``path:line: field 'x': problem``; ``problem`` may
    refer to the parameters ``names`` as ``{name}`` (as in :func:`option_error`: an
    :class:`OptionError` then, which the CLI words with its flags).

    >>> str(input_error("data/train.csv", "not an integer: 'x'", line=3, field="item"))
    "data/train.csv:3: field 'item': not an integer: 'x'"
    """
    where = str(path)
    if line is not None:
        where += f":{line}"
    if field is not None:
        field = str(field)
        where += f": field '{field if len(field) <= 40 else field[:40] + '…'}'"
    if names:
        return option_error((), f"{braced(where)}: {problem}", names=names)
    return AmrliteError(printable(f"{where}: {problem}"))


def printable(text) -> str:
    """``text`` with every non-printable character (control, NUL, line break) escaped as in
    ``repr``: a message stays one line and never carries raw binary."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


class OptionError(AmrliteError):
    """An :class:`AmrliteError` about the values of Python parameters (see
    :func:`option_error`); :meth:`naming` words it with other names for them (the CLI's flags)."""

    def naming(self, name):
        """The message with each parameter called ``name(param)`` (``-n`` for ``n``)."""
        return printable(_option_text(self.params, self.values, self.problem, self.names, name))


def _option_text(params, values, problem, names, name):
    subject = " and ".join(name(p) + (f" {v}" if v not in (None, "") else "")
                           for p, v in zip(params, values))
    return (f"{subject}: " if subject else "") + (
        problem.format_map({p: name(p) for p in names}) if names else problem)


def braced(text) -> str:
    """``text`` with its braces doubled: fit for a ``problem`` of :func:`option_error` that
    refers to parameters as ``{name}`` (a path or a value may hold braces)."""
    return str(text).replace("{", "{{").replace("}", "}}")


def option_error(param, problem, value=None, *, names=()):
    """An :class:`OptionError` about the value of the Python parameter ``param`` (or a tuple of
    parameters, and then ``value`` a tuple of their values), reading ``option 'param':
    problem``, or ``param value: problem`` with a ``value`` (``param: problem`` with ``""``;
    ``problem`` alone with no parameter, ``()``).
    ``problem`` may refer to the parameters ``names`` as ``{name}``. The CLI names its flags
    instead (``--features: problem``, ``-n 0: ...``).

    >>> str(option_error("features", "the model was trained with image, the data set has text"))
    "option 'features': the model was trained with image, the data set has text"
    >>> str(option_error(("epochs", "epochs_from"), "give one of them"))
    'epochs and epochs_from: give one of them'
    >>> e = option_error("users", "give one of {user} and {users}", "C-9", names=("user", "users"))
    >>> str(e), e.naming(lambda p: "--" + p)
    ('users C-9: give one of user and users', '--users C-9: give one of --user and --users')
    """
    params = (param,) if isinstance(param, str) else tuple(param)
    values = value if isinstance(value, tuple) else (value,) + (None,) * (len(params) - 1)
    names = tuple(dict.fromkeys((*params, *names))) if names else ()
    text = _option_text(params, values, problem, names, str)
    if len(params) == 1 and value is None:
        text = f"option '{param}'" + text[len(param):]
    exc = OptionError(printable(text))
    exc.param, exc.params, exc.values, exc.problem, exc.names = (params or (None,))[0], params, \
        values, problem, names
    return exc
