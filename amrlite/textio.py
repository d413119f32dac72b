"""Opening the text tables a user gives: interaction logs, items and images tables.

One place knows what a "text file" may be, so that every reader accepts the same files and no
reader garbles them (:func:`open_text`):

* **Compression**, recognised by its magic bytes (whatever the suffix): gzip (``.gz``), bzip2
  (``.bz2``), xz (``.xz``) and Zstandard (``.zst``; needs the optional ``zstandard`` package,
  ``pip install 'amrlite[zstd]'``). A damaged or truncated stream is refused with one line.
* **Encoding**: UTF-8, with or without a byte-order mark (BOM); UTF-16 and UTF-32 (little or
  big endian) recognised by their BOM, or, for text without one, by the NUL bytes of its ASCII
  characters. Bytes that are not valid UTF-8 are refused naming the line (never replaced by
  ``\\ufffd``, which would merge ``Café`` and ``Cafe\\xe9`` into one id).
* **Anything else** (an image, a ZIP or Excel workbook, a Parquet file under another name, NUL
  bytes) is refused with one line naming what it looks like and quoting at most a few escaped
  bytes: no message ever prints raw binary.

:func:`check_header` refuses a header that names a column twice (names compare
case-insensitively, as the readers look them up).
"""
from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
from contextlib import contextmanager
from pathlib import Path

from .errors import AmrliteError, input_error, quote

try:                                    # optional: the `zstd` extra
    import zstandard
except ImportError:                     # pragma: no cover - exercised by monkeypatching
    zstandard = None

#: (magic bytes, name, opener of the decompressed binary stream)
COMPRESSIONS = (
    (b"\x1f\x8b", "gzip", lambda p: gzip.open(p, "rb")),
    (b"BZh", "bzip2", lambda p: bz2.open(p, "rb")),
    (b"\xfd7zXZ\x00", "xz", lambda p: lzma.open(p, "rb")),
    (b"\x28\xb5\x2f\xfd", "Zstandard", lambda p: _open_zstd(p)),
)

#: (magic bytes, what the file is) of binary formats people hand over instead of a table
BINARY_FORMATS = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook, an .npz, a zipped folder?); "
                    "export the table as CSV"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office document (.xls?); export the table as CSV"),
    (b"PAR1", "a Parquet file; name it .parquet to read it as one"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "an executable"),
)

#: byte-order marks, longest first (a UTF-32-LE BOM begins with the UTF-16-LE one)
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)

_SNIFF = 1 << 16          # bytes read to recognise the encoding


def _open_zstd(path):
    if zstandard is None:
        raise AmrliteError(f"{path}: is Zstandard-compressed; reading it needs the zstandard "
                           "package: pip install 'amrlite[zstd]'")
    return io.BufferedReader(zstandard.open(path, "rb"))


#: what a damaged or truncated compressed stream raises while it is read
DECOMPRESSION_ERRORS = (OSError, EOFError, lzma.LZMAError) + \
    ((zstandard.ZstdError,) if zstandard is not None else ())


def _compression(path):
    """``(name, opener)`` of the compression of ``path`` by its magic bytes, else ``(None,
    open)``; a file that cannot be opened is refused with one line."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(8)
    except OSError as exc:
        raise input_error(path, exc.strerror or str(exc)) from None
    for sig, name, opener in COMPRESSIONS:
        if magic.startswith(sig):
            return name, opener
    return None, lambda p: open(p, "rb")


def _damaged(path, compression, exc):
    return AmrliteError(f"{path}: damaged or truncated {compression} data "
                        f"({quote(str(exc) or type(exc).__name__, 80)})")


def _encoding(path, head, compression):
    """The codec of text starting with the bytes ``head``; refuses what is not text."""
    for bom, codec in BOMS:
        if head.startswith(bom):
            return codec
    for sig, what in BINARY_FORMATS:
        if head.startswith(sig):
            raise AmrliteError(f"{path}: not a text table: {what}")
    if b"\x00" in head:
        codec = _without_bom(head)
        if codec is None:
            inside = f" (inside the {compression} stream)" if compression else ""
            raise AmrliteError(f"{path}: not a text table: binary data{inside}, not UTF-8, "
                               f"UTF-16 or UTF-32 text; it starts with {quote(head[:16], 80)}")
        return codec
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < _SNIFF)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, head, exc.start) from None
    return "utf-8"


def _without_bom(head):
    """UTF-32 or UTF-16 text without a BOM, told by the NUL bytes of its first (ASCII)
    characters: every code unit non-zero in its low byte and zero elsewhere; else None."""
    n = min(len(head), 512)
    for width, codec in ((4, "utf-32"), (2, "utf-16")):
        units = [head[k:k + width] for k in range(0, n - n % width, width)]
        zeros = b"\x00" * (width - 1)
        if units and all(u[0] and u[1:] == zeros for u in units):
            return f"{codec}-le"
        if units and all(u[-1] and u[:-1] == zeros for u in units):
            return f"{codec}-be"
    return None


def _not_utf8(path, data, start, line_base=1):
    """The error for invalid UTF-8 at byte ``start`` of ``data`` (which begins a line)."""
    line = line_base + data.count(b"\n", 0, start)
    col = start - (data.rfind(b"\n", 0, start) + 1) + 1
    return input_error(path, f"not valid UTF-8 text (byte 0x{data[start]:02X} at column {col}); "
                       "re-save the file as UTF-8 (for Latin-1/Windows-1252 text: iconv -f "
                       "cp1252 -t utf-8)", line=line)


def _find_bad_utf8(path, opener):
    """The error naming the first line of ``path`` that is not valid UTF-8 (an error path)."""
    with opener(path) as stream:
        for no, line in enumerate(stream, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return _not_utf8(path, line, exc.start, line_base=no)
    return AmrliteError(f"{path}: not valid UTF-8 text")


def sniff(path) -> tuple[str | None, str]:
    """``(compression or None, codec)`` of the text file ``path``; anything that is not a
    (compressed) text file is refused with one line."""
    compression, _, codec = _sniff(Path(path))
    return compression, codec


def _sniff(path):
    """:func:`sniff`, and the opener of the (compressed) byte stream."""
    compression, opener = _compression(path)
    try:
        with opener(path) as stream:
            head = stream.read(_SNIFF)
    except DECOMPRESSION_ERRORS as exc:
        raise _damaged(path, compression, exc) from None
    return compression, opener, _encoding(path, head, compression)


@contextmanager
def open_text(path, *, newline=None):
    """``with open_text(path) as fh:`` — the decoded text of ``path`` (see the module
    docstring), for ``csv.reader``, ``np.loadtxt`` or line iteration; ``newline`` as for
    :func:`open`. A decoding or decompression error met while reading is raised as one line
    naming the file (and, for UTF-8, the line and column)."""
    path = Path(path)
    compression, opener, codec = _sniff(path)
    text = io.TextIOWrapper(opener(path), encoding=codec, errors="strict", newline=newline)
    try:
        with text:
            yield text
    except UnicodeDecodeError:
        if codec.startswith("utf-8"):
            raise _find_bad_utf8(path, opener) from None
        raise AmrliteError(f"{path}: not valid {codec.upper()} text") from None
    except DECOMPRESSION_ERRORS as exc:
        if compression is None:
            raise
        raise _damaged(path, compression, exc) from None


def check_header(path, names, line=1):
    """Refuse a header naming a column twice (compared case-insensitively; empty names, as
    trailing separators make, are not compared)."""
    seen = {}
    for k, name in enumerate(names):
        key = str(name).strip().lower()
        if key and key in seen:
            raise input_error(path, f"duplicate column name: columns {seen[key] + 1} and {k + 1} "
                              "are both named " + quote(name), line=line, field=name)
        seen.setdefault(key, k)


def header_names(names, sep=", ") -> str:
    """A header's column names for a message: joined, escaped and cut (:func:`quote`)."""
    return quote(sep.join(map(str, names)), 80, marks=False)
