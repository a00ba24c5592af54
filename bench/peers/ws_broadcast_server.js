#!/usr/bin/env node
// Reference peer for bench/broadcast.cpp: a minimal broadcast server on the npm `ws` package (the copy in
// tests/interop/node_modules), speaking the subset of the switchboard wire contract the benchmark uses, with
// the same per-message work as the gateway: parse the JSON frame, add payload.from, serialize once, queue the
// same text on every other member of the room, answer the sender with an ack {delivered: N}.
//
//   node bench/peers/ws_broadcast_server.js      # prints "listening <port>" and serves ws://127.0.0.1:<port>/ws
//
// Handled: connect -> hello_ok, session_create / session_join -> session_info (joins the room of that id),
// chat (or any type with a sessionId) -> broadcast + ack, ping -> pong. Exits when its
// stdin closes (the benchmark holds the other end) or on SIGTERM/SIGINT. Listens on 127.0.0.1 only.
'use strict';

const path = require('node:path');
const WebSocket = require(path.join(__dirname, '..', '..', 'tests', 'interop', 'node_modules', 'ws'));

let nextClient = 0;
let nextMsg = 0;
const rooms = new Map(); // session id -> Set of sockets

function reply(ws, type, replyTo, payload, sessionId) {
  const out = { type, id: 's-' + ++nextMsg, payload, timestamp: Date.now(), replyTo };
  if (sessionId !== undefined) out.sessionId = sessionId;
  ws.send(JSON.stringify(out));
}

const wss = new WebSocket.WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  path: '/ws',
  perMessageDeflate: false,
  maxPayload: 1048576,
});

wss.on('connection', (ws) => {
  ws.clientId = 'c-' + ++nextClient;
  ws.rooms = new Set();
  ws.send(JSON.stringify({
    type: 'session_info', id: 's-' + ++nextMsg, timestamp: Date.now(),
    payload: { clientId: ws.clientId, authRequired: false, serverVersion: 'ws-reference' },
  }));
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let msg;
    try {
      msg = JSON.parse(data.toString());
    } catch (_) {
      return reply(ws, 'error', undefined, { code: 'INVALID_MESSAGE', message: 'not JSON' });
    }
    switch (msg.type) {
      case 'ping':
        return reply(ws, 'pong', msg.id, {});
      case 'connect':
        return reply(ws, 'hello_ok', msg.id, { clientId: ws.clientId, authRequired: false, authenticated: true });
      case 'session_create':
      case 'session_join': {
        const sid = (msg.payload && msg.payload.sessionId) || msg.sessionId || 'room';
        if (!rooms.has(sid)) rooms.set(sid, new Set());
        const members = rooms.get(sid);
        members.add(ws);
        ws.rooms.add(sid);
        return reply(ws, 'session_info', msg.id, { session: { id: sid, clients: [...members].map((m) => m.clientId) } });
      }
      default: {
        const members = rooms.get(msg.sessionId);
        if (!members || !members.has(ws)) {
          return reply(ws, 'error', msg.id, { code: 'NOT_IN_SESSION', message: 'join first' });
        }
        const payload = msg.payload && typeof msg.payload === 'object' ? msg.payload : {};
        payload.from = ws.clientId;
        const frame = JSON.stringify({
          type: msg.type, id: msg.id, sessionId: msg.sessionId, payload,
          timestamp: typeof msg.timestamp === 'number' ? msg.timestamp : Date.now(),
        });
        let delivered = 0;
        for (const m of members) {
          if (m === ws || m.readyState !== WebSocket.OPEN) continue;
          m.send(frame);
          ++delivered;
        }
        return reply(ws, 'ack', msg.id, { delivered });
      }
    }
  });
  const leave = () => {
    for (const sid of ws.rooms) {
      const members = rooms.get(sid);
      if (!members) continue;
      members.delete(ws);
      if (members.size === 0) rooms.delete(sid);
    }
    ws.rooms.clear();
  };
  ws.on('close', leave);
  ws.on('error', leave);
});

wss.on('listening', () => process.stdout.write('listening ' + wss.address().port + '\n'));

function shutdown() {
  for (const ws of wss.clients) ws.terminate();
  wss.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.stdin.on('end', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();
