// scripts/copy-proto.js: npm's prepack and postpack of throttle-client.
// Copies the contract, ../../proto/throttle/v1/throttle.proto, into
// clients/node/proto/ so that `npm pack` puts it in the tarball (index.js
// loads it from there once installed); with --remove, deletes the copy
// again, so that the source tree goes on reading ../../proto. The copy is
// never committed (.gitignore).
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const PROTO = path.join('throttle', 'v1', 'throttle.proto');
const here = path.join(__dirname, '..');
const copy = path.join(here, 'proto');

if (process.argv.includes('--remove')) {
  fs.rmSync(copy, { recursive: true, force: true });
} else {
  const source = path.join(here, '..', '..', 'proto', PROTO);
  fs.mkdirSync(path.dirname(path.join(copy, PROTO)), { recursive: true });
  fs.copyFileSync(source, path.join(copy, PROTO));
}
