"""scripts/make_shop.py --synthetic: a shop's files as a shop has them (string ids, ISO times
with time zones, photos named by SKU with the awkward cases), the same bytes for a seed."""
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from helpers import read_csv

PIL = pytest.importorskip("PIL.Image")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_shop.py"


def _make(out, *args):
    res = subprocess.run([sys.executable, str(SCRIPT), str(out), *args], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    return res


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    out = tmp_path_factory.mktemp("shop") / "s"
    _make(out, "--synthetic", "--seed", "3", "--products", "16", "--customers", "20")
    return out


def test_orders_and_products(shop):
    orders, products = read_csv(shop / "orders.csv"), read_csv(shop / "products.csv")
    assert list(orders[0]) == ["customer_id", "sku", "quantity", "ordered_at"]
    assert list(products[0]) == ["sku", "title", "category"]
    skus = [p["sku"] for p in products]
    assert len(skus) == len(set(skus)) == 16
    assert all(re.fullmatch(r"SKU-[0-9A-F]{6}", s) for s in skus)
    assert all(re.fullmatch(r"C-\d{6}", o["customer_id"]) for o in orders)
    assert len({o["customer_id"] for o in orders}) == 20
    assert {o["sku"] for o in orders} <= set(skus)
    times = [datetime.fromisoformat(o["ordered_at"]) for o in orders]
    assert all(t.tzinfo is not None for t in times)
    assert len({t.utcoffset() for t in times}) > 1            # several time zones
    assert times == sorted(times)                              # a log, in time order
    assert all(int(o["quantity"]) >= 1 for o in orders)
    pairs = [(o["customer_id"], o["sku"]) for o in orders]
    assert len(pairs) - len(set(pairs)) == 2                   # two repeat purchases


def test_photos_with_the_awkward_cases(shop):
    products = [p["sku"] for p in read_csv(shop / "products.csv")]
    ordered = {o["sku"] for o in read_csv(shop / "orders.csv")}
    photos = {p.stem: p for p in (shop / "photos").rglob("*") if p.is_file()}
    assert set(photos) <= set(products)
    missing = [s for s in products if s not in photos]
    assert missing == products[:3]
    modes, unreadable = {}, []
    for sku, p in photos.items():
        try:
            with PIL.open(p) as img:
                img.load()
                modes[sku] = (img.mode, img.format, img.size)
        except OSError:
            unreadable.append(sku)
    assert unreadable == [products[5]]                         # one truncated JPEG
    assert modes[products[3]][:2] == ("RGBA", "PNG")
    assert modes[products[4]][:2] == ("L", "JPEG")
    assert any(w != h for _, _, (w, h) in modes.values())     # not all square
    no_orders = [s for s in products if s not in ordered]
    assert no_orders == products[-2:]
    assert all(photos[s].parent.name == "new" for s in no_orders)     # a nested folder
    assert set(products[:-2]) <= ordered                        # every other product sells


def test_deterministic_for_a_seed(shop, tmp_path):
    _make(tmp_path / "again", "--synthetic", "--seed", "3", "--products", "16",
          "--customers", "20")
    assert _files(tmp_path / "again") == _files(shop)
    _make(tmp_path / "other", "--seed", "4", "--products", "16", "--customers", "20")
    assert (tmp_path / "other" / "orders.csv").read_bytes() != (shop / "orders.csv").read_bytes()


def test_refuses_a_non_empty_folder(shop):
    res = subprocess.run([sys.executable, str(SCRIPT), str(shop)], capture_output=True,
                         text=True)
    assert res.returncode == 2 and "not empty" in res.stderr and "Traceback" not in res.stderr


def test_from_ml100k(shared_data, tmp_path):
    """MovieLens as a shop: every product, a photo per poster (copied out of the shared
    folder), two new products with a photo and no orders."""
    _make(tmp_path / "ml", "--from-ml100k", str(shared_data / "ml100k"))
    products = read_csv(tmp_path / "ml" / "products.csv")
    skus = [p["sku"] for p in products]
    assert len(skus) == len(set(skus)) == 1682 and products[0]["title"] == "Toy Story (1995)"
    photos = {p.stem for p in (tmp_path / "ml" / "photos").iterdir()}
    assert len(photos) == 1667 and photos <= set(skus)
    ordered = {r["sku"] for r in read_csv(tmp_path / "ml" / "orders.csv")}
    new = [s for s in skus if s not in ordered]
    assert len(new) == 2 and set(new) <= photos


def test_from_ml100k_small(shared_data, tmp_path):
    """--products N: N movies drawn at random (titles and posters kept with their movie), their
    orders only, two of them new products."""
    _make(tmp_path / "ml", "--from-ml100k", str(shared_data / "ml100k"), "--products", "150")
    titles = [r["title"] for r in read_csv(shared_data / "ml100k" / "items.csv")]
    products = read_csv(tmp_path / "ml" / "products.csv")
    skus = [p["sku"] for p in products]
    assert len(set(skus)) == 150 and {p["title"] for p in products} < set(titles)
    assert [p["title"] for p in products] != titles[:150]            # drawn, not the first 150
    photos = {p.stem for p in (tmp_path / "ml" / "photos").iterdir()}
    ordered = {r["sku"] for r in read_csv(tmp_path / "ml" / "orders.csv")}
    assert photos <= set(skus) and ordered <= set(skus)
    new = [s for s in skus if s not in ordered]
    assert len(new) == 2 and set(new) <= photos
