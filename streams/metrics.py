"""What the dashboard counts for Prometheus (prometheus-client's multiprocess mode: each process
writes its samples under settings.METRICS_DIR). Counters and histograms only, bumped where the
thing happens; what the database knows (the audit chain's head, the listener's lag) is read
when /metrics is scraped (streams.views.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# From a fraction of a second (a create) to the run timeout's order.
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

JOBS = Counter("memphisadmin_jobs", "Jobs ended, by kind and outcome", ["kind", "outcome"])
QUEUE_WAIT = Histogram("memphisadmin_job_queue_wait_seconds",
                       "From entering the queue to a worker claiming the job", ["kind"],
                       buckets=SECONDS)
RUN_TIME = Histogram("memphisadmin_job_run_seconds", "From a worker's claim to the job's end",
                     ["kind"], buckets=SECONDS)
BROKER_ERRORS = Counter("memphisadmin_broker_errors",
                        "Jobs failed by the broker, by JetStream error code (0: none given)",
                        ["code"])
REAPED = Counter("memphisadmin_jobs_reaped", "Jobs failed by the reaper: nobody would end them")
AUDIT_ENTRIES = Counter("memphisadmin_audit_entries", "Audit entries written, by action",
                        ["action"])
ADVISORIES = Counter("memphisadmin_advisories",
                     "Advisories of changes made outside: recorded, lost or rejected",
                     ["outcome"])
LOCKOUTS = Counter("memphisadmin_login_lockouts", "User name and address pairs locked out")
