"""The transactions schema every loader, adapter and generator produces.

One row is one order line: a customer bought ``quantity`` units of ``item_id`` at ``unit_price`` in
order ``order_id`` at ``timestamp``. Optional descriptive columns may be absent or null.
"""

from __future__ import annotations

ORDER_ID = "order_id"
CUSTOMER_ID = "customer_id"
ITEM_ID = "item_id"
TIMESTAMP = "timestamp"
QUANTITY = "quantity"
UNIT_PRICE = "unit_price"
ITEM_NAME = "item_name"
CATEGORY = "category"
COUNTRY = "country"

REQUIRED_COLUMNS: tuple[str, ...] = (ORDER_ID, CUSTOMER_ID, ITEM_ID, TIMESTAMP, QUANTITY, UNIT_PRICE)
OPTIONAL_COLUMNS: tuple[str, ...] = (ITEM_NAME, CATEGORY, COUNTRY)

# Identifiers are strings so that "00123" and "123" stay distinct; timestamps are naive UTC.
DTYPES: dict[str, str] = {
    ORDER_ID: "string",
    CUSTOMER_ID: "string",
    ITEM_ID: "string",
    TIMESTAMP: "datetime64[ns]",
    QUANTITY: "float64",
    UNIT_PRICE: "float64",
    ITEM_NAME: "string",
    CATEGORY: "string",
    COUNTRY: "string",
}
