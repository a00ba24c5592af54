#!/usr/bin/env node
// Interop test: Microsoft's official Dev Tunnels SDK (npm @microsoft/dev-tunnels-connections and
// -management, versions pinned in package.json) against our relay, host and client.
//
//   node tests/interop/devtunnels_sdk.test.js /path/to/switchboard [--tls] [--versions 1,2,default]
//
// --tls: the relay serves https/wss with a leaf certificate (IP SAN 127.0.0.1) from a CA this script makes
// with openssl; the SDK trusts it through NODE_EXTRA_CA_CERTS (read by each worker at start), our host and
// client through --ca-file. A private CA must work for the management calls and the relay WebSocket alike.
//
// The script starts `switchboard relay --port 0` on 127.0.0.1 and reads the management token from the
// data dir. Every case creates its own tunnel through the SDK's TunnelManagementHttpClient (Bearer
// management token), with one port: the port of an echo server this script runs on 127.0.0.1. The SDK host
// and client themselves use a management client WITHOUT a user token, so they authenticate with the
// tunnel access tokens (`Authorization: tunnel <jwt>`), as real hosts and clients do.
//
// Cases, each run with DEVTUNNELS_PROTOCOL_VERSION=1, =2 and unset ("default": the SDK offers V2 and V1, the
// relay must pick V2; our CLIs then get --protocol auto):
//   (a) SDK TunnelRelayTunnelHost + `switchboard connect --protocol vN`
//   (b) `switchboard host --protocol vN` + SDK TunnelRelayTunnelClient
//   (c) SDK host + SDK client (our relay alone between two official peers)
//   (d) `switchboard host --protocol auto` (speaks V2) + SDK client; with v1 this is the relay serving a V1
//       client for a V2 host
// The negotiated subprotocols are checked (SDK side from the SDK objects, our host from the relay's log, our
// client from its "status connected vN" line).
// In every case random bytes go through the tunnel to the echo server and must come back byte-exact: one
// 2 MiB stream, then several concurrent 256 KiB streams.
//
// The SDK reads DEVTUNNELS_PROTOCOL_VERSION once, when its modules load, so each protocol version runs in a
// child node process (this file with --worker); the parent owns the relay, prints one line per case and
// finally "N passed, M failed". Every child process is killed on every way out.
'use strict';

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const HOST = '127.0.0.1';
const CASE_TIMEOUT_MS = 20000; // a case takes about 0.6 s when all is well
const CLEANUP_LIMIT_MS = 6000; // for all cleanups of one case together
const TOTAL_BUDGET_MS = 270000; // ctest gives 300 s; cases not started by then count as failed
const STARTUP_TIMEOUT_MS = 15000;
const BIG_STREAM_BYTES = 2 * 1024 * 1024;
const SMALL_STREAM_BYTES = 256 * 1024;
const CONCURRENT_STREAMS = 4;
// '1' and '2' set DEVTUNNELS_PROTOCOL_VERSION; 'default' leaves it unset, so the SDK offers both subprotocols
// (V2 first) in one handshake and our relay must pick V2, as it does for every SDK user who sets nothing.
const VERSIONS = ['1', '2', 'default'];

// hostVersion: the protocol the relay must report for the case's host (null: the version under test).
const CASES = [
  { id: 'a', title: 'SDK host + switchboard connect', hostVersion: null },
  { id: 'b', title: 'switchboard host + SDK client', hostVersion: null },
  { id: 'c', title: 'SDK host + SDK client (relay only)', hostVersion: null },
  { id: 'd', title: 'switchboard host (--protocol auto) + SDK client', hostVersion: '2' },
];

function versionLabel(version) {
  return version === 'default' ? 'default' : `v${version}`;
}

// The protocol a connection must end up with: V1 only when forced, V2 otherwise.
function negotiated(version) {
  return version === '1' ? '1' : '2';
}

// The --protocol flag for our host and client in a run.
function ourProtocolFlag(version) {
  return version === 'default' ? 'auto' : `v${version}`;
}

function caseName(version, c) {
  return `${versionLabel(version)} (${c.id}) ${c.title}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function errorText(err) {
  if (!err) return String(err);
  if (err.response && err.response.status) {
    // axios error from the management client: show what our relay answered.
    const body = typeof err.response.data === 'string' ? err.response.data : JSON.stringify(err.response.data);
    return `${err.message} [HTTP ${err.response.status} ${err.config && err.config.method ? err.config.method.toUpperCase() : ''} ` +
      `${err.config && err.config.url ? err.config.url : ''} body=${(body || '').slice(0, 400)}]`;
  }
  return err.stack || err.message || String(err);
}

// ---------------------------------------------------------------------------------------------------------------
// Child processes (used by both the parent and the workers): spawned with piped output kept in memory.

function startProcess(file, args, label, onSpawn) {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  const proc = { child, label, output: [], exitInfo: null };
  proc.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      proc.exitInfo = { code, signal };
      resolve(proc.exitInfo);
    });
    child.on('error', (err) => {
      proc.output.push(`[spawn error] ${err.message}\n`);
      proc.exitInfo = { code: null, signal: null, error: err };
      resolve(proc.exitInfo);
    });
  });
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d) => proc.output.push(d));
  child.stderr.on('data', (d) => proc.output.push(d));
  if (onSpawn && child.pid) onSpawn(child.pid);
  return proc;
}

function killProcess(proc) {
  if (proc && proc.exitInfo === null) {
    try {
      proc.child.kill('SIGKILL');
    } catch (_) {
      // already gone
    }
  }
}

async function stopProcess(proc) {
  if (!proc || proc.exitInfo !== null) return;
  try {
    proc.child.kill('SIGTERM');
  } catch (_) {
    return;
  }
  const done = await Promise.race([proc.exited.then(() => true), sleep(2000).then(() => false)]);
  if (!done) {
    killProcess(proc);
    await Promise.race([proc.exited, sleep(1000)]);
  }
}

function outputTail(proc, lines) {
  const text = proc.output.join('');
  return text.split('\n').slice(-lines).join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// TCP helpers.

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function startEchoServer() {
  return new Promise((resolve, reject) => {
    const sockets = new Set();
    const stats = { connections: 0 };
    const server = net.createServer((socket) => {
      stats.connections += 1;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
      socket.pipe(socket);
    });
    server.on('error', reject);
    server.listen(0, HOST, () => {
      resolve({
        port: server.address().port,
        stats,
        close: () => {
          for (const s of sockets) s.destroy();
          return new Promise((r) => server.close(() => r()));
        },
      });
    });
  });
}

function connectTcp(port, timeoutMs) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`TCP connect to ${HOST}:${port} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

// Writes `size` random bytes into a duplex stream (TCP socket or SDK SshStream) with backpressure, reads until as
// many bytes came back, and checks them byte for byte. No half-close: the SDK's streams cannot half-close.
function echoRoundTrip(stream, size, timeoutMs, label) {
  const data = crypto.randomBytes(size);
  return new Promise((resolve, reject) => {
    const chunks = [];
    let received = 0;
    let settled = false;
    const finishWith = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(
      () => finishWith(new Error(`${label}: echo of ${size} bytes timed out with ${received} bytes back`)),
      timeoutMs,
    );
    stream.on('data', (chunk) => {
      chunks.push(Buffer.from(chunk));
      received += chunk.length;
      if (received > size) {
        finishWith(new Error(`${label}: got ${received} bytes back, sent only ${size}`));
      } else if (received === size) {
        const back = Buffer.concat(chunks);
        if (back.equals(data)) {
          finishWith(null);
        } else {
          let i = 0;
          while (i < size && back[i] === data[i]) i += 1;
          finishWith(new Error(`${label}: echo differs from byte ${i} of ${size}`));
        }
      }
    });
    stream.on('error', (err) => finishWith(new Error(`${label}: stream error after ${received}/${size} bytes back: ${err.message}`)));
    stream.on('close', () => finishWith(new Error(`${label}: stream closed after ${received}/${size} bytes back`)));
    (async () => {
      const chunkSize = 16 * 1024;
      for (let off = 0; off < size && !settled; off += chunkSize) {
        const ok = stream.write(data.subarray(off, Math.min(size, off + chunkSize)));
        if (!ok && !settled) {
          await new Promise((r) => {
            const done = () => {
              stream.off('drain', done);
              stream.off('close', done);
              r();
            };
            stream.on('drain', done);
            stream.on('close', done);
          });
        }
      }
    })().catch((err) => finishWith(err));
  });
}

function destroyStream(stream) {
  try {
    stream.destroy();
  } catch (_) {
    // ignore
  }
}

// One big stream, then CONCURRENT_STREAMS concurrent small ones. `openers` is a list of functions returning a
// duplex; they are used round-robin, so a case can mix local TCP listeners and SDK streams.
async function exerciseStreams(openers, log) {
  const open = async (i) => {
    const opener = openers[i % openers.length];
    return { stream: await opener.open(), how: opener.name };
  };
  {
    const { stream, how } = await open(0);
    try {
      await echoRoundTrip(stream, BIG_STREAM_BYTES, 15000, `stream 0 (${how})`);
    } finally {
      destroyStream(stream);
    }
    log(`2 MiB echoed byte-exact through ${how}`);
  }
  const streams = [];
  try {
    for (let i = 0; i < CONCURRENT_STREAMS; i++) streams.push(await open(i));
    await Promise.all(
      streams.map(({ stream, how }, i) => echoRoundTrip(stream, SMALL_STREAM_BYTES, 15000, `stream ${i + 1} (${how})`)),
    );
  } finally {
    for (const { stream } of streams) destroyStream(stream);
  }
  log(`${CONCURRENT_STREAMS} concurrent 256 KiB streams echoed byte-exact (${openers.map((o) => o.name).join(', ')})`);
}

// ---------------------------------------------------------------------------------------------------------------
// Worker: runs all cases for one DEVTUNNELS_PROTOCOL_VERSION (set in its environment before the SDK loads).

async function runWorker() {
  const config = JSON.parse(process.env.SB_INTEROP_CONFIG);
  const version = config.version;
  const send = (obj) => process.stdout.write(`@@${JSON.stringify(obj)}\n`);
  const procs = new Set();
  const killAll = () => {
    for (const p of procs) killProcess(p);
  };
  process.on('exit', killAll);
  process.on('SIGTERM', () => {
    killAll();
    process.exit(1);
  });
  // If the parent dies without killing us (SIGKILL), do not leave switchboard processes behind.
  const parentPid = process.ppid;
  setInterval(() => {
    if (process.ppid !== parentPid) {
      killAll();
      process.exit(3);
    }
  }, 500).unref();
  process.on('unhandledRejection', (err) => {
    process.stdout.write(`[worker ${versionLabel(version)}] unhandled rejection: ${errorText(err)}\n`);
  });

  const { TunnelManagementHttpClient, ManagementApiVersions } = require('@microsoft/dev-tunnels-management');
  const { TunnelRelayTunnelHost, TunnelRelayTunnelClient } = require('@microsoft/dev-tunnels-connections');

  const userAgent = { name: 'switchboard-interop', version: '1.0' };
  const apiVersion = ManagementApiVersions.Version20230927preview;
  const newManagementClient = (trace, withManagementToken) => {
    const client = new TunnelManagementHttpClient(
      userAgent,
      apiVersion,
      withManagementToken ? async () => `Bearer ${config.managementToken}` : undefined,
      config.serviceUri,
    );
    client.trace = (msg) => trace(`[mgmt] ${msg}`);
    return client;
  };

  const launch = (args, label) => {
    const proc = startProcess(config.switchboard, args, label, (pid) => send({ pid }));
    procs.add(proc);
    proc.exited.then(() => send({ exited: proc.child.pid }));
    return proc;
  };

  for (const c of CASES) {
    const name = caseName(version, c);
    const ctx = {
      version,
      e2e: {},
      notes: [],
      sdkTrace: [],
      procs: [],
      cleanups: [],
      log: (msg) => ctx.notes.push(msg),
    };
    ctx.trace = (msg) => {
      const text = String(msg);
      ctx.sdkTrace.push(text.length > 400 ? `${text.slice(0, 400)} ...` : text);
      if (ctx.sdkTrace.length > 400) ctx.sdkTrace.shift();
    };
    ctx.sdkTraceFn = (level, eventId, msg, err) => ctx.trace(`[sdk ${level}] ${msg}${err ? ' ' + errorText(err) : ''}`);
    // A switchboard process that exits while its case runs fails the case at once.
    let running = true;
    let rejectEarlyExit;
    const earlyExit = new Promise((_, reject) => {
      rejectEarlyExit = reject;
    });
    earlyExit.catch(() => {});
    ctx.launch = (args, label) => {
      const p = launch(args, label);
      ctx.procs.push(p);
      p.exited.then((info) => {
        if (running) rejectEarlyExit(new Error(`${label} exited while the case ran: ${JSON.stringify(info)}`));
      });
      return p;
    };
    const started = Date.now();
    let error = null;
    try {
      await withTimeout(
        Promise.race([
          runCase(c.id, version, config, ctx, { TunnelManagementHttpClient, TunnelRelayTunnelHost, TunnelRelayTunnelClient, newManagementClient }),
          earlyExit,
        ]),
        CASE_TIMEOUT_MS,
        name,
      );
    } catch (err) {
      error = err;
    }
    running = false;
    if (negotiated(version) === '2') {
      const h = ctx.e2e.host;
      const c2 = ctx.e2e.client;
      const parts = [];
      if (h && h.channels) parts.push(`SDK host: relay requested E2E on ${h.requested}/${h.channels} channels, enabled on ${h.enabled}`);
      if (c2 && c2.channels) parts.push(`SDK client: E2E enabled on ${c2.enabled}/${c2.channels} channels`);
      if (parts.length) ctx.notes.push(`E2E (informational): ${parts.join('; ')}`);
    }
    // Cleanup, newest first, bounded in time; a failing cleanup is noted but does not fail the case.
    const cleanupDeadline = Date.now() + CLEANUP_LIMIT_MS;
    for (const fn of ctx.cleanups.reverse()) {
      try {
        await withTimeout(Promise.resolve().then(fn), Math.max(200, cleanupDeadline - Date.now()), 'cleanup');
      } catch (err) {
        ctx.notes.push(`cleanup: ${err.message}`);
      }
    }
    for (const p of ctx.procs) {
      await stopProcess(p);
      procs.delete(p);
    }
    const result = { case: name, ok: !error, ms: Date.now() - started, notes: ctx.notes, tunnelId: ctx.tunnelId };
    if (!error && process.env.SB_INTEROP_VERBOSE) {
      for (const p of ctx.procs) ctx.notes.push(`--- ${p.label} output ---\n${outputTail(p, 30)}`);
      ctx.notes.push(`--- SDK trace ---\n${ctx.sdkTrace.join('\n')}`);
    }
    if (error) {
      result.error = error.response ? errorText(error) : error.message || String(error);
      result.details = [];
      if (!error.response && error.stack) result.details.push(`--- error ---\n${error.stack}`);
      for (const p of ctx.procs) {
        result.details.push(`--- ${p.label} (${p.child.spawnargs.slice(1).join(' ').replace(/--token \S+/, '--token <jwt>')}) exit=${JSON.stringify(p.exitInfo)} ---\n${outputTail(p, 40)}`);
      }
      if (ctx.sdkTrace.length) result.details.push(`--- SDK trace (last lines) ---\n${ctx.sdkTrace.slice(-40).join('\n')}`);
    }
    send(result);
  }
  send({ done: true });
  killAll();
  setTimeout(() => process.exit(0), 200).unref();
}

// Creates a tunnel whose one port is the echo server's port (the SDK host forwards tunnel port P to
// localhost:P), and fetches host and connect tokens for it.
async function createTunnel(sdk, ctx, port) {
  const mgmt = sdk.newManagementClient(ctx.trace, true);
  ctx.cleanups.push(() => mgmt.dispose());
  const created = await mgmt.createTunnel(
    { ports: [{ portNumber: port, protocol: 'auto' }] },
    { tokenScopes: ['host', 'connect'], includePorts: true },
  );
  if (!created || !created.tunnelId || !created.clusterId) {
    throw new Error(`createTunnel returned no tunnelId/clusterId: ${JSON.stringify(created)}`);
  }
  ctx.cleanups.push(async () => {
    await mgmt.deleteTunnel({ tunnelId: created.tunnelId, clusterId: created.clusterId });
  });
  const tunnel = await mgmt.getTunnel(
    { tunnelId: created.tunnelId, clusterId: created.clusterId },
    { tokenScopes: ['host', 'connect'], includePorts: true },
  );
  if (!tunnel) throw new Error(`getTunnel(${created.tunnelId}) returned null right after create`);
  const tokens = tunnel.accessTokens || {};
  if (!tokens.host || !tokens.connect) {
    throw new Error(`getTunnel with tokenScopes=host,connect returned accessTokens ${JSON.stringify(Object.keys(tokens))}`);
  }
  if (!tunnel.ports || !tunnel.ports.some((p) => p.portNumber === port)) {
    throw new Error(`tunnel ports ${JSON.stringify(tunnel.ports)} lack port ${port}`);
  }
  ctx.tunnelId = tunnel.tunnelId;
  ctx.log(`tunnel ${tunnel.tunnelId}.${tunnel.clusterId} port ${port}`);
  return tunnel;
}

// An SDK host in this process, connected through a management client that has no user token (so it
// authenticates with the tunnel's host token).
async function startSdkHost(sdk, ctx, tunnel) {
  const mgmt = sdk.newManagementClient(ctx.trace, false);
  const host = new sdk.TunnelRelayTunnelHost(mgmt, ctx.sdkTraceFn);
  ctx.cleanups.push(() => mgmt.dispose());
  ctx.cleanups.push(() => host.dispose());
  const hostTunnel = {
    tunnelId: tunnel.tunnelId,
    clusterId: tunnel.clusterId,
    ports: tunnel.ports,
    accessTokens: { host: tunnel.accessTokens.host },
  };
  observeHostE2E(host, ctx);
  await host.connect(hostTunnel, { enableReconnect: false });
  expectSubprotocol(host.connectionProtocol, negotiated(ctx.version) === '1' ? 'tunnel-relay-host' : 'tunnel-relay-host-v2-dev', 'SDK host');
  ctx.log(`SDK host connected with subprotocol ${host.connectionProtocol}`);
  return host;
}

// Reads the tunnel with the connect token until a host endpoint is listed (the SDK client fails at once,
// without retry, when there is none).
async function waitForEndpoint(sdk, ctx, tunnel) {
  const mgmt = sdk.newManagementClient(ctx.trace, false);
  ctx.cleanups.push(() => mgmt.dispose());
  const ref = { tunnelId: tunnel.tunnelId, clusterId: tunnel.clusterId, accessTokens: { connect: tunnel.accessTokens.connect } };
  for (;;) {
    const t = await mgmt.getTunnel(ref, { tokenScopes: ['connect'], includePorts: true });
    if (!t) throw new Error('getTunnel with the connect token returned null');
    if (Array.isArray(t.endpoints) && t.endpoints.length > 0) {
      if (!t.accessTokens || !t.accessTokens.connect) t.accessTokens = { connect: tunnel.accessTokens.connect };
      return t;
    }
    await sleep(200);
  }
}

async function startSdkClient(sdk, ctx, tunnel, port) {
  const clientTunnel = await waitForEndpoint(sdk, ctx, tunnel);
  const ep = clientTunnel.endpoints[0];
  ctx.log(`endpoint ${ep.id} hostId=${ep.hostId} keys=${(ep.hostPublicKeys || []).length} clientRelayUri=${ep.clientRelayUri}`);
  const mgmt = sdk.newManagementClient(ctx.trace, false);
  const client = new sdk.TunnelRelayTunnelClient(mgmt, ctx.sdkTraceFn);
  ctx.cleanups.push(() => mgmt.dispose());
  ctx.cleanups.push(() => client.dispose());
  observeClientE2E(client, ctx);
  await client.connect(clientTunnel, { enableReconnect: false });
  expectSubprotocol(client.connectionProtocol, negotiated(ctx.version) === '1' ? 'tunnel-relay-client' : 'tunnel-relay-client-v2-dev', 'SDK client');
  ctx.log(`SDK client connected with subprotocol ${client.connectionProtocol}`);
  await client.waitForForwardedPort(port);
  const fp = client.forwardedPorts.find((p) => p.remotePort === port);
  if (!fp || !fp.localPort) throw new Error(`forwarded port ${port} has no local listener: ${fp}`);
  ctx.log(`port ${port} forwarded to the SDK client, local listener on ${fp.localPort}`);
  const openers = [
    { name: 'SDK local TCP listener', open: () => connectTcp(fp.localPort, 5000) },
    { name: 'SDK connectToForwardedPort', open: () => client.connectToForwardedPort(port) },
  ];
  return { client, openers };
}

function expectSubprotocol(actual, expected, who) {
  if (actual !== expected) throw new Error(`${who} negotiated subprotocol ${actual}, expected ${expected}`);
}

// V2 only, informational: whether the relay asked the SDK host for end-to-end encryption per channel
// (PortRelayConnectRequestMessage.isE2EEncryptionRequested) and whether the SDK client was told it is on
// (PortRelayConnectResponseMessage.isE2EEncryptionEnabled). Wraps the SDK's own handler (it registers
// `this.onForwardedPortConnecting` when the session is configured), so it never changes behaviour.
function observeHostE2E(host, ctx) {
  const { PortRelayConnectRequestMessage } = require('@microsoft/dev-tunnels-connections/messages/portRelayConnectRequestMessage');
  const original = host.onForwardedPortConnecting;
  ctx.e2e.host = { channels: 0, requested: 0, enabled: 0 };
  host.onForwardedPortConnecting = function (e) {
    original.call(this, e);
    try {
      const req = e.stream.channel.openMessage.convertTo(new PortRelayConnectRequestMessage());
      ctx.e2e.host.channels += 1;
      if (req.isE2EEncryptionRequested) ctx.e2e.host.requested += 1;
      if (e.transformPromise) ctx.e2e.host.enabled += 1;
    } catch (_) {
      // observation only
    }
  };
}

function observeClientE2E(client, ctx) {
  const { PortRelayConnectResponseMessage } = require('@microsoft/dev-tunnels-connections/messages/portRelayConnectResponseMessage');
  const original = client.onForwardedPortConnecting;
  ctx.e2e.client = { channels: 0, enabled: 0 };
  client.onForwardedPortConnecting = function (e) {
    original.call(this, e);
    try {
      const res = e.stream.channel.openConfirmationMessage.convertTo(new PortRelayConnectResponseMessage());
      ctx.e2e.client.channels += 1;
      if (res.isE2EEncryptionEnabled) ctx.e2e.client.enabled += 1;
    } catch (_) {
      // observation only
    }
  };
}

// `switchboard host` for the tunnel, exposing the echo port.
function caFileArgs(config) {
  return config.caFile ? ['--ca-file', config.caFile] : [];
}

function startOurHost(ctx, config, tunnel, port, protocol) {
  return ctx.launch(
    ['host', '--relay', config.relayUrl, '--tunnel', tunnel.tunnelId, '--token', tunnel.accessTokens.host,
      '--port', String(port), '--protocol', protocol, ...caFileArgs(config)],
    `switchboard host --protocol ${protocol}`,
  );
}

// `switchboard connect`, mapping the tunnel port to a free local port; resolves once an echo goes through.
async function startOurClient(ctx, config, tunnel, port, protocol) {
  const local = await freePort();
  const proc = ctx.launch(
    ['connect', '--relay', config.relayUrl, '--tunnel', tunnel.tunnelId, '--token', tunnel.accessTokens.connect,
      '--map', `${port}:${local}`, '--protocol', protocol, ...caFileArgs(config)],
    `switchboard connect --protocol ${protocol}`,
  );
  // Readiness: the local listener accepts and a short probe is echoed. A probe may be cut off while the tunnel
  // is still coming up; those attempts are retried (and reported), the real streams afterwards are not.
  let attempts = 0;
  for (;;) {
    if (proc.exitInfo) throw new Error(`switchboard connect exited early: ${JSON.stringify(proc.exitInfo)}`);
    let socket;
    try {
      socket = await connectTcp(local, 2000);
    } catch (_) {
      await sleep(100);
      continue;
    }
    attempts += 1;
    try {
      await echoRoundTrip(socket, 64, 5000, 'probe');
      destroyStream(socket);
      break;
    } catch (err) {
      destroyStream(socket);
      ctx.log(`probe ${attempts} through switchboard connect failed: ${err.message}`);
      await sleep(300);
    }
  }
  ctx.log(`switchboard connect listening on ${local} and echoing (probe attempts: ${attempts})`);
  const status = proc.output.join('').match(/status connected (v\d)/);
  const want = protocol === 'auto' ? 'v2' : protocol;
  if (status && status[1] !== want) throw new Error(`switchboard connect --protocol ${protocol} says "status connected ${status[1]}", expected ${want}`);
  ctx.log(status ? `switchboard connect reports ${status[1]}` : 'switchboard connect printed no "status connected vN" line');
  return { proc, openers: [{ name: 'switchboard connect listener', open: () => connectTcp(local, 5000) }] };
}

async function runCase(id, version, config, ctx, sdk) {
  const echo = await startEchoServer();
  ctx.cleanups.push(() => echo.close());
  const tunnel = await createTunnel(sdk, ctx, echo.port);
  const vN = ourProtocolFlag(version);
  let openers;
  switch (id) {
    case 'a': {
      await startSdkHost(sdk, ctx, tunnel);
      ({ openers } = await startOurClient(ctx, config, tunnel, echo.port, vN));
      break;
    }
    case 'b': {
      startOurHost(ctx, config, tunnel, echo.port, vN);
      ({ openers } = await startSdkClient(sdk, ctx, tunnel, echo.port));
      break;
    }
    case 'c': {
      await startSdkHost(sdk, ctx, tunnel);
      ({ openers } = await startSdkClient(sdk, ctx, tunnel, echo.port));
      break;
    }
    case 'd': {
      startOurHost(ctx, config, tunnel, echo.port, 'auto');
      ({ openers } = await startSdkClient(sdk, ctx, tunnel, echo.port));
      break;
    }
    default:
      throw new Error(`unknown case ${id}`);
  }
  const before = echo.stats.connections;
  await exerciseStreams(openers, ctx.log);
  const used = echo.stats.connections - before;
  if (used < 1 + CONCURRENT_STREAMS) {
    throw new Error(`echo server saw ${used} connections for ${1 + CONCURRENT_STREAMS} streams`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Parent: the relay, one worker per protocol version, the verdict.

// A CA and a leaf for 127.0.0.1 signed by it, in dir; the CN is not an address, so only the IP SAN matches.
function makeTestPki(dir) {
  const { execFileSync } = require('node:child_process');
  const run = (args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(['req', '-x509', ...ec, '-days', '1', '-subj', '/CN=switchboard-interop-ca', '-addext',
    'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', 'ca.key',
    '-out', 'ca.pem']);
  run(['req', ...ec, '-subj', '/CN=switchboard-interop-relay', '-keyout', 'leaf.key', '-out', 'leaf.csr']);
  fs.writeFileSync(path.join(dir, 'leaf.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  run(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1',
    '-extfile', 'leaf.ext', '-out', 'leaf.pem']);
  return { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'leaf.pem'), key: path.join(dir, 'leaf.key') };
}

async function runParent() {
  const binary = process.argv[2];
  const tls = process.argv.includes('--tls');
  const versionsAt = process.argv.indexOf('--versions');
  const versions = versionsAt > 0 ? process.argv[versionsAt + 1].split(',') : VERSIONS;
  let passed = 0;
  let failed = 0;
  let finished = false;
  let relay = null;
  let tmpDir = null;
  const workers = new Set();
  const childPids = new Set(); // switchboard processes started by workers

  const killEverything = () => {
    for (const w of workers) killProcess(w);
    for (const pid of childPids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (_) {
        // gone
      }
    }
    childPids.clear();
    killProcess(relay);
  };
  const removeTmp = () => {
    if (tmpDir) {
      try {
        fs.rmSync(tmpDir, { recursive: true, force: true });
      } catch (_) {
        // best effort
      }
      tmpDir = null;
    }
  };
  const finish = (extraFailure) => {
    if (finished) return;
    finished = true;
    if (extraFailure) {
      failed += 1;
      console.log(`FAIL ${extraFailure}`);
    }
    killEverything();
    if (failed > 0 && relay) {
      console.log(`--- last relay output ---\n${outputTail(relay, 60)}\n--- end of relay output ---`);
    }
    removeTmp();
    console.log(`${passed} passed, ${failed} failed`);
    process.exitCode = failed === 0 ? 0 : 1;
    setTimeout(() => process.exit(), 3000).unref();
  };
  process.on('exit', () => {
    killEverything();
    removeTmp();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      finish(`interrupted by ${sig}`);
      process.exit(1);
    });
  }
  process.on('uncaughtException', (err) => {
    finish(`uncaught exception: ${errorText(err)}`);
    process.exit(1);
  });

  if (!binary || !fs.existsSync(binary)) {
    finish(`usage: node devtunnels_sdk.test.js /path/to/switchboard (got ${binary})`);
    return;
  }
  try {
    require.resolve('@microsoft/dev-tunnels-connections');
    require.resolve('@microsoft/dev-tunnels-management');
  } catch (_) {
    finish(`the official SDK is not installed: run "npm ci" in ${__dirname}`);
    return;
  }

  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-devtunnels-sdk-'));
  const dataDir = path.join(tmpDir, 'relay-data');
  fs.mkdirSync(dataDir);
  let pki = null;
  if (tls) {
    try {
      pki = makeTestPki(tmpDir);
    } catch (err) {
      finish(`cannot make the test CA with openssl: ${errorText(err)}`);
      return;
    }
  }
  const tlsArgs = pki ? ['--tls-cert', pki.cert, '--tls-key', pki.key] : [];
  relay = startProcess(binary, ['relay', '--port', '0', '--bind', 'loopback', '--data-dir', dataDir, ...tlsArgs],
    'switchboard relay');

  // The relay prints its URL once listening; with --port 0 it is the only way to learn the port.
  let relayUrl = null;
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (!relayUrl && Date.now() < deadline && relay.exitInfo === null) {
    const m = relay.output.join('').match(/\b(https?):\/\/([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\]):(\d+)\b/);
    if (m && m[3] !== '0') relayUrl = `${m[1]}://${m[2]}:${m[3]}`;
    else await sleep(50);
  }
  if (!relayUrl) {
    finish(`relay did not print its URL within ${STARTUP_TIMEOUT_MS} ms (exit ${JSON.stringify(relay.exitInfo)}):\n${outputTail(relay, 30)}`);
    return;
  }
  const tokenFile = path.join(dataDir, 'management-token');
  let managementToken = null;
  while (Date.now() < deadline && managementToken === null) {
    try {
      managementToken = fs.readFileSync(tokenFile, 'utf8').trim() || null;
    } catch (_) {
      await sleep(50);
    }
  }
  if (!managementToken) {
    finish(`relay wrote no management token to ${tokenFile}`);
    return;
  }
  console.log(`relay at ${relayUrl}`);

  const config = {
    switchboard: path.resolve(binary),
    relayUrl,
    serviceUri: `${relayUrl}/`,
    managementToken,
    caFile: pki ? pki.ca : null,
  };
  if (tls && !relayUrl.startsWith('https://')) {
    finish(`--tls: the relay serves ${relayUrl}, not https`);
    return;
  }

  const startedAt = Date.now();
  for (const version of versions) {
    const expected = CASES.map((c) => caseName(version, c));
    const reported = new Set();
    // The SDK reads DEVTUNNELS_PROTOCOL_VERSION when its modules load: one worker process per version.
    const env = { ...process.env, SB_INTEROP_CONFIG: JSON.stringify({ ...config, version }) };
    if (pki) env.NODE_EXTRA_CA_CERTS = pki.ca;
    if (version === 'default') delete env.DEVTUNNELS_PROTOCOL_VERSION;
    else env.DEVTUNNELS_PROTOCOL_VERSION = version;
    const child = spawn(process.execPath, [__filename, '--worker'], { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: __dirname });
    const w = { child, label: `worker ${versionLabel(version)}`, output: [], exitInfo: null };
    w.exited = new Promise((resolve) => child.on('exit', (code, signal) => {
      w.exitInfo = { code, signal };
      resolve(w.exitInfo);
    }));
    workers.add(w);
    let buffer = '';
    const onLine = (line) => {
      if (!line.startsWith('@@')) {
        w.output.push(line + '\n');
        return;
      }
      let msg;
      try {
        msg = JSON.parse(line.slice(2));
      } catch (_) {
        w.output.push(line + '\n');
        return;
      }
      if (msg.pid) childPids.add(msg.pid);
      else if (msg.exited) childPids.delete(msg.exited);
      else if (msg.case) {
        reported.add(msg.case);
        if (msg.ok && msg.tunnelId) {
          // Which protocol did the host speak? The relay logs "host of tunnel <id> ready (vN)".
          const c = CASES.find((k) => caseName(version, k) === msg.case);
          const want = `v${(c && c.hostVersion) || negotiated(version)}`;
          const esc = msg.tunnelId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          const m = relay.output.join('').match(new RegExp(`host of tunnel ${esc} ready \\((v\\d)\\)`));
          if (!m) {
            msg.notes.push(`relay log has no "host of tunnel ${msg.tunnelId} ready (vN)" line: host protocol not confirmed`);
          } else if (m[1] !== want) {
            msg.ok = false;
            msg.error = `the relay says the host spoke ${m[1]}, expected ${want}`;
          } else {
            msg.notes.push(`relay: host spoke ${m[1]}`);
          }
        }
        if (msg.ok) {
          passed += 1;
          console.log(`PASS ${msg.case} (${msg.ms} ms)`);
          for (const n of msg.notes) console.log(`     ${n}`);
        } else {
          failed += 1;
          console.log(`FAIL ${msg.case} (${msg.ms} ms): ${msg.error}`);
          for (const n of msg.notes) console.log(`     ${n}`);
          for (const d of msg.details || []) console.log(d);
        }
      }
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      buffer += d;
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        onLine(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => w.output.push(d));

    const limit = Math.min(
      CASES.length * (CASE_TIMEOUT_MS + CLEANUP_LIMIT_MS + 5000) + 10000,
      Math.max(0, TOTAL_BUDGET_MS - (Date.now() - startedAt)),
    );
    const timedOut = await Promise.race([w.exited.then(() => false), sleep(limit).then(() => true)]);
    if (timedOut) killProcess(w);
    await w.exited;
    workers.delete(w);
    for (const pid of childPids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (_) {
        // gone
      }
    }
    childPids.clear();
    const missing = expected.filter((n) => !reported.has(n));
    for (const n of missing) {
      failed += 1;
      console.log(`FAIL ${n}: not run (worker ${timedOut ? 'timed out' : `exited ${JSON.stringify(w.exitInfo)}`})`);
    }
    if (missing.length || (w.exitInfo && w.exitInfo.code !== 0)) {
      console.log(`--- worker ${versionLabel(version)} output ---\n${w.output.join('').split('\n').slice(-40).join('\n')}\n--- end ---`);
    }
    if (relay.exitInfo !== null) {
      finish(`relay exited during the ${versionLabel(version)} cases: ${JSON.stringify(relay.exitInfo)}`);
      return;
    }
  }
  finish(null);
}

if (process.argv[2] === '--worker') {
  runWorker().catch((err) => {
    process.stdout.write(`[worker] fatal: ${errorText(err)}\n`);
    process.exit(2);
  });
} else {
  runParent();
}
