"""The only door to NATS: nats-py is imported here and nowhere else. Each public function runs
one operation on the worker process's broker event loop, within a time limit, and turns every
failure into BrokerError (errors) with a readable message that never contains a secret.
connection: what a profile connects with, connecting, one API request; loop: the worker
process's event loop and the connections it keeps; server: Test connection and server facts;
streams: the stream operations; advisories: the API advisories the listener process follows
(its own long-running loop, not the worker's)."""
