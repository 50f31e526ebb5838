"""Self-test of tests/fakes/fake_llm.py: each provider's wire format, stream
and non-stream, the control API and the faults. Uses only http.client,
urllib and raw sockets, so the fake is known-good before the daemon's HTTP
client is tested against it."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FAKES = os.path.join(os.path.dirname(HERE), "fakes")
sys.path.insert(0, FAKES)

from fake_llm import (DEFAULT_RESULT, FakeLLM, FakeLLMProcess, INVALID_UTF8,  # noqa: E402
                      default_content)

MSGS = [{"role": "user", "content": "write a launch plan"}]
SCHEMA = {"type": "object", "properties": {"improved_prompt": {"type": "string"}}}


def conn(fake, timeout=10):
    return http.client.HTTPConnection("127.0.0.1", fake.port, timeout=timeout)


def call(fake, method, path, body=None, headers=None, c=None):
    """One request; returns (status, headers (lower-case keys), body bytes)."""
    own = c is None
    c = c or conn(fake)
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    c.request(method, path, body=data, headers=hdrs)
    r = c.getresponse()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    if own:
        c.close()
    return out


def sse(raw):
    """Parses an SSE body into a list of (event, data) pairs."""
    text = raw.decode("utf-8").replace("\r\n", "\n")
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        ev, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                ev = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        events.append((ev, "\n".join(data)))
    return events


def raw_request(fake, path, body, extra=""):
    """Opens a socket and sends a POST by hand; returns the socket."""
    data = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", fake.port), timeout=5)
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%s"
               "Content-Length: %d\r\n\r\n" % (path, extra, len(data))).encode() + data)
    return s


class FakeCase(unittest.TestCase):
    provider = None

    def setUp(self):
        self.fake = FakeLLM(self.provider).start()

    def tearDown(self):
        self.fake.stop()


# --------------------------------------------------------------------------
class OllamaTest(FakeCase):
    provider = "ollama"

    def chat(self, **kw):
        body = {"model": "llama3.2:3b", "messages": MSGS, "format": SCHEMA,
                "options": {"num_ctx": 4096}, "keep_alive": "5m"}
        body.update(kw)
        return call(self.fake, "POST", "/api/chat", body)

    def test_non_stream(self):
        st, h, raw = self.chat(stream=False)
        self.assertEqual(st, 200)
        self.assertEqual(int(h["content-length"]), len(raw))
        d = json.loads(raw)
        self.assertTrue(d["done"])
        self.assertEqual(d["done_reason"], "stop")
        self.assertEqual(d["message"]["role"], "assistant")
        self.assertEqual(json.loads(d["message"]["content"]), DEFAULT_RESULT)
        self.assertGreater(d["eval_count"], 0)
        self.assertGreater(d["prompt_eval_count"], 0)
        req = self.fake.requests()[0]
        self.assertEqual(req["body"]["options"]["num_ctx"], 4096)
        self.assertEqual(req["headers"]["content-type"], "application/json")

    def test_stream_is_default_and_chunked_ndjson(self):
        st, h, raw = self.chat()        # no "stream" key: Ollama streams
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "application/x-ndjson")
        self.assertEqual(h.get("transfer-encoding"), "chunked")
        lines = [json.loads(x) for x in raw.decode().splitlines()]
        self.assertTrue(all(not x["done"] for x in lines[:-1]))
        self.assertTrue(lines[-1]["done"])
        self.assertEqual(lines[-1]["done_reason"], "stop")
        self.assertEqual(lines[-1]["message"]["content"], "")
        self.assertIn("eval_count", lines[-1])
        text = "".join(x["message"]["content"] for x in lines)
        self.assertEqual(text, default_content())
        pieces = [x["message"]["content"] for x in lines[:-1]]
        self.assertTrue(all(len(p) <= 7 for p in pieces))
        self.assertTrue(any(p.endswith("\\") for p in pieces), "no split mid-escape")

    def test_tags_generate_version(self):
        st, _, raw = call(self.fake, "GET", "/api/tags")
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(raw)["models"][0]["name"], "llama3.2:3b")
        st, _, raw = call(self.fake, "POST", "/api/generate", {"model": "llama3.2:3b", "prompt": ""})
        d = json.loads(raw)
        self.assertEqual((st, d["done"], d["response"]), (200, True, ""))
        st, _, raw = call(self.fake, "GET", "/api/version")
        self.assertIn("version", json.loads(raw))

    def test_model_not_found_and_missing_model(self):
        self.fake.configure(models=["llama3.2:3b"])
        st, _, raw = self.chat(model="nope:1b", stream=False)
        self.assertEqual(st, 404)
        self.assertEqual(json.loads(raw), {"error": "model \"nope:1b\" not found, try pulling it first"})
        st, _, raw = call(self.fake, "POST", "/api/chat", {"messages": MSGS})
        self.assertEqual((st, json.loads(raw)), (400, {"error": "model is required"}))

    def test_stream_error_line(self):
        self.fake.configure(fault="stream_error")
        st, _, raw = self.chat(stream=True)
        self.assertEqual(st, 200)
        last = json.loads(raw.decode().splitlines()[-1])
        self.assertIn("error", last)

    def test_think_fault_is_go_escaped(self):
        self.fake.configure(fault="think")
        st, _, raw = self.chat(stream=False)
        self.assertIn(b"\\u003cthink\\u003e", raw)     # Go's json escapes < and >
        content = json.loads(raw)["message"]["content"]
        self.assertTrue(content.startswith("<think>some reasoning"))
        self.assertEqual(json.loads(content.split("</think>\n", 1)[1]), DEFAULT_RESULT)

    def test_think_request_field(self):
        st, _, raw = self.chat(stream=False, think=True)
        self.assertIn("thinking", json.loads(raw)["message"])

    def test_truncated(self):
        self.fake.configure(fault="truncated")
        lines = [json.loads(x) for x in self.chat()[2].decode().splitlines()]
        self.assertEqual(lines[-1]["done_reason"], "length")
        text = "".join(x["message"]["content"] for x in lines)
        self.assertLess(len(text), len(default_content()))
        self.assertRaises(ValueError, json.loads, text)


# --------------------------------------------------------------------------
class OpenAITest(FakeCase):
    provider = "openai"
    KEY = {"Authorization": "Bearer sk-test-123456789"}

    def chat(self, headers=None, **kw):
        body = {"model": "gpt-4o-mini", "messages": MSGS,
                "response_format": {"type": "json_schema",
                                    "json_schema": {"name": "prompt", "strict": True, "schema": SCHEMA}}}
        body.update(kw)
        return call(self.fake, "POST", "/v1/chat/completions", body, headers)

    def test_non_stream(self):
        st, h, raw = self.chat()
        self.assertEqual(st, 200)
        d = json.loads(raw)
        self.assertEqual(d["object"], "chat.completion")
        ch = d["choices"][0]
        self.assertEqual(ch["finish_reason"], "stop")
        self.assertEqual(json.loads(ch["message"]["content"]), DEFAULT_RESULT)
        u = d["usage"]
        self.assertEqual(u["total_tokens"], u["prompt_tokens"] + u["completion_tokens"])

    def test_stream_with_usage(self):
        st, h, raw = self.chat(stream=True, stream_options={"include_usage": True})
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/event-stream"))
        self.assertEqual(h.get("transfer-encoding"), "chunked")
        self.assertTrue(raw.endswith(b"data: [DONE]\n\n"))
        evs = [d for _, d in sse(raw)]
        self.assertEqual(evs[-1], "[DONE]")
        chunks = [json.loads(d) for d in evs[:-1]]
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertIn("total_tokens", chunks[-1]["usage"])
        self.assertEqual(chunks[-2]["choices"][0]["finish_reason"], "stop")
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
        self.assertEqual(text, default_content())

    def test_stream_without_usage(self):
        evs = sse(self.chat(stream=True)[2])
        last = json.loads(evs[-2][1])
        self.assertEqual(last["choices"][0]["finish_reason"], "stop")
        self.assertNotIn("usage", last)

    def test_auth(self):
        self.fake.configure(api_key="sk-test-123456789")
        st, _, raw = self.chat(headers={"Authorization": "Bearer wrong-key-xxxx"})
        self.assertEqual(st, 401)
        e = json.loads(raw)["error"]
        self.assertEqual((e["type"], e["code"]), ("invalid_request_error", "invalid_api_key"))
        st, _, raw = self.chat()
        self.assertEqual(st, 401)
        self.assertEqual(self.chat(headers=self.KEY)[0], 200)
        st, _, raw = call(self.fake, "GET", "/v1/models", headers=self.KEY)
        d = json.loads(raw)
        self.assertEqual((d["object"], d["data"][0]["object"]), ("list", "model"))

    def test_rate_limit_once(self):
        self.fake.configure(fault="rate_limit_once")
        st, h, raw = self.chat()
        self.assertEqual((st, h["retry-after"]), (429, "1"))
        self.assertEqual(json.loads(raw)["error"]["code"], "rate_limit_exceeded")
        self.assertEqual(self.chat()[0], 200)

    def test_truncated_and_stream_error(self):
        self.fake.configure(fault="truncated")
        d = json.loads(self.chat()[2])
        self.assertEqual(d["choices"][0]["finish_reason"], "length")
        self.fake.configure(fault="stream_error")
        st, _, raw = self.chat(stream=True)
        self.assertEqual(st, 200)
        self.assertIn("error", json.loads(sse(raw)[-1][1]))
        self.assertNotIn(b"[DONE]", raw)

    def test_bad_schema_request(self):
        st, _, raw = self.chat(response_format={"type": "json_schema", "json_schema": {"schema": SCHEMA}})
        self.assertEqual(st, 400)
        self.assertIn("json_schema.name", json.loads(raw)["error"]["message"])

    def test_keep_alive_reuses_connection(self):
        c = conn(self.fake)
        for _ in range(3):
            st, _, _ = call(self.fake, "POST", "/v1/chat/completions",
                            {"model": "gpt-4o-mini", "messages": MSGS, "stream": True}, c=c)
            self.assertEqual(st, 200)
        c.close()
        s = self.fake.stats()
        self.assertEqual((s["connections"], s["requests"]), (1, 3))
        self.assertEqual(len({r["connection"] for r in self.fake.requests()}), 1)

    def test_escape_unicode(self):
        self.fake.configure(escape_unicode=True)
        raw = self.chat()[2]
        self.assertTrue(all(b < 0x80 for b in raw))
        # Both levels: the wire escapes the content's own \\ud83d\\ude80.
        self.assertIn(b"\\\\ud83d\\\\ude80", raw)
        content = json.loads(raw)["choices"][0]["message"]["content"]
        self.assertEqual(json.loads(content), DEFAULT_RESULT)
        self.fake.configure(escape_unicode="wire")
        raw = self.chat()[2]
        self.assertIn(b"\\ud83d\\ude80", raw)
        self.assertEqual(json.loads(json.loads(raw)["choices"][0]["message"]["content"]), DEFAULT_RESULT)


# --------------------------------------------------------------------------
class AnthropicTest(FakeCase):
    provider = "anthropic"
    H = {"anthropic-version": "2023-06-01", "x-api-key": "sk-ant-test"}

    def msg(self, headers=None, **kw):
        body = {"model": "claude-3-5-haiku-20241022", "max_tokens": 1024, "system": "be good",
                "messages": MSGS,
                "tools": [{"name": "emit_prompt", "description": "d", "input_schema": SCHEMA}],
                "tool_choice": {"type": "tool", "name": "emit_prompt"}}
        body.update(kw)
        return call(self.fake, "POST", "/v1/messages", body, self.H if headers is None else headers)

    def test_non_stream_tool_use(self):
        st, _, raw = self.msg()
        self.assertEqual(st, 200)
        d = json.loads(raw)
        self.assertEqual((d["type"], d["stop_reason"]), ("message", "tool_use"))
        block = d["content"][0]
        self.assertEqual((block["type"], block["name"]), ("tool_use", "emit_prompt"))
        self.assertEqual(block["input"], DEFAULT_RESULT)
        self.assertIn("output_tokens", d["usage"])

    def test_stream_events(self):
        st, h, raw = self.msg(stream=True)
        self.assertEqual(st, 200)
        self.assertEqual(h.get("transfer-encoding"), "chunked")
        evs = sse(raw)
        names = [e for e, _ in evs]
        self.assertEqual(names[:3], ["message_start", "content_block_start", "ping"])
        self.assertEqual(names[-3:], ["content_block_stop", "message_delta", "message_stop"])
        for e, d in evs:
            if e != "ping":
                self.assertEqual(json.loads(d)["type"], e)
        start = json.loads(evs[1][1])["content_block"]
        self.assertEqual((start["type"], start["name"], start["input"]), ("tool_use", "emit_prompt", {}))
        partial = "".join(json.loads(d)["delta"]["partial_json"] for e, d in evs
                          if e == "content_block_delta")
        self.assertEqual(json.loads(partial), DEFAULT_RESULT)
        md = json.loads(evs[-2][1])
        self.assertEqual(md["delta"]["stop_reason"], "tool_use")

    def test_headers_checked(self):
        self.fake.configure(api_key="sk-ant-test")
        st, _, raw = self.msg(headers={"anthropic-version": "2023-06-01", "x-api-key": "bad"})
        self.assertEqual(st, 401)
        self.assertEqual(json.loads(raw), {"type": "error", "error": {
            "type": "authentication_error", "message": "invalid x-api-key"}})
        st, _, raw = self.msg(headers={"x-api-key": "sk-ant-test"})
        self.assertEqual(st, 400)
        self.assertIn("anthropic-version", json.loads(raw)["error"]["message"])
        st, _, raw = call(self.fake, "GET", "/v1/models", headers=self.H)
        d = json.loads(raw)
        self.assertEqual((d["has_more"], d["data"][0]["type"]), (False, "model"))

    def test_request_validation(self):
        body = {"model": "claude-x", "messages": MSGS}
        st, _, raw = call(self.fake, "POST", "/v1/messages", body, self.H)
        self.assertEqual(st, 400)
        self.assertIn("max_tokens", json.loads(raw)["error"]["message"])
        st, _, raw = self.msg(messages=[{"role": "system", "content": "x"}] + MSGS)
        self.assertEqual(st, 400)

    def test_stream_error_and_truncated(self):
        self.fake.configure(fault="stream_error")
        evs = sse(self.msg(stream=True)[2])
        self.assertEqual(evs[-1][0], "error")
        self.assertEqual(json.loads(evs[-1][1])["error"]["type"], "overloaded_error")
        self.fake.configure(fault="truncated")
        d = json.loads(self.msg()[2])
        self.assertEqual(d["stop_reason"], "max_tokens")
        self.assertLess(len(d["content"][0]["input"]), len(DEFAULT_RESULT))
        evs = sse(self.msg(stream=True)[2])
        self.assertEqual(json.loads(evs[-2][1])["delta"]["stop_reason"], "max_tokens")

    def test_unavailable_once_and_overloaded(self):
        self.fake.configure(fault="unavailable_once")
        st, _, raw = self.msg()
        self.assertEqual(st, 503)
        self.assertEqual(json.loads(raw)["error"]["type"], "overloaded_error")
        self.assertEqual(self.msg()[0], 200)
        self.fake.configure(fault="overloaded_once")
        self.assertEqual(self.msg()[0], 529)

    def test_prose_falls_back_to_text_block(self):
        self.fake.configure(fault="prose_only")
        d = json.loads(self.msg()[2])
        self.assertEqual((d["content"][0]["type"], d["stop_reason"]), ("text", "end_turn"))


# --------------------------------------------------------------------------
class GeminiTest(FakeCase):
    provider = "gemini"
    BODY = {"contents": [{"role": "user", "parts": [{"text": "idea"}]}],
            "systemInstruction": {"parts": [{"text": "be good"}]},
            "generationConfig": {"responseMimeType": "application/json", "responseSchema": SCHEMA}}
    H = {"x-goog-api-key": "AIza-test"}

    def test_non_stream(self):
        st, _, raw = call(self.fake, "POST", "/v1beta/models/gemini-2.0-flash:generateContent",
                          self.BODY, self.H)
        self.assertEqual(st, 200)
        d = json.loads(raw)
        c = d["candidates"][0]
        self.assertEqual((c["finishReason"], c["content"]["role"]), ("STOP", "model"))
        self.assertEqual(json.loads(c["content"]["parts"][0]["text"]), DEFAULT_RESULT)
        self.assertIn("totalTokenCount", d["usageMetadata"])

    def test_sse_stream(self):
        st, h, raw = call(self.fake, "POST",
                          "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
                          self.BODY, self.H)
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "text/event-stream")
        self.assertTrue(raw.endswith(b"}\r\n\r\n"))
        self.assertNotIn(b"[DONE]", raw)
        objs = [json.loads(d) for _, d in sse(raw)]
        self.assertTrue(all("finishReason" not in o["candidates"][0] for o in objs[:-1]))
        self.assertEqual(objs[-1]["candidates"][0]["finishReason"], "STOP")
        self.assertIn("candidatesTokenCount", objs[-1]["usageMetadata"])
        text = "".join(o["candidates"][0]["content"]["parts"][0]["text"] for o in objs)
        self.assertEqual(text, default_content())

    def test_array_stream_without_alt(self):
        st, _, raw = call(self.fake, "POST",
                          "/v1beta/models/gemini-2.0-flash:streamGenerateContent", self.BODY)
        arr = json.loads(raw)
        self.assertEqual("".join(o["candidates"][0]["content"]["parts"][0]["text"] for o in arr),
                         default_content())

    def test_keys_and_errors(self):
        self.fake.configure(api_key="AIza-test")
        path = "/v1beta/models/gemini-2.0-flash:generateContent"
        st, _, raw = call(self.fake, "POST", path, self.BODY)
        self.assertEqual((st, json.loads(raw)["error"]["status"]), (403, "PERMISSION_DENIED"))
        st, _, raw = call(self.fake, "POST", path + "?key=bad", self.BODY)
        self.assertEqual((st, json.loads(raw)["error"]["status"]), (400, "INVALID_ARGUMENT"))
        self.assertEqual(call(self.fake, "POST", path + "?key=AIza-test", self.BODY)[0], 200)
        self.fake.configure(fault="model_not_found")
        st, _, raw = call(self.fake, "POST", path, self.BODY)
        self.assertEqual(json.loads(raw)["error"]["code"], 404)
        self.assertEqual(json.loads(raw)["error"]["status"], "NOT_FOUND")
        self.fake.configure(fault="http_500")
        st, _, raw = call(self.fake, "POST", path, self.BODY)
        self.assertEqual((st, json.loads(raw)["error"]["status"]), (500, "INTERNAL"))
        st, _, raw = call(self.fake, "POST", path, dict(self.BODY, bogus=1))
        self.assertEqual(st, 400)   # Gemini rejects unknown fields
        self.fake.configure()
        st, _, raw = call(self.fake, "GET", "/v1beta/models")
        self.assertEqual(json.loads(raw)["models"][0]["name"], "models/gemini-2.0-flash")

    def test_stream_faults(self):
        path = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
        self.fake.configure(fault="truncated")
        objs = [json.loads(d) for _, d in sse(call(self.fake, "POST", path, self.BODY)[2])]
        self.assertEqual(objs[-1]["candidates"][0]["finishReason"], "MAX_TOKENS")
        self.fake.configure(fault="stream_error")
        objs = [json.loads(d) for _, d in sse(call(self.fake, "POST", path, self.BODY)[2])]
        self.assertEqual(objs[-1]["error"]["status"], "INTERNAL")


# --------------------------------------------------------------------------
class FaultTest(FakeCase):
    provider = "ollama"
    BODY = {"model": "llama3.2:3b", "messages": MSGS, "stream": True}

    def content_of(self, raw):
        return json.loads(raw)["message"]["content"]

    def test_content_faults(self):
        nb = dict(self.BODY, stream=False)
        self.fake.configure(fault="code_fences")
        c = self.content_of(call(self.fake, "POST", "/api/chat", nb)[2])
        self.assertIn("```json\n", c)
        self.assertTrue(c.split("\n")[0] and not c.startswith("{"))
        self.fake.configure(fault="prose_only")
        c = self.content_of(call(self.fake, "POST", "/api/chat", nb)[2])
        self.assertRaises(ValueError, json.loads, c)
        self.fake.configure(fault="confidence_7")
        c = self.content_of(call(self.fake, "POST", "/api/chat", nb)[2])
        self.assertEqual(json.loads(c)["confidence"], 7)
        self.fake.configure(content="not json {")
        c = self.content_of(call(self.fake, "POST", "/api/chat", nb)[2])
        self.assertEqual(c, "not json {")
        self.fake.configure(result={"improved_prompt": "x"})
        c = self.content_of(call(self.fake, "POST", "/api/chat", nb)[2])
        self.assertEqual(json.loads(c), {"improved_prompt": "x"})

    def test_http_500_and_unavailable_once(self):
        self.fake.configure(fault="http_500")
        st, _, raw = call(self.fake, "POST", "/api/chat", self.BODY)
        self.assertEqual(st, 500)
        self.assertIn("error", json.loads(raw))
        self.fake.configure(fault="unavailable_once")
        self.assertEqual(call(self.fake, "POST", "/api/chat", self.BODY)[0], 503)
        self.assertEqual(call(self.fake, "POST", "/api/chat", self.BODY)[0], 200)

    def test_no_headers_records_disconnect(self):
        self.fake.configure(fault="no_headers")
        s = raw_request(self.fake, "/api/chat", self.BODY)
        self.assertEqual(len(self.fake.wait_requests(1)), 1)
        s.settimeout(0.3)
        self.assertRaises(socket.timeout, s.recv, 1)   # nothing comes
        s.close()
        ev = self.fake.wait_event("client_disconnected", 3)
        self.assertIsNotNone(ev)
        self.assertEqual(ev["path"], "/api/chat")

    def test_delay_records_disconnect(self):
        self.fake.configure(delay_s=5)
        s = raw_request(self.fake, "/api/chat", self.BODY)
        self.fake.wait_requests(1)
        s.close()
        self.assertIsNotNone(self.fake.wait_event("client_disconnected", 3))

    def test_delay(self):
        self.fake.configure(delay_s=0.3)
        t = time.monotonic()
        self.assertEqual(call(self.fake, "POST", "/api/chat", self.BODY)[0], 200)
        self.assertGreaterEqual(time.monotonic() - t, 0.3)

    def test_never_ending_records_disconnect(self):
        self.fake.configure(fault="never_ending", chunk_delay_s=0.01)
        c = conn(self.fake)
        c.request("POST", "/api/chat", body=json.dumps(self.BODY))
        r = c.getresponse()
        for _ in range(20):
            self.assertFalse(json.loads(r.readline())["done"])
        c.close()
        r.close()
        self.assertIsNotNone(self.fake.wait_event("client_disconnected", 3))

    def test_trickle(self):
        self.fake.configure(fault="trickle", trickle_s=0.1)
        c = conn(self.fake)
        c.request("POST", "/api/chat", body=json.dumps(self.BODY))
        t = time.monotonic()
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        r.read(3)
        self.assertGreaterEqual(time.monotonic() - t, 0.15)
        c.close()
        r.close()
        self.assertIsNotNone(self.fake.wait_event("client_disconnected", 3))

    def test_cut_mid_json(self):
        self.fake.configure(fault="cut_mid_json")
        with self.assertRaises(http.client.IncompleteRead):
            call(self.fake, "POST", "/api/chat", self.BODY)
        with self.assertRaises(http.client.IncompleteRead):
            call(self.fake, "POST", "/api/chat", dict(self.BODY, stream=False))

    def test_reset_mid_stream(self):
        self.fake.configure(fault="reset_mid_stream")
        s = raw_request(self.fake, "/api/chat", self.BODY)
        got = b""
        with self.assertRaises(ConnectionResetError):
            while True:
                b = s.recv(65536)
                if not b:
                    break       # a clean EOF would fail the test
                got += b
        s.close()
        self.assertEqual(self.fake.events()[0]["type"], "reset_sent")

    def test_invalid_utf8(self):
        self.fake.configure(fault="invalid_utf8")
        raw = call(self.fake, "POST", "/api/chat", dict(self.BODY, stream=False))[2]
        self.assertIn(INVALID_UTF8, raw)
        self.assertRaises(UnicodeDecodeError, raw.decode, "utf-8")

    def test_huge(self):
        self.fake.configure(fault="huge")
        st, h, raw = call(self.fake, "POST", "/api/chat", dict(self.BODY, stream=False))
        self.assertGreaterEqual(len(raw), 10 * 1024 * 1024)
        self.assertEqual(int(h["content-length"]), len(raw))
        self.fake.configure(fault="huge", huge_bytes=300000)
        lines = call(self.fake, "POST", "/api/chat", self.BODY)[2].splitlines()
        self.assertEqual(json.loads("".join(json.loads(x)["message"]["content"] for x in lines))
                         ["improved_prompt"].__len__(), 300000)

    def test_configure_rejects_typos(self):
        self.assertRaises(ValueError, self.fake.configure, fault="no-such-fault")
        self.assertRaises(ValueError, self.fake.configure, delay=1)


# --------------------------------------------------------------------------
class ControlTest(unittest.TestCase):
    def test_http_control_and_cli(self):
        proc = subprocess.Popen([sys.executable, os.path.join(FAKES, "fake_llm.py"),
                                 "--provider", "openai", "--port", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = proc.stdout.readline().decode()
            self.assertRegex(line, r"^PORT \d+\n$")
            base = "http://127.0.0.1:%d" % int(line.split()[1])

            def ctl(method, name, obj=None):
                data = None if obj is None else json.dumps(obj).encode()
                req = urllib.request.Request(base + "/_fake/" + name, data=data, method=method)
                with urllib.request.urlopen(req, timeout=5) as r:
                    return json.loads(r.read())

            ctl("POST", "config", {"fault": "http_500"})
            req = urllib.request.Request(base + "/v1/chat/completions", method="POST",
                                         data=json.dumps({"model": "m", "messages": MSGS}).encode())
            with self.assertRaises(urllib.error.HTTPError) as cm:
                urllib.request.urlopen(req, timeout=5)
            self.assertEqual(cm.exception.code, 500)
            self.assertEqual(json.loads(cm.exception.read())["error"]["type"], "server_error")
            reqs = ctl("GET", "requests")
            self.assertEqual((len(reqs), reqs[0]["path"]), (1, "/v1/chat/completions"))
            self.assertEqual(ctl("GET", "stats")["requests"], 1)
            self.assertEqual(ctl("GET", "events"), [])
            with self.assertRaises(urllib.error.HTTPError) as cm:
                ctl("POST", "config", {"fault": "bogus"})
            self.assertEqual(cm.exception.code, 400)
            ctl("POST", "reset", {})
            self.assertEqual(ctl("GET", "requests"), [])
            self.assertEqual(ctl("GET", "config")["fault"], "none")
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(5)
            err = proc.stderr.read()
            proc.stdout.close()
            proc.stderr.close()
        self.assertEqual(rc, 0)
        self.assertEqual(err, b"")

    def test_fake_process_helper(self):
        f = FakeLLMProcess("anthropic")
        try:
            f.configure(api_key="k")
            self.assertEqual(f.config()["api_key"], "k")
        finally:
            self.assertEqual(f.stop(), 0)


if __name__ == "__main__":
    unittest.main()
