// Creates a stream with the official NATS JavaScript client, as an application on Node.js does:
//   node create_stream.js URL USER PASSWORD STREAM CLIENT_NAME
// Exits 0 once the server has made the stream; on an error, or after 20 s, exits 1 saying why.
"use strict";
const { connect } = require("nats");

async function main([url, user, pass, stream, name]) {
  // No reconnecting: a server that goes away fails the run instead of being waited for.
  const nc = await connect({ servers: url, user, pass, name, timeout: 5000, reconnect: false });
  try {
    const jsm = await nc.jetstreamManager({ timeout: 5000 });
    await jsm.streams.add({ name: stream, subjects: [stream] });
  } finally {
    await nc.close();
  }
}

setTimeout(() => {
  console.error("create_stream.js: no answer within 20 s");
  process.exit(1);
}, 20000).unref();
// Exits at once either way: a failed connect leaves its socket holding the event loop open.
main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err) => {
    console.error(`create_stream.js: ${err}`);
    process.exit(1);
  },
);
