"""Webhooks: `video.completed` and `video.failed`, signed with a per-endpoint secret, delivered with retries.

Signatures follow Standard Webhooks, as OpenAI's do, so `openai.OpenAI().webhooks.verify_signature`
checks them: headers `webhook-id` (the event id, the same on every retry), `webhook-timestamp` (unix
seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with the
base64 bytes after the secret's `whsec_` prefix. Deliveries live in SQLite, so a restart does not lose them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Mapping

import httpx

from sora_cli.server.store import Store, new_id

log = logging.getLogger("sora_cli.server.webhooks")
EVENT_TYPES = ("video.completed", "video.failed")


class BlockedAddress(ValueError):
    """A webhook URL whose host is (or resolves to) an address the server will not post to."""


def check_url(url: str, allow_private: bool = False) -> None:
    """Refuse a webhook URL that is not http(s) to a public address; every address its host resolves to counts.

    Checked when the endpoint is registered and again before each delivery (a name can be re-pointed after
    registration); redirects are never followed.
    """
    import ipaddress
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedAddress("a webhook URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise BlockedAddress("a webhook URL must not carry a user name or password")
    if allow_private:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)}
    except (OSError, ValueError, UnicodeError):
        raise BlockedAddress(f"the webhook host {parts.hostname!r} cannot be resolved") from None
    for address in found:
        ip = ipaddress.ip_address(address.split("%")[0])
        mapped = getattr(ip, "ipv4_mapped", None)
        if not (mapped or ip).is_global:
            raise BlockedAddress(f"the webhook host {parts.hostname!r} is a loopback, private or reserved address "
                                 f"({address}); the server's admin can allow those")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()


def signature(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{event_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, tolerance: int = 300) -> bool:
    """For receivers: the body was signed with this secret, recently."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        event_id, timestamp = lowered["webhook-id"], int(lowered["webhook-timestamp"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = signature(secret, event_id, timestamp, body)
    return any(hmac.compare_digest(expected, given) for given in lowered.get("webhook-signature", "").split())


def enqueue(store: Store, job: dict) -> int:
    """Queue the event for a finished job to each of its owner's endpoints that asked for it."""
    kind = "video.completed" if job["status"] == "completed" else "video.failed"
    event_id = new_id("evt_")
    payload = json.dumps({"id": event_id, "object": "event", "created_at": int(time.time()), "type": kind,
                          "data": {"id": job["id"]}}, separators=(",", ":"))
    count = 0
    for hook in store.webhooks(job["user_id"]):
        if kind in json.loads(hook["event_types"]):
            store.add_delivery(event_id, hook["id"], payload)
            count += 1
    return count


class Deliverer:
    """One thread posting due deliveries; a failed one is retried after the next backoff step."""

    def __init__(self, store: Store, backoff: tuple[float, ...], timeout: float, transport=None,
                 allow_private: bool = False):
        self.store, self.backoff, self.timeout, self.transport = store, backoff, timeout, transport
        self.allow_private = allow_private
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sora-webhooks", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def _loop(self) -> None:
        with httpx.Client(timeout=self.timeout, transport=self.transport, follow_redirects=False) as client:
            while not self._stop.is_set():
                due = self.store.due_deliveries()
                for delivery in due:
                    self._deliver(client, delivery)
                if not due:  # workers (other processes) queue deliveries too: look twice a second
                    self._wake.wait(0.5)
                    self._wake.clear()

    def _deliver(self, client, delivery: dict) -> None:
        body = delivery["payload"].encode()
        timestamp = int(time.time())
        headers = {"content-type": "application/json", "user-agent": "sora-cli-webhooks/1",
                   "webhook-id": delivery["event_id"], "webhook-timestamp": str(timestamp),
                   "webhook-signature": signature(delivery["secret"], delivery["event_id"], timestamp, body)}
        attempts = delivery["attempts"] + 1
        try:
            check_url(delivery["url"], self.allow_private)
            response = client.post(delivery["url"], content=body, headers=headers)
            error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        except Exception as exc:  # any network failure (or a blocked address) is a retry, never a crash
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            self.store.delivery_result(delivery["seq"], "delivered", attempts, time.time(), None)
        elif attempts > len(self.backoff):
            log.warning("webhook %s to %s failed for good: %s", delivery["event_id"], delivery["url"], error)
            self.store.delivery_result(delivery["seq"], "failed", attempts, time.time(), error)
        else:
            self.store.delivery_result(delivery["seq"], "pending", attempts,
                                       time.time() + self.backoff[attempts - 1], error)
