"""A synthetic shop's order lines, in the canonical schema, with the structure real data has.

What is built in, and why (each is something a model or a test downstream relies on):

* Long-tail items: popularity follows a Zipf law over a random ranking of the catalogue, so a few items
  take a large share of lines and most items are rarely bought.
* Categories with readable names ("Ceramic Mug Blue"); prices lognormal around a per-category level.
* Customers follow the BG/NBD story: a gamma-distributed purchase rate (many one-time buyers, a few heavy
  buyers) and, after every order, a beta-distributed chance of lapsing for good. Each customer is
  acquired at a random time in the window; repeat orders are a Poisson process until the customer lapses
  or the window ends. Basket size and quantity per line are also gamma-mixed, so spend varies widely.
* Signal for collaborative filtering: each customer prefers 1-3 categories and has a few favourite items
  that they buy again; the rest of their lines explore the whole catalogue.
* Seasonality: all times are drawn on a clock that runs faster in November-December, on some weekdays
  and in shop hours (a Poisson process in "busy time" mapped back to calendar time).
* A few countries, one dominant; about 1.5% of lines are later cancelled (an order id starting with
  "C", negative quantity), as in Online Retail, for cleaning to remove.

Everything is vectorised over customers, orders and lines: a million customers take seconds, not hours.
The same arguments and seed always give the same frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsys.data import schema

# (category, nouns, materials or styles); with the colours and variants below each category can name
# thousands of distinct items.
_CATEGORIES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "Kitchen",
        ("Mug", "Teapot", "Jug", "Bowl", "Storage Jar", "Cake Tin", "Apron", "Tea Towel"),
        ("Ceramic", "Enamel", "Stoneware", "Vintage", "Glass", "Striped", "Spotted", "Retro"),
    ),
    (
        "Home Decor",
        ("Cushion", "Vase", "Photo Frame", "Mirror", "Clock", "Doorstop", "Tray", "Throw"),
        ("Velvet", "Rattan", "Metal", "Wooden", "Linen", "Boho", "Nordic", "Floral"),
    ),
    (
        "Garden",
        ("Plant Pot", "Watering Can", "Bird Feeder", "Lantern", "Trowel", "Wind Chime", "Planter"),
        ("Terracotta", "Zinc", "Galvanised", "Recycled", "Rustic", "Hanging", "Painted", "Solar"),
    ),
    (
        "Stationery",
        ("Notebook", "Pencil Case", "Greeting Card", "Wrapping Paper", "Journal", "Sticker Set"),
        ("Kraft", "Floral", "Botanical", "Pastel", "Marbled", "Foiled", "Dotted", "Vintage"),
    ),
    (
        "Toys",
        ("Jigsaw", "Spinning Top", "Rag Doll", "Building Blocks", "Skipping Rope", "Kite", "Puppet"),
        ("Wooden", "Knitted", "Tin", "Classic", "Rainbow", "Jungle", "Space", "Farmyard"),
    ),
    (
        "Bath",
        ("Soap Dish", "Towel", "Toothbrush Holder", "Wash Bag", "Bath Mat", "Soap Bar", "Sponge"),
        ("Bamboo", "Cotton", "Marble", "Lavender", "Waffle", "Organic", "Ribbed", "Seaside"),
    ),
    (
        "Lighting",
        ("Table Lamp", "Fairy Lights", "Lampshade", "Candle Holder", "Night Light", "Tealight"),
        ("Brass", "Paper", "Glass", "Copper", "Frosted", "Moroccan", "Star", "Industrial"),
    ),
    (
        "Textiles",
        ("Blanket", "Table Runner", "Napkin Set", "Tote Bag", "Scarf", "Oven Glove", "Rug"),
        ("Woollen", "Linen", "Jute", "Gingham", "Paisley", "Tartan", "Embroidered", "Knitted"),
    ),
    (
        "Party",
        ("Bunting", "Paper Plates", "Balloon Set", "Party Bag", "Cake Stand", "Napkins", "Banner"),
        ("Birthday", "Polka Dot", "Glitter", "Pirate", "Fairy", "Vintage", "Gold", "Carnival"),
    ),
    (
        "Storage",
        ("Basket", "Box", "Hook", "Shelf", "Tin", "Crate", "Drawer Organiser", "Jar"),
        ("Wicker", "Metal", "Wooden", "Fabric", "Stackable", "Enamel", "Vintage", "Industrial"),
    ),
    (
        "Jewellery",
        ("Necklace", "Bracelet", "Earrings", "Ring", "Brooch", "Hair Clip", "Trinket Box"),
        ("Silver", "Gold", "Beaded", "Pearl", "Enamel", "Crystal", "Charm", "Shell"),
    ),
    (
        "Baking",
        ("Cookie Cutter", "Mixing Bowl", "Rolling Pin", "Cake Cases", "Piping Set", "Baking Tray"),
        ("Silicone", "Stainless", "Wooden", "Heart", "Star", "Retro", "Pastel", "Nonstick"),
    ),
    (
        "Christmas",
        ("Bauble", "Stocking", "Wreath", "Advent Calendar", "Tree Topper", "Garland", "Cracker"),
        ("Glass", "Felt", "Tartan", "Snowflake", "Reindeer", "Gingerbread", "Glitter", "Wooden"),
    ),
    (
        "Pets",
        ("Pet Bowl", "Dog Lead", "Cat Toy", "Pet Bed", "Treat Jar", "Collar", "Scratching Post"),
        ("Ceramic", "Leather", "Plush", "Rope", "Paw Print", "Reflective", "Cosy", "Tweed"),
    ),
    (
        "Travel",
        ("Luggage Tag", "Passport Cover", "Travel Mug", "Toiletry Bag", "Map Print", "Water Bottle"),
        ("Leather", "Canvas", "Insulated", "Vintage", "Compass", "World", "Waxed", "Folding"),
    ),
    (
        "Crafts",
        ("Knitting Kit", "Sewing Kit", "Paint Set", "Ribbon Reel", "Button Jar", "Embroidery Hoop"),
        ("Beginner", "Deluxe", "Mini", "Rainbow", "Vintage", "Floral", "Wooden", "Pastel"),
    ),
)
_COLOURS = ("Blue", "Red", "Green", "Pink", "Ivory", "Black", "Grey", "Yellow", "Teal", "Cream", "Mustard", "Lilac")
_VARIANTS = ("", " Small", " Large", " Set of 2", " Set of 4", " Mini", " Jumbo", " Set of 6")

_COUNTRIES = ("United Kingdom", "Germany", "France", "Netherlands", "Ireland", "Spain", "Belgium", "Switzerland")
_COUNTRY_SHARE = np.array([0.82, 0.05, 0.045, 0.025, 0.02, 0.015, 0.013, 0.012])

# Relative order intensity by month (January first), weekday (Monday first) and hour of day.
_MONTH = np.array([0.80, 0.78, 0.88, 0.90, 0.92, 0.88, 0.86, 0.90, 1.05, 1.15, 1.65, 1.55])
_WEEKDAY = np.array([1.10, 1.05, 1.00, 1.02, 0.95, 0.78, 0.92])
_HOUR = np.array(
    [
        0.6,
        0.3,
        0.2,
        0.15,
        0.15,
        0.25,
        0.6,
        1.2,
        2.2,
        3.0,
        3.4,
        3.6,
        3.9,
        3.7,
        3.4,
        3.2,
        3.0,
        3.1,
        3.4,
        3.8,
        4.0,
        3.5,
        2.4,
        1.3,
    ]
)

# Customer behaviour. Rates are orders per "average day" of busy time (see _seasonal_clock).
_RATE_SHAPE, _RATE_MEAN = 0.5, 2.6 / 365.0  # gamma purchase rate: many slow customers, a few heavy ones
_DROPOUT_A, _DROPOUT_B = 0.8, 2.6  # beta chance to lapse after each order
_BASKET_SHAPE, _BASKET_MEAN = 1.5, 1.3  # gamma mean of extra lines per order
_QUANTITY_SHAPE, _QUANTITY_EXTRA = 0.4, 1.0  # gamma extra mean quantity: wholesalers in the tail
_FAVOURITES = np.array([0.4, 0.3, 0.2, 0.1])  # how often each of a customer's favourite items is chosen
_FAVOURITE_A, _FAVOURITE_B = 2.0, 4.0  # beta share of a customer's lines that are favourites
_EXPLORE = 0.12  # share of non-favourite lines drawn from the whole catalogue
_PREFERRED_COUNT = np.array([0.4, 0.35, 0.25])  # chance of preferring 1, 2 or 3 categories
_ZIPF_EXPONENT = 1.05
_CANCELLED_SHARE = 0.015
_FIRST_ORDER_NUMBER = 500_000


def generate_transactions(
    n_customers: int = 2000,
    n_items: int = 500,
    start: str = "2023-01-01",
    end: str = "2024-12-31",
    seed: int = 0,
    n_categories: int = 12,
) -> pd.DataFrame:
    """Order lines of ``n_customers`` customers over ``n_items`` items from ``start`` to ``end`` (inclusive).

    Every column of the canonical schema is filled. Expect about 4-5 lines per customer with the default
    behaviour, sorted by time; cancellation lines have order ids starting with "C".
    """
    if n_customers < 1:
        raise ValueError(f"n_customers must be at least 1, got {n_customers}")
    if not 1 <= n_categories <= len(_CATEGORIES):
        raise ValueError(f"n_categories must be between 1 and {len(_CATEGORIES)}, got {n_categories}")
    if n_items < n_categories:
        raise ValueError(f"n_items ({n_items}) must be at least n_categories ({n_categories})")
    first_day, last_day = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if last_day < first_day:
        raise ValueError(f"end ({end}) is before start ({start})")
    rng = np.random.default_rng(seed)

    clock = _seasonal_clock(first_day, last_day)
    items = _catalogue(rng, n_items, n_categories)
    customers = _customers(rng, n_customers, n_categories, items)
    order_customer, order_busy_time = _orders(rng, customers, horizon=clock[-1])
    line_order, line_item = _lines(rng, customers, items, order_customer)
    line_customer = order_customer[line_order]
    quantity = rng.geometric(1.0 / customers["quantity_mean"][line_customer]).astype("float64")

    day_ns = np.int64(86_400 * 10**9)
    order_time = first_day.value + _calendar_ns(rng, clock, order_busy_time)

    # Cancellations: some lines are returned later; all lines cancelled from one order share one document.
    cancelled = np.flatnonzero(rng.random(line_order.size) < _CANCELLED_SHARE)
    cancel_orders, cancel_doc = np.unique(line_order[cancelled], return_inverse=True)
    delay = (rng.uniform(0.2, 21.0, cancel_orders.size) * day_ns).astype("int64")
    window_end = last_day.value + day_ns - 10**9
    cancel_time = np.minimum(order_time[cancel_orders] + delay, window_end)
    cancel_quantity = -np.ceil(rng.random(cancelled.size) * quantity[cancelled])

    # Documents (orders, then cancellation notes) are numbered in time order, as an invoice system would.
    doc_time = np.concatenate([order_time, cancel_time])
    doc_number = np.empty(doc_time.size, dtype="int64")
    doc_number[np.argsort(doc_time, kind="stable")] = np.arange(doc_time.size) + _FIRST_ORDER_NUMBER
    is_note = np.arange(doc_time.size) >= order_time.size

    line_doc = np.concatenate([line_order, order_time.size + cancel_doc])
    all_items = np.concatenate([line_item, line_item[cancelled]])
    all_customers = np.concatenate([line_customer, line_customer[cancelled]])
    all_quantity = np.concatenate([quantity, cancel_quantity])
    by_time = np.argsort(doc_number[line_doc], kind="stable")
    line_doc, all_items, all_customers, all_quantity = (
        a[by_time] for a in (line_doc, all_items, all_customers, all_quantity)
    )

    doc_ids = pc.binary_join_element_wise(
        pa.array(np.where(is_note, "C", "")), pa.array(doc_number).cast(pa.string()), ""
    )
    customer_ids = pa.array(np.arange(n_customers) + 10_001).cast(pa.string())
    item_ids = pc.binary_join_element_wise(
        "SKU", pc.utf8_lpad(pa.array(np.arange(n_items) + 1).cast(pa.string()), 5, "0"), ""
    )
    return pd.DataFrame(
        {
            schema.ORDER_ID: _take(doc_ids, line_doc),
            schema.CUSTOMER_ID: _take(customer_ids, all_customers),
            schema.ITEM_ID: _take(item_ids, all_items),
            schema.TIMESTAMP: pd.Series(doc_time[line_doc].astype("datetime64[ns]")),
            schema.QUANTITY: all_quantity,
            schema.UNIT_PRICE: items["price"][all_items],
            schema.ITEM_NAME: _take(pa.array(items["name"]), all_items),
            schema.CATEGORY: _take(pa.array([c[0] for c in _CATEGORIES[:n_categories]]), items["category"][all_items]),
            schema.COUNTRY: _take(pa.array(_COUNTRIES), customers["country"][all_customers]),
        }
    )


def _take(values: pa.Array, indices: np.ndarray) -> pd.Series:
    return pd.Series(pd.array(values, dtype=schema.DTYPES[schema.ITEM_ID]).take(indices))


def _seasonal_clock(first_day: pd.Timestamp, last_day: pd.Timestamp) -> np.ndarray:
    """Cumulative busy time at the start of each day (and after the last), averaging one unit per day."""
    days = pd.date_range(first_day, last_day, freq="D")
    intensity = _MONTH[days.month.to_numpy() - 1] * _WEEKDAY[days.dayofweek.to_numpy()]
    intensity = intensity / intensity.mean()
    return np.concatenate([[0.0], np.cumsum(intensity)])


def _calendar_ns(rng: np.random.Generator, clock: np.ndarray, busy_time: np.ndarray) -> np.ndarray:
    """Nanoseconds after the first day for points in busy time; the hour of day follows shop hours."""
    day = np.clip(np.searchsorted(clock, busy_time, side="right") - 1, 0, clock.size - 2)
    hour = rng.choice(24, size=busy_time.size, p=_HOUR / _HOUR.sum())
    seconds = day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, busy_time.size)
    return seconds.astype("int64") * 10**9


def _catalogue(rng: np.random.Generator, n_items: int, n_categories: int) -> dict[str, np.ndarray]:
    share = rng.dirichlet(np.full(n_categories, 3.0))
    category = np.concatenate([np.arange(n_categories), rng.choice(n_categories, n_items - n_categories, p=share)])
    rng.shuffle(category)
    popularity = (rng.permutation(n_items) + 1.0) ** -_ZIPF_EXPONENT
    level = rng.normal(np.log(6.0), 0.6, n_categories)
    raw_price = np.exp(level[category] + rng.normal(0.0, 0.45, n_items))
    # Shop prices: rounded to ten pence, minus a penny.
    price = np.maximum(np.round(raw_price, 1) - 0.01, 0.29)

    names = np.empty(n_items, dtype=object)
    for c in range(n_categories):
        members = np.flatnonzero(category == c)
        _, nouns, styles = _CATEGORIES[c]
        n_names = len(styles) * len(nouns) * len(_COLOURS) * len(_VARIANTS)
        codes = rng.choice(n_names, size=members.size, replace=members.size > n_names)
        style, rest = np.divmod(codes, len(nouns) * len(_COLOURS) * len(_VARIANTS))
        noun, rest = np.divmod(rest, len(_COLOURS) * len(_VARIANTS))
        colour, variant = np.divmod(rest, len(_VARIANTS))
        names[members] = [
            f"{styles[s]} {nouns[n]} {_COLOURS[k]}{_VARIANTS[v]}"
            for s, n, k, v in zip(style, noun, colour, variant, strict=True)
        ]

    # Sampling an item of category c: search u + c in the per-category cumulative popularity, stacked
    # so that category c spans [c, c + 1).
    by_category = np.lexsort((np.arange(n_items), category))
    cat_sorted = category[by_category]
    pop_sorted = popularity[by_category]
    cat_total = np.bincount(category, weights=popularity, minlength=n_categories)
    within = np.cumsum(pop_sorted) - np.concatenate([[0.0], np.cumsum(cat_total)[:-1]])[cat_sorted]
    stacked_cdf = cat_sorted + within / cat_total[cat_sorted]
    return {
        "category": category,
        "price": price,
        "name": names,
        "popularity": popularity,
        "category_share": cat_total / cat_total.sum(),
        "by_category": by_category,
        "stacked_cdf": stacked_cdf,
        "global_cdf": np.cumsum(popularity) / popularity.sum(),
    }


def _pick_in_category(rng: np.random.Generator, items: dict[str, np.ndarray], category: np.ndarray) -> np.ndarray:
    cdf = items["stacked_cdf"]
    position = np.searchsorted(cdf, category + rng.random(category.size), side="right")
    return items["by_category"][np.minimum(position, cdf.size - 1)]


def _pick_anywhere(rng: np.random.Generator, items: dict[str, np.ndarray], n: int) -> np.ndarray:
    cdf = items["global_cdf"]
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), cdf.size - 1)


def _customers(
    rng: np.random.Generator, n: int, n_categories: int, items: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    # Preferred categories without replacement, more popular categories more often (Gumbel top-k).
    keys = np.log(items["category_share"])[None, :] + rng.gumbel(size=(n, n_categories)).astype("float32")
    top = min(3, n_categories)
    preferred = np.argsort(-keys, axis=1)[:, :top]
    n_preferred = np.minimum(rng.choice(3, size=n, p=_PREFERRED_COUNT) + 1, top)
    weight = rng.dirichlet(np.full(top, 1.5), size=n) * (np.arange(top)[None, :] < n_preferred[:, None])
    preference_cdf = np.cumsum(weight / weight.sum(axis=1, keepdims=True), axis=1)

    n_fav = _FAVOURITES.size
    fav_slot = _choose_slot(rng, np.repeat(preference_cdf, n_fav, axis=0))
    fav_category = preferred[np.repeat(np.arange(n), n_fav), fav_slot]
    favourites = _pick_in_category(rng, items, fav_category).reshape(n, n_fav)

    return {
        "rate": rng.gamma(_RATE_SHAPE, _RATE_MEAN / _RATE_SHAPE, n),
        "dropout": rng.beta(_DROPOUT_A, _DROPOUT_B, n),
        "basket": rng.gamma(_BASKET_SHAPE, _BASKET_MEAN / _BASKET_SHAPE, n),
        "quantity_mean": 1.0 + rng.gamma(_QUANTITY_SHAPE, _QUANTITY_EXTRA / _QUANTITY_SHAPE, n),
        "favourite_share": rng.beta(_FAVOURITE_A, _FAVOURITE_B, n),
        "preferred": preferred,
        "preference_cdf": preference_cdf,
        "favourites": favourites,
        "country": rng.choice(len(_COUNTRIES), size=n, p=_COUNTRY_SHARE / _COUNTRY_SHARE.sum()),
    }


def _choose_slot(rng: np.random.Generator, cdf: np.ndarray) -> np.ndarray:
    u = rng.random(cdf.shape[0])
    return np.minimum((u[:, None] >= cdf).sum(axis=1), cdf.shape[1] - 1)


def _orders(
    rng: np.random.Generator, customers: dict[str, np.ndarray], horizon: float
) -> tuple[np.ndarray, np.ndarray]:
    """BG/NBD orders in busy time: (customer of each order, busy time of each order)."""
    n = customers["rate"].size
    acquired = rng.uniform(0.0, horizon, n)
    remaining = horizon - acquired
    # Orders made before lapsing, counting the first; a Poisson count of the window's repeat orders.
    lifetime_orders = rng.geometric(customers["dropout"])
    in_window = rng.poisson(customers["rate"] * remaining)
    n_repeat = np.minimum(in_window, lifetime_orders - 1)

    # The first n_repeat of in_window uniform times on the remaining window, without drawing the rest:
    # the k-th order statistic's survival is a product of Beta(1, m - j) complements, U ** (1 / (m - j)).
    owner = np.repeat(np.arange(n), n_repeat)
    group_start = np.repeat(np.cumsum(n_repeat) - n_repeat, n_repeat)
    rank = np.arange(owner.size) - group_start
    log_step = np.log(rng.random(owner.size)) / (in_window[owner] - rank)
    total = np.cumsum(log_step)
    log_survival = total - (total[group_start] - log_step[group_start])
    repeat_time = acquired[owner] + remaining[owner] * (1.0 - np.exp(log_survival))

    order_customer = np.concatenate([np.arange(n), owner])
    order_time = np.concatenate([acquired, repeat_time])
    return order_customer, order_time


def _lines(
    rng: np.random.Generator,
    customers: dict[str, np.ndarray],
    items: dict[str, np.ndarray],
    order_customer: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(order of each line, item of each line); an item appears at most once per order."""
    n_lines = 1 + rng.poisson(customers["basket"][order_customer])
    line_order = np.repeat(np.arange(order_customer.size), n_lines)
    line_customer = order_customer[line_order]
    item = np.empty(line_order.size, dtype=np.int64)

    favourite = rng.random(item.size) < customers["favourite_share"][line_customer]
    who = line_customer[favourite]
    slot = rng.choice(_FAVOURITES.size, size=who.size, p=_FAVOURITES)
    item[favourite] = customers["favourites"][who, slot]

    explore = ~favourite & (rng.random(item.size) < _EXPLORE)
    item[explore] = _pick_anywhere(rng, items, int(explore.sum()))

    preferred = ~favourite & ~explore
    who = line_customer[preferred]
    category = customers["preferred"][who, _choose_slot(rng, customers["preference_cdf"][who])]
    item[preferred] = _pick_in_category(rng, items, category)

    n_items = items["price"].size
    _, first = np.unique(line_order * n_items + item, return_index=True)
    first.sort()
    return line_order[first], item[first]
