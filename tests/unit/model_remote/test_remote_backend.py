"""The remote backend's protocol handling against a scripted SSE server on 127.0.0.1.

The server is real (stdlib ``http.server`` in a thread); what it streams is scripted per test, so
stop rules, cancellation (the client closes the stream), timeouts and errors are exercised exactly.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mochi_model.backends.base import GenerationRequest
from mochi_model.backends.remote import RemoteBackend, RemoteTimeout, load_backend
from mochi_model.errors import BackendUnavailable, ModelError
from mochi_model.types import CancelToken

WAIT = 10.0  # bound on every wait for the other side


class Script:
    """What the scripted server sends, and what it saw."""

    def __init__(self) -> None:
        self.pieces: list[str] = ["def ", "add", "(a, b):", "\n    ", "return a + b", "\n"]
        self.finish = "stop"
        self.first_id = 0
        self.status = 200
        self.gate: threading.Event | None = None  # when given: wait for it before the second piece
        self.silent = False  # accept the request, never answer
        self.bodies: list[dict] = []
        self.closed = threading.Event()  # the client hung up mid-stream
        self.release = threading.Event()  # lets a silent handler finish at teardown


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            script.bodies.append(body)
            if not body.get("stream"):  # mlx_lm-style one-token probe: the token id comes back
                answer = {"choices": [{"index": 0, "text": script.pieces[0].lstrip(), "finish_reason": "length",
                                       "logprobs": {"content": [{"id": script.first_id, "logprob": -0.5}]}}]}
                self.send_response(200)
                self.end_headers()
                self.wfile.write(json.dumps(answer).encode())
                return
            if script.silent:
                script.release.wait(WAIT)
                return
            if script.status != 200:
                self.send_response(script.status)
                self.end_headers()
                self.wfile.write(b'{"error": "adapter nope is not loaded"}')
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            try:
                self.wfile.write(b": keepalive\n\n")
                for i, piece in enumerate(script.pieces):
                    if script.gate is not None and i == 1:
                        script.gate.wait(WAIT)
                    self._event({"choices": [{"index": 0, "text": piece, "finish_reason": None}]})
                self._event({"choices": [{"index": 0, "text": "", "finish_reason": script.finish}],
                             "usage": {"prompt_tokens": 7, "completion_tokens": len(script.pieces),
                                       "prompt_tokens_details": {"cached_tokens": 3}}})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except OSError:
                script.closed.set()

        def _event(self, obj: dict) -> None:
            self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
            self.wfile.flush()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    script.release.set()
    if script.gate is not None:
        script.gate.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(WAIT)


def _backend(url: str, **options: object) -> RemoteBackend:
    return load_backend(None, options={"url": url, **options})


def test_a_streamed_completion_comes_back_whole_with_usage(server):
    url, script = server
    seen: list[str] = []
    res = _backend(url).generate_text("def ", GenerationRequest(max_tokens=20, on_token=seen.append))
    assert res.text == "".join(script.pieces)
    assert "".join(seen) == res.text
    assert res.finish_reason == "eos" and res.prompt_tokens == 7 and res.cached_tokens == 3
    assert script.bodies[0]["stream"] is True and script.bodies[0]["prompt"] == "def "
    assert script.bodies[0]["model"] == "default_model" and len(script.bodies) == 1  # no probe for openai


def test_stop_sequences_cut_the_text_and_are_never_streamed(server):
    url, script = server
    seen: list[str] = []
    res = _backend(url).generate_text("x", GenerationRequest(stop=["\n    return"], on_token=seen.append))
    assert res.text == "def add(a, b):" and res.finish_reason == "stop"
    assert "".join(seen) == res.text
    # applied here: servers say "stop" for EOS and stop strings alike, so they are not sent
    assert "stop" not in script.bodies[0]


def test_stop_token_ids_and_a_stop_predicate_cut_the_text_too(server):
    url, script = server
    script.pieces = ["a = 1", "\n", "<|endoftext|>", "junk"]
    backend = _backend(url)
    eos = backend.token_id("<|endoftext|>")
    assert eos is not None
    res = backend.generate_text("x", GenerationRequest(stop_ids=[eos]))
    assert res.text == "a = 1\n" and res.finish_reason == "stop"
    res = backend.generate_text("x", GenerationRequest(stop_fn=lambda t: t.find("\n") if "\n" in t else None))
    assert res.text == "a = 1" and res.finish_reason == "stop"


def test_mlx_lm_servers_get_back_the_leading_space_their_detokenizer_drops(server, tiny_model_dir):
    url, script = server
    backend = load_backend(None, options={"url": url, "server": "mlx_lm", "tokenizer": str(tiny_model_dir)})
    script.pieces = ["greet", "()"]  # what mlx_lm.server streams when the first token is " greet"
    script.first_id = backend.encode(" greet")[0]
    assert backend.decode([script.first_id]) == " greet"
    assert backend.generate_text("x", GenerationRequest(max_tokens=4)).text == " greet()"
    probe, stream = script.bodies
    assert probe["stream"] is False and probe["logprobs"] is True and probe["max_tokens"] == 1
    script.first_id = backend.encode("greet")[0]
    assert backend.generate_text("x", GenerationRequest(max_tokens=4)).text == "greet()"


def test_cancelling_mid_stream_closes_the_connection(server):
    url, script = server
    script.gate = threading.Event()
    cancel = CancelToken()

    res = _backend(url).generate_text("x", GenerationRequest(cancel=cancel, on_token=lambda _: cancel.cancel()))
    assert res.finish_reason == "cancelled" and res.text == "def "
    script.gate.set()  # the server goes on streaming: it must find the connection closed
    assert script.closed.wait(WAIT), "the server kept streaming to a cancelled client"


def test_a_silent_server_raises_a_timeout_that_names_the_url(server):
    url, script = server
    script.silent = True
    with pytest.raises(RemoteTimeout, match=r"127\.0\.0\.1.*did not answer within 0\.3 s"):
        _backend(url, read_timeout_s=0.3).generate_text("x", GenerationRequest())


def test_an_unreachable_server_says_to_check_remote_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(BackendUnavailable, match="remote_url"):
            _backend(f"http://127.0.0.1:{port}").generate_text("x", GenerationRequest())


def test_an_http_error_carries_the_servers_message(server):
    url, script = server
    script.status = 404
    with pytest.raises(ModelError, match="HTTP 404.*adapter nope is not loaded"):
        _backend(url).generate_text("x", GenerationRequest())


@pytest.mark.parametrize(("flavor", "field", "value"), [
    ("vllm", "model", "team-python"), ("mlx_lm", "adapters", "team-python"),
    ("llama.cpp", "lora", [{"id": 2, "scale": 1.0}])])
def test_the_adapter_is_named_per_request_the_way_each_server_expects(server, flavor, field, value):
    url, script = server
    backend = _backend(url + "/v1", model="qwen-base", server=flavor)
    backend.generate_text("x", GenerationRequest(max_tokens=3))
    backend.use_adapter("2" if flavor == "llama.cpp" else "team-python")
    backend.generate_text("x", GenerationRequest(max_tokens=3, temperature=0.5, top_p=0.9, seed=1))
    first, second = script.bodies
    assert first["model"] == "qwen-base" and "adapters" not in first and "lora" not in first
    assert second[field] == value and second["max_tokens"] == 3
    assert second["temperature"] == 0.5 and second["top_p"] == 0.9 and second["seed"] == 1


def test_a_missing_url_or_bad_option_is_reported_with_the_config_key():
    with pytest.raises(ModelError, match=r"\[model\] remote_url"):
        load_backend(None, options={})
    with pytest.raises(ModelError, match="unknown remote backend option"):
        load_backend(None, options={"url": "http://127.0.0.1:1", "adaptor": "x"})
    with pytest.raises(ModelError, match="adapter_mode"):
        load_backend(None, options={"url": "http://127.0.0.1:1", "adapter_mode": "peft"})
    with pytest.raises(ModelError, match="vllm"):
        load_backend(None, options={"url": "http://127.0.0.1:1", "server": "tgi"})


def test_without_a_local_tokenizer_the_fim_tokens_are_known_and_counts_are_estimated():
    from mochi_model.fim import detect_fim_format

    backend = load_backend(None, options={"url": "http://127.0.0.1:1"})
    assert detect_fim_format(backend.tokenizer.get_vocab()).name == "qwen"
    assert len(backend.encode("x" * 40)) == 10


def test_a_project_configured_for_remote_completes_through_the_engine(server, tmp_path):
    from mochi_core.config import config_from_dict
    from mochi_model.loader import load_engine

    url, script = server
    script.pieces = ["a + b", "\n", "\n", "print(1)"]
    config, problems = config_from_dict({"model": {"backend": "remote", "remote_url": url}})
    assert not problems
    engine = load_engine(config, tmp_path, adapters=[])
    comp = engine.complete_fim("def add(a, b):\n    return ", "\n", max_tokens=16)
    assert comp.text == "a + b" and comp.extra["fim_format"] == "qwen"
    sent = script.bodies[0]
    assert sent["prompt"] == "<|fim_prefix|>def add(a, b):\n    return <|fim_suffix|>\n<|fim_middle|>"
    from mochi_model.presets import get_preset

    # the default preset, named the way vLLM serves it (its hub repo id)
    assert sent["model"] == get_preset(config.model.preset).repos["torch"] and "/" in sent["model"]


def test_mlx_lm_servers_are_asked_for_their_own_model_and_adapters_need_its_path(server):
    url, script = server
    backend = load_backend(None, options={"url": url, "server": "mlx_lm"})
    backend.generate_text("x", GenerationRequest(max_tokens=2))
    assert script.bodies[0]["model"] == "default_model"
    backend.use_adapter("/adapters/team")
    with pytest.raises(ModelError, match="--model"):
        backend.generate_text("x", GenerationRequest(max_tokens=2))


def test_the_remote_config_keys_reach_the_server(server, tmp_path):
    from mochi_core.config import config_from_dict
    from mochi_model.loader import load_engine

    url, script = server
    script.pieces = ["a + b", "\n"]
    config, problems = config_from_dict({"model": {
        "backend": "remote", "remote_url": url, "remote_server": "vllm", "remote_model": "team-base",
        "remote_adapter": "acme-merged"}})
    assert not problems
    engine = load_engine(config, tmp_path, adapters=[])
    engine.complete_fim("def add(a, b):\n    return ", "\n", max_tokens=8)
    assert script.bodies[0]["model"] == "acme-merged"  # vLLM serves a LoRA under its own model name
    config.model.remote_adapter = ""
    load_engine(config, tmp_path, adapters=[]).complete_fim("x = ", "\n", max_tokens=4)
    assert script.bodies[-1]["model"] == "team-base"
