// A loopback TCP forwarder that can be shut (see TcpGate.cs): node tcp-gate.js <target port>.
// Prints "listening <port>"; reads "shut" (reset every open connection, refuse new ones) and "open"
// (listen again on the same port), "freeze" (stop carrying bytes: connections stay open and new ones are
// accepted, but nothing reaches the other side, as a hung storage account) and "thaw" on stdin, answering
// each command with its name once done.
"use strict";
const net = require("net");
const readline = require("readline");

const target = Number(process.argv[2]);
const sockets = new Set();
const pairs = new Set();
let server = null;
let port = 0;
let frozen = false;

function forward(client) {
  if (frozen) {
    // Accepted, never answered until thawed.
    client.pause();
    sockets.add(client);
    client.on("error", () => {});
    client.on("close", () => sockets.delete(client));
    pairs.add({ client, upstream: null });
    return;
  }

  const upstream = net.connect(target, "127.0.0.1");
  sockets.add(client);
  sockets.add(upstream);
  const drop = () => { sockets.delete(client); sockets.delete(upstream); };
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
  client.on("close", () => { upstream.destroy(); drop(); });
  upstream.on("close", () => { client.destroy(); drop(); });
  client.pipe(upstream);
  upstream.pipe(client);
  pairs.add({ client, upstream });
  client.on("close", () => { for (const p of pairs) if (p.client === client) pairs.delete(p); });
}

function freeze() {
  frozen = true;
  for (const { client, upstream } of pairs) {
    if (upstream) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      upstream.pause();
    }
    client.pause();
  }
}

function thaw() {
  frozen = false;
  const held = [...pairs];
  pairs.clear();
  for (const { client, upstream } of held) {
    if (client.destroyed) {
      continue;
    }
    if (upstream) {
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      upstream.resume();
      pairs.add({ client, upstream });
    } else {
      sockets.delete(client);
      forward(client);
      client.resume();
    }
  }
}

function listen(onListening) {
  server = net.createServer({ noDelay: true }, forward);
  server.listen(port, "127.0.0.1", () => {
    port = server.address().port;
    onListening();
  });
}

listen(() => console.log(`listening ${port}`));

readline.createInterface({ input: process.stdin }).on("line", line => {
  if (line === "shut") {
    if (server) {
      server.close();
      server = null;
    }
    for (const socket of sockets) {
      socket.resetAndDestroy();
    }
    sockets.clear();
    console.log("shut");
  } else if (line === "freeze") {
    freeze();
    console.log("freeze");
  } else if (line === "thaw") {
    thaw();
    console.log("thaw");
  } else if (line === "open") {
    if (server) {
      console.log("open");
    } else {
      listen(() => console.log("open"));
    }
  }
});
process.stdin.on("end", () => process.exit(0));
