"""Per-browser state of ``ltl serve``: in memory only, isolated by an unguessable cookie, dropped when idle."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor


@dataclass
class Session:
    """One browser's examples and last results; nothing here is shared with another session."""

    token: str
    last_seen: float
    #: class name -> model inputs of its example photos (the encoder's features, or float images)
    photos: dict[str, list[Tensor]] = field(default_factory=dict)
    #: intent -> example texts
    texts: dict[str, list[str]] = field(default_factory=dict)
    #: bumped whenever the example photos change; the classifier fitted to them, by method and version
    photos_version: int = 0
    fitted: dict[str, tuple[int, Any]] = field(default_factory=dict)
    #: the last labelled photos as CSV rows (file, predicted_class, confidence, top3)
    photo_results: list[tuple[str, str, float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def photo_count(self) -> int:
        return sum(len(inputs) for inputs in self.photos.values())


class SessionStore:
    """Sessions by token; an idle one is dropped after ``timeout`` seconds, the oldest when there are
    ``max_sessions``."""

    def __init__(self, timeout: float = 1800.0, max_sessions: int = 200) -> None:
        self.timeout, self.max_sessions = timeout, max_sessions
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def get_or_create(self, token: str | None) -> tuple[Session, bool]:
        """The live session of ``token``, or a new one (``True`` when new)."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            session = self._sessions.get(token) if token else None
            if session is not None:
                session.last_seen = now
                return session, False
            if len(self._sessions) >= self.max_sessions:
                oldest = min(self._sessions.values(), key=lambda s: s.last_seen)
                del self._sessions[oldest.token]
            session = Session(secrets.token_urlsafe(32), now)
            self._sessions[session.token] = session
            return session, True

    def _expire(self, now: float) -> None:
        for token in [t for t, s in self._sessions.items() if now - s.last_seen > self.timeout]:
            del self._sessions[token]

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)
