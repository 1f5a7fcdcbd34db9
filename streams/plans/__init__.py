"""Plans: what applying desired stream configs to a profile would do, shown before anything
runs, then applied as one job. A plan is proposed with Plan.objects.propose (streams.models),
which stores it and submits the job that reads the live configs; here is the pure part.

steps  the planning itself: no database, no broker"""
