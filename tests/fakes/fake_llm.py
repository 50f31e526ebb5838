#!/usr/bin/env python3
"""A fake LLM server speaking the real wire formats of Ollama, the
OpenAI-compatible chat API, Anthropic Messages and Gemini, with faults.

Standard library only. See tests/fakes/README.md.

    python3 tests/fakes/fake_llm.py --provider ollama [--port 0] [--host 127.0.0.1]
        prints "PORT <n>" on stdout, serves until SIGTERM/SIGINT, exits 0.

    from fake_llm import FakeLLM
    f = FakeLLM("openai"); f.start()
    f.configure(fault="rate_limit_once", api_key="sk-test")
    ... f.url, f.port, f.requests(), f.events(), f.stats(), f.reset() ...
    f.stop()

Control over HTTP (same keyword settings): POST /_fake/config (replaces the
config), GET /_fake/config, GET /_fake/requests, GET /_fake/events,
GET /_fake/stats, POST /_fake/reset.
"""
import argparse
import copy
import json
import os
import random
import select
import signal
import socket
import string
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PROVIDERS = ("ollama", "openai", "anthropic", "gemini")

FAULTS = (
    "none",
    "http_500",           # provider-shaped 500
    "rate_limit_once",    # first generation request: 429 + Retry-After, then normal
    "unavailable_once",   # first generation request: 503, then normal
    "overloaded_once",    # first generation request: Anthropic 529 overloaded_error (503 elsewhere)
    "model_not_found",    # provider-shaped 404 for any named model
    "no_headers",         # read the request, never answer, hold until the client goes
    "trickle",            # headers, then the body one byte every trickle_s (0.1 s)
    "cut_mid_json",       # half the content, then close (FIN) without the end of the stream
    "stream_error",       # 200, some chunks, then the provider's in-stream error
    "code_fences",        # content wrapped in ```json fences after a line of prose
    "prose_only",         # content is prose, not JSON
    "confidence_7",       # confidence 7
    "think",              # content preceded by <think>...</think>
    "truncated",          # content cut in half, stop reason "length"/"max_tokens"/"MAX_TOKENS"
    "never_ending",       # stream chunks forever until the client goes
    "huge",               # a ~10 MB body (improved_prompt of huge_bytes characters)
    "reset_mid_stream",   # some chunks then RST (SO_LINGER 0)
    "invalid_utf8",       # raw invalid UTF-8 bytes inside the content
)

DEFAULTS = {
    "delay_s": 0.0,          # wait before sending headers (client disconnects are detected)
    "chunk_delay_s": 0.0,    # wait between stream frames
    "chunk_size": None,      # characters of content per stream frame (7; 65536 for huge)
    "api_key": None,         # when set, the provider's auth is checked
    "models": None,          # model list; when set, other model names get a 404
    "fault": "none",
    "result": None,          # object: replaces the default result
    "content": None,         # string: the exact text the model emits
    "escape_unicode": False,  # True | "content" | "wire": \uXXXX (surrogate pairs) for non-ASCII
    "trickle_s": 0.1,        # seconds per byte for fault=trickle
    "huge_bytes": 10 * 1024 * 1024,
    "sse_line_end": None,    # "\n" or "\r\n"; default "\r\n" for gemini, "\n" otherwise
    "retry_after": 1,        # Retry-After seconds for rate_limit_once
}

DEFAULT_MODELS = {
    "ollama": ["llama3.2:3b", "qwen2.5:7b"],
    "openai": ["gpt-4o-mini", "gpt-4o"],
    "anthropic": ["claude-3-5-haiku-20241022", "claude-sonnet-4-20250514"],
    "gemini": ["gemini-2.0-flash", "gemini-2.5-flash"],
}

# The default answer: non-ASCII (é, â, and 🚀 outside the BMP), a quote, a
# backslash and a newline inside improved_prompt.
DEFAULT_RESULT = {
    "improved_prompt": ("Act as a senior p\u00e2tissier at a small caf\u00e9 \U0001F680 and write a "
                        "\"launch plan\" for the spring menu.\nStore drafts under C:\\menus\\spring "
                        "and keep every step under 20 words."),
    "role": "Senior p\u00e2tissier and caf\u00e9 operations lead",
    "directive": "Write a step-by-step launch plan for the spring menu.",
    "framework": "CO-STAR",
    "guardrails": ["Keep every step under 20 words.", "Do not invent prices or suppliers."],
    "reasoning": ("The idea named a goal but no audience, format or limits; the prompt adds a "
                  "role, a concrete deliverable and two guardrails."),
    "confidence": 0.82,
}

PROSE = ("You could make this idea clearer by saying who the audience is, what format you "
         "want back, and what the model must avoid. Give it a role and a few guardrails.")
THINK_PREFIX = "<think>some reasoning {\"improved_prompt\": \"WRONG\"}</think>\n"
FENCE_PREFIX = "Here is the improved prompt as JSON:\n```json\n"
FENCE_SUFFIX = "\n```\n"
# Bytes that are not UTF-8: a lead byte followed by '(' and two stray bytes.
INVALID_UTF8 = b"\xc3(\xff\xfe"
_BAD_CHARS = INVALID_UTF8.decode("utf-8", "surrogateescape")
_BAD_MARK = "@@INVALID_UTF8@@"
THINKING_TEXT = "The user wants a clearer prompt. I will add a role, a deliverable and guardrails."

ONCE_FAULTS = ("rate_limit_once", "unavailable_once", "overloaded_once")

_CUT = object()
_RESET = object()


class _Abort(Exception):
    """Stop handling this connection (client gone, or the fake cut it)."""


def _now_rfc3339():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rand(n, alphabet=string.ascii_letters + string.digits):
    return "".join(random.choice(alphabet) for _ in range(n))


def _encode(text):
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def validate_config(kw):
    """Returns a full config dict (defaults + kw) or raises ValueError."""
    unknown = set(kw) - set(DEFAULTS)
    if unknown:
        raise ValueError("unknown config key(s): %s" % ", ".join(sorted(unknown)))
    cfg = dict(DEFAULTS)
    cfg.update(kw)
    if cfg["fault"] is None:
        cfg["fault"] = "none"
    if cfg["fault"] not in FAULTS:
        raise ValueError("unknown fault %r; one of %s" % (cfg["fault"], ", ".join(FAULTS)))
    for k in ("delay_s", "chunk_delay_s", "trickle_s"):
        if not isinstance(cfg[k], (int, float)) or cfg[k] < 0:
            raise ValueError("%s must be a number >= 0" % k)
    if cfg["chunk_size"] is not None and (not isinstance(cfg["chunk_size"], int) or cfg["chunk_size"] < 1):
        raise ValueError("chunk_size must be an integer >= 1")
    if cfg["models"] is not None and not (isinstance(cfg["models"], list)
                                          and all(isinstance(m, str) for m in cfg["models"])):
        raise ValueError("models must be a list of strings")
    if cfg["result"] is not None and not isinstance(cfg["result"], dict):
        raise ValueError("result must be an object")
    if cfg["content"] is not None and not isinstance(cfg["content"], str):
        raise ValueError("content must be a string")
    if cfg["escape_unicode"] not in (True, False, "content", "wire"):
        raise ValueError("escape_unicode must be true, false, \"content\" or \"wire\"")
    if cfg["sse_line_end"] not in (None, "\n", "\r\n"):
        raise ValueError("sse_line_end must be \"\\n\" or \"\\r\\n\"")
    return cfg


def default_content(escape_unicode=False, result=None):
    """The text the model emits by default (the result as JSON)."""
    return json.dumps(DEFAULT_RESULT if result is None else result, ensure_ascii=bool(escape_unicode))


def chunk_text(text, size):
    return [text[i:i + size] for i in range(0, len(text), size)]


class Ctx:
    """Everything about one provider request."""

    def __init__(self, fake, handler, method, path, query, raw, body, cfg, conn_id):
        self.fake = fake
        self.h = handler
        self.method = method
        self.path = path
        self.query = query
        self.raw = raw
        self.body = body if isinstance(body, dict) else {}
        self.cfg = cfg
        self.fault = cfg["fault"]
        self.conn_id = conn_id
        self.model = None
        self.stream = False
        self.created = int(time.time())
        self.prompt_tokens = max(1, len(raw) // 4)
        self.text = ""           # what the model emits (after truncation)
        self.full_text = ""      # before truncation
        self.frame_no = 0
        esc = cfg["escape_unicode"]
        self.wire_ascii = esc in (True, "wire") and self.fault != "invalid_utf8"
        self.content_ascii = esc in (True, "content")

    @property
    def completion_tokens(self):
        return max(1, len(self.text) // 4)


# --------------------------------------------------------------------------
# Providers: routing, auth, validation, bodies, stream frames, errors.
# --------------------------------------------------------------------------

class Provider:
    name = ""
    sse_line_end = "\n"
    finish_on_last_piece = False

    def dumps(self, ctx, obj, pretty=False):
        if pretty:
            s = json.dumps(obj, ensure_ascii=ctx.wire_ascii, indent=2)
        else:
            s = json.dumps(obj, ensure_ascii=ctx.wire_ascii, separators=(",", ":"))
        return _encode(s)

    def le(self, ctx):
        return ctx.cfg["sse_line_end"] or self.sse_line_end

    def auth_ok(self, ctx):
        return None

    def error(self, ctx, status, kind, message):
        """(status, headers, body bytes, content type)"""
        raise NotImplementedError

    def head(self, ctx):
        return []

    def tail(self, ctx):
        return []


class Ollama(Provider):
    name = "ollama"

    def dumps(self, ctx, obj, pretty=False):
        # Go's encoding/json (gin) escapes <, > and & as \u003c, \u003e, \u0026.
        b = Provider.dumps(self, ctx, obj)
        return b.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")

    def route(self, method, path):
        if method == "POST" and path == "/api/chat":
            return "chat"
        if method == "POST" and path == "/api/generate":
            return "generate"
        if method == "GET" and path == "/api/tags":
            return "models"
        if method == "GET" and path == "/api/version":
            return "version"
        if method in ("GET", "HEAD") and path == "/":
            return "root"
        return None

    def auth_ok(self, ctx):
        # Ollama has no auth; a key is checked as Bearer (as behind a proxy).
        key = ctx.cfg["api_key"]
        if key and ctx.h.headers.get("Authorization", "") != "Bearer " + key:
            return (401, "auth", "unauthorized")
        return None

    def error(self, ctx, status, kind, message):
        if kind == "unknown_path":
            return status, {}, b"404 page not found", "text/plain"
        return status, {}, self.dumps(ctx, {"error": message}), "application/json; charset=utf-8"

    def messages(self, ctx, kind, model=None):
        return {
            "internal": "llama runner process has terminated: exit status 2",
            "rate_limit": "too many requests, please retry after %ss" % ctx.cfg["retry_after"],
            "unavailable": "server busy, please try again.  maximum pending requests exceeded",
            "model_not_found": "model \"%s\" not found, try pulling it first" % model,
            "stream_error": "an error was encountered while running the model: unexpected EOF",
        }[kind]

    def validate(self, ctx, route):
        b = ctx.body
        if not isinstance(b.get("model"), str) or not b.get("model"):
            return (400, "invalid", "model is required")
        if route == "chat" and "messages" in b and not isinstance(b["messages"], list):
            return (400, "invalid", "json: cannot unmarshal into messages")
        return None

    def wants_stream(self, ctx, route):
        s = ctx.body.get("stream")
        return True if s is None else bool(s)   # Ollama streams unless told not to

    def models_body(self, ctx, models):
        out = []
        for i, m in enumerate(models):
            name = m if ":" in m else m + ":latest"
            out.append({
                "name": name, "model": name,
                "modified_at": "2025-01-15T10:%02d:00.000000000Z" % i,
                "size": 2019393189 + i, "digest": "%064x" % (0xabc0 + i),
                "details": {"parent_model": "", "format": "gguf", "family": "llama",
                            "families": ["llama"], "parameter_size": "3.2B",
                            "quantization_level": "Q4_K_M"},
            })
        return {"models": out}

    def _durations(self, ctx):
        return {"total_duration": 812345678, "load_duration": 12345678,
                "prompt_eval_count": ctx.prompt_tokens, "prompt_eval_duration": 123456789,
                "eval_count": ctx.completion_tokens, "eval_duration": 654321000}

    def _reason(self, ctx):
        return "length" if ctx.fault == "truncated" else "stop"

    def _msg(self, ctx, content, thinking=None):
        if ctx.kind == "generate":
            d = {"response": content}
            if thinking is not None:
                d["thinking"] = thinking
            return d
        m = {"role": "assistant", "content": content}
        if thinking is not None:
            m["thinking"] = thinking
        return {"message": m}

    def ok_body(self, ctx):
        d = {"model": ctx.model, "created_at": _now_rfc3339()}
        d.update(self._msg(ctx, ctx.text, THINKING_TEXT if ctx.body.get("think") is True else None))
        d["done_reason"] = self._reason(ctx)
        d["done"] = True
        d.update(self._durations(ctx))
        return 200, self.dumps(ctx, d), "application/json; charset=utf-8"

    def stream_ctype(self, ctx):
        return "application/x-ndjson"

    def _line(self, ctx, obj):
        return self.dumps(ctx, obj) + b"\n"

    def head(self, ctx):
        if ctx.body.get("think") is not True:
            return []
        out = []
        for p in chunk_text(THINKING_TEXT, 16):
            d = {"model": ctx.model, "created_at": _now_rfc3339()}
            d.update(self._msg(ctx, "", p))
            d["done"] = False
            out.append(self._line(ctx, d))
        return out

    def piece(self, ctx, text, last=False):
        d = {"model": ctx.model, "created_at": _now_rfc3339()}
        d.update(self._msg(ctx, text))
        d["done"] = False
        return self._line(ctx, d)

    def tail(self, ctx):
        d = {"model": ctx.model, "created_at": _now_rfc3339()}
        d.update(self._msg(ctx, ""))
        d["done_reason"] = self._reason(ctx)
        d["done"] = True
        d.update(self._durations(ctx))
        return [self._line(ctx, d)]

    def stream_error_frame(self, ctx):
        return self._line(ctx, {"error": self.messages(ctx, "stream_error")})

    def prewarm_body(self, ctx):
        d = {"model": ctx.model, "created_at": _now_rfc3339(), "response": "",
             "done": True, "done_reason": "load"}
        return 200, self.dumps(ctx, d), "application/json; charset=utf-8"


class OpenAI(Provider):
    name = "openai"

    def route(self, method, path):
        if method == "POST" and path == "/v1/chat/completions":
            return "chat"
        if method == "GET" and path == "/v1/models":
            return "models"
        return None

    def auth_ok(self, ctx):
        key = ctx.cfg["api_key"]
        if not key:
            return None
        auth = ctx.h.headers.get("Authorization")
        if not auth or not auth.startswith("Bearer ") or not auth[7:].strip():
            return (401, "auth_missing",
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                    "or as the password field (with blank username) if you're accessing the API "
                    "from your browser and are prompted for a username and password. You can "
                    "obtain an API key from https://platform.openai.com/account/api-keys.")
        given = auth[7:].strip()
        if given != key:
            shown = given[:3] + "*" * 8 + given[-4:] if len(given) > 8 else "***"
            return (401, "auth", "Incorrect API key provided: %s. You can find your API key at "
                    "https://platform.openai.com/account/api-keys." % shown)
        return None

    def error(self, ctx, status, kind, message):
        typ, code = {
            "auth": ("invalid_request_error", "invalid_api_key"),
            "auth_missing": ("invalid_request_error", None),
            "invalid": ("invalid_request_error", None),
            "model_not_found": ("invalid_request_error", "model_not_found"),
            "rate_limit": ("requests", "rate_limit_exceeded"),
            "unavailable": ("server_error", None),
            "internal": ("server_error", None),
            "unknown_path": ("invalid_request_error", None),
        }.get(kind, ("server_error", None))
        body = {"error": {"message": message, "type": typ, "param": None, "code": code}}
        return status, {"x-request-id": "req_" + _rand(24)}, self.dumps(ctx, body, pretty=True), \
            "application/json"

    def messages(self, ctx, kind, model=None):
        return {
            "internal": "The server had an error while processing your request. Sorry about that!",
            "rate_limit": ("Rate limit reached for %s in organization org-fake on requests per min "
                           "(RPM): Limit 3, Used 3, Requested 1. Please try again in %ss."
                           % (model, ctx.cfg["retry_after"])),
            "unavailable": "The engine is currently overloaded, please try again later.",
            "model_not_found": ("The model `%s` does not exist or you do not have access to it."
                                % model),
            "stream_error": "The server had an error while processing your request. Sorry about that!",
        }[kind]

    def validate(self, ctx, route):
        b = ctx.body
        if not isinstance(b.get("model"), str) or not b.get("model"):
            return (400, "invalid", "you must provide a model parameter")
        if not isinstance(b.get("messages"), list) or not b["messages"]:
            return (400, "invalid", "Missing required parameter: 'messages'.")
        rf = b.get("response_format")
        if isinstance(rf, dict) and rf.get("type") == "json_schema":
            js = rf.get("json_schema")
            if not isinstance(js, dict):
                return (400, "invalid", "Missing required parameter: 'response_format.json_schema'.")
            if not js.get("name"):
                return (400, "invalid",
                        "Missing required parameter: 'response_format.json_schema.name'.")
        so = b.get("stream_options")
        if so is not None and not b.get("stream"):
            return (400, "invalid",
                    "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
        return None

    def wants_stream(self, ctx, route):
        return bool(ctx.body.get("stream"))

    def models_body(self, ctx, models):
        return {"object": "list", "data": [
            {"id": m, "object": "model", "created": 1715367049, "owned_by": "system"}
            for m in models]}

    def _reason(self, ctx):
        return "length" if ctx.fault == "truncated" else "stop"

    def _usage(self, ctx):
        return {"prompt_tokens": ctx.prompt_tokens, "completion_tokens": ctx.completion_tokens,
                "total_tokens": ctx.prompt_tokens + ctx.completion_tokens}

    def ok_body(self, ctx):
        d = {
            "id": ctx.id, "object": "chat.completion", "created": ctx.created, "model": ctx.model,
            "choices": [{"index": 0,
                         "message": {"role": "assistant", "content": ctx.text, "refusal": None},
                         "logprobs": None, "finish_reason": self._reason(ctx)}],
            "usage": self._usage(ctx),
            "system_fingerprint": "fp_fake0001",
        }
        return 200, self.dumps(ctx, d, pretty=True), "application/json"

    def stream_ctype(self, ctx):
        return "text/event-stream; charset=utf-8"

    def _include_usage(self, ctx):
        so = ctx.body.get("stream_options")
        return isinstance(so, dict) and bool(so.get("include_usage"))

    def _chunk(self, ctx, delta, finish=None, choices=True):
        d = {"id": ctx.id, "object": "chat.completion.chunk", "created": ctx.created,
             "model": ctx.model, "system_fingerprint": "fp_fake0001",
             "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
             if choices else []}
        if self._include_usage(ctx):
            d["usage"] = None if choices else self._usage(ctx)
        return self._event(ctx, d)

    def _event(self, ctx, obj):
        le = self.le(ctx).encode()
        return b"data: " + self.dumps(ctx, obj) + le + le

    def head(self, ctx):
        return [self._chunk(ctx, {"role": "assistant", "content": "", "refusal": None})]

    def piece(self, ctx, text, last=False):
        return self._chunk(ctx, {"content": text})

    def tail(self, ctx):
        out = [self._chunk(ctx, {}, finish=self._reason(ctx))]
        if self._include_usage(ctx):
            out.append(self._chunk(ctx, None, choices=False))
        le = self.le(ctx).encode()
        out.append(b"data: [DONE]" + le + le)
        return out

    def stream_error_frame(self, ctx):
        return self._event(ctx, {"error": {"message": self.messages(ctx, "stream_error"),
                                           "type": "server_error", "param": None, "code": None}})


class Anthropic(Provider):
    name = "anthropic"

    def route(self, method, path):
        if method == "POST" and path == "/v1/messages":
            return "chat"
        if method == "GET" and path == "/v1/models":
            return "models"
        return None

    def auth_ok(self, ctx):
        key = ctx.cfg["api_key"]
        given = ctx.h.headers.get("x-api-key")
        if key:
            if not given:
                return (401, "auth", "x-api-key header is required")
            if given != key:
                return (401, "auth", "invalid x-api-key")
        if not ctx.h.headers.get("anthropic-version"):
            return (400, "invalid", "anthropic-version: header is required")
        return None

    def error(self, ctx, status, kind, message):
        typ = {
            "auth": "authentication_error", "invalid": "invalid_request_error",
            "model_not_found": "not_found_error", "unknown_path": "not_found_error",
            "rate_limit": "rate_limit_error", "unavailable": "overloaded_error",
            "overloaded": "overloaded_error", "internal": "api_error",
        }.get(kind, "api_error")
        body = {"type": "error", "error": {"type": typ, "message": message}}
        return status, {"request-id": "req_" + _rand(24)}, self.dumps(ctx, body), "application/json"

    def messages(self, ctx, kind, model=None):
        return {
            "internal": "Internal server error",
            "rate_limit": ("This request would exceed the rate limit for your organization of 50 "
                           "requests per minute. Please try again later."),
            "unavailable": "Overloaded",
            "overloaded": "Overloaded",
            "model_not_found": "model: %s" % model,
            "stream_error": "Overloaded",
        }[kind]

    def validate(self, ctx, route):
        b = ctx.body
        if not isinstance(b.get("model"), str) or not b.get("model"):
            return (400, "invalid", "model: Field required")
        if "max_tokens" not in b:
            return (400, "invalid", "max_tokens: Field required")
        if not isinstance(b.get("messages"), list):
            return (400, "invalid", "messages: Field required")
        for i, m in enumerate(b["messages"]):
            role = m.get("role") if isinstance(m, dict) else None
            if role == "system":
                return (400, "invalid", "messages: Unexpected role \"system\". The Messages API "
                        "accepts a top-level `system` parameter, not \"system\" as an input "
                        "message role.")
            if role not in ("user", "assistant"):
                return (400, "invalid", "messages.%d.role: Input should be 'user' or 'assistant'" % i)
        tools = b.get("tools")
        tc = b.get("tool_choice")
        if tc is not None:
            if not tools:
                return (400, "invalid", "tool_choice may only be specified while providing tools.")
            if isinstance(tc, dict) and tc.get("type") == "tool":
                names = [t.get("name") for t in tools if isinstance(t, dict)]
                if tc.get("name") not in names:
                    return (400, "invalid", "tool_choice.name: Tool '%s' not found in provided tools"
                            % tc.get("name"))
        if tools:
            for i, t in enumerate(tools):
                if not isinstance(t, dict) or not t.get("name"):
                    return (400, "invalid", "tools.%d.name: Field required" % i)
                if "input_schema" not in t and "type" not in t:
                    return (400, "invalid", "tools.%d.custom.input_schema: Field required" % i)
        return None

    def wants_stream(self, ctx, route):
        return bool(ctx.body.get("stream"))

    def prepare(self, ctx):
        """Tool mode when the request offers tools and the model's text is a JSON object;
        otherwise the model answers with a text block (it ignored the tool)."""
        tools = ctx.body.get("tools") or []
        ctx.tool_name = None
        tc = ctx.body.get("tool_choice")
        if isinstance(tc, dict) and tc.get("type") == "tool":
            ctx.tool_name = tc.get("name")
        elif tools:
            ctx.tool_name = tools[0].get("name")
        ctx.tool_input = None
        if ctx.tool_name:
            try:
                obj = json.loads(ctx.full_text)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                ctx.tool_input = obj
        ctx.tool_mode = ctx.tool_input is not None
        ctx.tool_id = "toolu_01" + _rand(22)

    def _stop(self, ctx):
        if ctx.fault == "truncated":
            return "max_tokens"
        return "tool_use" if ctx.tool_mode else "end_turn"

    def _partial_input(self, ctx):
        """What the API returns as input when the tool call was cut by max_tokens:
        the arguments that were complete, the one being written dropped."""
        out = {}
        limit = len(ctx.text)
        for k, v in ctx.tool_input.items():
            trial = dict(out)
            trial[k] = v
            if len(json.dumps(trial, ensure_ascii=ctx.content_ascii)) > limit:
                break
            out = trial
        return out

    def models_body(self, ctx, models):
        data = [{"type": "model", "id": m, "display_name": m.replace("-", " ").title(),
                 "created_at": "2025-05-22T00:00:00Z"} for m in models]
        return {"data": data, "has_more": False,
                "first_id": models[0] if models else None,
                "last_id": models[-1] if models else None}

    def ok_body(self, ctx):
        if ctx.tool_mode:
            inp = self._partial_input(ctx) if ctx.fault == "truncated" else ctx.tool_input
            content = [{"type": "tool_use", "id": ctx.tool_id, "name": ctx.tool_name, "input": inp}]
        else:
            content = [{"type": "text", "text": ctx.text}]
        d = {"id": ctx.id, "type": "message", "role": "assistant", "model": ctx.model,
             "content": content, "stop_reason": self._stop(ctx), "stop_sequence": None,
             "usage": {"input_tokens": ctx.prompt_tokens, "cache_creation_input_tokens": 0,
                       "cache_read_input_tokens": 0, "output_tokens": ctx.completion_tokens}}
        return 200, self.dumps(ctx, d), "application/json"

    def stream_ctype(self, ctx):
        return "text/event-stream; charset=utf-8"

    def _ev(self, ctx, name, obj, raw=None):
        le = self.le(ctx).encode()
        data = raw if raw is not None else self.dumps(ctx, obj)
        return b"event: " + name.encode() + le + b"data: " + data + le + le

    def head(self, ctx):
        start = {"type": "message_start", "message": {
            "id": ctx.id, "type": "message", "role": "assistant", "model": ctx.model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": ctx.prompt_tokens, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1}}}
        if ctx.tool_mode:
            block = {"type": "tool_use", "id": ctx.tool_id, "name": ctx.tool_name, "input": {}}
        else:
            block = {"type": "text", "text": ""}
        out = [self._ev(ctx, "message_start", start),
               self._ev(ctx, "content_block_start",
                        {"type": "content_block_start", "index": 0, "content_block": block}),
               self._ev(ctx, "ping", None, raw=b'{"type": "ping"}')]
        if ctx.tool_mode:
            out.append(self.piece(ctx, ""))
        return out

    def piece(self, ctx, text, last=False):
        if ctx.tool_mode:
            delta = {"type": "input_json_delta", "partial_json": text}
        else:
            delta = {"type": "text_delta", "text": text}
        return self._ev(ctx, "content_block_delta",
                        {"type": "content_block_delta", "index": 0, "delta": delta})

    def tail(self, ctx):
        return [
            self._ev(ctx, "content_block_stop", {"type": "content_block_stop", "index": 0}),
            self._ev(ctx, "message_delta", {
                "type": "message_delta",
                "delta": {"stop_reason": self._stop(ctx), "stop_sequence": None},
                "usage": {"output_tokens": ctx.completion_tokens}}),
            self._ev(ctx, "message_stop", {"type": "message_stop"}),
        ]

    def stream_error_frame(self, ctx):
        return self._ev(ctx, "error", {"type": "error", "error": {
            "type": "overloaded_error", "message": "Overloaded"}})


class Gemini(Provider):
    name = "gemini"
    sse_line_end = "\r\n"
    finish_on_last_piece = True
    GEN_KEYS = {
        "responseMimeType", "responseSchema", "responseJsonSchema", "temperature", "topP", "topK",
        "maxOutputTokens", "candidateCount", "stopSequences", "thinkingConfig", "seed",
        "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs",
        "responseModalities", "speechConfig", "mediaResolution", "enableEnhancedCivicAnswers",
        "audioTimestamp", "routingConfig", "modelSelectionConfig", "imageConfig",
    }
    TOP_KEYS = {"contents", "systemInstruction", "generationConfig", "tools", "toolConfig",
                "safetySettings", "cachedContent", "labels"}

    @staticmethod
    def _camel(k):
        parts = k.split("_")
        return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])

    def route(self, method, path):
        if method == "GET" and path == "/v1beta/models":
            return "models"
        if path.startswith("/v1beta/models/"):
            rest = path[len("/v1beta/models/"):]
            if method == "POST" and rest.endswith(":generateContent"):
                return "chat"
            if method == "POST" and rest.endswith(":streamGenerateContent"):
                return "chat"
            if method == "GET" and ":" not in rest and "/" not in rest:
                return "model_get"
        return None

    def model_from_path(self, path):
        rest = path[len("/v1beta/models/"):]
        return rest.split(":", 1)[0]

    def auth_ok(self, ctx):
        key = ctx.cfg["api_key"]
        if not key:
            return None
        given = ctx.h.headers.get("x-goog-api-key") or (ctx.query.get("key") or [None])[0]
        if not given:
            return (403, "auth_missing",
                    "Method doesn't allow unregistered callers (callers without established "
                    "identity). Please use API Key or other form of API consumer identity to "
                    "call this API.")
        if given != key:
            return (400, "auth", "API key not valid. Please pass a valid API key.")
        return None

    def error(self, ctx, status, kind, message):
        st = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
              404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
              503: "UNAVAILABLE"}.get(status, "UNKNOWN")
        err = {"code": status, "message": message, "status": st}
        if kind == "auth":
            err["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                               "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                               "metadata": {"service": "generativelanguage.googleapis.com"}}]
        elif kind == "rate_limit":
            err["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                               "retryDelay": "%ss" % ctx.cfg["retry_after"]}]
        return status, {}, self.dumps(ctx, {"error": err}, pretty=True), \
            "application/json; charset=UTF-8"

    def messages(self, ctx, kind, model=None):
        return {
            "internal": ("An internal error has occurred. Please retry or report in "
                         "https://developers.generativeai.google/guide/troubleshooting"),
            "rate_limit": "Resource has been exhausted (e.g. check quota).",
            "unavailable": "The model is overloaded. Please try again later.",
            "model_not_found": ("models/%s is not found for API version v1beta, or is not "
                                "supported for generateContent. Call ListModels to see the list "
                                "of available models and their supported methods." % model),
            "stream_error": ("An internal error has occurred. Please retry or report in "
                             "https://developers.generativeai.google/guide/troubleshooting"),
        }[kind]

    def validate(self, ctx, route):
        b = ctx.body
        for k in b:
            if self._camel(k) not in self.TOP_KEYS:
                return (400, "invalid", "Invalid JSON payload received. Unknown name \"%s\": "
                        "Cannot find field." % k)
        gc = b.get("generationConfig", b.get("generation_config"))
        if isinstance(gc, dict):
            for k in gc:
                if self._camel(k) not in self.GEN_KEYS:
                    return (400, "invalid", "Invalid JSON payload received. Unknown name \"%s\" "
                            "at 'generation_config': Cannot find field." % k)
        contents = b.get("contents")
        if not isinstance(contents, list) or not contents:
            return (400, "invalid", "* GenerateContentRequest.contents: contents is not specified\n")
        for c in contents:
            role = c.get("role") if isinstance(c, dict) else None
            if role not in (None, "user", "model", "function"):
                return (400, "invalid", "Please use a valid role: user, model.")
        return None

    def wants_stream(self, ctx, route):
        return ctx.path.endswith(":streamGenerateContent")

    def prepare(self, ctx):
        ctx.sse = (ctx.query.get("alt") or [""])[0] == "sse"
        gc = ctx.body.get("generationConfig", ctx.body.get("generation_config")) or {}
        tc = gc.get("thinkingConfig", gc.get("thinking_config")) or {}
        ctx.thoughts = bool(tc.get("includeThoughts", tc.get("include_thoughts")))
        ctx.response_id = _rand(22)

    def _usage(self, ctx, final=True):
        u = {"promptTokenCount": ctx.prompt_tokens}
        if final:
            u["candidatesTokenCount"] = ctx.completion_tokens
            u["totalTokenCount"] = ctx.prompt_tokens + ctx.completion_tokens
        else:
            u["totalTokenCount"] = ctx.prompt_tokens
        if ctx.thoughts:
            u["thoughtsTokenCount"] = len(THINKING_TEXT) // 4
            u["totalTokenCount"] += u["thoughtsTokenCount"]
        u["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": ctx.prompt_tokens}]
        return u

    def _reason(self, ctx):
        return "MAX_TOKENS" if ctx.fault == "truncated" else "STOP"

    def _resp(self, ctx, parts, finish):
        cand = {"content": {"parts": parts, "role": "model"}}
        if finish:
            cand["finishReason"] = self._reason(ctx)
        cand["index"] = 0
        return {"candidates": [cand], "usageMetadata": self._usage(ctx, final=finish),
                "modelVersion": ctx.model, "responseId": ctx.response_id}

    def models_body(self, ctx, models):
        return {"models": [self._model_obj(m) for m in models]}

    def _model_obj(self, m):
        return {"name": "models/" + m, "version": "001",
                "displayName": m.replace("-", " ").title(),
                "description": "A fake %s." % m, "inputTokenLimit": 1048576,
                "outputTokenLimit": 8192,
                "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent"],
                "temperature": 1, "topP": 0.95, "topK": 40, "maxTemperature": 2}

    def ok_body(self, ctx):
        parts = []
        if ctx.thoughts:
            parts.append({"text": THINKING_TEXT, "thought": True})
        parts.append({"text": ctx.text})
        return 200, self.dumps(ctx, self._resp(ctx, parts, True), pretty=True), \
            "application/json; charset=UTF-8"

    def stream_ctype(self, ctx):
        return "text/event-stream" if ctx.sse else "application/json; charset=UTF-8"

    def _frame(self, ctx, obj):
        ctx.frame_no += 1
        if ctx.sse:
            le = self.le(ctx).encode()
            return b"data: " + self.dumps(ctx, obj) + le + le
        # Without alt=sse: one JSON array, written element by element.
        sep = b"[" if ctx.frame_no == 1 else b"\n,\r\n"
        return sep + self.dumps(ctx, obj, pretty=True)

    def head(self, ctx):
        if ctx.thoughts:
            return [self._frame(ctx, self._resp(ctx, [{"text": THINKING_TEXT, "thought": True}], False))]
        return []

    def piece(self, ctx, text, last=False):
        return self._frame(ctx, self._resp(ctx, [{"text": text}], last))

    def tail(self, ctx):
        out = []
        if not ctx.text:
            out.append(self._frame(ctx, self._resp(ctx, [{"text": ""}], True)))
        if not ctx.sse:
            out.append(b"\n]" if ctx.frame_no else b"[]")
        return out

    def stream_error_frame(self, ctx):
        err = {"error": {"code": 500, "message": self.messages(ctx, "stream_error"),
                         "status": "INTERNAL"}}
        f = self._frame(ctx, err)
        return f if ctx.sse else f + b"\n]"


IMPLS = {"ollama": Ollama, "openai": OpenAI, "anthropic": Anthropic, "gemini": Gemini}


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 4096  # benchmarks open a thousand connections at once

    def handle_error(self, request, client_address):
        # Never print tracebacks for connections the client dropped.
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, _Abort)):
            return
        super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-llm/1"

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        if self.server.fake.verbose:
            sys.stderr.write("fake_llm: " + (fmt % args) + "\n")

    def setup(self):
        super().setup()
        self.fake = self.server.fake
        self.conn_id = self.fake._conn_open(self.connection)
        self.counted = False

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        self.fake._conn_close(self.connection)

    def handle(self):
        try:
            super().handle()
        except _Abort:
            self.close_connection = True
        except (ConnectionError, socket.timeout, OSError):
            self.close_connection = True

    # All verbs go through one dispatcher.
    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise _Abort()
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:   # trailers
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(1024)
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else b""
        if len(data) < n:
            raise _Abort()
        return data

    def _dispatch(self):
        raw = self._read_body()
        url = urlsplit(self.path)
        if url.path.startswith("/_fake/"):
            self.fake._control(self, self.command, url.path, raw)
        else:
            self.fake._serve(self, self.command, url.path, parse_qs(url.query), raw)

    # -- output helpers (a dropped client becomes _Abort) --
    def out(self, data, ctx=None):
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            self.fake._disconnected(self, "writing")
            raise _Abort()

    def start(self, status, ctype, headers=None, length=None, chunked=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif length is not None:
            self.send_header("Content-Length", str(length))
        try:
            self.end_headers()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            self.fake._disconnected(self, "headers")
            raise _Abort()

    def send_full(self, status, body, ctype, headers=None):
        self.start(status, ctype, headers, length=len(body))
        if self.command != "HEAD":
            self.out(body)


def _readable(sock, timeout):
    """Whether sock has data or EOF within timeout seconds. poll, not select:
    select cannot watch fds above 1023, and benchmarks open a thousand."""
    p = select.poll()
    p.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(p.poll(timeout * 1000))


def _gone(sock):
    """True when the peer has closed (EOF or reset) without reading anything."""
    try:
        if not _readable(sock, 0):
            return False
    except (ValueError, OSError):
        return True
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return data == b""


# --------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------

class FakeLLM:
    def __init__(self, provider, host="127.0.0.1", port=0, verbose=False, **config):
        if provider not in PROVIDERS:
            raise ValueError("provider must be one of %s" % ", ".join(PROVIDERS))
        self.provider = provider
        self.impl = IMPLS[provider]()
        self.host = host
        self._want_port = port
        self.verbose = verbose
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._cfg = validate_config(config)
        self._once_fired = False
        self._requests = []
        self._events = []
        self._stats = {"connections": 0, "requests": 0, "accepted": 0, "control_requests": 0}
        self._socks = set()
        self._conn_seq = 0
        self._server = None
        self._thread = None
        self.port = None

    # -- lifecycle --
    def bind(self):
        cls = _Server6 if ":" in self.host else _Server
        self._server = cls((self.host, self._want_port), _Handler)
        self._server.fake = self
        self.port = self._server.server_address[1]
        return self

    def start(self):
        if self._server is None:
            self.bind()
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="fake-llm-%s" % self.provider, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
            self._server.server_close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(5)
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d" % (host, self.port)

    # -- control --
    def configure(self, **kw):
        """Replaces the whole configuration (unset keys go back to defaults)."""
        cfg = validate_config(kw)
        with self._lock:
            self._cfg = cfg
            self._once_fired = False

    def config(self):
        with self._lock:
            return copy.deepcopy(self._cfg)

    def requests(self):
        with self._lock:
            return copy.deepcopy(self._requests)

    def events(self):
        with self._lock:
            return copy.deepcopy(self._events)

    def stats(self):
        with self._lock:
            return dict(self._stats)

    def reset(self):
        """Back to a fresh fake: default config, no requests, events or counts."""
        with self._lock:
            self._cfg = validate_config({})
            self._once_fired = False
            self._requests = []
            self._events = []
            for k in self._stats:
                self._stats[k] = 0

    def wait_event(self, type_="client_disconnected", timeout=5.0):
        """Waits for an event of that type; returns it or None."""
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events():
                if e["type"] == type_:
                    return e
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)

    def wait_requests(self, n=1, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            r = self.requests()
            if len(r) >= n or time.monotonic() >= deadline:
                return r
            time.sleep(0.02)

    # -- bookkeeping (called from handler threads) --
    def _conn_open(self, sock):
        with self._lock:
            self._socks.add(sock)
            self._stats["accepted"] += 1
            self._conn_seq += 1
            return self._conn_seq

    def _conn_close(self, sock):
        with self._lock:
            self._socks.discard(sock)

    def _event(self, ev):
        ev.setdefault("time", time.time())
        with self._lock:
            self._events.append(ev)

    def _disconnected(self, h, phase):
        if getattr(h, "_gone_recorded", False) or self._stop.is_set():
            return
        h._gone_recorded = True
        self._event({"type": "client_disconnected", "path": urlsplit(h.path).path,
                     "method": h.command, "phase": phase, "connection": h.conn_id})

    def _wait(self, h, seconds):
        """Sleeps, watching the socket: raises _Abort if the client goes or the fake stops."""
        deadline = None if seconds is None else time.monotonic() + seconds
        sock = h.connection
        while True:
            if self._stop.is_set():
                raise _Abort()
            rem = 0.05 if deadline is None else deadline - time.monotonic()
            if rem <= 0:
                return
            step = min(0.05, rem)
            try:
                r = _readable(sock, step)
            except (ValueError, OSError):
                r = True
            if r:
                if _gone(sock):
                    self._disconnected(h, "waiting")
                    raise _Abort()
                time.sleep(step)   # pipelined data: not ours to read yet

    # -- control endpoints --
    def _control(self, h, method, path, raw):
        with self._lock:
            self._stats["control_requests"] += 1

        def reply(status, obj):
            h.send_full(status, json.dumps(obj).encode(), "application/json")

        name = path[len("/_fake/"):]
        try:
            if name == "config" and method == "POST":
                kw = json.loads(raw.decode("utf-8") or "{}")
                if not isinstance(kw, dict):
                    raise ValueError("config must be a JSON object")
                self.configure(**kw)
                return reply(200, {"ok": True, "config": self.config()})
            if name == "config" and method == "GET":
                return reply(200, self.config())
            if name == "requests" and method == "GET":
                return reply(200, self.requests())
            if name == "events" and method == "GET":
                return reply(200, self.events())
            if name == "stats" and method == "GET":
                return reply(200, self.stats())
            if name == "reset" and method == "POST":
                self.reset()
                return reply(200, {"ok": True})
        except ValueError as e:
            return reply(400, {"ok": False, "error": str(e)})
        return reply(404, {"ok": False, "error": "no control endpoint %s %s" % (method, path)})

    # -- provider endpoints --
    def _serve(self, h, method, path, query, raw):
        P = self.impl
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            body = None
        with self._lock:
            cfg = self._cfg
            self._stats["requests"] += 1
            if not h.counted:
                h.counted = True
                self._stats["connections"] += 1
            self._requests.append({
                "method": method, "path": h.path, "route_path": path,
                "query": {k: v[0] if len(v) == 1 else v for k, v in query.items()},
                "headers": {k.lower(): v for k, v in h.headers.items()},
                "body": body, "body_len": len(raw), "connection": h.conn_id, "time": time.time(),
            })
        ctx = Ctx(self, h, method, path, query, raw, body, cfg, h.conn_id)
        ctx.kind = route = P.route(method, path)
        ctx.id = {"openai": "chatcmpl-", "anthropic": "msg_01"}.get(P.name, "") + _rand(24)

        if route is None:
            if P.name == "openai":
                msg = "Invalid URL (%s %s)" % (method, path)
            elif P.name == "anthropic":
                msg = "Not found"
            else:
                msg = "Method not found."
            return self._send_error(ctx, 404, "unknown_path", msg)

        fault = ctx.fault
        if fault == "no_headers":
            self._wait(h, None)     # until the client goes (raises _Abort)
        if cfg["delay_s"]:
            self._wait(h, cfg["delay_s"])

        err = P.auth_ok(ctx)
        if err:
            return self._send_error(ctx, *err)

        if route == "root":
            return h.send_full(200, b"Ollama is running", "text/plain; charset=utf-8")
        if route == "version":
            return h.send_full(200, P.dumps(ctx, {"version": "0.6.5"}), "application/json; charset=utf-8")

        models = cfg["models"] if cfg["models"] is not None else DEFAULT_MODELS[P.name]
        if route in ("models", "model_get"):
            if fault == "http_500":
                return self._send_error(ctx, 500, "internal", P.messages(ctx, "internal"))
            if route == "model_get":
                m = P.model_from_path(path)
                if m not in models or fault == "model_not_found":
                    return self._send_error(ctx, 404, "model_not_found",
                                            P.messages(ctx, "model_not_found", m))
                return h.send_full(200, P.dumps(ctx, P._model_obj(m), pretty=True),
                                   "application/json; charset=UTF-8")
            body = P.dumps(ctx, P.models_body(ctx, models), pretty=P.name in ("openai", "gemini"))
            ctype = "application/json; charset=utf-8" if P.name == "ollama" else "application/json"
            if fault == "trickle":
                h.start(200, ctype, length=len(body))
                return self._trickle(ctx, body)
            return h.send_full(200, body, ctype)

        # A generation request (or an Ollama prewarm).
        if body is None or not isinstance(body, dict):
            if P.name == "ollama":
                msg = "invalid character looking for beginning of value" if raw else "missing request body"
            elif P.name == "gemini":
                msg = "Invalid JSON payload received."
            else:
                msg = "We could not parse the JSON body of your request."
            return self._send_error(ctx, 400, "invalid", msg)
        err = P.validate(ctx, route)
        if err:
            return self._send_error(ctx, *err)
        ctx.model = P.model_from_path(path) if P.name == "gemini" else body.get("model")

        prewarm = P.name == "ollama" and route == "generate" and not body.get("prompt")
        if fault == "model_not_found" or (cfg["models"] is not None and not self._known(ctx.model, models)):
            return self._send_error(ctx, 404, "model_not_found",
                                    P.messages(ctx, "model_not_found", ctx.model))
        if fault == "http_500" or (fault == "stream_error" and not P.wants_stream(ctx, route)):
            return self._send_error(ctx, 500, "internal", P.messages(ctx, "internal"))
        if prewarm:
            status, b, ctype = P.prewarm_body(ctx)
            return h.send_full(status, b, ctype)
        if fault in ONCE_FAULTS:
            with self._lock:
                fire = not self._once_fired
                self._once_fired = True
            if fire:
                if fault == "rate_limit_once":
                    return self._send_error(ctx, 429, "rate_limit",
                                            P.messages(ctx, "rate_limit", ctx.model),
                                            {"Retry-After": cfg["retry_after"]})
                if fault == "overloaded_once" and P.name == "anthropic":
                    return self._send_error(ctx, 529, "overloaded", P.messages(ctx, "overloaded"))
                return self._send_error(ctx, 503, "unavailable", P.messages(ctx, "unavailable"))

        self._make_text(ctx)
        if hasattr(P, "prepare"):
            P.prepare(ctx)
        if P.wants_stream(ctx, route):
            return self._send_stream(ctx)
        return self._send_plain(ctx)

    @staticmethod
    def _known(model, models):
        if model in models:
            return True
        if model and ":" not in model and model + ":latest" in models:
            return True
        return False

    def _make_text(self, ctx):
        cfg, fault = ctx.cfg, ctx.fault
        if fault == "prose_only":
            text = PROSE
        elif cfg["content"] is not None:
            text = cfg["content"]
            if fault == "invalid_utf8":
                mid = len(text) // 2
                text = text[:mid] + _BAD_CHARS + text[mid:]
        else:
            result = copy.deepcopy(cfg["result"] if cfg["result"] is not None else DEFAULT_RESULT)
            if fault == "confidence_7":
                result["confidence"] = 7
            if fault == "huge":
                unit = "All work and no play makes Jack a dull boy. "
                n = cfg["huge_bytes"]
                result["improved_prompt"] = (unit * (n // len(unit) + 1))[:n]
            if fault == "invalid_utf8":
                result["improved_prompt"] = str(result.get("improved_prompt", "")) + " " + _BAD_MARK
            text = json.dumps(result, ensure_ascii=ctx.content_ascii)
            if fault == "invalid_utf8":
                text = text.replace(_BAD_MARK, _BAD_CHARS)
        if fault == "code_fences":
            text = FENCE_PREFIX + text + FENCE_SUFFIX
        elif fault == "think":
            text = THINK_PREFIX + text
        ctx.full_text = text
        ctx.text = text[:len(text) // 2] if fault == "truncated" else text

    def _send_error(self, ctx, status, kind, message, extra=None):
        status, headers, body, ctype = self.impl.error(ctx, status, kind, message)
        headers = dict(headers)
        headers.update(extra or {})
        if ctx.fault == "trickle":
            ctx.h.start(status, ctype, headers, length=len(body))
            return self._trickle(ctx, body)
        ctx.h.send_full(status, body, ctype, headers)

    def _send_plain(self, ctx):
        h, fault = ctx.h, ctx.fault
        status, body, ctype = self.impl.ok_body(ctx)
        if fault == "never_ending":
            h.start(status, ctype, chunked=True)
            h.out(self._chunk(body[:len(body) // 2]))
            filler = self._chunk(b"and again ")
            while True:
                self._wait(h, ctx.cfg["chunk_delay_s"] or 0.05)
                h.out(filler)
        h.start(status, ctype, length=len(body))
        if fault == "trickle":
            return self._trickle(ctx, body)
        if fault in ("cut_mid_json", "reset_mid_stream"):
            h.out(body[:len(body) // 2])
            return self._cut(ctx, reset=fault == "reset_mid_stream")
        h.out(body)

    @staticmethod
    def _chunk(data):
        return b"%x\r\n" % len(data) + data + b"\r\n"

    def _frames(self, ctx):
        P, fault = self.impl, ctx.fault
        size = ctx.cfg["chunk_size"] or (65536 if fault == "huge" else 7)
        pieces = chunk_text(ctx.text, size)
        for f in P.head(ctx):
            yield f
        if fault == "never_ending":
            opening = '{"improved_prompt": "'
            for p in chunk_text(opening, size):
                yield P.piece(ctx, p)
            while True:
                yield P.piece(ctx, "and again ")
        if fault in ("cut_mid_json", "reset_mid_stream", "stream_error"):
            half = max(1, len(pieces) // 2)
            for p in pieces[:half]:
                yield P.piece(ctx, p)
            if fault == "stream_error":
                yield P.stream_error_frame(ctx)
                return
            yield _RESET if fault == "reset_mid_stream" else _CUT
            return
        for i, p in enumerate(pieces):
            yield P.piece(ctx, p, last=P.finish_on_last_piece and i == len(pieces) - 1)
        for f in P.tail(ctx):
            yield f

    def _send_stream(self, ctx):
        h = ctx.h
        h.start(200, self.impl.stream_ctype(ctx), chunked=True)
        if ctx.fault == "trickle":
            wire = b"".join(self._chunk(f) for f in self._frames(ctx)) + b"0\r\n\r\n"
            return self._trickle(ctx, wire)
        delay = ctx.cfg["chunk_delay_s"]
        if ctx.fault == "never_ending" and not delay:
            delay = 0.05
        first = True
        for f in self._frames(ctx):
            if f is _CUT or f is _RESET:
                return self._cut(ctx, reset=f is _RESET)
            if delay and not first:
                self._wait(h, delay)
            first = False
            h.out(self._chunk(f))
        h.out(b"0\r\n\r\n")

    def _trickle(self, ctx, data):
        h = ctx.h
        step = ctx.cfg["trickle_s"]
        for i in range(len(data)):
            h.out(data[i:i + 1])
            if i + 1 < len(data):
                self._wait(h, step)

    def _cut(self, ctx, reset):
        h = ctx.h
        sock = h.connection
        self._event({"type": "reset_sent" if reset else "connection_cut",
                     "path": ctx.path, "connection": ctx.conn_id})
        try:
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                h.rfile.close()   # drop makefile's reference so close() really closes
                sock.close()
            else:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise _Abort()


# --------------------------------------------------------------------------
# Driving a fake in another process.
# --------------------------------------------------------------------------

class RemoteFake:
    """The control API of a fake reached over HTTP (e.g. one started with the CLI)."""

    def __init__(self, url):
        self.url = url.rstrip("/")
        self.port = urlsplit(self.url).port

    def _call(self, method, name, obj=None):
        data = None if obj is None else json.dumps(obj).encode()
        req = urllib.request.Request(self.url + "/_fake/" + name, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read().decode())

    def configure(self, **kw):
        return self._call("POST", "config", kw)

    def config(self):
        return self._call("GET", "config")

    def requests(self):
        return self._call("GET", "requests")

    def events(self):
        return self._call("GET", "events")

    def stats(self):
        return self._call("GET", "stats")

    def reset(self):
        return self._call("POST", "reset", {})


class FakeLLMProcess(RemoteFake):
    """Runs the fake as a separate process (python3 fake_llm.py ...)."""

    def __init__(self, provider, host="127.0.0.1", port=0):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--provider", provider,
             "--host", host, "--port", str(port)],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError("fake_llm did not start: %r" % line)
        h = "[%s]" % host if ":" in host else host
        RemoteFake.__init__(self, "http://%s:%d" % (h, int(line.split()[1])))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        return self.proc.returncode


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake LLM server for promptd's tests.")
    ap.add_argument("--provider", required=True, choices=PROVIDERS)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--config", help="initial config as a JSON object")
    ap.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = ap.parse_args(argv)
    config = json.loads(args.config) if args.config else {}
    fake = FakeLLM(args.provider, host=args.host, port=args.port, verbose=args.verbose, **config)
    fake.bind()
    done = threading.Event()

    def on_signal(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    fake.start()
    sys.stdout.write("PORT %d\n" % fake.port)
    sys.stdout.flush()
    while not done.wait(0.5):
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
