"""`evaluate(..., ai=...)` against a local server speaking Ollama's `/api/chat` as its API
documents it (POST, `stream: false`, a `message` in the reply). No root, no network."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import kerno
from conftest import INCIDENT


@pytest.fixture
def ollama() -> Iterator[Tuple[str, List[Dict[str, Any]]]]:
    seen: List[Dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            assert self.path == "/api/chat", self.path
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            seen.append(body)
            user = body["messages"][-1]["content"]
            # Echo the first placeholder back, as a model would name the subject.
            start = user.find("<comm-")
            name = user[start : user.find(">", start) + 1] if start >= 0 else "nothing"
            reply = json.dumps(
                {
                    "model": body["model"],
                    "created_at": "2026-12-02T10:00:00Z",
                    "message": {"role": "assistant", "content": f"Start with {name}."},
                    "done": True,
                    "done_reason": "stop",
                }
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def settings(endpoint: str, tmp_path: Any, **kw: Any) -> Dict[str, Any]:
    return {"provider": "ollama", "endpoint": endpoint, "cache_ttl": "0s", "cache_dir": str(tmp_path), **kw}


def test_analysis_in_redacted_mode_maps_names_back(ollama: Tuple[str, List[Dict[str, Any]]], tmp_path: Any) -> None:
    url, seen = ollama
    signals = kerno.load_signals(INCIDENT)
    plain = kerno.evaluate(signals)
    report = kerno.evaluate(signals, ai=settings(url, tmp_path, privacy="redacted"))
    a = report.analysis
    assert a is not None and a["status"] == "ok", a
    assert (a["provider"], a["model"], a["privacy"]) == ("ollama", "llama3.1", "redacted")
    # The model named <comm-1>; the user reads the real name.
    assert "<comm-" not in a["text"] and a["text"].startswith("Start with ")
    assert a["text"][len("Start with ") : -1] in json.dumps(report.to_dict())
    content = seen[0]["messages"][-1]["content"]
    assert seen[0]["stream"] is False
    for f in plain.findings:
        proc = f.subject.get("process")
        if proc:
            assert f"pid {proc['pid']}" not in content, content
            assert proc["comm"] in report.render()
    assert report.render().startswith(plain.render())
    assert plain.analysis is None


def test_a_failure_is_a_status_not_an_exception(tmp_path: Any) -> None:
    signals = kerno.load_signals(INCIDENT)
    report = kerno.evaluate(signals, ai=settings("http://127.0.0.1:9", tmp_path, timeout="2s"))
    a = report.analysis
    assert a is not None and a["status"] == "failed" and "cannot reach" in a["reason"], a
    assert report.render() == kerno.evaluate(signals).render()


def test_bad_settings_raise(tmp_path: Any) -> None:
    signals = kerno.load_signals(INCIDENT)
    with pytest.raises(ValueError, match="privacy"):
        kerno.evaluate(signals, ai={"privacy": "everything"})
    with pytest.raises(ValueError, match="unknown field"):
        kerno.evaluate(signals, ai={"provder": "ollama"})
    with pytest.raises(ValueError, match="KERNO_AI_API_KEY"):
        kerno.evaluate(signals, ai={"provider": "ollama", "api_key": "sk-nope"})
    with pytest.raises(TypeError):
        kerno.evaluate(signals, ai="ollama")  # type: ignore[arg-type]
