#!/usr/bin/env bash
# End to end: `moestream serve` on a tiny model, driven by curl and (when tests/server/fetch.sh
# could install it) the official openai npm client. Chat and completions, streamed and not;
# tools reaching the template; errors for malformed JSON, an unknown model, an oversized
# prompt and too many requests at once; 8 concurrent streams for a few seconds, every one
# complete, stepped together in batches (/metrics) and the server's memory bounded; SIGTERM during a stream exits 0.
# Usage: serve_test.sh MOESTREAM MODEL_DIR TEMPLATE.jinja
set -euo pipefail
bin="$1" model_src="$2" template="$3"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d /tmp/mst_serve_test.XXXXXX)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2> /dev/null; then kill -KILL "$server_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "serve_test.sh: FAILED: $*" >&2
  echo "--- server log:" >&2
  cat "$work/server.log" >&2 || true
  exit 1
}

# The tiny model with a real template (Qwen3's, which renders tools and tool calls).
mkdir "$work/model"
for f in "$model_src"/*; do ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$work/model/"; done
cp "$template" "$work/model/chat_template.jinja"

start_server() {  # options...; sets server_pid and base
  "$bin" serve -m "$work/model" --alias tiny --port 0 --ctx 1024 --threads 1 "$@" > /dev/null 2> "$work/server.log" &
  server_pid=$!
  for _ in $(seq 1 300); do
    if grep -q "listening on" "$work/server.log"; then break; fi
    kill -0 "$server_pid" 2> /dev/null || fail "the server exited at start"
    sleep 0.1
  done
  base="$(grep -o 'http://[0-9.]*:[0-9]*' "$work/server.log" | head -1)"
  [[ -n "$base" ]] || fail "the server printed no address"
}

stop_server() {  # expects exit status 0 within 20 s of SIGTERM
  kill -TERM "$server_pid"
  for _ in $(seq 1 200); do
    kill -0 "$server_pid" 2> /dev/null || break
    sleep 0.1
  done
  kill -0 "$server_pid" 2> /dev/null && fail "the server did not stop within 20 s of SIGTERM"
  local status=0
  wait "$server_pid" || status=$?
  server_pid=""
  [[ "$status" == 0 ]] || fail "the server exited with $status after SIGTERM"
}

post() {  # path body -> writes the body to $work/out, prints the status
  curl -s -o "$work/out" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$2" "$base$1"
}
expect() {  # status what; checks the last post
  local got="$1" want="$2" what="$3"
  [[ "$got" == "$want" ]] || fail "$what: HTTP $got, expected $want: $(cat "$work/out")"
}
json_field() {  # python expression over `j`, the last answer
  python3 -c "import json,sys; j=json.load(open('$work/out')); print($1)"
}

start_server --parallel 2 --queue 1

# Health, models, metrics.
[[ "$(curl -s "$base/health")" == *ok* ]] || fail "/health"
[[ "$(curl -s "$base/v1/models")" == *'"id":"tiny"'* ]] || fail "/v1/models names the model"

# Chat, not streamed.
code=$(post /v1/chat/completions '{"model": "tiny", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 6}')
expect "$code" 200 "chat"
[[ "$(json_field "j['choices'][0]['message']['role']")" == assistant ]] || fail "chat message role"
[[ "$(json_field "j['usage']['completion_tokens'] <= 6 and j['choices'][0]['finish_reason'] in ('stop', 'length')")" == True ]] \
  || fail "chat usage and finish_reason: $(cat "$work/out")"

# Chat, streamed: data: events, a finish_reason, usage, [DONE] last.
curl -sN -H 'Content-Type: application/json' "$base/v1/chat/completions" \
  -d '{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 6, "stream": true, "stream_options": {"include_usage": true}}' \
  > "$work/stream"
[[ "$(tail -n 2 "$work/stream" | head -n 1)" == "data: [DONE]" ]] || fail "stream ends with data: [DONE]: $(cat "$work/stream")"
python3 - "$work/stream" << 'PY' || fail "stream events"
import json, sys
events = [l[6:] for l in open(sys.argv[1]).read().split("\n\n") if l.startswith("data: ")]
assert events[-1] == "[DONE]"
chunks = [json.loads(e) for e in events[:-1]]
assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
assert any(c["choices"] and c["choices"][0]["finish_reason"] for c in chunks)
assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= 1
PY

# Completions, both ways, the same seed giving the same text.
code=$(post /v1/completions '{"prompt": "Once upon", "max_tokens": 5, "seed": 3, "temperature": 1}')
expect "$code" 200 "completion"
text="$(json_field "j['choices'][0]['text']")"
curl -sN -H 'Content-Type: application/json' "$base/v1/completions" \
  -d '{"prompt": "Once upon", "max_tokens": 5, "seed": 3, "temperature": 1, "stream": true}' > "$work/stream"
streamed="$(python3 -c "
import json, sys
events = [l[6:] for l in open('$work/stream').read().split('\n\n') if l.startswith('data: ')]
assert events[-1] == '[DONE]'
print(''.join(json.loads(e)['choices'][0]['text'] for e in events[:-1]))")"
[[ "$streamed" == "$text" ]] || fail "streamed completion '$streamed' differs from '$text'"

# Tools reach the template: the same conversation renders longer with them.
round_trip='[{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}, {"role": "tool", "tool_call_id": "c1", "content": "21"}]'
tools='[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]'
code=$(post /v1/chat/completions "{\"messages\": $round_trip, \"max_tokens\": 1}")
expect "$code" 200 "tool round trip without tools"
plain=$(json_field "j['usage']['prompt_tokens']")
code=$(post /v1/chat/completions "{\"messages\": $round_trip, \"tools\": $tools, \"max_tokens\": 1}")
expect "$code" 200 "tool round trip with tools"
(( $(json_field "j['usage']['prompt_tokens']") > plain )) || fail "tools did not reach the template"

# Errors, in OpenAI's shape.
code=$(post /v1/chat/completions '{"messages": [')
expect "$code" 400 "malformed JSON"
[[ "$(json_field "j['error']['type']")" == invalid_request_error ]] || fail "error shape: $(cat "$work/out")"
code=$(post /v1/chat/completions '{"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}')
expect "$code" 404 "unknown model"
[[ "$(json_field "j['error']['code']")" == model_not_found ]] || fail "unknown model code"
long="$(python3 -c "print(' '.join(['word'] * 3000))")"
code=$(post /v1/completions "{\"prompt\": \"$long\"}")
expect "$code" 400 "oversized prompt"
[[ "$(json_field "j['error']['code']")" == context_length_exceeded ]] || fail "oversized prompt code"
code=$(post /v1/chat/completions '{"messages": [], "max_tokens": 1}')
expect "$code" 400 "empty messages"
code=$(post /v1/chat/completions '{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}')
expect "$code" 400 "wrong field type"
[[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/nothing")" == 404 ]] || fail "unknown path"

# More requests at once than sessions (2) and queue (1): some get 503, none fails otherwise.
clients=()
for i in $(seq 1 6); do
  curl -s -o "$work/burst.$i" -w '%{http_code}' -H 'Content-Type: application/json' "$base/v1/completions" \
    -d '{"prompt": "Once upon", "max_tokens": 200, "temperature": 1}' > "$work/burst.$i.code" &
  clients+=($!)
done
wait "${clients[@]}"
codes="$(cat "$work"/burst.*.code | sort | uniq -c | tr '\n' ' ')"
[[ "$codes" == *503* ]] || fail "6 requests at once on 2 sessions and a queue of 1: no 503 ($codes)"
[[ "$(cat "$work"/burst.*.code | grep -vc -e 200 -e 503)" == 0 ]] || fail "burst answered other than 200/503: $codes"
grep -l '"code":"server_overloaded"' "$work"/burst.* > /dev/null || fail "503 without server_overloaded"
stop_server

# Load: 8 concurrent streams on 4 sessions and a queue of 8 for a few seconds; every
# stream completes, and the server's resident memory after the load stays near where the
# first round left it.
start_server --parallel 4 --queue 8
rss() { awk '/VmRSS/ {print $2}' "/proc/$server_pid/status"; }
load_round() {  # client index
  curl -sN -H 'Content-Type: application/json' "$base/v1/chat/completions" \
    -d "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello $1\"}], \"max_tokens\": 24, \"stream\": true}"
}
clients=()
for c in $(seq 1 8); do
  load_round "$c" > "$work/warm.$c" &
  clients+=($!)
done
wait "${clients[@]}"
rss_warm=$(rss)
end=$((SECONDS + 6))
clients=()
for c in $(seq 1 8); do
  (
    n=0
    while (( SECONDS < end )); do
      load_round "$c" > "$work/load.$c.$n"
      n=$((n + 1))
    done
  ) &
  clients+=($!)
done
wait "${clients[@]}"
total=0
for f in "$work"/load.*; do
  total=$((total + 1))
  [[ "$(tail -n 2 "$f" | head -n 1)" == "data: [DONE]" ]] || fail "a load stream did not complete: $f: $(cat "$f")"
done
(( total >= 8 )) || fail "only $total load streams ran"
rss_end=$(rss)
# Under AddressSanitizer freed memory waits in its quarantine (256 MiB by default), so the
# resident size says nothing there; LeakSanitizer checks the server at its exit instead.
if [[ "${MST_SANITIZED:-0}" == 1 ]]; then
  echo "serve_test.sh: sanitized build: the resident-memory bound is left to LeakSanitizer at exit"
else
  (( rss_end < rss_warm + 65536 )) || fail "resident memory grew from $rss_warm to $rss_end KiB over $total streams"
fi
echo "serve_test.sh: $total load streams, VmRSS $rss_warm -> $rss_end KiB"
curl -s "$base/metrics" > "$work/metrics"
grep -q '^moestream_completion_tokens_total [1-9]' "$work/metrics" || fail "metrics count no tokens"
grep -q '^moestream_expert_cache_hits_total ' "$work/metrics" || fail "metrics lack cache hits"
# 8 streams on 4 sessions: running requests step together, so some step held several.
max_batch="$(sed -n 's/^moestream_batch_sequences_max //p' "$work/metrics")"
[[ -n "$max_batch" ]] || fail "metrics lack moestream_batch_sequences_max"
(( max_batch >= 2 )) || fail "no step batched two or more sequences under load (max $max_batch)"
grep -q '^moestream_batch_sequences_bucket{le="+Inf"} [1-9]' "$work/metrics" || fail "metrics lack the batch histogram"
echo "serve_test.sh: largest batched step $max_batch sequences"

# The official client, where fetch.sh could install it.
if [[ -d "$here/node_modules/openai" ]]; then
  node "$here/openai_client.mjs" "$base/v1" tiny || fail "the openai client"
else
  echo "serve_test.sh: openai npm client not installed (tests/server/fetch.sh); its checks skipped"
fi

# SIGTERM while a stream runs: the stream ends and the server exits 0.
load_round sigterm > "$work/last" &
client=$!
sleep 0.3
stop_server
wait "$client" || true
echo "serve_test.sh: passed"
