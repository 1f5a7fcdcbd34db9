"""Jobs: every broker operation is a Job row run by a Celery worker. The Job owns its life
(streams.models: Job.objects.submit, job.wait, job.finish, job.fail, the reaper's
Job.objects.reap_overdue); here is what runs it on the worker.

tasks    (worker)  run_job: claim, call the broker through the job's kind, retry or end
kinds    (worker)  one class per kind of job: what it asks the broker and what it records
wakeup             a job's end, told by the worker to the request waiting for it (Redis)

The web process never imports tasks or kinds, nor the broker (nor nats-py)."""
