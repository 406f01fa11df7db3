from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BrowserSessionState(_message.Message):
    __slots__ = ("version", "timestamp", "origin", "storage", "dom", "history", "network", "recording", "auth", "extensions", "source", "report")
    class ExtensionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Extension
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Extension, _Mapping]] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FIELD_NUMBER: _ClassVar[int]
    DOM_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    EXTENSIONS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    version: str
    timestamp: int
    origin: str
    storage: StorageState
    dom: DOMState
    history: HistoryState
    network: NetworkState
    recording: RecordingState
    auth: AuthenticationState
    extensions: _containers.MessageMap[str, Extension]
    source: CaptureSource
    report: CaptureReport
    def __init__(self, version: _Optional[str] = ..., timestamp: _Optional[int] = ..., origin: _Optional[str] = ..., storage: _Optional[_Union[StorageState, _Mapping]] = ..., dom: _Optional[_Union[DOMState, _Mapping]] = ..., history: _Optional[_Union[HistoryState, _Mapping]] = ..., network: _Optional[_Union[NetworkState, _Mapping]] = ..., recording: _Optional[_Union[RecordingState, _Mapping]] = ..., auth: _Optional[_Union[AuthenticationState, _Mapping]] = ..., extensions: _Optional[_Mapping[str, Extension]] = ..., source: _Optional[_Union[CaptureSource, _Mapping]] = ..., report: _Optional[_Union[CaptureReport, _Mapping]] = ...) -> None: ...

class DOMString(_message.Message):
    __slots__ = ("text", "wtf8")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    WTF8_FIELD_NUMBER: _ClassVar[int]
    text: str
    wtf8: bytes
    def __init__(self, text: _Optional[str] = ..., wtf8: _Optional[bytes] = ...) -> None: ...

class StorageItem(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: DOMString
    value: DOMString
    def __init__(self, key: _Optional[_Union[DOMString, _Mapping]] = ..., value: _Optional[_Union[DOMString, _Mapping]] = ...) -> None: ...

class OriginStorage(_message.Message):
    __slots__ = ("origin", "storage_key", "items")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    STORAGE_KEY_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    origin: str
    storage_key: str
    items: _containers.RepeatedCompositeFieldContainer[StorageItem]
    def __init__(self, origin: _Optional[str] = ..., storage_key: _Optional[str] = ..., items: _Optional[_Iterable[_Union[StorageItem, _Mapping]]] = ...) -> None: ...

class StorageState(_message.Message):
    __slots__ = ("cookies", "local_storage", "indexed_db", "cache_storage", "indexed_db_records", "cache_entries")
    COOKIES_FIELD_NUMBER: _ClassVar[int]
    LOCAL_STORAGE_FIELD_NUMBER: _ClassVar[int]
    INDEXED_DB_FIELD_NUMBER: _ClassVar[int]
    CACHE_STORAGE_FIELD_NUMBER: _ClassVar[int]
    INDEXED_DB_RECORDS_FIELD_NUMBER: _ClassVar[int]
    CACHE_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    cookies: _containers.RepeatedCompositeFieldContainer[Cookie]
    local_storage: _containers.RepeatedCompositeFieldContainer[OriginStorage]
    indexed_db: _containers.RepeatedCompositeFieldContainer[IndexedDBDatabase]
    cache_storage: _containers.RepeatedCompositeFieldContainer[CacheStorageCache]
    indexed_db_records: _containers.RepeatedCompositeFieldContainer[IndexedDBRecord]
    cache_entries: _containers.RepeatedCompositeFieldContainer[CacheEntry]
    def __init__(self, cookies: _Optional[_Iterable[_Union[Cookie, _Mapping]]] = ..., local_storage: _Optional[_Iterable[_Union[OriginStorage, _Mapping]]] = ..., indexed_db: _Optional[_Iterable[_Union[IndexedDBDatabase, _Mapping]]] = ..., cache_storage: _Optional[_Iterable[_Union[CacheStorageCache, _Mapping]]] = ..., indexed_db_records: _Optional[_Iterable[_Union[IndexedDBRecord, _Mapping]]] = ..., cache_entries: _Optional[_Iterable[_Union[CacheEntry, _Mapping]]] = ...) -> None: ...

class KeyPath(_message.Message):
    __slots__ = ("path", "paths")
    PATH_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    path: str
    paths: KeyPathList
    def __init__(self, path: _Optional[str] = ..., paths: _Optional[_Union[KeyPathList, _Mapping]] = ...) -> None: ...

class KeyPathList(_message.Message):
    __slots__ = ("paths",)
    PATHS_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, paths: _Optional[_Iterable[str]] = ...) -> None: ...

class IndexedDBIndex(_message.Message):
    __slots__ = ("name", "key_path", "unique", "multi_entry")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_PATH_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_FIELD_NUMBER: _ClassVar[int]
    MULTI_ENTRY_FIELD_NUMBER: _ClassVar[int]
    name: DOMString
    key_path: KeyPath
    unique: bool
    multi_entry: bool
    def __init__(self, name: _Optional[_Union[DOMString, _Mapping]] = ..., key_path: _Optional[_Union[KeyPath, _Mapping]] = ..., unique: _Optional[bool] = ..., multi_entry: _Optional[bool] = ...) -> None: ...

class IndexedDBObjectStore(_message.Message):
    __slots__ = ("id", "name", "key_path", "auto_increment", "key_generator", "indexes", "record_count")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_PATH_FIELD_NUMBER: _ClassVar[int]
    AUTO_INCREMENT_FIELD_NUMBER: _ClassVar[int]
    KEY_GENERATOR_FIELD_NUMBER: _ClassVar[int]
    INDEXES_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: DOMString
    key_path: KeyPath
    auto_increment: bool
    key_generator: float
    indexes: _containers.RepeatedCompositeFieldContainer[IndexedDBIndex]
    record_count: int
    def __init__(self, id: _Optional[int] = ..., name: _Optional[_Union[DOMString, _Mapping]] = ..., key_path: _Optional[_Union[KeyPath, _Mapping]] = ..., auto_increment: _Optional[bool] = ..., key_generator: _Optional[float] = ..., indexes: _Optional[_Iterable[_Union[IndexedDBIndex, _Mapping]]] = ..., record_count: _Optional[int] = ...) -> None: ...

class IndexedDBDatabase(_message.Message):
    __slots__ = ("origin", "storage_key", "name", "version", "stores")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    STORAGE_KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STORES_FIELD_NUMBER: _ClassVar[int]
    origin: str
    storage_key: str
    name: DOMString
    version: int
    stores: _containers.RepeatedCompositeFieldContainer[IndexedDBObjectStore]
    def __init__(self, origin: _Optional[str] = ..., storage_key: _Optional[str] = ..., name: _Optional[_Union[DOMString, _Mapping]] = ..., version: _Optional[int] = ..., stores: _Optional[_Iterable[_Union[IndexedDBObjectStore, _Mapping]]] = ...) -> None: ...

class IndexedDBRecord(_message.Message):
    __slots__ = ("store", "key", "value")
    STORE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    store: int
    key: SerializedValue
    value: SerializedValue
    def __init__(self, store: _Optional[int] = ..., key: _Optional[_Union[SerializedValue, _Mapping]] = ..., value: _Optional[_Union[SerializedValue, _Mapping]] = ...) -> None: ...

class CacheStorageCache(_message.Message):
    __slots__ = ("id", "origin", "storage_key", "name", "entry_count")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    STORAGE_KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENTRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    id: int
    origin: str
    storage_key: str
    name: DOMString
    entry_count: int
    def __init__(self, id: _Optional[int] = ..., origin: _Optional[str] = ..., storage_key: _Optional[str] = ..., name: _Optional[_Union[DOMString, _Mapping]] = ..., entry_count: _Optional[int] = ...) -> None: ...

class Header(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class CacheEntry(_message.Message):
    __slots__ = ("cache", "request_url", "request_method", "request_headers", "status", "status_text", "response_headers", "body", "response_type", "response_time")
    CACHE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_URL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_HEADERS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_TEXT_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TIME_FIELD_NUMBER: _ClassVar[int]
    cache: int
    request_url: str
    request_method: str
    request_headers: _containers.RepeatedCompositeFieldContainer[Header]
    status: int
    status_text: str
    response_headers: _containers.RepeatedCompositeFieldContainer[Header]
    body: bytes
    response_type: str
    response_time: int
    def __init__(self, cache: _Optional[int] = ..., request_url: _Optional[str] = ..., request_method: _Optional[str] = ..., request_headers: _Optional[_Iterable[_Union[Header, _Mapping]]] = ..., status: _Optional[int] = ..., status_text: _Optional[str] = ..., response_headers: _Optional[_Iterable[_Union[Header, _Mapping]]] = ..., body: _Optional[bytes] = ..., response_type: _Optional[str] = ..., response_time: _Optional[int] = ...) -> None: ...

class Cookie(_message.Message):
    __slots__ = ("name", "value", "domain", "path", "expires", "http_only", "secure", "same_site", "partitioned", "priority", "source_scheme", "source_port", "partition_key", "partition_key_opaque", "size")
    class SameSite(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SAME_SITE_UNSPECIFIED: _ClassVar[Cookie.SameSite]
        SAME_SITE_STRICT: _ClassVar[Cookie.SameSite]
        SAME_SITE_LAX: _ClassVar[Cookie.SameSite]
        SAME_SITE_NONE: _ClassVar[Cookie.SameSite]
    SAME_SITE_UNSPECIFIED: Cookie.SameSite
    SAME_SITE_STRICT: Cookie.SameSite
    SAME_SITE_LAX: Cookie.SameSite
    SAME_SITE_NONE: Cookie.SameSite
    class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PRIORITY_UNSPECIFIED: _ClassVar[Cookie.Priority]
        PRIORITY_LOW: _ClassVar[Cookie.Priority]
        PRIORITY_MEDIUM: _ClassVar[Cookie.Priority]
        PRIORITY_HIGH: _ClassVar[Cookie.Priority]
    PRIORITY_UNSPECIFIED: Cookie.Priority
    PRIORITY_LOW: Cookie.Priority
    PRIORITY_MEDIUM: Cookie.Priority
    PRIORITY_HIGH: Cookie.Priority
    class SourceScheme(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SOURCE_SCHEME_UNSPECIFIED: _ClassVar[Cookie.SourceScheme]
        SOURCE_SCHEME_UNSET: _ClassVar[Cookie.SourceScheme]
        SOURCE_SCHEME_NON_SECURE: _ClassVar[Cookie.SourceScheme]
        SOURCE_SCHEME_SECURE: _ClassVar[Cookie.SourceScheme]
    SOURCE_SCHEME_UNSPECIFIED: Cookie.SourceScheme
    SOURCE_SCHEME_UNSET: Cookie.SourceScheme
    SOURCE_SCHEME_NON_SECURE: Cookie.SourceScheme
    SOURCE_SCHEME_SECURE: Cookie.SourceScheme
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    HTTP_ONLY_FIELD_NUMBER: _ClassVar[int]
    SECURE_FIELD_NUMBER: _ClassVar[int]
    SAME_SITE_FIELD_NUMBER: _ClassVar[int]
    PARTITIONED_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SCHEME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PORT_FIELD_NUMBER: _ClassVar[int]
    PARTITION_KEY_FIELD_NUMBER: _ClassVar[int]
    PARTITION_KEY_OPAQUE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    domain: str
    path: str
    expires: float
    http_only: bool
    secure: bool
    same_site: Cookie.SameSite
    partitioned: bool
    priority: Cookie.Priority
    source_scheme: Cookie.SourceScheme
    source_port: int
    partition_key: CookiePartitionKey
    partition_key_opaque: bool
    size: int
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., domain: _Optional[str] = ..., path: _Optional[str] = ..., expires: _Optional[float] = ..., http_only: _Optional[bool] = ..., secure: _Optional[bool] = ..., same_site: _Optional[_Union[Cookie.SameSite, str]] = ..., partitioned: _Optional[bool] = ..., priority: _Optional[_Union[Cookie.Priority, str]] = ..., source_scheme: _Optional[_Union[Cookie.SourceScheme, str]] = ..., source_port: _Optional[int] = ..., partition_key: _Optional[_Union[CookiePartitionKey, _Mapping]] = ..., partition_key_opaque: _Optional[bool] = ..., size: _Optional[int] = ...) -> None: ...

class CookiePartitionKey(_message.Message):
    __slots__ = ("top_level_site", "has_cross_site_ancestor")
    TOP_LEVEL_SITE_FIELD_NUMBER: _ClassVar[int]
    HAS_CROSS_SITE_ANCESTOR_FIELD_NUMBER: _ClassVar[int]
    top_level_site: str
    has_cross_site_ancestor: bool
    def __init__(self, top_level_site: _Optional[str] = ..., has_cross_site_ancestor: _Optional[bool] = ...) -> None: ...

class SerializedValue(_message.Message):
    __slots__ = ("encoding", "data")
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    encoding: str
    data: bytes
    def __init__(self, encoding: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class ScrollPosition(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("url", "title", "state", "scroll_position", "timestamp", "transition_type", "user_typed_url")
    URL_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SCROLL_POSITION_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    TRANSITION_TYPE_FIELD_NUMBER: _ClassVar[int]
    USER_TYPED_URL_FIELD_NUMBER: _ClassVar[int]
    url: str
    title: DOMString
    state: SerializedValue
    scroll_position: ScrollPosition
    timestamp: int
    transition_type: str
    user_typed_url: str
    def __init__(self, url: _Optional[str] = ..., title: _Optional[_Union[DOMString, _Mapping]] = ..., state: _Optional[_Union[SerializedValue, _Mapping]] = ..., scroll_position: _Optional[_Union[ScrollPosition, _Mapping]] = ..., timestamp: _Optional[int] = ..., transition_type: _Optional[str] = ..., user_typed_url: _Optional[str] = ...) -> None: ...

class NavigationState(_message.Message):
    __slots__ = ("current_url", "entries", "current_index")
    CURRENT_URL_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CURRENT_INDEX_FIELD_NUMBER: _ClassVar[int]
    current_url: str
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    current_index: int
    def __init__(self, current_url: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ..., current_index: _Optional[int] = ...) -> None: ...

class Tab(_message.Message):
    __slots__ = ("target_id", "navigation", "session_storage", "active", "dom")
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    NAVIGATION_FIELD_NUMBER: _ClassVar[int]
    SESSION_STORAGE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    DOM_FIELD_NUMBER: _ClassVar[int]
    target_id: str
    navigation: NavigationState
    session_storage: _containers.RepeatedCompositeFieldContainer[OriginStorage]
    active: bool
    dom: DOMState
    def __init__(self, target_id: _Optional[str] = ..., navigation: _Optional[_Union[NavigationState, _Mapping]] = ..., session_storage: _Optional[_Iterable[_Union[OriginStorage, _Mapping]]] = ..., active: _Optional[bool] = ..., dom: _Optional[_Union[DOMState, _Mapping]] = ...) -> None: ...

class HistoryState(_message.Message):
    __slots__ = ("tabs",)
    TABS_FIELD_NUMBER: _ClassVar[int]
    tabs: _containers.RepeatedCompositeFieldContainer[Tab]
    def __init__(self, tabs: _Optional[_Iterable[_Union[Tab, _Mapping]]] = ...) -> None: ...

class ElementTarget(_message.Message):
    __slots__ = ("selectors",)
    SELECTORS_FIELD_NUMBER: _ClassVar[int]
    selectors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, selectors: _Optional[_Iterable[str]] = ...) -> None: ...

class FormField(_message.Message):
    __slots__ = ("target", "kind", "value", "checked", "selected")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CHECKED_FIELD_NUMBER: _ClassVar[int]
    SELECTED_FIELD_NUMBER: _ClassVar[int]
    target: ElementTarget
    kind: str
    value: DOMString
    checked: bool
    selected: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, target: _Optional[_Union[ElementTarget, _Mapping]] = ..., kind: _Optional[str] = ..., value: _Optional[_Union[DOMString, _Mapping]] = ..., checked: _Optional[bool] = ..., selected: _Optional[_Iterable[int]] = ...) -> None: ...

class ElementScroll(_message.Message):
    __slots__ = ("target", "x", "y")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    target: ElementTarget
    x: float
    y: float
    def __init__(self, target: _Optional[_Union[ElementTarget, _Mapping]] = ..., x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class FrameDOMState(_message.Message):
    __slots__ = ("url", "path", "fields", "focused", "scrolls")
    URL_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    FOCUSED_FIELD_NUMBER: _ClassVar[int]
    SCROLLS_FIELD_NUMBER: _ClassVar[int]
    url: str
    path: _containers.RepeatedScalarFieldContainer[int]
    fields: _containers.RepeatedCompositeFieldContainer[FormField]
    focused: ElementTarget
    scrolls: _containers.RepeatedCompositeFieldContainer[ElementScroll]
    def __init__(self, url: _Optional[str] = ..., path: _Optional[_Iterable[int]] = ..., fields: _Optional[_Iterable[_Union[FormField, _Mapping]]] = ..., focused: _Optional[_Union[ElementTarget, _Mapping]] = ..., scrolls: _Optional[_Iterable[_Union[ElementScroll, _Mapping]]] = ...) -> None: ...

class DOMState(_message.Message):
    __slots__ = ("frames", "snapshot")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[FrameDOMState]
    snapshot: bytes
    def __init__(self, frames: _Optional[_Iterable[_Union[FrameDOMState, _Mapping]]] = ..., snapshot: _Optional[bytes] = ...) -> None: ...

class ServiceWorkerRegistration(_message.Message):
    __slots__ = ("origin", "storage_key", "scope", "script_url", "state", "update_via_cache")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    STORAGE_KEY_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_URL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_VIA_CACHE_FIELD_NUMBER: _ClassVar[int]
    origin: str
    storage_key: str
    scope: str
    script_url: str
    state: str
    update_via_cache: str
    def __init__(self, origin: _Optional[str] = ..., storage_key: _Optional[str] = ..., scope: _Optional[str] = ..., script_url: _Optional[str] = ..., state: _Optional[str] = ..., update_via_cache: _Optional[str] = ...) -> None: ...

class NetworkState(_message.Message):
    __slots__ = ("service_workers",)
    SERVICE_WORKERS_FIELD_NUMBER: _ClassVar[int]
    service_workers: _containers.RepeatedCompositeFieldContainer[ServiceWorkerRegistration]
    def __init__(self, service_workers: _Optional[_Iterable[_Union[ServiceWorkerRegistration, _Mapping]]] = ...) -> None: ...

class AuthToken(_message.Message):
    __slots__ = ("type", "value", "scope", "expires_at", "refresh_token", "is_http_only", "domain", "source", "issuer", "subject", "issued_at")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    IS_HTTP_ONLY_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    type: str
    value: str
    scope: _containers.RepeatedScalarFieldContainer[str]
    expires_at: int
    refresh_token: str
    is_http_only: bool
    domain: str
    source: str
    issuer: str
    subject: str
    issued_at: int
    def __init__(self, type: _Optional[str] = ..., value: _Optional[str] = ..., scope: _Optional[_Iterable[str]] = ..., expires_at: _Optional[int] = ..., refresh_token: _Optional[str] = ..., is_http_only: _Optional[bool] = ..., domain: _Optional[str] = ..., source: _Optional[str] = ..., issuer: _Optional[str] = ..., subject: _Optional[str] = ..., issued_at: _Optional[int] = ...) -> None: ...

class EncryptedCredentials(_message.Message):
    __slots__ = ("key_id", "algorithm", "nonce", "ciphertext", "origin")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    algorithm: str
    nonce: bytes
    ciphertext: bytes
    origin: str
    def __init__(self, key_id: _Optional[str] = ..., algorithm: _Optional[str] = ..., nonce: _Optional[bytes] = ..., ciphertext: _Optional[bytes] = ..., origin: _Optional[str] = ...) -> None: ...

class AuthenticationState(_message.Message):
    __slots__ = ("tokens", "credentials")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[AuthToken]
    credentials: EncryptedCredentials
    def __init__(self, tokens: _Optional[_Iterable[_Union[AuthToken, _Mapping]]] = ..., credentials: _Optional[_Union[EncryptedCredentials, _Mapping]] = ...) -> None: ...

class RecordedEvent(_message.Message):
    __slots__ = ("type", "timestamp", "target", "data", "element", "tab", "frame", "document")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ELEMENT_FIELD_NUMBER: _ClassVar[int]
    TAB_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    type: str
    timestamp: float
    target: str
    data: SerializedValue
    element: ElementTarget
    tab: int
    frame: _containers.RepeatedScalarFieldContainer[int]
    document: int
    def __init__(self, type: _Optional[str] = ..., timestamp: _Optional[float] = ..., target: _Optional[str] = ..., data: _Optional[_Union[SerializedValue, _Mapping]] = ..., element: _Optional[_Union[ElementTarget, _Mapping]] = ..., tab: _Optional[int] = ..., frame: _Optional[_Iterable[int]] = ..., document: _Optional[int] = ...) -> None: ...

class NetworkExchange(_message.Message):
    __slots__ = ("timestamp", "tab", "method", "url", "request_headers", "request_body", "status", "status_text", "response_headers", "response_body", "resource_type", "mime_type", "protocol", "duration", "error", "body_missing")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    TAB_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_HEADERS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_BODY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_TEXT_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_HEADERS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_BODY_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    BODY_MISSING_FIELD_NUMBER: _ClassVar[int]
    timestamp: float
    tab: int
    method: str
    url: str
    request_headers: _containers.RepeatedCompositeFieldContainer[Header]
    request_body: bytes
    status: int
    status_text: str
    response_headers: _containers.RepeatedCompositeFieldContainer[Header]
    response_body: bytes
    resource_type: str
    mime_type: str
    protocol: str
    duration: float
    error: str
    body_missing: bool
    def __init__(self, timestamp: _Optional[float] = ..., tab: _Optional[int] = ..., method: _Optional[str] = ..., url: _Optional[str] = ..., request_headers: _Optional[_Iterable[_Union[Header, _Mapping]]] = ..., request_body: _Optional[bytes] = ..., status: _Optional[int] = ..., status_text: _Optional[str] = ..., response_headers: _Optional[_Iterable[_Union[Header, _Mapping]]] = ..., response_body: _Optional[bytes] = ..., resource_type: _Optional[str] = ..., mime_type: _Optional[str] = ..., protocol: _Optional[str] = ..., duration: _Optional[float] = ..., error: _Optional[str] = ..., body_missing: _Optional[bool] = ...) -> None: ...

class RecordingState(_message.Message):
    __slots__ = ("events", "start_time", "duration", "exchanges", "mutations", "recorded", "ends", "cookies", "ended")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    EXCHANGES_FIELD_NUMBER: _ClassVar[int]
    MUTATIONS_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    ENDS_FIELD_NUMBER: _ClassVar[int]
    COOKIES_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[RecordedEvent]
    start_time: int
    duration: int
    exchanges: _containers.RepeatedCompositeFieldContainer[NetworkExchange]
    mutations: _containers.RepeatedCompositeFieldContainer[RecordedEvent]
    recorded: _containers.RepeatedScalarFieldContainer[str]
    ends: _containers.RepeatedCompositeFieldContainer[TabEndState]
    cookies: _containers.RepeatedCompositeFieldContainer[ValueDigest]
    ended: bool
    def __init__(self, events: _Optional[_Iterable[_Union[RecordedEvent, _Mapping]]] = ..., start_time: _Optional[int] = ..., duration: _Optional[int] = ..., exchanges: _Optional[_Iterable[_Union[NetworkExchange, _Mapping]]] = ..., mutations: _Optional[_Iterable[_Union[RecordedEvent, _Mapping]]] = ..., recorded: _Optional[_Iterable[str]] = ..., ends: _Optional[_Iterable[_Union[TabEndState, _Mapping]]] = ..., cookies: _Optional[_Iterable[_Union[ValueDigest, _Mapping]]] = ..., ended: _Optional[bool] = ...) -> None: ...

class ValueDigest(_message.Message):
    __slots__ = ("key", "digest")
    KEY_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    key: DOMString
    digest: str
    def __init__(self, key: _Optional[_Union[DOMString, _Mapping]] = ..., digest: _Optional[str] = ...) -> None: ...

class TabEndState(_message.Message):
    __slots__ = ("tab", "url", "title", "fields", "local_storage", "session_storage")
    TAB_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_STORAGE_FIELD_NUMBER: _ClassVar[int]
    SESSION_STORAGE_FIELD_NUMBER: _ClassVar[int]
    tab: int
    url: str
    title: DOMString
    fields: _containers.RepeatedCompositeFieldContainer[FormField]
    local_storage: _containers.RepeatedCompositeFieldContainer[ValueDigest]
    session_storage: _containers.RepeatedCompositeFieldContainer[ValueDigest]
    def __init__(self, tab: _Optional[int] = ..., url: _Optional[str] = ..., title: _Optional[_Union[DOMString, _Mapping]] = ..., fields: _Optional[_Iterable[_Union[FormField, _Mapping]]] = ..., local_storage: _Optional[_Iterable[_Union[ValueDigest, _Mapping]]] = ..., session_storage: _Optional[_Iterable[_Union[ValueDigest, _Mapping]]] = ...) -> None: ...

class Extension(_message.Message):
    __slots__ = ("media_type", "data", "component_version")
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    media_type: str
    data: bytes
    component_version: str
    def __init__(self, media_type: _Optional[str] = ..., data: _Optional[bytes] = ..., component_version: _Optional[str] = ...) -> None: ...

class CaptureSource(_message.Message):
    __slots__ = ("browser", "user_agent", "protocol_version", "browser_context_id", "psp_version")
    BROWSER_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    BROWSER_CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    PSP_VERSION_FIELD_NUMBER: _ClassVar[int]
    browser: str
    user_agent: str
    protocol_version: str
    browser_context_id: str
    psp_version: str
    def __init__(self, browser: _Optional[str] = ..., user_agent: _Optional[str] = ..., protocol_version: _Optional[str] = ..., browser_context_id: _Optional[str] = ..., psp_version: _Optional[str] = ...) -> None: ...

class CaptureReport(_message.Message):
    __slots__ = ("components", "origins_covered", "uncovered")
    class Uncovered(_message.Message):
        __slots__ = ("what", "reason")
        WHAT_FIELD_NUMBER: _ClassVar[int]
        REASON_FIELD_NUMBER: _ClassVar[int]
        what: str
        reason: str
        def __init__(self, what: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    ORIGINS_COVERED_FIELD_NUMBER: _ClassVar[int]
    UNCOVERED_FIELD_NUMBER: _ClassVar[int]
    components: _containers.RepeatedScalarFieldContainer[str]
    origins_covered: _containers.RepeatedScalarFieldContainer[str]
    uncovered: _containers.RepeatedCompositeFieldContainer[CaptureReport.Uncovered]
    def __init__(self, components: _Optional[_Iterable[str]] = ..., origins_covered: _Optional[_Iterable[str]] = ..., uncovered: _Optional[_Iterable[_Union[CaptureReport.Uncovered, _Mapping]]] = ...) -> None: ...

class StateDelta(_message.Message):
    __slots__ = ("parent", "parent_digest", "digest", "removed", "items")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PARENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    parent: int
    parent_digest: bytes
    digest: bytes
    removed: _containers.RepeatedScalarFieldContainer[bytes]
    items: _containers.RepeatedCompositeFieldContainer[DeltaItem]
    def __init__(self, parent: _Optional[int] = ..., parent_digest: _Optional[bytes] = ..., digest: _Optional[bytes] = ..., removed: _Optional[_Iterable[bytes]] = ..., items: _Optional[_Iterable[_Union[DeltaItem, _Mapping]]] = ...) -> None: ...

class DeltaItem(_message.Message):
    __slots__ = ("key", "value", "after", "moved")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    MOVED_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: bytes
    after: bytes
    moved: bool
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., after: _Optional[bytes] = ..., moved: _Optional[bool] = ...) -> None: ...
