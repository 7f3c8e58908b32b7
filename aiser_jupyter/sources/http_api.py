"""An HTTP JSON endpoint as a table: every page fetched, the records turned into Arrow.

Pagination styles: page numbers (``?page=2``), offsets (``?offset=200&limit=100``),
cursors (``?cursor=…`` from a field of the body) and next links (a field of the body, or
the ``Link: <…>; rel="next"`` header). Requests are spaced to a rate limit; 429 and 5xx
answers and dropped connections are retried with exponential backoff, waiting what a
``Retry-After`` header asks; pages are cached for `cache_ttl` seconds, so re-running a
cell does not hit the API again.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from aiser_jupyter.engines.progress import ProgressCallback, progress_callback
from aiser_jupyter.errors import ConnectionFailed
from aiser_jupyter.security.secrets import is_secret_key, redact, redact_url, register

if TYPE_CHECKING:
    import httpx
    import pyarrow as pa

RETRIED = frozenset({429, 500, 502, 503, 504})
Style = Literal["page", "offset", "cursor", "link"]


@dataclass(frozen=True)
class Pagination:
    """How to ask for the next page. `param` is the query parameter that carries the page
    number, offset or cursor; `size_param`/`size` the page size, where the API takes one;
    `path` the dotted field of the body that holds the next cursor or link."""

    style: Style
    param: str = ""
    size_param: str | None = None
    size: int | None = None
    start: int = 0
    path: str | None = None

    @classmethod
    def of(cls, paginate: str | Pagination | dict[str, Any] | None) -> Pagination | None:
        if paginate is None or isinstance(paginate, Pagination):
            return paginate
        if isinstance(paginate, dict):
            return cls(**paginate)
        defaults = {
            "page": cls("page", "page", start=1),
            "offset": cls("offset", "offset", size_param="limit", size=100),
            "cursor": cls("cursor", "cursor", path="next_cursor"),
            "link": cls("link", path="next"),
        }
        if paginate not in defaults:
            raise ConnectionFailed(
                f"Unknown pagination {paginate!r}: expected one of {', '.join(defaults)}, "
                "or a Pagination"
            )
        return defaults[paginate]


@dataclass(frozen=True)
class ApiProgress:
    name: str
    pages: int
    rows: int

    def __str__(self) -> str:
        return f"{self.name}: {self.pages} page{'s' * (self.pages != 1)}, {self.rows:,} rows"


class PageCache:
    """Answers by request, kept `ttl` seconds, at most `size` of them (least recent out)."""

    def __init__(self, size: int = 512):
        self.size = size
        self._pages: OrderedDict[str, tuple[float, Any, dict[str, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, ttl: float) -> tuple[Any, dict[str, str]] | None:
        with self._lock:
            entry = self._pages.get(key)
            if entry is None or time.monotonic() - entry[0] > ttl:
                return None
            self._pages.move_to_end(key)
            return entry[1], entry[2]

    def put(self, key: str, body: Any, links: dict[str, str]) -> None:
        with self._lock:
            self._pages[key] = (time.monotonic(), body, links)
            self._pages.move_to_end(key)
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()


PAGES = PageCache()
"""The kernel's page cache, shared by every API table."""


@dataclass
class HttpApi:
    """One endpoint read as a table; `fetch` reads every page (within `max_pages`)."""

    url: str
    name: str = "api"
    records: str | None = None
    paginate: str | Pagination | dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    rate_limit: float | None = None
    """Requests per second at most."""
    retries: int = 5
    backoff: float = 0.5
    max_wait: float = 60.0
    timeout: float = 30.0
    max_pages: int = 1000
    cache_ttl: float = 300.0
    progress: bool | ProgressCallback | None = True
    requests: int = field(default=0, init=False)
    """Requests actually sent (cached pages and retries apart), for the curious and the tests."""
    fetched_at: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.pagination = Pagination.of(self.paginate)
        for key, value in self.headers.items():
            if is_secret_key(key) or key.lower() in {"authorization", "cookie"}:
                register(str(value))
                register(str(value).partition(" ")[2])
        redact_url(self.url)  # registers secret query parameters
        self._last_request = 0.0

    @property
    def version(self) -> str:
        """When the rows were fetched: an API has no snapshot, so caches use a TTL."""
        return f"fetched@{self.fetched_at or 0:.0f}"

    def fetch(self, refresh: bool = False) -> pa.Table:
        """Every page's records as one Arrow table (fresh from the API when `refresh`)."""
        import httpx

        callback = progress_callback(self.progress)
        rows: list[Any] = []
        try:
            with httpx.Client(timeout=self.timeout, headers=self.headers) as client:
                url, params = split_query(self.url)
                params.update(self.params)
                if self.pagination and self.pagination.style in {"page", "offset"}:
                    params[self.pagination.param] = self.pagination.start
                if self.pagination and self.pagination.size_param and self.pagination.size:
                    params[self.pagination.size_param] = self.pagination.size
                for page in range(1, self.max_pages + 1):
                    body, links = self._get(client, url, params, refresh)
                    found = extract(body, self.records, url, first=page == 1)
                    rows += found
                    if callback is not None:
                        callback(ApiProgress(self.name, page, len(rows)))
                    step = self._next(body, links, found, url, params)
                    if step is None:
                        break
                    url, params = step
                else:
                    warnings.warn(
                        f"{self.name}: stopped after {self.max_pages} pages; max_pages= reads more",
                        stacklevel=2,
                    )
        finally:
            close = getattr(callback, "close", None)
            if close is not None:
                close()
        self.fetched_at = time.time()
        return records_to_arrow(rows)

    def to_arrow(self) -> pa.Table:
        return self.fetch()

    def _next(
        self, body: Any, links: dict[str, str], found: list[Any], url: str, params: dict[str, Any]
    ) -> tuple[str, dict[str, Any]] | None:
        """The request for the page after this one, or None when this was the last."""
        pages = self.pagination
        if pages is None or not found:
            return None
        if pages.style in {"page", "offset"}:
            if pages.size is not None and len(found) < pages.size:
                return None  # a short page is the last one
            step = 1 if pages.style == "page" else len(found)
            return url, {**params, pages.param: params[pages.param] + step}
        if pages.style == "cursor":
            cursor = lookup(body, pages.path)
            return None if cursor in (None, "") else (url, {**params, pages.param: cursor})
        link = (lookup(body, pages.path) if isinstance(body, dict) else None) or links.get("next")
        if not link:
            return None
        import httpx

        following = httpx.URL(url).join(str(link))
        if (
            following.scheme != httpx.URL(self.url).scheme
            or following.netloc != httpx.URL(self.url).netloc
        ):
            # The API's headers (its credentials) must not travel to another server.
            raise ConnectionFailed(
                f"{self.name}: the next page is on another server ({redact_url(str(following))})"
            )
        return split_query(str(following))

    def _get(
        self, client: httpx.Client, url: str, params: dict[str, Any], refresh: bool
    ) -> tuple[Any, dict[str, str]]:
        """One page, from the cache or the API: retried on 429/5xx and lost connections."""
        import httpx

        key = cache_key(url, params, self.headers)
        cached = None if refresh else PAGES.get(key, self.cache_ttl)
        if cached is not None:
            return cached
        shown = redact_url(str(httpx.URL(url, params=params)))
        for attempt in range(self.retries + 1):
            self._pace()
            try:
                response = client.get(url, params=params)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise ConnectionFailed(f"GET {shown} failed: {redact(str(exc))}") from None
                time.sleep(self._wait(attempt, None))
                continue
            if response.status_code in RETRIED and attempt < self.retries:
                time.sleep(self._wait(attempt, response.headers.get("retry-after")))
                continue
            if response.is_error:
                raise ConnectionFailed(
                    f"GET {shown} answered {response.status_code} {response.reason_phrase}"
                    + (f" after {attempt + 1} tries" if attempt else "")
                    + f": {redact(response.text[:200].strip())}"
                )
            try:
                body = response.json()
            except ValueError:
                raise ConnectionFailed(f"GET {shown} did not answer JSON") from None
            links = {rel: str(v.get("url", "")) for rel, v in response.links.items()}
            PAGES.put(key, body, links)
            return body, links
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _pace(self) -> None:
        """Wait so that requests keep to `rate_limit` per second."""
        if self.rate_limit:
            gap = 1.0 / self.rate_limit - (time.monotonic() - self._last_request)
            if gap > 0:
                time.sleep(gap)
        self._last_request = time.monotonic()
        self.requests += 1

    def _wait(self, attempt: int, retry_after: str | None) -> float:
        """Seconds before the next try: what Retry-After asks, else exponential backoff."""
        wait = self.backoff * 2**attempt
        if retry_after:
            asked = retry_after_seconds(retry_after)
            if asked is not None:
                wait = asked
        return min(max(wait, 0.0), self.max_wait)


def split_query(url: str) -> tuple[str, dict[str, Any]]:
    """The URL without its query string, and that query as parameters (httpx replaces a
    URL's query with the `params` it is given, so they must travel together)."""
    import httpx

    parsed = httpx.URL(url)
    return str(parsed.copy_with(query=None)), dict(parsed.params)


def retry_after_seconds(value: str) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from now."""
    value = value.strip()
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


def cache_key(url: str, params: dict[str, Any], headers: dict[str, str]) -> str:
    """Who asked for what: the URL, the parameters and the headers (hashed: they may hold
    credentials, and two users' pages must not mix)."""
    text = json.dumps([url, sorted(params.items()), sorted(headers.items())], default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def lookup(body: Any, path: str | None) -> Any:
    """The value at a dotted path (``meta.next``) of a JSON body, or None."""
    value = body
    for part in (path or "").split("."):
        if not part:
            continue
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def extract(body: Any, records: str | None, url: str, first: bool = True) -> list[Any]:
    """The records of one page: the body if it is a list, else the list at `records`; with
    no `records`, the body's only list-valued field. A first page without them is an error
    (a misspelt `records` must not read as an empty API); a later one ends the pages."""
    keys = ", ".join(body) if isinstance(body, dict) else type(body).__name__
    where = f"Say where the records are in {redact_url(url)}'s answer: records= one of its fields"
    if records:
        found = lookup(body, records)
    elif isinstance(body, list):
        found = body
    else:
        lists = (
            [k for k, v in body.items() if isinstance(v, list)] if isinstance(body, dict) else []
        )
        if len(lists) != 1:
            raise ConnectionFailed(f"{where} ({keys})")
        found = body[lists[0]]
    if found is None:
        if first:
            raise ConnectionFailed(f"{where} ({keys}); {records!r} is not one")
        return []
    if not isinstance(found, list):
        raise ConnectionFailed(f"records={records!r} in {redact_url(url)}'s answer is not a list")
    return found


def records_to_arrow(rows: list[Any]) -> pa.Table:
    """JSON records as Arrow: nested objects become structs; a field whose values disagree
    in type (a number here, a string there) becomes JSON text rather than an error."""
    import pyarrow as pa

    rows = [row if isinstance(row, dict) else {"value": row} for row in rows]
    if not rows:
        return pa.table({})
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    names = list(dict.fromkeys(key for row in rows for key in row))
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[name] = pa.array(
                [None if v is None else json.dumps(v) for v in values], pa.string()
            )
    return pa.table(columns)
