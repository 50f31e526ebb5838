#!/bin/sh
# `make demo`: start promptd on a private socket, improve an example idea,
# stop it. Through Ollama when one answers at the configured URL (OLLAMA_HOST
# or LLM_BASE_URL, else http://localhost:11434) with the model pulled, else
# through the offline builtin template, saying which and how to get a real
# model. Nothing outside a temporary directory is read or written: no config
# file, no history database of yours.
set -u

BUILD=${BUILD:-build}
PROMPTD=$BUILD/promptd
PROMPTCTL=$BUILD/promptctl
MODEL=${LLM_MODEL:-llama3.2:3b}
IDEA="email my landlord about the broken heater"
CONTEXT="third time this winter, I have a toddler"

if [ ! -x "$PROMPTD" ] || [ ! -x "$PROMPTCTL" ]; then
    echo "demo: $PROMPTD and $PROMPTCTL are not built; run \`make\` first" >&2
    exit 1
fi

DIR=$(mktemp -d "${TMPDIR:-/tmp}/promptd-demo.XXXXXX") || exit 1
chmod 700 "$DIR"
SOCK=$DIR/promptd.sock
PID=
cleanup() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A private environment: the demo must not pick up a user's config file.
XDG_CONFIG_HOME=$DIR/config XDG_DATA_HOME=$DIR/data XDG_RUNTIME_DIR=$DIR/run \
    LLM_PROVIDER=ollama LLM_MODEL=$MODEL LLM_FALLBACK_PROVIDER=builtin \
    "$PROMPTD" --socket "$SOCK" --db "$DIR/history.db" --log-level warn \
    >"$DIR/promptd.log" 2>&1 &
PID=$!

i=0
until "$PROMPTCTL" --socket "$SOCK" ping >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$PID" 2>/dev/null; then
        echo "demo: promptd did not start:" >&2
        cat "$DIR/promptd.log" >&2
        exit 1
    fi
    sleep 0.05
done

URL=$("$PROMPTCTL" --socket "$SOCK" --json health |
    sed -n 's/.*"base_url": *"\([^"]*\)".*/\1/p' | head -n 1)
URL=${URL:-http://localhost:11434}

# Does an Ollama answer there, and does it have the model?
PROVIDER=builtin
if MODELS=$("$PROMPTCTL" --socket "$SOCK" models 2>/dev/null); then
    if printf '%s\n' "$MODELS" | grep -qx "$MODEL"; then
        PROVIDER=ollama
        echo "== Ollama answers at $URL: improving with $MODEL (the first answer waits"
        echo "   while Ollama loads the model)"
    else
        echo "== Ollama answers at $URL but has no model $MODEL: run \`ollama pull $MODEL\`"
        echo "   (or set LLM_MODEL to one it has). Using the offline builtin template now."
    fi
else
    echo "== No Ollama at $URL: using promptd's offline builtin template (low confidence)."
    echo "   For a real model: install Ollama, then \`ollama serve\` and \`ollama pull $MODEL\`"
    echo "   (or set OLLAMA_HOST), or put LLM_PROVIDER=openai and OPENAI_API_KEY=... in"
    echo "   ~/.config/promptd/promptd.conf (anthropic and gemini work the same way)."
fi
echo "== promptctl improve \"$IDEA\" -c \"$CONTEXT\""
echo

"$PROMPTCTL" --socket "$SOCK" improve --provider "$PROVIDER" -c "$CONTEXT" "$IDEA"
STATUS=$?
echo
if [ $STATUS -eq 0 ]; then
    echo "== Done: promptd served that on a private socket and is stopping now."
    echo "   Run it yourself: build/promptd &  then  build/promptctl improve \"your idea\""
else
    echo "demo: the improvement failed (exit $STATUS); promptd's log:" >&2
    cat "$DIR/promptd.log" >&2
fi
exit $STATUS
