"""One error type for everything a user can get wrong.

The CLI prints ``str(error)`` as a single line (no traceback) and exits with status 2, so every
message must say *where* (file, line, field) and *what* is wrong.
"""


class AmrliteError(ValueError):
    """A problem with the user's input: a file, an option, a saved model."""


def input_error(path, problem, line=None, field=None):
    """Build an :class:`AmrliteError` reading ``path:line: field 'x': problem``.

    >>> str(input_error("data/train.csv", "not an integer: 'x'", line=3, field="item"))
    "data/train.csv:3: field 'item': not an integer: 'x'"
    """
    where = str(path)
    if line is not None:
        where += f":{line}"
    if field is not None:
        where += f": field '{field}'"
    return AmrliteError(f"{where}: {problem}")


def option_error(param, problem):
    """An :class:`AmrliteError` about the value of the Python parameter ``param``, reading
    ``option 'param': problem``. It keeps ``param`` and ``problem`` as attributes, so that the CLI
    names its flag instead (``--features: problem``).

    >>> str(option_error("features", "the model was trained with image, the data set has text"))
    "option 'features': the model was trained with image, the data set has text"
    """
    exc = AmrliteError(f"option '{param}': {problem}")
    exc.param, exc.problem = param, problem
    return exc
