#!/usr/bin/env bash
# tests/clients/node_pack_install_test.sh: the Node client as a user installs
# it (docs/clients.md): `npm pack` in clients/node, then `npm install` of the
# tarball into a fresh project outside the repository, offline: the
# project starts with a copy of clients/node/node_modules (what
# clients/setup.sh fetched), so npm needs no registry.
#
#   tests/clients/node_pack_install_test.sh THROTTLE_SERVER
#     require('throttle-client') from that project (the proto must come
#     from inside the package: THROTTLE_PROTO_DIR unset, no ../../proto)
#     and get fuel from a real server: create, start, awaitFuel is FUEL,
#     awaitFuelCount(3) has 3 grants, stop, close.
#   tests/clients/node_pack_install_test.sh --types
#     `tsc --noEmit --strict` on a .ts file that uses the package's
#     declarations (index.d.ts through "types"), with correct calls and with
#     a wrong one marked @ts-expect-error. Needs tsc (typescript, a
#     devDependency that clients/setup.sh installs) in
#     clients/node/node_modules/.bin, on PATH or in $TSC; fails without it.
#
# Packs a copy of clients/node and proto/ (in the layout of the
# repository), so that the checkout is left as it was.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
arg="${1:?usage: node_pack_install_test.sh THROTTLE_SERVER | --types}"
source "$here/server.sh"

tsc=
if [[ "$arg" == --types ]]; then
  tsc="${TSC:-}"
  [[ -n "$tsc" ]] || [[ ! -x "$root/clients/node/node_modules/.bin/tsc" ]] ||
    tsc="$root/clients/node/node_modules/.bin/tsc"
  [[ -n "$tsc" ]] || tsc="$(command -v tsc || true)"
  if [[ -z "$tsc" ]]; then
    echo "node_pack_install_test.sh: no tsc (typescript): run clients/setup.sh" >&2
    exit 1
  fi
else
  server="$(realpath "$arg")"
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/throttle_npmpack.XXXXXX")"
trap 'stop_server; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src/clients/node" "$tmp/project"
cp -r "$root/proto" "$tmp/src/"
(cd "$root/clients/node" && tar -c --exclude=./node_modules --exclude=./proto \
  --exclude='./*.tgz' .) | tar -x -C "$tmp/src/clients/node"
tarball="$(cd "$tmp/src/clients/node" &&
  npm pack --silent --pack-destination "$tmp" | tail -n 1)"
rm -rf "$tmp/src"  # the installed package must not need the sources

cd "$tmp/project"
echo '{"name": "user-project", "private": true}' >package.json
cp -rL "$root/clients/node/node_modules" .
npm install --offline --no-save --no-audit --no-fund --loglevel=error \
  "$tmp/$tarball" >/dev/null

if [[ -n "$tsc" ]]; then
  cat >check.ts <<'TS'
import { Throttle, FuelOutcome, ThrottleError, FuelResult } from 'throttle-client';
import { LatestWithWorkers, MeanWithWorkers, WorkerStats } from 'throttle-client';

async function worker(address: string): Promise<number> {
  const tank = new Throttle(address, 'crawl', {
    askAhead: 0,
    security: { caFile: 'ca.pem', serverName: 'throttle' },
  });
  await tank.create(4, 1, { replace: true, mode: 'bucket', burst: 2, catchUp: 0.5 });
  await tank.update({ maxN: 5, catchUp: null });
  let grants = 0;
  while (!tank.killFlag.isSet()) {
    const outcome = await tank.awaitFuel(5);
    if (outcome === FuelOutcome.FUEL || outcome.fuel) grants += 1;
  }
  const result: FuelResult = await tank.awaitFuelCount(10, 1);
  grants += result.grants;
  const available: boolean = await tank.hasFuel();
  const total: number = await tank.emit(available ? 1 : 0);
  const [runtime, emitted]: [number, number, number, number] = await tank.stop();
  tank.close();
  return grants + total + runtime + emitted;
}

async function controller(address: string): Promise<number> {
  const t = new Throttle(address, 'crawl');
  const [between, perSecond]: [number, number] = await t.latest(1);
  const latest: LatestWithWorkers = await t.latest(60, { includeWorkers: true });
  const mean: MeanWithWorkers = await t.mean({ includeWorkers: true });
  const first: WorkerStats | undefined = mean.workers[0];
  // @ts-expect-error: without includeWorkers, mean() is the seed's pair.
  const pair: MeanWithWorkers = await t.mean();
  t.close();
  return between + perSecond + latest.workers.length + mean.fairnessIndex +
    (first ? first.grants : 0) + (pair ? 0 : 1);
}

controller('127.0.0.1:50051').catch(() => undefined);

worker('127.0.0.1:50051').catch((error: unknown) => {
  if (error instanceof ThrottleError) console.error(error.code, error.codeName);
});

// @ts-expect-error: awaitFuelCount needs a count.
new Throttle('a', 'b').awaitFuelCount();

async function watcher(address: string): Promise<string> {
  const watch = new Throttle(address, 'crawl').watch({ interval: 0.5, window: 1 });
  for await (const snapshot of watch) {
    const when: Date = snapshot.time;
    const [, perSecond]: [number, number] = snapshot.latest;
    if (snapshot.changed) return `${snapshot.info.state} ${perSecond} ${when.toISOString()}`;
  }
  watch.cancel();
  return '';
}
watcher('127.0.0.1:50051').catch(() => undefined);

// @ts-expect-error: a watch's interval is seconds, a number.
new Throttle('a', 'b').watch({ interval: '1s' });

async function degradation(address: string): Promise<number> {
  const t = new Throttle(address, 'crawl');
  const info = await t.create(10, 1, { degradation: 'local_share', localShareFor: 30 });
  const policy: 'wait' | 'fail_fast' | 'local_share' = info.degradation;
  await t.update({ degradation: 'fail_fast', localShareFor: null });
  await t.configure(10, 1, { degradation: 'DEGRADATION_WAIT' });
  const { currentMaxN } = await t.latest(1, { includeWorkers: true });
  t.close();
  return currentMaxN + info.localShareFor + policy.length;
}
degradation('127.0.0.1:50051').catch(() => undefined);

// @ts-expect-error: a degradation is one of wait, fail_fast, local_share.
new Throttle('a', 'b').update({ degradation: 'retry' });
TS
  "$tsc" --noEmit --strict --module commonjs --moduleResolution node \
    --target es2020 --types node check.ts
  echo "node_pack_install_test.sh: tsc accepts check.ts with the package's types"
  exit 0
fi

start_server "$server" "$tmp"
env -u THROTTLE_PROTO_DIR ADDRESS="$ADDRESS" node - <<'JS'
const assert = require('node:assert');
const path = require('node:path');
const { Throttle, FuelOutcome } = require('throttle-client');

(async () => {
  const where = path.dirname(require.resolve('throttle-client'));
  assert.ok(where.startsWith(process.cwd()), `throttle-client from ${where}`);
  const throttle = new Throttle(process.env.ADDRESS, 'install-test');
  await throttle.create(100, 1);
  await throttle.start();
  assert.strictEqual(await throttle.awaitFuel(10), FuelOutcome.FUEL);
  assert.strictEqual((await throttle.awaitFuelCount(3, 10)).grants, 3);
  await throttle.stop();
  throttle.close();
  console.log(`node_pack_install_test.sh: fuel from ${process.env.ADDRESS} with ${where}`);
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
JS
