"""Registers the built-in state components."""

from .cookies import Cookies
from .registry import register
from .storage import LocalStorage, SessionStorage
from .tabs import Tabs

for _component in (Cookies, LocalStorage, SessionStorage, Tabs):
    register(_component)
