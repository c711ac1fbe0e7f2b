"""The local usage log and `mochi stats`."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from mochi_cli.app import app
from mochi_index.usage import UsageLog, percentile, read_events, summarize


def _log(tmp_path, enabled: bool = True) -> UsageLog:
    return UsageLog(tmp_path, enabled=enabled)


def test_events_follow_the_documented_contract(tmp_path):
    log = _log(tmp_path)
    log.shown(id="a", path="x.py", language="python", prefix="p" * 5000, suffix="s" * 900, text="t",
              latency_ms=12.345, cached=False)
    assert log.accepted("a") and not log.accepted("a") and not log.rejected("zzz")
    events = list(read_events(tmp_path))
    assert [e["event"] for e in events] == ["shown", "accepted"]
    for e in events:
        assert {"ts", "event", "id", "path", "language", "prefix", "suffix", "text", "latency_ms"} <= e.keys()
    assert len(events[1]["prefix"]) == 2000 and len(events[1]["suffix"]) == 500
    assert events[1]["text"] == "t" and events[1]["latency_ms"] == 12.35 and events[1]["cached"] is False


def test_a_disabled_log_writes_nothing_and_bad_lines_are_skipped(tmp_path):
    log = _log(tmp_path, enabled=False)
    log.shown(id="a", path="x.py", language="python", prefix="", suffix="", text="t", latency_ms=1)
    assert list(read_events(tmp_path)) == []
    path = tmp_path / ".mochi" / "usage" / "events.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text('not json\n{"event": "shown", "language": "go", "latency_ms": 3}\n[1]\n')
    assert len(list(read_events(tmp_path))) == 1


def test_summary_gives_acceptance_per_language_and_latency_percentiles(tmp_path):
    log = _log(tmp_path)
    for i, (lang, lat) in enumerate([("python", 10), ("python", 20), ("python", 30), ("go", 40)]):
        log.shown(id=str(i), path="f", language=lang, prefix="", suffix="", text="x", latency_ms=lat)
    log.accepted("0")
    log.rejected("1")
    log.accepted("3")
    s = summarize(read_events(tmp_path))
    by = {x.language: x for x in s.languages}
    assert (by["python"].shown, by["python"].accepted, by["python"].rejected) == (3, 1, 1)
    assert by["go"].acceptance == 1.0 and abs(by["python"].acceptance - 1 / 3) < 1e-9
    assert s.latency_ms["p50"] == 20 and s.latency_ms["p99"] == 40
    assert percentile([], 50) == 0.0


def test_mochi_stats_prints_the_summary(tmp_path):
    (tmp_path / ".mochi").mkdir()
    log = _log(tmp_path)
    log.shown(id="a", path="x.py", language="python", prefix="", suffix="", text="t", latency_ms=5)
    log.accepted("a")
    runner = CliRunner()
    res = runner.invoke(app, ["stats", "--project", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["languages"][0] == {"language": "python", "shown": 1, "accepted": 1, "rejected": 0, "acceptance": 1.0}
    res = runner.invoke(app, ["stats", "--project", str(tmp_path)])
    assert res.exit_code == 0 and "python" in res.output and "100%" in res.output
