"""Floor 0: what every Mochi package shares (errors root, paths, typed project config).

Imports nothing heavy and no protocol library, so any floor may import it.
"""

from mochi_core.errors import ConfigError, MochiError

__all__ = ["ConfigError", "MochiError"]
__version__ = "0.1.0"
