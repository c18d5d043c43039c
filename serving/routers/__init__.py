"""HTTP routes. Importing the package registers the ``anyid`` path convertor the routes use."""

from serving import storefront_query  # noqa: F401
