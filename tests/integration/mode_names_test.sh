#!/usr/bin/env bash
# One spelling of each mode everywhere (issue 13): the names derived from
# the proto's Mode enum (MODE_MONITOR_ONLY -> monitor-only) are the ones
# throttlectl takes and lists, the Python and Node clients map both ways,
# and the README's mode table names. The server's config and --throttle
# spec parse modes with the same ModeFromName (client-lib/src/names.cc)
# that throttlectl uses; cli/throttlectl_test.cc checks that one.
# Usage: mode_names_test.sh SOURCE_DIR THROTTLECTL
set -euo pipefail
src="$1" ctl="$2"
fail() { echo "FAIL: $*" >&2; exit 1; }
enums=$(sed -n '/^enum Mode {/,/^}/p' "$src/proto/throttle/v1/throttle.proto" |
  grep -oE '^ *MODE_[A-Z_]+' | tr -d ' ' | grep -v '^MODE_UNSPECIFIED$')
[[ -n $enums ]] || fail "no modes found in the proto"
help=$("$ctl" create --help)
python="$src/clients/python/throttle_client/client.py"
node="$src/clients/node/index.js"
for enum in $enums; do
  name=$(tr 'A-Z_' 'a-z-' <<<"${enum#MODE_}")
  grep -q -- "$name" <<<"$help" || fail "throttlectl create --help lacks $name"
  grep -qF "\"$name\": pb.$enum," "$python" || fail "$python: no \"$name\" -> $enum"
  grep -qF "pb.$enum: \"$name\"," "$python" || fail "$python: no $enum -> \"$name\""
  grep -qE "^ *('$name'|$name): '$enum'," "$node" || fail "$node: no $name -> $enum"
  grep -qE "^\| \`$name\`( \(default\))? \|" "$src/README.md" || fail "README's mode table lacks $name"
done
# The degradation names likewise (DEGRADATION_FAIL_FAST -> fail_fast,
# underscores kept, as the server's --throttle spec takes them): in
# throttlectl's help and the README's "When the server is gone".
degradations=$(sed -n '/^enum Degradation {/,/^}/p' "$src/proto/throttle/v1/throttle.proto" |
  grep -oE '^ *DEGRADATION_[A-Z_]+' | tr -d ' ' | grep -v '^DEGRADATION_UNSPECIFIED$')
[[ -n $degradations ]] || fail "no degradations found in the proto"
for enum in $degradations; do
  name=$(tr 'A-Z' 'a-z' <<<"${enum#DEGRADATION_}")
  grep -qw -- "$name" <<<"$help" || fail "throttlectl create --help lacks degradation $name"
  grep -qE "^- \`$name\`" "$src/README.md" || fail "README's degradation list lacks $name"
done
echo "mode_names_test: OK ($(echo $enums | wc -w) modes, $(echo $degradations | wc -w) degradations)"
