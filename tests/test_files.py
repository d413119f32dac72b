"""Files that never lose or garble data: the one atomic write (concurrent saves, interruption,
read-only targets), model-file headers (damaged, newer format), and the text tables amrlite
reads (encodings, compression, binary input, duplicate column names)."""
import bz2
import codecs
import gzip
import io
import json
import lzma
import multiprocessing as mp
import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from amrlite import Model, load_dataset
from amrlite import textio
from amrlite.cli import cli
from amrlite.errors import AmrliteError
from amrlite.jsonio import atomic_write, write_json
from amrlite.rawdata import read_id_list
from amrlite.recommender import MODEL_FORMAT
from helpers import one_line_error, read_model_file, run_cli, source_hits, write_model_file

DATA = Path(__file__).parent / "data"
MODELS = (DATA / "saved-mf-eq4.npz", DATA / "saved-vbpr-hm.npz")   # two of different sizes


def _temps(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp"))


# ------------------------------------------------------------------ concurrent saves
def _saver(src, dst, rounds, mid, before_rename, round_done, errors):
    """Child: save the model ``src`` to ``dst`` ``rounds`` times. Every save is held twice
    until the other child reaches the same point: with half of its bytes written, and with its
    file complete but not yet renamed. ``round_done`` lets the parent check each round."""
    real_savez, real_replace = np.savez, os.replace

    def halting_savez(fh, **arrays):
        buf = io.BytesIO()
        real_savez(buf, **arrays)
        blob = buf.getvalue()
        fh.write(blob[:len(blob) // 2])
        fh.flush()
        mid.wait(timeout=60)
        fh.write(blob[len(blob) // 2:])

    def halting_replace(a, b, **kw):
        before_rename.wait(timeout=60)
        return real_replace(a, b, **kw)

    np.savez, os.replace = halting_savez, halting_replace
    try:
        model = Model.load(src)
        for _ in range(rounds):
            model.save(dst)
            round_done.wait(timeout=60)      # the parent checks the file
            round_done.wait(timeout=60)      # ... and lets the next round start
    except BaseException as exc:             # report, and release everyone waiting
        errors.put(f"{type(exc).__name__}: {exc}")
        for b in (mid, before_rename, round_done):
            b.abort()


def test_two_processes_saving_one_path_at_once_leave_a_model_that_loads(tmp_path):
    """Both children have written half of their file when either goes on, and both have a
    complete file before either renames: with one fixed temporary name the two writes land in
    the same file (torn zip, failed CRC) and the second rename finds nothing."""
    ctx = mp.get_context("spawn")
    mid, before_rename, round_done = ctx.Barrier(2), ctx.Barrier(2), ctx.Barrier(3)
    errors = ctx.Queue()
    dst, rounds = tmp_path / "same.npz", 3
    expected = [Model.load(p) for p in MODELS]
    kids = [ctx.Process(target=_saver, args=(str(src), str(dst), rounds, mid, before_rename,
                                              round_done, errors)) for src in MODELS]
    for k in kids:
        k.start()
    try:
        for _ in range(rounds):
            try:
                round_done.wait(timeout=120)
            except threading.BrokenBarrierError:     # a child failed
                Model.load(dst)                      # first: is the file it left whole?
                pytest.fail(f"a saving process failed: {errors.get(timeout=10)}")
            got = Model.load(dst)                    # a complete file of one of the two models
            match = [m for m in expected if m.spec.kind == got.spec.kind]
            assert len(match) == 1
            for name, v in match[0].params.items():
                np.testing.assert_array_equal(got.params[name], v)
            assert _temps(tmp_path) == []
            round_done.wait(timeout=60)
    finally:
        for k in kids:
            k.join(timeout=60)
    assert errors.empty(), errors.get()
    assert [k.exitcode for k in kids] == [0, 0]


# ------------------------------------------------------------------ interruption, read-only
def test_an_exception_mid_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    for exc in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(exc):
            with atomic_write(path) as fh:
                fh.write(b"new, half written")
                raise exc()
        assert path.read_bytes() == b"old" and _temps(tmp_path) == []


def test_a_model_save_interrupted_mid_write_keeps_the_old_model(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    old = Model.load(MODELS[0])
    old.save(path)
    before = path.read_bytes()

    def torn_savez(fh, **arrays):
        fh.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", torn_savez)
    with pytest.raises(KeyboardInterrupt):
        Model.load(MODELS[1]).save(path)
    assert path.read_bytes() == before and _temps(tmp_path) == []


def test_temporary_files_are_unique_and_in_the_target_folder(tmp_path):
    names = []
    for _ in range(2):
        with atomic_write(tmp_path / "x.json", mode="w") as fh:
            fh.write("{}")
            names += _temps(tmp_path)
    assert names[0] != names[1]
    assert all(n.startswith(f".x.json.{os.getpid()}.") and n.endswith(".tmp") for n in names)


def test_a_read_only_target_is_refused_and_untouched(tmp_path):
    path = tmp_path / "m.npz"
    Model.load(MODELS[0]).save(path)
    before = path.read_bytes()
    path.chmod(0o444)
    with pytest.raises(AmrliteError, match=rf"^{path}: is read-only; ") as err:
        Model.load(MODELS[1]).save(path)
    assert "\n" not in str(err.value)
    assert path.read_bytes() == before and _temps(tmp_path) == []
    with pytest.raises(AmrliteError, match="is read-only"):
        write_json(path, {})
    line = one_line_error(run_cli("fit", "--model", "pop", "--out", path), only=True)
    assert line == (f"amrlite: error: {path}: is read-only; refusing to replace it (make it "
                    "writable, or write elsewhere)")
    assert path.read_bytes() == before


def test_a_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(AmrliteError, match=rf"^{folder}: is read-only; cannot write m.npz"):
            Model.load(MODELS[0]).save(folder / "sub" / "m.npz")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_a_saved_model_keeps_the_permissions_of_the_file_it_replaces(tmp_path):
    path = tmp_path / "m.npz"
    Model.load(MODELS[0]).save(path)
    path.chmod(0o640)
    Model.load(MODELS[1]).save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# ------------------------------------------------------------------ model headers
def _with_header(src, dst, header_bytes):
    return write_model_file(dst, header_bytes, read_model_file(src)[1])


def _header(path):
    return read_model_file(path)[0]


def test_new_models_record_their_format_version_and_old_files_read_as_version_1(tmp_path):
    assert "format_version" not in _header(MODELS[0])           # saved before the version
    Model.load(MODELS[0]).save(tmp_path / "m.npz")
    assert _header(tmp_path / "m.npz")["format_version"] == MODEL_FORMAT == 1
    Model.load(tmp_path / "m.npz")


@pytest.mark.parametrize("case, expected", [
    ("damaged", "damaged model header (not valid JSON"),
    ("newer", f"model format version {MODEL_FORMAT + 1} is newer than this amrlite"),
    ("not-int", "damaged model header (format_version '2' is not a positive integer)"),
    ("no-header", "not an amrlite model file (no header)"),
    ("not-zip", "not an amrlite model file"),
])
def test_a_bad_model_file_is_refused_with_one_line_by_the_cli(tmp_path, case, expected):
    bad = tmp_path / "bad.npz"
    header = _header(MODELS[0])
    if case == "damaged":
        blob = json.dumps(header).encode()
        _with_header(MODELS[0], bad, blob[:len(blob) // 2] + b"\xff\x00garbage")
    elif case in ("newer", "not-int"):
        header["format_version"] = MODEL_FORMAT + 1 if case == "newer" else "2"
        _with_header(MODELS[0], bad, json.dumps(header).encode())
    elif case == "no-header":
        with np.load(MODELS[0]) as z:
            np.savez(bad, **{k: z[k] for k in z.files if k != "header"})
    else:
        bad.write_bytes(b"\x00\x01binary\xff" * 100)
    line = one_line_error(run_cli("evaluate", bad), expected, only=True)
    assert line.startswith(f"amrlite: error: {bad}: ")
    assert line.isprintable() and len(line) < 300
    if case == "newer":
        assert f"(format version {MODEL_FORMAT})" in line


def test_a_truncated_model_file_is_refused_with_one_line(tmp_path):
    bad = tmp_path / "cut.npz"
    blob = MODELS[0].read_bytes()
    bad.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(AmrliteError, match=rf"^{bad}: not an amrlite model file") as err:
        Model.load(bad)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ logs: encodings, compression
_SKUS = ("SKU-8F3A2B", "SKU-2B9CD4", "SKU-939148", "SKU-00A1", "SKU-77")
LOG = "customer_id,sku,quantity\n" + "".join(
    f"{user},{_SKUS[(u + k) % 5]},{k + 1}\n"
    for u, user in enumerate(("C-000123", "C-0007é", "C-000999")) for k in range(4))


def _plain(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(LOG, encoding="utf-8")
    return load_dataset(path)


def _variants():
    body = LOG.rstrip("\n")
    out = {"utf-8-sig": codecs.BOM_UTF8 + LOG.encode()}
    for text, tag in ((LOG, ""), (body, "-no-final-newline")):
        out["utf-16-le" + tag] = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
        out["utf-16-be" + tag] = codecs.BOM_UTF16_BE + text.encode("utf-16-be")
        out["utf-32-le" + tag] = codecs.BOM_UTF32_LE + text.encode("utf-32-le")
    out["utf-32-be"] = codecs.BOM_UTF32_BE + LOG.encode("utf-32-be")
    out["utf-16-le-without-bom"] = LOG.encode("utf-16-le")   # ASCII header: told by its NULs
    out["crlf"] = LOG.replace("\n", "\r\n").encode()
    return out


@pytest.mark.parametrize("name, blob", list(_variants().items()))
def test_unicode_logs_load_with_clean_ids_and_the_same_fingerprint(tmp_path, name, blob):
    plain = _plain(tmp_path)
    path = tmp_path / f"orders-{name}.csv"
    path.write_bytes(blob)
    ds = load_dataset(path)
    assert ds.fingerprint() == plain.fingerprint()
    assert ds.user_ids.tolist() == plain.user_ids.tolist()
    assert not any("\x00" in s or "\ufeff" in s or "\ufffd" in s
                   for s in [*ds.user_ids.tolist(), *ds.item_ids.tolist()])


def _zstd(blob):
    zstandard = pytest.importorskip("zstandard")
    return zstandard.ZstdCompressor().compress(blob)


@pytest.mark.parametrize("suffix, compress", [
    (".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress), (".zst", _zstd),
])
def test_compressed_logs_load_transparently(tmp_path, suffix, compress):
    plain = _plain(tmp_path)
    for name, blob in (("utf8", LOG.encode()), ("utf16", codecs.BOM_UTF16_LE
                                                + LOG.encode("utf-16-le"))):
        path = tmp_path / f"orders-{name}.csv{suffix}"
        path.write_bytes(compress(blob))
        assert load_dataset(path).fingerprint() == plain.fingerprint()


def test_a_compressed_utf16_log_trains_by_cli_like_the_plain_file(tmp_path):
    plain = tmp_path / "orders.csv"
    plain.write_text(LOG)
    packed = tmp_path / "orders-16.csv.gz"
    packed.write_bytes(gzip.compress(codecs.BOM_UTF16_BE + LOG.rstrip("\n").encode("utf-16-be")))
    runner, prints = CliRunner(), []
    for src in (plain, packed):
        out = tmp_path / f"{src.name}.npz"
        res = runner.invoke(cli, ["fit", "--data", str(src), "--model", "pop", "--negatives", "1",
                                  "--out", str(out), "-q"])
        assert res.exit_code == 0, res.output
        prints.append(_header(out)["fingerprint"])
    assert prints[0] == prints[1]


def test_a_zstd_log_without_the_package_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "orders.csv.zst"
    path.write_bytes(_zstd(LOG.encode()))
    monkeypatch.setattr(textio, "zstandard", None)
    with pytest.raises(AmrliteError, match=r"pip install 'amrlite\[zstd\]'"):
        load_dataset(path)


def test_a_truncated_gzip_log_is_refused_with_one_line(tmp_path):
    path = tmp_path / "orders.csv.gz"
    blob = gzip.compress((LOG * 200).encode())
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(AmrliteError, match=rf"^{path}: damaged or truncated gzip data") as err:
        load_dataset(path)
    assert "\n" not in str(err.value)


def _one_short_printable_line(err, path):
    msg = str(err.value)
    assert msg.startswith(f"{path}") and msg.isprintable() and len(msg) < 300, msg
    return msg


@pytest.mark.parametrize("blob, what", [
    (bytes(range(256)) * 8, "binary data, not UTF-8, UTF-16 or UTF-32 text; it starts with "
                            "b'\\x00\\x01\\x02"),
    (b"\x89PNG\r\n\x1a\n" + bytes(500), "a PNG image"),
    (b"PK\x03\x04" + bytes(500), "a ZIP archive"),
    (b"PAR1" + bytes(500), "a Parquet file; name it .parquet"),
])
def test_binary_input_is_refused_naming_what_it_is_without_printing_it(tmp_path, blob, what):
    path = tmp_path / "orders.csv"
    path.write_bytes(blob)
    with pytest.raises(AmrliteError) as err:
        load_dataset(path)
    assert what in _one_short_printable_line(err, path)


def test_binary_input_by_cli_is_one_escaped_line(tmp_path):
    path = tmp_path / "orders.csv.gz"
    path.write_bytes(gzip.compress(os.urandom(300).replace(b"\x00", b"\x01") + b"\x00" * 40))
    line = one_line_error(run_cli("fit", "--data", path, "--model", "pop", "-q"),
                          "binary data (inside the gzip stream)", only=True)
    assert line.isprintable() and len(line) < 300


def test_latin1_text_is_refused_naming_the_line_not_garbled(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_bytes(LOG.encode("latin-1"))
    with pytest.raises(AmrliteError, match=r"orders.csv:6: not valid UTF-8 text \(byte 0xE9 at "
                                           r"column 7\)") as err:
        load_dataset(path)
    _one_short_printable_line(err, path)
    far = tmp_path / "far.csv"                 # past the first 64 KiB: found while reading
    far.write_bytes((LOG * 3000).encode("utf-8") + "C-1,SKU-é,1\n".encode("latin-1"))
    n = (LOG * 3000).count("\n") + 1
    with pytest.raises(AmrliteError, match=rf"far.csv:{n}: not valid UTF-8 text \(byte 0xE9 at "
                                           r"column 9\)"):
        load_dataset(far)


@pytest.mark.parametrize("header", ["user,item,item", "customer_id,sku,SKU"])
def test_a_header_naming_a_column_twice_is_refused(tmp_path, header):
    path = tmp_path / "orders.csv"
    path.write_text(header + "\nC-1,SKU-1,SKU-2\nC-2,SKU-2,SKU-1\n")
    dup = header.split(",")[2]
    with pytest.raises(AmrliteError, match=rf"orders.csv:1: field '{dup}': duplicate column name: "
                                           r"columns 2 and 3"):
        load_dataset(path)
    native = tmp_path / "native"
    native.mkdir()
    (native / "interactions.csv").write_text("user,item,user\n0,0,1\n1,1,0\n")
    with pytest.raises(AmrliteError, match=r"interactions.csv:1: field 'user': duplicate column"):
        load_dataset(native)


def test_a_long_bad_value_is_quoted_escaped_and_cut(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("user,item,rating\nC-1,SKU-1,1\nC-2,SKU-2," + "x\x01" * 500 + "\n")
    with pytest.raises(AmrliteError) as err:
        load_dataset(path, min_rating=1)
    msg = _one_short_printable_line(err, path)
    assert "'x\\x01x\\x01" in msg and "(1000 characters)" in msg


def test_every_table_reader_opens_through_open_text():
    """No reader of a user's text table opens it with a bare ``open`` (which would take
    UTF-16, gzip or binary input for UTF-8 text)."""
    root = Path(__file__).resolve().parents[1] / "amrlite"
    for rel in ("rawdata.py", "data.py"):
        src = (root / rel).read_text()
        assert "open(" not in src.replace("open_text(", ""), rel


@pytest.mark.parametrize("encode", [
    lambda t: codecs.BOM_UTF16_LE + t.rstrip("\n").encode("utf-16-le"),
    lambda t: codecs.BOM_UTF32_BE + t.encode("utf-32-be"),
    lambda t: gzip.compress(codecs.BOM_UTF8 + t.encode()),
    lambda t: lzma.compress(t.encode()),
], ids=["utf-16-le-no-final-newline", "utf-32-be", "gzip-utf-8-sig", "xz"])
def test_native_folders_read_every_encoding_like_utf8(tmp_path, encode):
    text = "user,item\n" + "".join(f"{u},{(u * 7 + k) % 9}\n" for u in range(6) for k in range(3))
    folders = []
    for name, blob in (("plain", text.encode()), ("other", encode(text))):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "interactions.csv").write_bytes(blob)
        folders.append(load_dataset(folder))
    assert folders[1].fingerprint() == folders[0].fingerprint()
    assert np.array_equal(folders[1].items, folders[0].items)


def test_a_native_file_that_is_not_utf8_names_its_line(tmp_path):
    folder = tmp_path / "native"
    folder.mkdir()
    (folder / "interactions.csv").write_bytes(b"user,item\n0,1\n1,\xe92\n")
    with pytest.raises(AmrliteError, match=r"interactions.csv:3: not valid UTF-8 text \(byte 0xE9 "
                                           r"at column 3\)"):
        load_dataset(folder)


def test_an_items_file_reads_like_a_log(tmp_path):
    """``--items`` (the id of every feature row) goes through the same opening and checks."""
    text = "sku,title\nSKU-1,Mug\nSKU-2,Caf\u00e9 cup\n"
    plain, packed = tmp_path / "items.csv", tmp_path / "items16.csv.bz2"
    plain.write_text(text)
    packed.write_bytes(bz2.compress(codecs.BOM_UTF16_LE + text.encode("utf-16-le")))
    assert read_id_list(packed).tolist() == read_id_list(plain).tolist() == ["SKU-1", "SKU-2"]
    twice = tmp_path / "twice.csv"
    twice.write_text("sku,Sku\nSKU-1,x\n")
    with pytest.raises(AmrliteError, match=r"twice.csv:1: field 'Sku': duplicate column name"):
        read_id_list(twice)


def test_the_library_writes_files_only_through_atomic_write():
    """No module but :mod:`amrlite.jsonio` renames, replaces or opens a file for writing, and
    every NumPy/matplotlib writer is handed the file of an ``atomic_write`` block (``fh``);
    the one exception is the appended epoch log of ``fit --log``."""
    bad = (r"os\.replace\(|os\.rename\(|\.rename\(|tmp\.replace\(|\.write_text\("
           r"|\.write_bytes\(|open\([^)]*['\"][wax]b?['\"]"
           r"|np\.save\w*\((?!fh\b)|savefig\((?!fh\b)")
    found = [hit for hit in source_hits(bad, "amrlite", "kernels")
             if not hit.startswith("amrlite/jsonio.py:") and 'open(log_path, "a")' not in hit]
    assert found == []


def test_a_header_with_an_unknown_kind_names_the_file(tmp_path):
    header = _header(MODELS[0])
    header["kind"] = "mfx"
    bad = _with_header(MODELS[0], tmp_path / "kind.npz", json.dumps(header).encode())
    with pytest.raises(AmrliteError, match=rf"^{bad}: damaged model header \(unknown model 'mfx'"):
        Model.load(bad)
