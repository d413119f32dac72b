"""Make a small online shop's data, as a shop has it: an order log keyed by string ids, a
product table, and a folder of product photos named by SKU.

    python scripts/make_shop.py OUT_DIR [--from-ml100k ../shared/data/ml100k | --synthetic]
                                [--seed 0] [--products N] [--customers 60]

writes into OUT_DIR (never into the repository):

* ``orders.csv`` — ``customer_id,sku,quantity,ordered_at``: ids like ``C-000123`` and
  ``SKU-8F3A2B``, ISO 8601 times with the customer's time zone (``2024-03-01T18:04:05+01:00``);
* ``products.csv`` — ``sku,title,category``;
* ``photos/<sku>.jpg`` — one photo per product that has one.

``--from-ml100k DIR``: MovieLens 100K as a shop (every rating an order at its time; movies are
products, their first genre the category, their posters the photos: copied into OUT_DIR; the
15 movies without a poster have no photo, and two movies with one lose their orders: new
products with a photo and no orders yet). ``--products N`` keeps N movies drawn at random
and their orders: a small shop.

``--synthetic`` (the default): ``--products`` products (default 40) in four categories, each photo a small
Pillow picture of its category's colour at its own aspect ratio, and the awkward cases a shop
meets: three products without a photo, one PNG with an alpha channel, one grayscale JPEG, one
truncated JPEG, and the last two products with a photo (in the nested ``photos/new/``) and no
orders yet. Customers prefer one category; a few buy one product twice.

Deterministic for a seed: the same arguments write the same bytes.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

TZ_OFFSETS = (0, 60, 120, -300, -480, 330, 540)          # minutes east of UTC
CATEGORIES = {"shoes": (200, 60, 50), "bags": (60, 90, 190), "hats": (70, 160, 80),
              "shirts": (220, 190, 60)}


def _ids(rng, n, prefix, digits, hexa=False):
    """``n`` distinct random ids: ``C-000123`` (decimal) or ``SKU-8F3A2B`` (hexadecimal)."""
    space = 16 ** digits if hexa else 10 ** digits
    picks = rng.choice(space, size=n, replace=False)
    return [f"{prefix}{p:0{digits}X}" if hexa else f"{prefix}{p:0{digits}d}" for p in picks]


def _when(ts, offset_min):
    """ISO 8601 with the time zone: epoch seconds ``ts`` seen at UTC+offset."""
    tz = timezone(timedelta(minutes=int(offset_min)))
    return datetime.fromtimestamp(int(ts), tz).isoformat(timespec="seconds")


def _write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _orders(rng, customers, skus, users, items, times):
    """Order rows sorted by time (ties by customer, sku): a quantity of 1 mostly."""
    tz = rng.choice(TZ_OFFSETS, size=len(customers))
    qty = rng.choice([1, 2, 3], size=len(users), p=[0.8, 0.15, 0.05])
    order = np.lexsort((items, users, times))
    return [(customers[users[k]], skus[items[k]], int(qty[k]), _when(times[k], tz[users[k]]))
            for k in order]


# ---------------------------------------------------------------------------- MovieLens
def from_ml100k(src, out, rng, n_products=None):
    """MovieLens 100K as a shop; ``n_products``: only that many movies, drawn at random, and
    their orders."""
    src = Path(src)
    with open(src / "interactions.csv", newline="") as fh:
        rows = np.array([[int(r["user"]), int(r["item"]), int(r["timestamp"])]
                         for r in csv.DictReader(fh)], dtype=np.int64)
    with open(src / "items.csv", newline="", encoding="utf-8") as fh:
        items = list(csv.DictReader(fh))
    with open(src / "images.csv", newline="") as fh:
        posters = {int(r["item"]): src / r["path"] for r in csv.DictReader(fh)}
    if n_products is not None and n_products < len(items):     # a small shop
        keep = np.sort(rng.choice(len(items), size=n_products, replace=False))
        index = np.full(len(items), -1)
        index[keep] = np.arange(n_products)
        rows = rows[index[rows[:, 1]] >= 0]
        rows[:, 1] = index[rows[:, 1]]
        posters = {int(index[i]): p for i, p in posters.items() if index[i] >= 0}
        items = [items[k] for k in keep]
    n_users, n_items = int(rows[:, 0].max()) + 1, len(items)
    customers = _ids(rng, n_users, "C-", 6)
    skus = _ids(rng, n_items, "SKU-", 6, hexa=True)
    with_poster = sorted(i for i, p in posters.items() if p.is_file())
    new = rng.choice(with_poster, size=2, replace=False)     # new products: a photo, no orders
    rows = rows[~np.isin(rows[:, 1], new)]
    _write_csv(out / "orders.csv", ("customer_id", "sku", "quantity", "ordered_at"),
               _orders(rng, customers, skus, rows[:, 0], rows[:, 1], rows[:, 2]))
    _write_csv(out / "products.csv", ("sku", "title", "category"),
               [(skus[k], r["title"], (r["genres"] or "unknown").split("|")[0])
                for k, r in enumerate(items)])
    for item in with_poster:
        poster = posters[item]
        shutil.copyfile(poster, out / "photos" / f"{skus[item]}{poster.suffix.lower()}")
    return len(rows), n_items, len(np.unique(rows[:, 0])), len(with_poster)


# ---------------------------------------------------------------------------- synthetic
def _picture(rng, colour, size):
    """A smooth picture of ``size`` (w, h): the category's colour, a gradient, a disc."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.asarray(colour, np.float64)
    tilt = rng.uniform(-60, 60, 3)
    img = base + tilt * (xx / w)[..., None] + rng.uniform(-30, 30, 3) * (yy / h)[..., None]
    cy, cx, r = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w, rng.uniform(0.15, 0.3)
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 < (r * min(w, h)) ** 2
    img[disc] = 255 - img[disc]
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def synthetic(out, rng, n_products=40, n_customers=60):
    from PIL import Image
    if n_products < 10 or n_customers < 4:
        raise SystemExit("make_shop.py: error: --products must be at least 10 and --customers "
                         "at least 4")
    names = list(CATEGORIES)
    skus = _ids(rng, n_products, "SKU-", 6, hexa=True)
    customers = _ids(rng, n_customers, "C-", 6)
    category = [names[k % len(names)] for k in range(n_products)]
    adjectives = ("Classic", "Light", "Urban", "Summer", "Winter", "Trail", "Soft", "Bold")
    _write_csv(out / "products.csv", ("sku", "title", "category"),
               [(s, f"{adjectives[k % len(adjectives)]} {c[:-1]} no. {k + 1}", c)
                for k, (s, c) in enumerate(zip(skus, category))])
    # photos: 0..2 none, 3 PNG with alpha, 4 grayscale, 5 truncated, the last two in new/
    new = {n_products - 2, n_products - 1}
    (out / "photos" / "new").mkdir()
    for k, sku in enumerate(skus):
        if k < 3:
            continue
        size = (int(rng.integers(40, 72)), int(rng.integers(40, 72)))
        img = Image.fromarray(_picture(rng, CATEGORIES[category[k]], size))
        folder = out / "photos" / ("new" if k in new else "")
        if k == 3:
            alpha = Image.fromarray(np.full(size[::-1], 180, np.uint8))
            img.putalpha(alpha)
            img.save(folder / f"{sku}.png")
        elif k == 4:
            img.convert("L").save(folder / f"{sku}.jpg", quality=90)
        else:
            img.save(folder / f"{sku}.jpg", quality=90)
            if k == 5:
                data = (folder / f"{sku}.jpg").read_bytes()
                (folder / f"{sku}.jpg").write_bytes(data[:len(data) // 2])
    # orders: every orderable product at least once; customers mostly in their category
    orderable = [k for k in range(n_products) if k not in new]
    by_cat = {c: [k for k in orderable if category[k] == c] for c in names}
    likes = rng.integers(0, len(names), size=n_customers)
    users, items = [], []
    spread = rng.permutation(n_customers)
    for n, k in enumerate(orderable):         # to customers in turn: no one buys everything
        users.append(int(spread[n % n_customers]))
        items.append(k)
    for u in range(n_customers):
        bought = {i for uu, i in zip(users, items) if uu == u}
        for _ in range(int(rng.integers(4, 9))):
            pool = by_cat[names[likes[u]]] if rng.random() < 0.8 else orderable
            choice = ([k for k in pool if k not in bought]
                      or [k for k in orderable if k not in bought])
            if not choice:
                break
            k = int(rng.choice(choice))
            users.append(u)
            items.append(k)
            bought.add(k)
    for u in rng.choice(n_customers, size=2, replace=False):     # two repeat purchases
        first = items[users.index(int(u))]
        users.append(int(u))
        items.append(first)
    start = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp())
    times = start + np.sort(rng.integers(0, 180 * 86400, size=len(users)))
    rng.shuffle(times)          # times spread over the customers; order rows sort by time
    _write_csv(out / "orders.csv", ("customer_id", "sku", "quantity", "ordered_at"),
               _orders(rng, customers, skus, np.asarray(users), np.asarray(items), times))
    return len(users), n_products, n_customers, n_products - 3


def main(argv=None):
    ap = argparse.ArgumentParser(prog="make_shop.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("out", metavar="OUT_DIR", help="Output folder (created; must be empty).")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--from-ml100k", metavar="DIR", default=None,
                     help="MovieLens 100K as a shop (its posters become the photos).")
    src.add_argument("--synthetic", action="store_true",
                     help="A small generated shop (the default).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--products", type=int, default=None,
                    help="--synthetic: products (default 40); --from-ml100k: only N movies, "
                         "drawn at random, and their orders (default: all).")
    ap.add_argument("--customers", type=int, default=60, help="--synthetic: customers.")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        ap.error(f"{out} exists and is not empty")
    if args.from_ml100k and not (Path(args.from_ml100k) / "interactions.csv").is_file():
        ap.error(f"--from-ml100k {args.from_ml100k}: no interactions.csv there")
    (out / "photos").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    if args.from_ml100k:
        n = from_ml100k(args.from_ml100k, out, rng, args.products)
    else:
        n = synthetic(out, rng, args.products or 40, args.customers)
    print(f"{out}: {n[0]} orders of {n[1]} products by {n[2]} customers, {n[3]} photos",
          file=sys.stderr)


if __name__ == "__main__":
    main()
