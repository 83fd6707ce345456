#!/usr/bin/env node
// A worker of bench/adaptive.sh, through clients/node: awaits fuel, tries
// each grant on the simulated downstream (bench/adaptive_downstream.py,
// one UDP datagram, answer accepted or rejected) and reports the outcomes
// to the throttle (report()) every 100 ms, until the throttle stops.
//
//   node bench/adaptive_worker.js --address=HOST:PORT --throttle=NAME \
//       --downstream=PORT --worker_id=ID
//   node bench/adaptive_worker.js --address=HOST:PORT --throttle=NAME \
//       --sample=OUT.jsonl      (every 250 ms: {"t", "current_max_n"})
//   node bench/adaptive_worker.js --address=HOST:PORT --throttle=NAME \
//       --create='{"maxN":300,...adaptive settings}'   (creates and starts)
'use strict';

const dgram = require('node:dgram');
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { Throttle } = require(path.join(__dirname, '..', 'clients', 'node'));

const { values: args } = parseArgs({
  options: {
    address: { type: 'string' },
    throttle: { type: 'string' },
    downstream: { type: 'string' },
    worker_id: { type: 'string', default: 'adaptive-worker' },
    sample: { type: 'string' },
    create: { type: 'string' },
  },
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function create(t) {
  const { maxN, per, mode, adaptive } = JSON.parse(args.create);
  await t.create(maxN, per, { mode, adaptive, replace: true });
  await t.start();
}

async function sample(t) {
  const out = fs.openSync(args.sample, 'w');
  for (;;) {
    const info = await t.info();
    fs.writeSync(out, `${JSON.stringify({ t: Date.now() / 1000, current_max_n: info.currentMaxN })}\n`);
    if (info.state === 'stopped') break;
    await sleep(250);
  }
  fs.closeSync(out);
}

async function work(t) {
  const socket = dgram.createSocket('udp4');
  // One try in flight at a time; no answer within 1 s (the downstream
  // ended with its schedule) is no outcome.
  let answer = null;
  socket.on('message', (msg) => {
    if (answer) answer(msg.toString() === '1');
  });
  const tryDownstream = () =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        answer = null;
        resolve(null);
      }, 1000);
      answer = (ok) => {
        clearTimeout(timer);
        answer = null;
        resolve(ok);
      };
      socket.send('?', Number(args.downstream), '127.0.0.1');
    });
  let successes = 0;
  let rejections = 0;
  let reporting = Promise.resolve();
  const timer = setInterval(() => {
    const [s, r] = [successes, rejections];
    successes = 0;
    rejections = 0;
    if (s + r > 0) {
      reporting = t.report({ successes: s, rejections: r }).catch(() => {});
    }
  }, 100);
  while (!t.killFlag.isSet()) {
    const outcome = await t.awaitFuel(5);
    if (!outcome.fuel) continue;
    const ok = await tryDownstream();
    if (ok === true) successes++;
    else if (ok === false) rejections++;
  }
  clearInterval(timer);
  await reporting;
  socket.close();
}

async function main() {
  const t = new Throttle(args.address, args.throttle, { workerId: args.worker_id });
  try {
    if (args.create) await create(t);
    else if (args.sample) await sample(t);
    else await work(t);
  } finally {
    t.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
