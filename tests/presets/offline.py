"""A fixture that makes every network connection fail at once, like a machine
without internet, and records the attempts."""

import socket

import pytest


class _Attempts:
    def __init__(self):
        self.attempts = []


@pytest.fixture
def no_network(monkeypatch):
    record = _Attempts()

    def refuse(*args, **kwargs):
        record.attempts.append(args[:1])
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (test: offline)")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return record
