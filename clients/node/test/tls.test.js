// TLS, mTLS and bearer tokens through the Node client against the real
// server, with certificates made by tests/support/make_certs.sh: a worker
// certificate gets fuel over mTLS and may not stop the throttle
// (PERMISSION_DENIED naming the method and the throttle); an admin token
// creates and deletes (over TLS with a CA only, and beside a client
// certificate); a wrong token is UNAUTHENTICATED; plaintext, a client
// without a certificate or trusting another CA cannot connect
// (UNAVAILABLE); a token without TLS is refused when the Throttle is made
// (INVALID_ARGUMENT); the environment variables and their precedence; the
// token file; toJSON() never writes a token; a multi-address target with
// security.serverName (and what grpc-js does without it).
'use strict';

const assert = require('node:assert/strict');
const { after, before, describe, test } = require('node:test');
const grpc = require('@grpc/grpc-js');
const { Throttle, ThrottleError, FuelOutcome, SECURITY_ENV, securityFromEnv, status } =
  require('..');
const { GENEROUS, Pki, Server, freePorts } = require('./support');

const ADMIN_TOKEN = 'admin-token-5b1f';
const WORKER = 'spiffe://throttle.test/worker';
const POLICY = `# tls.test.js: the worker certificate may take fuel of "t" only.
${WORKER}                           worker      t
spiffe://throttle.test/controller  controller  *
token:admin                        admin       *
`;

// Asserts that `promise` rejects (or `fn` throws) a ThrottleError of
// `codeName`; returns the error.
async function rejectsWith(promise, codeName) {
  let caught = null;
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof ThrottleError, String(error));
    assert.equal(error.codeName, codeName, error.message);
    assert.equal(error.code, status[codeName]);
    assert.ok(error.message.includes(codeName));
    caught = error;
    return true;
  });
  return caught;
}

function throwsWith(fn, codeName, pattern) {
  let caught = null;
  assert.throws(fn, (error) => {
    assert.ok(error instanceof ThrottleError, String(error));
    assert.equal(error.codeName, codeName, error.message);
    assert.match(error.details, pattern);
    caught = error;
    return true;
  });
  return caught;
}

// The tests choose the environment, whatever the run's is.
function clearSecurityEnv() {
  for (const variable of Object.values(SECURITY_ENV)) delete process.env[variable];
}

describe('TLS, mTLS and tokens', () => {
  // Two servers with one policy and token file: `mtls` requires client
  // certificates (--tls_client_ca), `tls` does not.
  const fx = { pki: null, mtls: null, tls: null, handles: [] };

  before(async () => {
    clearSecurityEnv();
    fx.pki = new Pki();
    const files = [
      `--policy=${fx.pki.write('policy.txt', POLICY)}`,
      `--token_file=${fx.pki.tokens({ admin: ADMIN_TOKEN })}`,
    ];
    fx.mtls = new Server([...fx.pki.serverFlags({ clientCa: true }), ...files]);
    await fx.mtls.start();
    fx.tls = new Server([...fx.pki.serverFlags({ clientCa: false }), ...files]);
    await fx.tls.start();
  });

  after(async () => {
    for (const t of fx.handles) t.close();
    for (const server of [fx.mtls, fx.tls]) if (server) await server.close();
    if (fx.pki) fx.pki.close();
  });

  const client = (server, security, name = 't', options = {}) => {
    const t = new Throttle(server.address, name, { ...options, security });
    fx.handles.push(t);
    return t;
  };
  const admin = (name = 't') =>
    client(fx.mtls, fx.pki.security('admin', { token: ADMIN_TOKEN }), name);

  // The throttle "t" on the mTLS server, made afresh and started by the
  // controller. Resolves the controller.
  async function runningT() {
    await admin().create(1000, 1, { replace: true });
    const controller = client(fx.mtls, fx.pki.security('controller'));
    await controller.start();
    return controller;
  }

  // --- what each identity may do -------------------------------------------

  test('a worker certificate gets fuel over mTLS', async () => {
    const controller = await runningT();
    const worker = client(fx.mtls, fx.pki.security('worker'), 't', { workerId: 'w1' });
    assert.equal(await worker.awaitFuel(GENEROUS), FuelOutcome.FUEL);
    assert.equal(typeof (await worker.hasFuel()), 'boolean'); // allowed too
    assert.ok((await controller.info()).totalEmissions >= 1);
  });

  test("the worker's stop is PERMISSION_DENIED naming the method and throttle", async () => {
    const controller = await runningT();
    const worker = client(fx.mtls, fx.pki.security('worker'));
    const error = await rejectsWith(worker.stop(), 'PERMISSION_DENIED');
    assert.match(error.details, /Stop/);
    assert.match(error.details, /"t"/);
    assert.ok(error.details.includes(WORKER), error.details);
    assert.equal(worker.killFlag.isSet(), false);
    assert.equal((await controller.info()).state, 'running');
  });

  test('a worker certificate may not create nor wait on another throttle', async () => {
    await admin('other').create(10, 1, { replace: true });
    const error = await rejectsWith(
      client(fx.mtls, fx.pki.security('worker'), 'other').awaitFuel(0),
      'PERMISSION_DENIED',
    );
    assert.match(error.details, /"other"/);
    const create = await rejectsWith(
      client(fx.mtls, fx.pki.security('worker')).create(1, 1),
      'PERMISSION_DENIED',
    );
    assert.match(create.details, /CreateThrottle/);
    await admin('other').delete();
  });

  test('an admin token creates and deletes', async (t) => {
    const cases = {
      'TLS, a CA only': [fx.tls, fx.pki.security(null, { token: ADMIN_TOKEN })],
      'mTLS, the admin certificate': [fx.mtls, fx.pki.security('admin', { token: ADMIN_TOKEN })],
      // The token's identity comes first: the worker certificate alone may
      // not create.
      'mTLS, the worker certificate': [
        fx.mtls,
        fx.pki.security('worker', { token: ADMIN_TOKEN }),
      ],
    };
    for (const [name, [server, security]] of Object.entries(cases)) {
      await t.test(name, async () => {
        const a = client(server, security, 'made-by-token');
        const info = await a.create(3, 2, { mode: 'bucket', burst: 2 });
        assert.deepEqual([info.name, info.maxN, info.mode], ['made-by-token', 3, 'bucket']);
        assert.equal((await a.info()).state, 'created');
        await a.delete();
        await rejectsWith(a.info(), 'NOT_FOUND');
      });
    }
  });

  test('a wrong token is UNAUTHENTICATED', async () => {
    for (const [server, security] of [
      [fx.tls, fx.pki.security(null, { token: 'not-the-token' })],
      [fx.mtls, fx.pki.security('worker', { token: 'not-the-token' })],
    ]) {
      const t = client(server, security);
      const error = await rejectsWith(t.hasFuel(), 'UNAUTHENTICATED');
      assert.match(error.details, /bearer token is not listed/);
      await rejectsWith(t.awaitFuel(GENEROUS), 'UNAUTHENTICATED'); // not retried
    }
  });

  test('TLS without an identity is UNAUTHENTICATED under a policy', async () => {
    const error = await rejectsWith(
      client(fx.tls, fx.pki.security()).listThrottles(),
      'UNAUTHENTICATED',
    );
    assert.match(error.details, /ListThrottles/);
  });

  // --- who cannot connect at all -------------------------------------------

  test('a plaintext client to a TLS port is UNAVAILABLE', async () => {
    for (const server of [fx.mtls, fx.tls]) {
      await rejectsWith(client(server, {}).hasFuel(), 'UNAVAILABLE');
      // No security and no environment: plaintext too.
      await rejectsWith(client(server, undefined).hasFuel(), 'UNAVAILABLE');
    }
  });

  test('handshakes that fail are UNAVAILABLE', async (t) => {
    const cases = {
      'no client certificate': fx.pki.security(),
      'a client certificate of another CA': fx.pki.security(null, {
        certFile: fx.pki.path('rogue.pem'),
        keyFile: fx.pki.path('rogue.key'),
      }),
      'trusting another CA': fx.pki.security('worker', { caFile: fx.pki.path('rogue-ca.pem') }),
    };
    for (const [name, security] of Object.entries(cases)) {
      await t.test(name, async () => {
        await rejectsWith(client(fx.mtls, security).hasFuel(), 'UNAVAILABLE');
      });
    }
  });

  // --- settings refused before any call ------------------------------------

  test('a token without TLS is INVALID_ARGUMENT at construction', () => {
    const tokenFile = fx.pki.write('token-no-tls.txt', ADMIN_TOKEN);
    for (const security of [{ token: ADMIN_TOKEN }, { tokenFile }]) {
      throwsWith(
        () => new Throttle(fx.mtls.address, 't', { security }),
        'INVALID_ARGUMENT',
        /needs TLS: set security\.caFile/,
      );
    }
    process.env.THROTTLE_TOKEN = ADMIN_TOKEN;
    try {
      throwsWith(
        () => new Throttle(fx.mtls.address, 't'),
        'INVALID_ARGUMENT',
        /THROTTLE_TOKEN needs TLS: set THROTTLE_TLS_CA/,
      );
    } finally {
      clearSecurityEnv();
    }
  });

  test('settings that cannot work are INVALID_ARGUMENT at construction', () => {
    const make = (options) => () => new Throttle(fx.mtls.address, 't', options);
    const ca = fx.pki.path('ca.pem');
    const pem = fx.pki.path('worker.pem');
    throwsWith(
      make({ security: { caFile: ca, certFile: pem } }),
      'INVALID_ARGUMENT',
      /security\.certFile and security\.keyFile go together/,
    );
    throwsWith(
      make({ security: { caFile: ca, token: 'a', tokenFile: pem } }),
      'INVALID_ARGUMENT',
      /not both/,
    );
    throwsWith(
      make({ security: { caFile: ca, token: 'two\nlines' } }),
      'INVALID_ARGUMENT',
      /printable ASCII/,
    );
    throwsWith(make({ security: { cafile: ca } }), 'INVALID_ARGUMENT', /unknown setting cafile/);
    throwsWith(
      make({ security: { caFile: ca }, credentials: grpc.credentials.createInsecure() }),
      'INVALID_ARGUMENT',
      /security and credentials/,
    );
    const missing = fx.pki.path('no-such-ca.pem');
    throwsWith(
      make({ security: { caFile: missing } }),
      'INVALID_ARGUMENT',
      new RegExp(`security\\.caFile: cannot read ${missing}: ENOENT`),
    );
    fx.pki.write('empty-token.txt', '\n');
    throwsWith(
      make({ security: { caFile: ca, tokenFile: fx.pki.path('empty-token.txt') } }),
      'INVALID_ARGUMENT',
      /empty-token\.txt is empty/,
    );
  });

  // --- the environment, files, toJSON --------------------------------------

  test('the environment is used when no security is given; explicit wins', async () => {
    await runningT();
    Object.assign(process.env, {
      THROTTLE_TLS_CA: fx.pki.path('ca.pem'),
      THROTTLE_TLS_CERT: fx.pki.path('worker.pem'),
      THROTTLE_TLS_KEY: fx.pki.path('worker.key'),
    });
    try {
      assert.deepEqual(securityFromEnv(), {
        caFile: fx.pki.path('ca.pem'),
        certFile: fx.pki.path('worker.pem'),
        keyFile: fx.pki.path('worker.key'),
      });
      const worker = client(fx.mtls, undefined);
      assert.equal(await worker.awaitFuel(GENEROUS), FuelOutcome.FUEL);
      await rejectsWith(worker.stop(), 'PERMISSION_DENIED');
      // An explicit security wins whole over the environment.
      await client(fx.mtls, fx.pki.security('controller')).stop();
      await rejectsWith(client(fx.mtls, {}).hasFuel(), 'UNAVAILABLE');
      process.env.THROTTLE_TOKEN_FILE = fx.pki.write('env-token.txt', `${ADMIN_TOKEN}\n`);
      const a = client(fx.mtls, undefined, 'made-from-env');
      await a.create(1, 1);
      await a.delete();
    } finally {
      clearSecurityEnv();
    }
  });

  test('securityFromEnv(given) completes given settings, pairs whole', () => {
    const p = (name) => fx.pki.path(name);
    const env = {
      THROTTLE_TLS_CA: p('ca.pem'),
      THROTTLE_TLS_CERT: p('worker.pem'),
      THROTTLE_TLS_KEY: p('worker.key'),
      THROTTLE_TOKEN: 'from-env',
    };
    assert.deepEqual(securityFromEnv({ tokenFile: p('t.txt') }, env), {
      caFile: p('ca.pem'),
      certFile: p('worker.pem'),
      keyFile: p('worker.key'),
      tokenFile: p('t.txt'),
    });
    assert.deepEqual(securityFromEnv({ certFile: p('admin.pem'), keyFile: p('admin.key') }, env), {
      caFile: p('ca.pem'),
      certFile: p('admin.pem'),
      keyFile: p('admin.key'),
      token: 'from-env',
    });
    throwsWith(
      () =>
        new Throttle(fx.mtls.address, 't', {
          security: securityFromEnv({ certFile: p('admin.pem') }, env),
        }),
      'INVALID_ARGUMENT',
      /security\.certFile and security\.keyFile go together/,
    );
    const notPem = fx.pki.write('not-a-pem.txt', 'hello\n');
    throwsWith(
      () => new Throttle(fx.mtls.address, 't', { security: { caFile: notPem } }),
      'INVALID_ARGUMENT',
      /security\.caFile: .*not-a-pem\.txt holds no PEM block/,
    );
  });

  test('the token file: its first line, trimmed, read when the Throttle is made', async () => {
    const file = fx.pki.write('admin-token.txt', `  ${ADMIN_TOKEN} \nignored\n`);
    const a = client(fx.tls, fx.pki.security(null, { tokenFile: file }), 'from-file');
    fx.pki.write('admin-token.txt', 'not-the-token\n'); // read already
    await a.create(1, 1);
    await a.delete();
  });

  // --- a multi-address target: serverName --------------------------------
  //
  // C-core (C++, Python) checks the server's certificate against the whole
  // target and fails; grpc-js checks it against the host of the target's
  // first address, whichever server answers. server.pem holds IP 127.0.0.1
  // and DNS localhost.

  test('a multi-address target: serverName names the certificate', async (t) => {
    await runningT();
    const [closed] = await freePorts(1); // as a standby's: nothing listens
    const target = `ipv4:127.0.0.1:${closed},${fx.mtls.address}`;
    const through = (to, security, name = 't') => {
      const h = new Throttle(to, name, { security });
      fx.handles.push(h);
      return h;
    };
    await t.test('with serverName: calls, a worker and the options', async () => {
      for (const serverName of ['localhost', '127.0.0.1']) {
        const controller = through(target, fx.pki.security('controller', { serverName }));
        assert.ok(Array.isArray(await controller.listThrottles()));
      }
      const worker = through(target, fx.pki.security('worker', { serverName: 'localhost' }));
      assert.equal(await worker.awaitFuel(GENEROUS), FuelOutcome.FUEL);
      assert.equal(worker.options.security.serverName, 'localhost');
      const copy = Throttle.fromJSON(JSON.parse(JSON.stringify(worker)));
      fx.handles.push(copy);
      assert.equal(await copy.awaitFuel(GENEROUS), FuelOutcome.FUEL);
    });
    await t.test('without serverName grpc-js checks the first address (127.0.0.1)', async () => {
      // Works only because the certificate holds the first address: with
      // servers on different hosts, a second server's certificate would be
      // checked against the first one's address.
      const controller = through(target, fx.pki.security('controller'));
      assert.ok(Array.isArray(await controller.listThrottles()));
      // A first address the certificate does not hold (127.0.0.2: nothing
      // listens there either) fails the handshake with the second server.
      const other = `ipv4:127.0.0.2:${closed},${fx.mtls.address}`;
      const error = await rejectsWith(
        through(other, fx.pki.security('controller')).listThrottles(),
        'UNAVAILABLE',
      );
      assert.match(error.details, /IP: 127\.0\.0\.2 is not in the cert's list/);
      const named = through(other, fx.pki.security('controller', { serverName: 'localhost' }));
      assert.ok(Array.isArray(await named.listThrottles()));
    });
    await t.test('a name the certificate does not hold is UNAVAILABLE', async () => {
      const security = fx.pki.security('controller', { serverName: 'throttle.example' });
      for (const to of [target, fx.mtls.address]) {
        const error = await rejectsWith(through(to, security).listThrottles(), 'UNAVAILABLE');
        assert.match(error.details, /Host: throttle\.example\. is not in the cert's altnames/);
      }
      // The Throttle's own channelOptions win over it.
      const own = new Throttle(target, 't', {
        security,
        channelOptions: { 'grpc.ssl_target_name_override': 'localhost' },
      });
      fx.handles.push(own);
      assert.ok(Array.isArray(await own.listThrottles()));
    });
    await t.test('THROTTLE_TLS_SERVER_NAME; the setting wins over it', async () => {
      Object.assign(process.env, {
        THROTTLE_TLS_CA: fx.pki.path('ca.pem'),
        THROTTLE_TLS_CERT: fx.pki.path('controller.pem'),
        THROTTLE_TLS_KEY: fx.pki.path('controller.key'),
        THROTTLE_TLS_SERVER_NAME: 'localhost',
      });
      try {
        const other = `ipv4:127.0.0.2:${closed},${fx.mtls.address}`;
        assert.ok(Array.isArray(await through(other, undefined).listThrottles()));
        assert.equal(securityFromEnv().serverName, 'localhost');
        assert.equal(securityFromEnv({ serverName: 'x.example' }).serverName, 'x.example');
        process.env.THROTTLE_TLS_SERVER_NAME = 'throttle.example';
        await rejectsWith(through(other, undefined).listThrottles(), 'UNAVAILABLE');
      } finally {
        clearSecurityEnv();
      }
    });
  });

  test('a serverName without TLS or that is not one name is INVALID_ARGUMENT', () => {
    const make = (security) => () => new Throttle(fx.mtls.address, 't', { security });
    throwsWith(
      make({ serverName: 'localhost' }),
      'INVALID_ARGUMENT',
      /^security\.serverName needs TLS: .*plaintext; set security\.caFile/,
    );
    throwsWith(
      make(fx.pki.security(null, { serverName: '127.0.0.1,localhost' })),
      'INVALID_ARGUMENT',
      /^security\.serverName: "127\.0\.0\.1,localhost": one name, not a list/,
    );
    throwsWith(
      make(fx.pki.security(null, { serverName: 'local host' })),
      'INVALID_ARGUMENT',
      /the name holds a space/,
    );
    process.env.THROTTLE_TLS_SERVER_NAME = 'localhost';
    try {
      throwsWith(
        () => new Throttle(fx.mtls.address, 't'),
        'INVALID_ARGUMENT',
        /^THROTTLE_TLS_SERVER_NAME needs TLS: .*set THROTTLE_TLS_CA/,
      );
    } finally {
      clearSecurityEnv();
    }
  });

  test('toJSON() writes no token; fromJSON() with a token file works', async () => {
    const withToken = client(fx.tls, fx.pki.security(null, { token: ADMIN_TOKEN }));
    const json = JSON.stringify(withToken);
    assert.ok(!json.includes(ADMIN_TOKEN), json);
    assert.equal(withToken.options.security.token, undefined);
    assert.equal(JSON.parse(json).options.security.caFile, fx.pki.path('ca.pem'));

    const file = fx.pki.write('json-token.txt', ADMIN_TOKEN);
    const original = client(fx.tls, fx.pki.security(null, { tokenFile: file }), 'from-json');
    const copy = Throttle.fromJSON(JSON.parse(JSON.stringify(original)));
    fx.handles.push(copy);
    await copy.create(1, 1);
    await copy.delete();
  });
});
