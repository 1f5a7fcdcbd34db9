"""What the tests share, one concern per module (no Django test fixtures here: those live in
the conftest files, which only wire these helpers into pytest).

- waiting: `wait_until`, the one way a test polls for something to happen
- network: loopback ports and plain HTTP to monitoring endpoints
- process: `ServerProcess`, the base of every process the tests start (start, ready, stop, kill,
  log tail)
- nats_server, cluster, redis_server, postgres_server: the real servers (and a pytest session
  of its own on PostgreSQL)
- worker: a real Celery worker started with the production command, and the jobs each worker
  runs (celery inspect)
- listener: the advisory listener started with the production command
- tls, nats_auth: certificates, NKeys, JWTs and creds for the authentication tests
- project: the repository root and the test database as the processes we start see it
- jobs: waiting for a job the worker runs, finding the job a response shows
- raw_jetstream: JetStream API requests with straight nats-py, not our broker layer
- stream_forms: the stream forms as a browser posts them
- consumer_forms: the consumer forms as a browser posts them
- proxies: TCP proxies that lose replies or freeze connections
- browser: Chromium's flags and logging in through a page
"""
