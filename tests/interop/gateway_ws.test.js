#!/usr/bin/env node
// Interop test: the npm `ws` client against the real switchboard binary.
//
//   node tests/interop/gateway_ws.test.js /path/to/switchboard
//
// Starts the gateway on 127.0.0.1 (port 0, token auth, admin socket in a temp dir), runs a set of named cases
// against the wire contract in shared/PROTOCOL.md, prints one "N passed, M failed" line and exits 0 only when
// nothing failed. The server is killed on every way out. No framework, no sleeps as synchronisation.
'use strict';

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');

const HOST = '127.0.0.1';
const CASE_TIMEOUT_MS = 10000;
const DRAIN_CASE_TIMEOUT_MS = 20000;
const DRAIN_EXIT_LIMIT_MS = 15000;
const STARTUP_TIMEOUT_MS = 10000;
const TOKEN = 'interop-' + crypto.randomBytes(16).toString('hex');

// ---------------------------------------------------------------------------------------------------------------
// Results and the single way out.

let passed = 0;
let failed = 0;
let finished = false;
let server = null; // { child, port, path, nodeId, exited: Promise<{code, signal}>, exitInfo, output: string[] }
let tmpDir = null;

function killServer() {
  if (server && server.exitInfo === null) {
    try {
      server.child.kill('SIGKILL');
    } catch (_) {
      // already gone
    }
  }
}

function removeTmpDir() {
  if (tmpDir) {
    try {
      fs.rmSync(tmpDir, { recursive: true, force: true });
    } catch (_) {
      // best effort
    }
    tmpDir = null;
  }
}

function finish(extraFailure) {
  if (finished) return;
  finished = true;
  if (extraFailure) failed += 1;
  killServer();
  removeTmpDir();
  if (failed > 0 && server) {
    const tail = server.output.join('').split('\n').slice(-40).join('\n');
    console.log('--- last server output ---\n' + tail + '\n--- end of server output ---');
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
  // Do not let a stray handle keep the process alive after the verdict.
  setTimeout(() => process.exit(), 3000).unref();
}

process.on('exit', () => {
  // Last resort: never leave the gateway running.
  killServer();
  removeTmpDir();
});
process.on('uncaughtException', (err) => {
  console.log(`FAIL uncaught exception: ${err && err.stack ? err.stack : err}`);
  finish(true);
  process.exit(1);
});
process.on('unhandledRejection', (err) => {
  console.log(`FAIL unhandled rejection: ${err && err.stack ? err.stack : err}`);
  finish(true);
  process.exit(1);
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.log(`FAIL interrupted by ${sig}`);
    finish(true);
    process.exit(1);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers.

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function short(value, max = 300) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (_) {
    text = String(value);
  }
  if (text === undefined) text = String(value);
  return text.length > max ? text.slice(0, max) + `...(${text.length} chars)` : text;
}

let idCounter = 0;
function nextId(prefix) {
  idCounter += 1;
  return `${prefix}-${process.pid}-${idCounter}`;
}

// A client wrapper with an inbox. Every received JSON message lands in the inbox; waitFor() takes (removes) the
// first message matching a predicate, now or when it arrives.
class Client {
  constructor(name, ws) {
    this.name = name;
    this.ws = ws;
    this.inbox = [];
    this.waiters = [];
    this.closeInfo = null;
    this.clientId = null;
    this.sessionInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        const err = new Error(`${this.name}: connection closed (code ${code}${reason.length ? ', ' + reason : ''})`);
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(err);
        }
        resolve(this.closeInfo);
      });
    });
    ws.on('message', (data, isBinary) => {
      let msg;
      if (isBinary) {
        msg = { __binary: true, length: data.length };
      } else {
        try {
          msg = JSON.parse(data.toString('utf8'));
        } catch (e) {
          msg = { __badJson: data.toString('utf8').slice(0, 200) };
        }
      }
      this.deliver(msg);
    });
    ws.on('error', () => {
      // surfaced through 'close'
    });
  }

  static connect(name, options = {}) {
    const url = `ws://${HOST}:${server.port}${server.path}`;
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 5000, ...options });
    const client = new Client(name, ws);
    currentCaseClients.push(client);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`${name}: upgrade refused with HTTP ${res.statusCode}`)));
      ws.once('error', (err) => reject(new Error(`${name}: ${err.message}`)));
    });
  }

  deliver(msg) {
    for (let i = 0; i < this.waiters.length; i += 1) {
      const w = this.waiters[i];
      let match = false;
      try {
        match = w.predicate(msg);
      } catch (_) {
        match = false;
      }
      if (match) {
        this.waiters.splice(i, 1);
        clearTimeout(w.timer);
        w.resolve(msg);
        return;
      }
    }
    this.inbox.push(msg);
  }

  waitFor(predicate, what = 'a matching message', timeoutMs = 5000) {
    for (let i = 0; i < this.inbox.length; i += 1) {
      let match = false;
      try {
        match = predicate(this.inbox[i]);
      } catch (_) {
        match = false;
      }
      if (match) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    }
    if (this.closeInfo) {
      return Promise.reject(new Error(`${this.name}: waiting for ${what}, but the connection is closed (code ${this.closeInfo.code})`));
    }
    return new Promise((resolve, reject) => {
      const waiter = { predicate, resolve, reject, timer: null };
      waiter.timer = setTimeout(() => {
        const idx = this.waiters.indexOf(waiter);
        if (idx >= 0) this.waiters.splice(idx, 1);
        reject(new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}; unclaimed inbox: ${short(this.inbox, 600)}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  waitForType(type, timeoutMs) {
    return this.waitFor((m) => m.type === type && m.replyTo === undefined, `an unsolicited '${type}'`, timeoutMs);
  }

  send(message) {
    this.ws.send(JSON.stringify(message));
  }

  // Sends {id, type, payload, sessionId} and resolves with the message whose replyTo is that id.
  request(type, payload, sessionId) {
    const id = nextId(this.name);
    const message = { type, id };
    if (sessionId !== undefined) message.sessionId = sessionId;
    if (payload !== undefined) message.payload = payload;
    const reply = this.waitFor((m) => m.replyTo === id, `the reply to ${type} ${id}`);
    this.send(message);
    return reply.then((r) => {
      r.__sentId = id;
      return r;
    });
  }

  // Like request() but also returns the id used, before the reply arrives.
  start(type, payload, sessionId) {
    const id = nextId(this.name);
    const message = { type, id };
    if (sessionId !== undefined) message.sessionId = sessionId;
    if (payload !== undefined) message.payload = payload;
    const reply = this.waitFor((m) => m.replyTo === id, `the reply to ${type} ${id}`);
    this.send(message);
    return { id, reply };
  }

  async close() {
    if (this.closeInfo) return;
    if (this.ws.readyState === WebSocket.CONNECTING || this.ws.readyState === WebSocket.OPEN) {
      try {
        this.ws.close(1000, 'test done');
      } catch (_) {
        this.ws.terminate();
      }
    }
    let timer;
    await Promise.race([
      this.closed,
      new Promise((resolve) => {
        timer = setTimeout(() => {
          this.ws.terminate();
          resolve();
        }, 2000);
      }),
    ]);
    clearTimeout(timer);
  }
}

function expectReply(reply, type, what) {
  assert.equal(
    reply.type,
    type,
    `${what}: expected '${type}', got ${short(reply)}`,
  );
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// Opens a connection and takes the server's opening session_info.
async function openClient(name, options) {
  const client = await Client.connect(name, options);
  const info = await client.waitFor((m) => m.type === 'session_info', 'the opening session_info');
  assert.ok(isPlainObject(info.payload), `${name}: session_info without payload object: ${short(info)}`);
  client.sessionInfo = info.payload;
  client.clientId = info.payload.clientId;
  return client;
}

// Opens, connects and authenticates.
async function openAuthed(name, options) {
  const client = await openClient(name, options);
  const hello = await client.request('connect', { clientName: `interop-${name}` });
  expectReply(hello, 'hello_ok', `${name} connect`);
  const auth = await client.request('auth', { token: TOKEN });
  expectReply(auth, 'auth_success', `${name} auth`);
  assert.equal(auth.payload.clientId, client.clientId, `${name}: auth_success clientId differs from session_info`);
  return client;
}

// ---------------------------------------------------------------------------------------------------------------
// The server.

function startServer(binary) {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-interop-'));
  const adminSocket = path.join(tmpDir, 'sb.sock');
  const child = spawn(
    binary,
    ['serve', '--port', '0', '--auth-mode', 'token', '--auth-tokens', TOKEN, '--admin-socket', adminSocket],
    { cwd: tmpDir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  server = { child, port: null, path: null, nodeId: null, exitInfo: null, output: [], exited: null };
  server.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      server.exitInfo = { code, signal };
      resolve(server.exitInfo);
    });
  });

  return new Promise((resolve, reject) => {
    let buffered = '';
    let settled = false;
    const done = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(() => done(new Error(`no banner line within ${STARTUP_TIMEOUT_MS} ms`)), STARTUP_TIMEOUT_MS);
    child.on('error', (err) => done(new Error(`cannot start ${binary}: ${err.message}`)));
    child.on('exit', (code, signal) => done(new Error(`server exited before its banner (code ${code}, signal ${signal})`)));
    child.stderr.on('data', (chunk) => server.output.push(chunk.toString()));
    child.stdout.on('data', (chunk) => {
      const text = chunk.toString();
      server.output.push(text);
      if (settled) return;
      buffered += text;
      const lines = buffered.split('\n');
      buffered = lines.pop();
      for (const line of lines) {
        const m = /^switchboard ws:\/\/127\.0\.0\.1:(\d+)(\/\S*) node (\S+) auth (\S+)\s*$/.exec(line);
        if (m) {
          server.port = Number(m[1]);
          server.path = m[2];
          server.nodeId = m[3];
          if (m[4] !== 'token') {
            done(new Error(`banner says auth ${m[4]}, expected token: ${line}`));
          } else {
            done();
          }
          return;
        }
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Cases.

let currentCaseClients = [];

async function caseHandshake() {
  const c = await Client.connect('hs');
  const info = await c.waitFor((m) => m.type === 'session_info', 'the opening session_info');
  assert.equal(info.replyTo, undefined, `opening session_info must not carry replyTo: ${short(info)}`);
  const p = info.payload;
  assert.ok(isPlainObject(p), `session_info payload: ${short(info)}`);
  assert.equal(typeof p.clientId, 'string', `session_info.clientId: ${short(p)}`);
  assert.ok(p.clientId.length > 0, 'session_info.clientId is empty');
  assert.equal(p.nodeId, server.nodeId, `session_info.nodeId vs banner node ${server.nodeId}: ${short(p)}`);
  assert.equal(p.authRequired, true, `session_info.authRequired: ${short(p)}`);
  assert.equal(typeof p.serverVersion, 'string', `session_info.serverVersion: ${short(p)}`);
  assert.ok(p.serverVersion.length > 0, 'session_info.serverVersion is empty');
  assert.equal(typeof p.heartbeatIntervalMs, 'number', `session_info.heartbeatIntervalMs: ${short(p)}`);
  assert.equal(p.heartbeatIntervalMs, 30000, `session_info.heartbeatIntervalMs (default): ${short(p)}`);
  assert.equal(typeof p.maxPayload, 'number', `session_info.maxPayload: ${short(p)}`);
  assert.equal(p.maxPayload, 1048576, `session_info.maxPayload (default): ${short(p)}`);
  const clientId = p.clientId;

  // connect -> hello_ok, not yet authenticated, empty presence.
  const connect = c.start('connect', { deviceId: 'interop-device', role: 'tester', clientName: 'interop', version: '1' });
  const hello = await connect.reply;
  expectReply(hello, 'hello_ok', 'connect');
  assert.equal(hello.replyTo, connect.id);
  assert.equal(hello.payload.clientId, clientId, `hello_ok.clientId: ${short(hello)}`);
  assert.equal(hello.payload.nodeId, server.nodeId, `hello_ok.nodeId: ${short(hello)}`);
  assert.equal(typeof hello.payload.uptimeMs, 'number', `hello_ok.uptimeMs: ${short(hello)}`);
  assert.equal(hello.payload.authRequired, true, `hello_ok.authRequired: ${short(hello)}`);
  assert.equal(hello.payload.authenticated, false, `hello_ok.authenticated: ${short(hello)}`);
  assert.deepEqual(hello.payload.presence, [], `hello_ok.presence before auth: ${short(hello)}`);

  // chat before auth -> AUTH_REQUIRED.
  const chat = c.start('chat', { text: 'too early' }, 'room-early');
  const chatErr = await chat.reply;
  expectReply(chatErr, 'error', 'chat before auth');
  assert.equal(chatErr.replyTo, chat.id);
  assert.equal(chatErr.payload.code, 'AUTH_REQUIRED', `chat before auth: ${short(chatErr)}`);
  assert.equal(typeof chatErr.payload.message, 'string', `error.message: ${short(chatErr)}`);

  // wrong token -> AUTH_FAILED (the connection stays open).
  const bad = c.start('auth', { token: TOKEN + '-wrong' });
  const badReply = await bad.reply;
  expectReply(badReply, 'error', 'auth with a wrong token');
  assert.equal(badReply.replyTo, bad.id);
  assert.equal(badReply.payload.code, 'AUTH_FAILED', `wrong token: ${short(badReply)}`);

  // right token -> auth_success.
  const good = c.start('auth', { token: TOKEN });
  const ok = await good.reply;
  expectReply(ok, 'auth_success', 'auth with the right token');
  assert.equal(ok.replyTo, good.id);
  assert.equal(ok.payload.clientId, clientId, `auth_success.clientId: ${short(ok)}`);
  assert.equal(typeof ok.payload.userId, 'string', `auth_success.userId: ${short(ok)}`);
  assert.ok(ok.payload.userId.length > 0, 'auth_success.userId is empty');

  // ping -> pong.
  const ping = c.start('ping', {});
  const pong = await ping.reply;
  expectReply(pong, 'pong', 'ping');
  assert.equal(pong.replyTo, ping.id);
}

async function caseSessionBroadcast() {
  const a = await openAuthed('A');
  const b = await openAuthed('B');

  const created = await a.request('session_create', { sessionId: 'room-1' });
  expectReply(created, 'session_info', 'A session_create room-1');
  const s1 = created.payload.session;
  assert.ok(isPlainObject(s1), `session_create reply without session: ${short(created)}`);
  assert.equal(s1.id, 'room-1', `session.id: ${short(s1)}`);
  assert.deepEqual(s1.clients, [a.clientId], `session.clients after create: ${short(s1)}`);
  assert.ok(isPlainObject(s1.metadata), `session.metadata: ${short(s1)}`);
  assert.equal(typeof s1.createdAt, 'number', `session.createdAt: ${short(s1)}`);

  const joined = await b.request('session_join', undefined, 'room-1');
  expectReply(joined, 'session_info', 'B session_join room-1');
  const s2 = joined.payload.session;
  assert.ok(isPlainObject(s2), `session_join reply without session: ${short(joined)}`);
  assert.equal(s2.id, 'room-1');
  assert.deepEqual([...s2.clients].sort(), [a.clientId, b.clientId].sort(), `session.clients after join: ${short(s2)}`);

  const presence = await a.waitFor(
    (m) => m.type === 'presence' && m.payload && m.payload.event === 'join',
    'presence join on A',
  );
  assert.equal(presence.replyTo, undefined, `presence broadcast must not carry replyTo: ${short(presence)}`);
  assert.equal(presence.payload.clientId, b.clientId, `presence.clientId: ${short(presence)}`);
  assert.equal(presence.payload.sessionId, 'room-1', `presence.sessionId: ${short(presence)}`);

  const chatOnB = b.waitFor((m) => m.type === 'chat', 'the chat relayed to B');
  const ack = await a.request('chat', { text: 'hi' }, 'room-1');
  expectReply(ack, 'ack', 'A chat');
  assert.equal(ack.payload.delivered, 1, `chat ack: ${short(ack)}`);

  const chat = await chatOnB;
  assert.equal(chat.replyTo, undefined, `relayed chat must not carry replyTo: ${short(chat)}`);
  assert.equal(chat.payload.from, a.clientId, `relayed chat payload.from: ${short(chat)}`);
  assert.equal(chat.payload.text, 'hi', `relayed chat payload.text: ${short(chat)}`);
}

async function caseAgentRoundTrip() {
  const x = await openAuthed('X');
  const y = await openAuthed('Y');

  const reg = await x.request('agent_register', { agentId: 'echo-1', type: 'echo', capabilities: ['echo'] });
  expectReply(reg, 'ack', 'X agent_register echo-1');
  assert.equal(reg.payload.agentId, 'echo-1', `agent_register ack: ${short(reg)}`);

  const routed = y.start('route_request', { capability: 'echo', request: { n: 42 } });

  const incoming = await x.waitFor((m) => m.type === 'route_request', 'the routed request on X');
  assert.equal(incoming.replyTo, undefined, `routed request must not carry replyTo: ${short(incoming)}`);
  assert.equal(typeof incoming.payload.requestId, 'string', `route_request.requestId: ${short(incoming)}`);
  assert.equal(incoming.payload.from, y.clientId, `route_request.from: ${short(incoming)}`);
  assert.deepEqual(incoming.payload.request, { n: 42 }, `route_request.request: ${short(incoming)}`);

  const answered = await x.request('route_response', { requestId: incoming.payload.requestId, response: { n: 43 } });
  expectReply(answered, 'ack', 'X route_response');

  const response = await routed.reply;
  expectReply(response, 'route_response', 'Y route_request');
  assert.equal(response.replyTo, routed.id);
  assert.equal(response.payload.agentId, 'echo-1', `route_response.agentId: ${short(response)}`);
  assert.deepEqual(response.payload.response, { n: 43 }, `route_response.response: ${short(response)}`);
}

async function casePerMessageDeflate() {
  const a = await openAuthed('DA', { perMessageDeflate: true });
  const b = await openAuthed('DB', { perMessageDeflate: true });
  for (const c of [a, b]) {
    assert.ok(
      typeof c.ws.extensions === 'string' && c.ws.extensions.includes('permessage-deflate'),
      `${c.name}: permessage-deflate not negotiated (extensions: ${short(c.ws.extensions)})`,
    );
  }

  const created = await a.request('session_create', { sessionId: 'room-deflate' });
  expectReply(created, 'session_info', 'DA session_create');
  const joined = await b.request('session_join', undefined, 'room-deflate');
  expectReply(joined, 'session_info', 'DB session_join');

  // 100 KB of poorly compressible text out, and back.
  const big = crypto.randomBytes(75 * 1024).toString('base64'); // 102400 chars
  assert.equal(big.length, 102400);
  const onB = b.waitFor((m) => m.type === 'chat', 'the large chat on DB');
  const ack = await a.request('chat', { text: big }, 'room-deflate');
  expectReply(ack, 'ack', 'DA large chat');
  assert.equal(ack.payload.delivered, 1, `large chat ack: ${short(ack)}`);
  const got = await onB;
  assert.equal(got.payload.from, a.clientId);
  assert.ok(got.payload.text === big, `large chat text differs (got ${String(got.payload.text).length} chars)`);

  const back = big.split('').reverse().join('');
  const onA = a.waitFor((m) => m.type === 'chat', 'the large chat back on DA');
  const ack2 = await b.request('chat', { text: back }, 'room-deflate');
  expectReply(ack2, 'ack', 'DB large chat');
  assert.equal(ack2.payload.delivered, 1, `large chat ack: ${short(ack2)}`);
  const got2 = await onA;
  assert.equal(got2.payload.from, b.clientId);
  assert.ok(got2.payload.text === back, `large chat back differs (got ${String(got2.payload.text).length} chars)`);
}

async function caseDrain() {
  const c = await openAuthed('drain');
  // Make sure the connection is fully live before the signal.
  const pong = await c.request('ping', {});
  expectReply(pong, 'pong', 'ping before drain');

  assert.equal(server.exitInfo, null, 'server already exited before SIGTERM');
  server.child.kill('SIGTERM');

  const closeInfo = await withTimeout(c.closed, DRAIN_EXIT_LIMIT_MS, 'client close after SIGTERM');
  assert.equal(closeInfo.code, 1001, `close code on drain: ${short(closeInfo)}`);

  const exit = await withTimeout(server.exited, DRAIN_EXIT_LIMIT_MS, 'server exit after SIGTERM');
  assert.equal(exit.signal, null, `server died by signal ${exit.signal}`);
  assert.equal(exit.code, 0, `server exit code after SIGTERM: ${exit.code}`);
}

const CASES = [
  ['handshake: session_info, connect, auth, ping', caseHandshake, CASE_TIMEOUT_MS],
  ['session broadcast between two clients', caseSessionBroadcast, CASE_TIMEOUT_MS],
  ['agent round-trip via capability routing', caseAgentRoundTrip, CASE_TIMEOUT_MS],
  ['permessage-deflate with a 100 KB chat round trip', casePerMessageDeflate, CASE_TIMEOUT_MS],
  ['drain on SIGTERM: close 1001, exit 0', caseDrain, DRAIN_CASE_TIMEOUT_MS],
];

async function runCase(name, fn, timeoutMs) {
  currentCaseClients = [];
  try {
    if (!server || server.port === null) throw new Error('server not running');
    if (server.exitInfo !== null && fn !== caseDrain) {
      throw new Error(`server is gone (exit ${short(server.exitInfo)})`);
    }
    await withTimeout(fn(), timeoutMs, `case '${name}'`);
    passed += 1;
    console.log(`ok   - ${name}`);
  } catch (err) {
    failed += 1;
    console.log(`FAIL - ${name}: ${err && err.message ? err.message : err}`);
  } finally {
    await Promise.all(currentCaseClients.map((c) => c.close()));
    currentCaseClients = [];
  }
}

async function main() {
  const binary = process.argv[2];
  if (!binary) {
    console.log('usage: node gateway_ws.test.js /path/to/switchboard');
    failed += 1;
    finish();
    return;
  }
  try {
    await startServer(path.resolve(binary));
    console.log(`server on ws://${HOST}:${server.port}${server.path} (node ${server.nodeId})`);
  } catch (err) {
    console.log(`FAIL - start the gateway: ${err.message}`);
    failed += 1;
  }
  for (const [name, fn, timeoutMs] of CASES) {
    await runCase(name, fn, timeoutMs);
  }
  finish();
}

main().catch((err) => {
  console.log(`FAIL - test driver: ${err && err.stack ? err.stack : err}`);
  finish(true);
});
