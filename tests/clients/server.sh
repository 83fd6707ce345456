# tests/clients/server.sh: sourced by the install tests of tests/clients/.
# start_server SERVER DIR starts throttle_server on 127.0.0.1:0 (its output
# in DIR/server.log), waits up to 20 s for the port it reports in
# DIR/port, and sets SERVER_PID and ADDRESS; stop_server kills it. Fails
# the test (exit 1, with the log) when the server does not come up.
start_server() {
  local server="$1" dir="$2"
  "$server" --listen=127.0.0.1:0 --port_file="$dir/port" \
    >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  local deadline=$((SECONDS + 20))
  until [[ -s "$dir/port" ]]; do
    if ((SECONDS > deadline)) || ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "throttle_server did not report its port:" >&2
      cat "$dir/server.log" >&2
      exit 1
    fi
    sleep 0.05
  done
  ADDRESS="127.0.0.1:$(cat "$dir/port")"
}

stop_server() {
  if [[ -n "${SERVER_PID:-}" ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
