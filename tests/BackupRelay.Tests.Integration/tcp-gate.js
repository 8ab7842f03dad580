// A loopback TCP forwarder that can be shut (see TcpGate.cs): node tcp-gate.js <target port>.
// Prints "listening <port>"; reads "shut" (reset every open connection, refuse new ones) and "open"
// (listen again on the same port) on stdin, answering "shut" / "open" once done.
"use strict";
const net = require("net");
const readline = require("readline");

const target = Number(process.argv[2]);
const sockets = new Set();
let server = null;
let port = 0;

function forward(client) {
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
  } else if (line === "open") {
    if (server) {
      console.log("open");
    } else {
      listen(() => console.log("open"));
    }
  }
});
process.stdin.on("end", () => process.exit(0));
