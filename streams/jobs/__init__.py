"""Jobs: every broker operation is a Job row run by a Celery worker.

submit   (web)     the job and its audit entry in one transaction, handed to a worker on commit
tasks    (worker)  run_job: claim, call the broker through the job's kind, retry or end
kinds    (worker)  one class per kind of job: what it asks the broker and what it records
outcome            how a job ends: its outcome, what it records and its audit entries at once
reaper             jobs nobody will finish, failed with the reason; the workers' heartbeat
wakeup             a job's end, told by the worker to the request waiting for it

The web process imports submit, outcome and reaper only, never the broker (nor nats-py)."""
