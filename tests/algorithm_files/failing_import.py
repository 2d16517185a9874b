"""Imports a package that does not exist."""
import no_such_package_for_autotrader  # noqa: F401


class Algorithm:
    pass
