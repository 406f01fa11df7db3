"""psp_cdp: the PersistentSessionsProtocol for Chromium, over the DevTools Protocol."""

__version__ = "0.1.0"

from .errors import PspError

__all__ = ["__version__", "PspError"]
