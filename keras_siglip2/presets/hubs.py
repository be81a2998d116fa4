"""Downloading preset files from Kaggle Models and the Hugging Face Hub.

Both hubs go through their own client library (`kagglehub`,
`huggingface_hub`), so files land in the libraries' caches and downloads show
the libraries' progress bars. Two things are added on top:

* cache first: a file that is already in the cache is used without any
  network request (also for unversioned Kaggle handles, whose newest cached
  version is used), so a pre-downloaded preset loads offline;
* fail fast: before a download, a probe checks that the hub (or the proxy
  in between) *answers* — a TCP connection, then the first bytes of a TLS
  handshake, a proxy `CONNECT` or an HTTP reply — within `hub_timeout()`
  seconds (20 by default, `$KERAS_SIGLIP2_HUB_TIMEOUT`). An offline machine
  gets a clear `PresetDownloadError` at once, and a network that accepts
  connections but never answers (a stalled proxy) one within that time,
  instead of the libraries' minutes of retries. A target that failed is not
  probed again for a minute.
"""

import os
import socket
import ssl
import threading
import time
import urllib.parse

HUB_TIMEOUT_VARIABLE = "KERAS_SIGLIP2_HUB_TIMEOUT"
DEFAULT_HUB_TIMEOUT_SECONDS = 20.0
REMEMBER_FAILURE_SECONDS = 60.0
_recent_failures = {}  # (host, port) → (time.monotonic(), reason)


class PresetDownloadError(OSError):
    """A preset could not be fetched from any hub (offline, missing, denied)."""


class HubFileNotFoundError(FileNotFoundError):
    """The hub is reachable but the preset has no such file."""


def safe_relative_path(path):
    """Validate a file name taken from a checkpoint or index (no escaping)."""
    normalized = path.replace("\\", "/")
    parts = normalized.split("/")
    if not path or normalized.startswith("/") or ":" in parts[0] or ".." in parts or "" in parts:
        raise ValueError(
            f"Refusing the file name {path!r} from a checkpoint: file names must be "
            "relative paths inside the preset (no '..', no absolute paths)."
        )
    return normalized


# ----------------------------------------------------------------------------
# Reachability probe.


def _proxy_for(scheme, host):
    """The proxy URL requests would use for `host`, or None (direct)."""
    no_proxy = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""
    for entry in (e.strip().lstrip(".") for e in no_proxy.split(",")):
        if entry == "*" or (entry and host and (host == entry or host.endswith("." + entry))):
            return None
    for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY"):
        proxy = os.environ.get(name)
        if proxy:
            return proxy if "://" in proxy else "http://" + proxy
    return None


def hub_timeout():
    """Seconds a hub may take to answer: `$KERAS_SIGLIP2_HUB_TIMEOUT`, default 20."""
    value = os.environ.get(HUB_TIMEOUT_VARIABLE)
    if value is None:
        return DEFAULT_HUB_TIMEOUT_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise ValueError(
            f"${HUB_TIMEOUT_VARIABLE} must be a positive number of seconds; got {value!r}."
        )
    return seconds


def _await_answer(sock, url, proxy):
    """Send what starts a request to `url` (through `proxy`) and wait for the
    first byte back; raises `OSError` (e.g. a timeout) when none comes."""
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    if proxy:
        sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        sock.recv(1)
    elif url.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # an answer is all the probe needs
        try:
            context.wrap_socket(sock, server_hostname=host).close()
        except ssl.SSLError:  # it answered, though not as we hoped: the library will say
            pass
    else:
        sock.sendall(f"HEAD / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        sock.recv(1)


def probe(url, timeout=None):
    """None when `url`'s host (or the configured proxy) answers within
    `timeout` seconds (default `hub_timeout()`), else a short reason. Runs in a
    daemon thread, so neither a hanging resolver nor a silent peer blocks
    longer than `timeout`."""
    timeout = hub_timeout() if timeout is None else timeout
    parsed = urllib.parse.urlparse(url)
    proxy = _proxy_for(parsed.scheme or "https", parsed.hostname)
    target = urllib.parse.urlparse(proxy or url)
    host = target.hostname
    port = target.port or (443 if (target.scheme or "https") == "https" else 80)
    failed = _recent_failures.get((host, port))
    if failed and time.monotonic() - failed[0] < REMEMBER_FAILURE_SECONDS:
        return failed[1]
    outcome = {}

    def connect():
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                _await_answer(sock, parsed, proxy)
            outcome["ok"] = True
        except TimeoutError:  # the same as no answer by the deadline
            pass
        except Exception as error:  # any failure means "not reachable"
            outcome["error"] = f"{type(error).__name__}: {error}"

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    if outcome.get("ok"):
        return None
    via = f" (through the proxy {host}:{port})" if proxy else ""
    reason = outcome.get("error", f"no answer from {host}:{port} within {timeout:g} s") + via
    if "error" not in outcome:
        reason += f"; set ${HUB_TIMEOUT_VARIABLE} to wait longer"
    _recent_failures[(host, port)] = (time.monotonic(), reason)
    return reason


# ----------------------------------------------------------------------------
# Kaggle Models (kagglehub).


def kaggle_cache_dir():
    try:
        from kagglehub.config import get_cache_folder

        return get_cache_folder()
    except ImportError:
        return os.environ.get(
            "KAGGLEHUB_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "kagglehub")
        )


def kaggle_api_url():
    """The API endpoint kagglehub talks to (`$KAGGLE_API_ENVIRONMENT`)."""
    try:
        from kagglesdk.kaggle_env import get_endpoint, get_env

        return get_endpoint(get_env())
    except Exception:  # kagglehub missing, or an environment it does not know
        return "https://api.kaggle.com"


def parse_kaggle_handle(handle):
    """`[kaggle://]owner/model/framework/variation[/version]` → (parts, version or None)."""
    handle = handle.removeprefix("kaggle://").strip("/")
    parts = handle.split("/")
    if len(parts) not in (4, 5) or not all(parts):
        raise ValueError(
            f"Invalid Kaggle handle {handle!r}: expected "
            "kaggle://owner/model/framework/variation[/version], e.g. "
            "kaggle://keras/siglip/keras/siglip2_base_patch16_224/1."
        )
    for part in parts:
        safe_relative_path(part)
    version = None
    if len(parts) == 5:
        if not parts[4].isdigit():
            raise ValueError(f"Invalid Kaggle handle {handle!r}: version must be an integer.")
        version = int(parts[4])
    return parts[:4], version


class KaggleFiles:
    """Fetches files of one Kaggle model instance, cache first."""

    def __init__(self, handle):
        self.parts, self.version = parse_kaggle_handle(handle)

    @property
    def handle(self):
        """The handle, with the version once one is known (pinned)."""
        version = f"/{self.version}" if self.version is not None else ""
        return "kaggle://" + "/".join(self.parts) + version

    def describe(self):
        return self.handle

    def cache_dir(self):
        return kaggle_cache_dir()

    def fetch(self, filename):
        filename = safe_relative_path(filename)
        cached = cached_file(self, filename)
        if cached:
            return cached
        reason = probe(kaggle_api_url())
        if reason:
            raise PresetDownloadError(f"cannot reach Kaggle ({kaggle_api_url()}): {reason}")
        try:
            import kagglehub
        except ImportError as error:
            raise PresetDownloadError("the `kagglehub` package is not installed") from error
        try:
            path = kagglehub.model_download(self.handle.removeprefix("kaggle://"), path=filename)
        except Exception as error:  # kagglehub raises many types; classify by message
            message = str(error)
            if "404" in message or "not present" in message or "not found" in message.lower():
                raise HubFileNotFoundError(
                    f"{self.handle} has no file {filename!r} (or no such model/version)"
                ) from error
            raise PresetDownloadError(
                f"Kaggle download of {self.handle}/{filename} failed: "
                f"{type(error).__name__}: {message[:300]}"
            ) from error
        if self.version is None:
            cached_file(self, filename)  # pins the version kagglehub resolved
        return path

    def download_hint(self):
        handle = self.handle.removeprefix("kaggle://")
        return f"python -c \"import kagglehub; kagglehub.model_download('{handle}')\""


# ----------------------------------------------------------------------------
# Hugging Face Hub (huggingface_hub).


def hf_cache_dir():
    try:
        from huggingface_hub import constants

        return constants.HF_HUB_CACHE
    except ImportError:
        return os.path.join(os.path.expanduser("~"), ".cache", "huggingface", "hub")


def hf_endpoint():
    try:
        from huggingface_hub import constants

        return constants.ENDPOINT
    except ImportError:
        return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def parse_hf_handle(handle):
    """`[hf://]org/name[@revision]` → (repo_id, revision or None)."""
    handle = handle.removeprefix("hf://").strip("/")
    repo, _, revision = handle.partition("@")
    parts = repo.split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(
            f"Invalid Hugging Face handle {handle!r}: expected hf://org/name, e.g. "
            "hf://google/siglip2-base-patch16-224."
        )
    for part in parts:
        safe_relative_path(part)
    return repo, revision or None


class HuggingFaceFiles:
    """Fetches files of one Hugging Face model repo, cache first."""

    def __init__(self, handle):
        self.repo_id, self.revision = parse_hf_handle(handle)
        self.handle = f"hf://{self.repo_id}" + (f"@{self.revision}" if self.revision else "")

    def describe(self):
        return self.handle

    def cache_dir(self):
        return hf_cache_dir()

    def fetch(self, filename):
        filename = safe_relative_path(filename)
        try:
            import huggingface_hub
            from huggingface_hub.errors import (
                EntryNotFoundError,
                LocalEntryNotFoundError,
                RemoteEntryNotFoundError,
            )
        except ImportError as error:
            raise PresetDownloadError("the `huggingface_hub` package is not installed") from error
        cached = cached_file(self, filename)
        if cached:
            return cached
        kwargs = dict(repo_id=self.repo_id, filename=filename, revision=self.revision)
        try:
            return huggingface_hub.hf_hub_download(**kwargs, local_files_only=True)
        except (LocalEntryNotFoundError, EntryNotFoundError, FileNotFoundError):
            pass
        if huggingface_hub.constants.HF_HUB_OFFLINE:
            raise PresetDownloadError(
                f"{self.handle}/{filename} is not in the cache and HF_HUB_OFFLINE is set"
            )
        reason = probe(hf_endpoint())
        if reason:
            raise PresetDownloadError(f"cannot reach the Hugging Face Hub ({hf_endpoint()}): {reason}")
        try:
            return huggingface_hub.hf_hub_download(**kwargs, etag_timeout=hub_timeout())
        except RemoteEntryNotFoundError as error:
            raise HubFileNotFoundError(f"{self.handle} has no file {filename!r}") from error
        except Exception as error:  # offline after all, repo missing/gated, HTTP errors
            raise PresetDownloadError(
                f"download of {self.handle}/{filename} failed: "
                f"{type(error).__name__}: {str(error)[:300]}"
            ) from error

    def download_hint(self):
        revision = f" --revision {self.revision}" if self.revision else ""
        return f"hf download {self.repo_id}{revision}"


# ----------------------------------------------------------------------------
# The hub libraries' caches.


def cached_file(hub, filename):
    """Path of `filename` when `hub`'s client library has it completely in
    its cache, else None; no network access.

    An unversioned `KaggleFiles` takes its newest cached version and is
    pinned to it. Raises `HubFileNotFoundError` when huggingface_hub's cache
    remembers that the repo has no such file. This is the one place that
    relies on the libraries' private cache layouts (kagglehub's
    `models/<handle>/<version>/` folders with their `.complete` markers,
    huggingface_hub's `_CACHED_NO_EXIST`); if they change, it finds nothing
    and the file is downloaded.
    """
    if isinstance(hub, HuggingFaceFiles):
        import huggingface_hub

        cached = huggingface_hub.try_to_load_from_cache(
            repo_id=hub.repo_id, filename=filename, revision=hub.revision
        )
        if cached is getattr(huggingface_hub, "_CACHED_NO_EXIST", object()):
            raise HubFileNotFoundError(f"{hub.handle} has no file {filename!r}")
        return cached if isinstance(cached, str) and os.path.isfile(cached) else None
    model_dir = os.path.join(kaggle_cache_dir(), "models", *hub.parts)
    if hub.version is not None:
        versions = [hub.version]
    elif os.path.isdir(model_dir):
        versions = sorted((int(v) for v in os.listdir(model_dir) if v.isdigit()), reverse=True)
    else:
        versions = []
    for version in versions:
        # A whole downloaded bundle is marked `<version>.complete`, a single
        # downloaded file `.complete/<version>/<file>.complete`.
        path = os.path.join(model_dir, str(version), filename)
        markers = (
            os.path.join(model_dir, f"{version}.complete"),
            os.path.join(model_dir, ".complete", str(version), f"{filename}.complete"),
        )
        if os.path.isfile(path) and any(os.path.exists(m) for m in markers):
            hub.version = version  # later files come from the same version
            return path
    return None
