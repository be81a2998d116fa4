"""Fixtures for offline tests: `no_network` makes every network connection fail
at once, like a machine without internet, and records the attempts;
`empty_caches` points both hub caches at empty folders."""

import socket

import pytest


class _Attempts:
    def __init__(self):
        self.attempts = []


@pytest.fixture
def no_network(monkeypatch):
    from keras_siglip2.presets import hubs

    record = _Attempts()
    monkeypatch.setattr(hubs, "_recent_failures", {})  # probe every hub afresh

    def refuse(*args, **kwargs):
        record.attempts.append(args[:1])
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (test: offline)")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return record


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    import huggingface_hub.constants

    kaggle, hf = tmp_path / "kaggle-cache", tmp_path / "hf-cache"
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(kaggle))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return kaggle, hf


@pytest.fixture
def stalled_server():
    """A local TCP server that accepts connections and never answers (a
    stalled proxy or hub): yields `(url, accepted connections)`."""
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.1)
    accepted, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:  # the 0.1 s timeout: look at `stop` again
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()
