"""Registers the built-in state components."""

from .auth import Auth
from .caches import CacheStorage
from .cookies import Cookies
from .dom import DomState
from .idb import IndexedDB
from .registry import register
from .storage import LocalStorage, SessionStorage
from .tabs import Tabs
from .workers import ServiceWorkers

for _component in (Cookies, LocalStorage, SessionStorage, IndexedDB, CacheStorage, ServiceWorkers, Tabs, DomState, Auth):
    register(_component)
