"""Re-exports another module's class instead of defining its own."""
from collections import OrderedDict as Algorithm  # noqa: F401
