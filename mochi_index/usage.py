"""Local log of shown/accepted/rejected suggestions (`.mochi/usage/events.jsonl`).

Owned by the LSP issue. Contract (one JSON object per line):
``{"ts": float, "event": "shown"|"accepted"|"rejected", "id": str, "path": str, "language": str,
"prefix": str (tail of prefix), "suffix": str (head of suffix), "text": str, "latency_ms": float}``.
Training reads accepted events as extra samples and rejected ones as hard negatives.

``accepted``/``rejected`` events repeat the fields of their ``shown`` event (same ``id``), so a
reader never has to join lines. Extra keys may appear (today ``model``: the engine's model id);
readers must ignore keys they do not know. Nothing leaves the machine.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mochi_core.paths import usage_dir

logger = logging.getLogger(__name__)

EVENTS_FILE = "events.jsonl"
PREFIX_KEEP = 2000  # characters of prefix kept per event (enough for a training sample's tail)
SUFFIX_KEEP = 500


@dataclass(kw_only=True)
class UsageEvent:
    ts: float
    event: str  # shown | accepted | rejected
    id: str
    path: str = ""
    language: str = ""
    prefix: str = ""
    suffix: str = ""
    text: str = ""
    latency_ms: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        extra = data.pop("extra")
        data.update(extra)
        return json.dumps(data, ensure_ascii=False)


def events_path(root: Path) -> Path:
    return usage_dir(root) / EVENTS_FILE


class UsageLog:
    """Appends usage events for one project; remembers shown events so accept/reject can echo them.

    Args:
        root: project root; events go to ``<root>/.mochi/usage/events.jsonl``.
        enabled: when False every call is a no-op (``[server] log_usage = false``).
    """

    def __init__(self, root: Path, *, enabled: bool = True, remember: int = 256) -> None:
        self.root = Path(root)
        self.enabled = enabled
        self._remember = remember
        self._shown: dict[str, UsageEvent] = {}
        self._lock = threading.Lock()

    def shown(self, *, id: str, path: str, language: str, prefix: str, suffix: str, text: str,
              latency_ms: float, **extra: object) -> None:
        ev = UsageEvent(ts=time.time(), event="shown", id=id, path=path, language=language,
                        prefix=prefix[-PREFIX_KEEP:], suffix=suffix[:SUFFIX_KEEP], text=text,
                        latency_ms=round(latency_ms, 2), extra=dict(extra))
        with self._lock:
            self._shown[id] = ev
            while len(self._shown) > self._remember:
                self._shown.pop(next(iter(self._shown)))
        self._append(ev)

    def accepted(self, id: str) -> bool:
        """Record that suggestion ``id`` was accepted; False when the id is unknown."""
        return self._resolve(id, "accepted")

    def rejected(self, id: str) -> bool:
        """Record that suggestion ``id`` was typed over; False when unknown or already resolved."""
        return self._resolve(id, "rejected")

    def _resolve(self, id: str, event: str) -> bool:
        with self._lock:
            shown = self._shown.pop(id, None)
        if shown is None:
            return False
        ev = UsageEvent(**{**asdict(shown), "ts": time.time(), "event": event})
        self._append(ev)
        return True

    def _append(self, ev: UsageEvent) -> None:
        if not self.enabled:
            return
        path = events_path(self.root)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, path.open("a", encoding="utf-8") as fh:
                fh.write(ev.to_json() + "\n")
        except OSError as exc:  # a read-only project must not break completions
            logger.warning("cannot write usage log %s: %s", path, exc)


def read_events(root: Path) -> Iterator[dict[str, object]]:
    """Yield every event of the project's log (bad lines are skipped)."""
    path = events_path(root)
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(data, dict) and "event" in data:
                yield data


@dataclass(kw_only=True)
class LanguageStats:
    language: str
    shown: int = 0
    accepted: int = 0
    rejected: int = 0

    @property
    def acceptance(self) -> float:
        return self.accepted / self.shown if self.shown else 0.0


@dataclass(kw_only=True)
class UsageSummary:
    languages: list[LanguageStats]
    latency_ms: dict[str, float]  # p50, p90, p95, p99 over shown events
    total_shown: int
    total_accepted: int

    def to_dict(self) -> dict[str, object]:
        return {
            "languages": [{**asdict(s), "acceptance": round(s.acceptance, 4)} for s in self.languages],
            "latency_ms": self.latency_ms,
            "total_shown": self.total_shown,
            "total_accepted": self.total_accepted,
        }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); 0.0 for an empty list."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(events: Iterator[dict[str, object]] | list[dict[str, object]]) -> UsageSummary:
    """Acceptance per language and latency percentiles of shown suggestions."""
    per: dict[str, LanguageStats] = {}
    latencies: list[float] = []
    for ev in events:
        lang = str(ev.get("language") or "unknown")
        stats = per.setdefault(lang, LanguageStats(language=lang))
        kind = ev.get("event")
        if kind == "shown":
            stats.shown += 1
            lat = ev.get("latency_ms")
            if isinstance(lat, (int, float)):
                latencies.append(float(lat))
        elif kind == "accepted":
            stats.accepted += 1
        elif kind == "rejected":
            stats.rejected += 1
    langs = sorted(per.values(), key=lambda s: (-s.shown, s.language))
    return UsageSummary(
        languages=langs,
        latency_ms={f"p{q}": round(percentile(latencies, q), 2) for q in (50, 90, 95, 99)},
        total_shown=sum(s.shown for s in langs),
        total_accepted=sum(s.accepted for s in langs),
    )
