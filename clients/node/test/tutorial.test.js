// The seed's tutorial scenario through the Node client against the real
// server: 4 worker processes at 4 per 1 s, the mode's bound on the total,
// every grant counted once, every worker sees the kill flag on stop. And
// examples/tutorial.js run as a script prints the seed's four lines, and so
// does the example at the top of index.js, as written.
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test } = require('node:test');
const { Throttle } = require('..');
const { SERVER, GENEROUS, sleep, awaitWaiting, Server, WorkerProcess } = require('./support');

const RUN_SECONDS = 3;
const EXAMPLES = path.join(__dirname, '..', 'examples');

// Runs 4 worker processes on a throttle of 4 per 1 s in `mode` for
// RUN_SECONDS and checks the total against bound(runtime).
async function scenario(t, mode, bound) {
  const server = await new Server().start();
  t.after(() => server.close());
  const throttle = new Throttle(server.address, 'tutorial');
  t.after(() => throttle.close());
  await throttle.create(4, 1, { mode });
  const workers = [];
  for (let i = 0; i < 4; i++) {
    const w = new WorkerProcess([
      process.execPath,
      path.join(EXAMPLES, 'worker.js'),
      `--address=${server.address}`,
      '--throttle=tutorial',
      `--worker_id=worker-${i}`,
    ]);
    t.after(() => w.kill());
    workers.push(w);
  }
  assert.ok(await awaitWaiting(throttle, 4), 'workers did not start waiting');
  await throttle.start();
  await sleep(RUN_SECONDS);
  const [runtime, total, between, perSecond] = await throttle.stop();
  for (const w of workers) assert.equal(await w.wait(GENEROUS), 0, w.output);

  const grants = workers.map((w) => w.grants());
  const report = `runtime ${runtime} total ${total} grants ${grants}`;
  // Every worker saw the kill flag: its loop ended with "stopped".
  for (const w of workers) assert.equal(w.lines().at(-1), 'stopped', w.output);
  // Every grant reached a worker and was counted once.
  assert.equal(grants.reduce((a, b) => a + b, 0), total, report);
  // The mode's bound, and a sane lower limit on a loaded box.
  assert.ok(runtime >= RUN_SECONDS, report);
  assert.ok(total <= bound(runtime), report);
  assert.ok(total >= Math.floor((runtime * 4) / 2), report);
  // The seed's derived values.
  assert.ok(Math.abs(perSecond - total / runtime) < 1e-9, report);
  assert.ok(Math.abs(between - runtime / total) < 1e-9, report);
}

test('smooth: at most one at the start and one every 0.25 s', (t) =>
  scenario(t, 'smooth', (runtime) => Math.floor(runtime * 4) + 1));

test('window: at most 4 in any 1 s window', (t) =>
  scenario(t, 'window', (runtime) => 4 * (Math.floor(runtime) + 1)));

test('examples/tutorial.js prints the seed lines', () => {
  const result = childProcess.spawnSync(
    process.execPath,
    [path.join(EXAMPLES, 'tutorial.js'), '--server', SERVER],
    { encoding: 'utf8', timeout: 120000 },
  );
  assert.equal(result.status, 0, result.stderr);
  const out = Object.fromEntries(
    result.stdout
      .split('\n')
      .filter((l) => l.includes(': '))
      .map((l) => l.split(': ')),
  );
  const runtime = Number(out['Runtime']);
  const total = Number(out['Total']);
  assert.ok(runtime >= 5, result.stdout);
  assert.ok(total <= Math.floor(runtime * 4) + 1, result.stdout);
  assert.ok(total >= 10, result.stdout);
  assert.ok(Math.abs(Number(out['Processes per second']) - total / runtime) < 1e-9);
  assert.ok(Math.abs(Number(out['Time between processes']) - runtime / total) < 1e-9);
  // Each of the 4 workers ended its loop on the kill flag, and together
  // they received every grant.
  const ended = [...result.stderr.matchAll(/^\S+: (\d+) grants, kill flag set$/gm)];
  assert.equal(ended.length, 4, result.stderr);
  assert.equal(
    ended.reduce((sum, m) => sum + Number(m[1]), 0),
    total,
    result.stderr,
  );
});

// The example in the header comment of index.js: the lines from its
// require('throttle-client') up to the blank comment line after main()'s
// call, without the comment marks.
function headerExample() {
  const lines = fs.readFileSync(path.join(__dirname, '..', 'index.js'), 'utf8').split('\n');
  const first = lines.findIndex((l) => l.includes("require('throttle-client')"));
  assert.ok(first > 0, 'no example in the header of index.js');
  const example = [];
  for (const line of lines.slice(first)) {
    if (!line.startsWith('//')) break;
    if (line === '//' && example.at(-1) === '});') break;
    example.push(line.replace(/^\/\/ {0,3}/, ''));
  }
  return example.join('\n');
}

test('the example at the top of index.js runs as written', async (t) => {
  const server = await new Server().start();
  t.after(() => server.close());
  // A scratch directory where require('throttle-client') finds this client.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'throttle_header.'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(path.join(__dirname, '..'), path.join(dir, 'node_modules', 'throttle-client'));
  // Strict mode: a variable the example forgot to declare is an error.
  const script = path.join(dir, 'example.js');
  fs.writeFileSync(script, `'use strict';\n${headerExample()}\n`);
  const result = childProcess.spawnSync(process.execPath, [script], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 120000,
    env: { ...process.env, THROTTLE_ADDRESS: server.address },
  });
  assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
  const total = Number(/^Total: (\d+)$/m.exec(result.stdout)?.[1]);
  assert.ok(total >= 2, result.stdout);
  const ended = [...result.stdout.matchAll(/^Worker-\d: (\d+) grants, kill flag set$/gm)];
  assert.equal(ended.length, 2, result.stdout);
  assert.equal(
    ended.reduce((sum, m) => sum + Number(m[1]), 0),
    total,
    result.stdout,
  );
});
