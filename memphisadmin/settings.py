"""Settings, read from the environment. Defaults work locally; production (DEBUG=false) refuses
to start without a real secret key and encryption key."""

from __future__ import annotations

import logging
import math
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from streams.payloads import MAX_PAYLOAD

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_float(name: str, default: float, *, minimum: float) -> float:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number) or number < minimum:  # "nan" and "inf" parse as floats
        raise ImproperlyConfigured(f"{name} must be a number of at least {minimum:g}, "
                                   f"not {value!r}")
    return number


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def local_secret(path: Path, make: str) -> str:
    """A development secret kept in a git-ignored file, created once (O_EXCL so the web process
    and the worker cannot race each other into two different keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(make + "\n")
    return make


def private_file(path: Path) -> None:
    """The database holds encrypted secrets and the audit log: readable by its owner only
    (SQLite gives its -wal and -shm files the same mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)


DEBUG = env_bool("DEBUG", True)
VAR_DIR = Path(env_str("MEMPHISADMIN_VAR_DIR", str(BASE_DIR / "var")))

if DEBUG:
    SECRET_KEY = env_str("SECRET_KEY") or local_secret(
        VAR_DIR / "secret_key", secrets.token_urlsafe(50)
    )
    # Newest key first; older keys still decrypt until `manage.py rotate_secrets` has run.
    ENCRYPTION_KEYS = env_list("ENCRYPTION_KEYS") or [
        local_secret(VAR_DIR / "encryption_key", Fernet.generate_key().decode())
    ]
    AUDIT_HMAC_KEY = env_str("AUDIT_HMAC_KEY") or local_secret(
        VAR_DIR / "audit_hmac_key", secrets.token_urlsafe(32)
    )
else:
    SECRET_KEY = env_str("SECRET_KEY")
    ENCRYPTION_KEYS = env_list("ENCRYPTION_KEYS")
    AUDIT_HMAC_KEY = env_str("AUDIT_HMAC_KEY")
    if len(SECRET_KEY) < 40 or SECRET_KEY.startswith("django-insecure"):
        raise ImproperlyConfigured("SECRET_KEY must be set to a long random value when DEBUG=false")
    if not ENCRYPTION_KEYS:
        raise ImproperlyConfigured("ENCRYPTION_KEYS (Fernet keys, newest first) must be set")
    if len(AUDIT_HMAC_KEY) < 32:
        raise ImproperlyConfigured("AUDIT_HMAC_KEY must be set to at least 32 random characters")

for _key in ENCRYPTION_KEYS:
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured("ENCRYPTION_KEYS holds a value that is no Fernet key") from None

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_filters",
    "django_htmx",
    "template_partials",
    "health_check",
    "streams",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "streams.middleware.IdleSessionMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "streams.middleware.VaryOnHtmxMiddleware",
    "streams.middleware.NotKeptMiddleware",
    "streams.middleware.RequestIdMiddleware",
    "streams.logs.RequestLogMiddleware",
    "streams.middleware.ContentSecurityPolicyMiddleware",
    "streams.middleware.GoneMiddleware",
    # Turns a refused login into the lockout page; inside RequestIdMiddleware so that page
    # carries X-Request-ID like any other.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "memphisadmin.urls"
WSGI_APPLICATION = "memphisadmin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "NAME": "jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
    },
]

FORM_RENDERER = "memphisadmin.renderers.FormRenderer"
FILE_UPLOAD_HANDLERS = ["streams.uploads.BoundedUpload"]  # nothing an upload sends hits the disk
# The largest form data is a publish's: a body of up to MAX_PAYLOAD characters (its textarea's
# maxlength; the form then counts its bytes), at most 3 bytes each in UTF-8, each byte "%XX" in
# the urlencoded post browsers send, with room for the headers, subject and token. A request
# over it gets a bare 400, and a browser still sending a dropped connection.
DATA_UPLOAD_MAX_MEMORY_SIZE = 9 * MAX_PAYLOAD + 256 * 1024

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the worker both write: WAL plus immediate transactions make concurrent
    # writers wait for each other instead of failing with "database is locked". Connections are
    # kept like any other database's: opening one costs about a millisecond per request or job.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not memory, so the test suite's Celery worker process sees the same database.
    DATABASES["default"]["TEST"] = {
        "NAME": env_str("TEST_DATABASE_PATH", str(VAR_DIR / "test-db.sqlite3"))
    }
    private_file(Path(DATABASES["default"]["NAME"]))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Mail (approvals tell approvers and requesters): printed to the console in development.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
                        if DEBUG else "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_TIMEOUT = 5  # a mail server that does not answer does not hold a decision up for long
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "memphisadmin@localhost")
# Prometheus metrics (/metrics, behind this bearer token; empty: off). Every process (gunicorn's
# workers, Celery's pool) writes its samples under PROMETHEUS_MULTIPROC_DIR, set here before
# prometheus-client is imported; one directory per deployment, emptied as it starts.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_DIR = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics")))
METRICS_DIR.mkdir(parents=True, exist_ok=True)
# A change on a profile that requires approval is dropped when nobody decides within this.
APPROVAL_HOURS = env_int("APPROVAL_HOURS", 24, minimum=1)
# A session left this long without a request is logged out (streams.middleware).
SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 60, minimum=1)
# Login lockout (django-axes): after LOGIN_FAILURE_LIMIT failed logins for one user name from one
# address, that pair is refused until LOGIN_LOCKOUT_MINUTES have passed since its last counted
# failure, even with the right password. Per pair, so nobody can lock a user out from everywhere.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1)
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: it refuses before a password is checked
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# A successful login clears its pair's failures, but in streams.signals rather than by axes
# (AXES_RESET_ON_SUCCESS): the login's audit entry reads the count first, and receivers of one
# signal have no order to rely on.
AXES_RESET_ON_SUCCESS = False
# Refused attempts neither extend the lockout nor make axes store their POST data on the pair's
# row (which would grow by up to 1 KB per attempt); streams.lockout counts them instead.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The address is the connection's (REMOTE_ADDR), as in audit entries: X-Forwarded-For is written
# by the client, who could otherwise name a new address for every guess. Set explicitly because
# axes would switch to django-ipware's header parsing if that package ever got installed.
AXES_CLIENT_IP_CALLABLE = "streams.lockout.client_ip"
AXES_HANDLER = "streams.lockout.AuditedAttempts"
AXES_LOCKOUT_CALLABLE = "streams.lockout.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # logins and logouts are in the audit log already

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
# gunicorn serves the static files itself (WhiteNoise), in development as in production.
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
# Production speaks HTTPS: plain HTTP is redirected and browsers are told to stay on HTTPS.
# Behind a proxy that ends TLS, set SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto (the proxy must
# set that header itself); SECURE_SSL_REDIRECT=false only where plain HTTP is intended.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
if env_str("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + env_str("SECURE_PROXY_SSL_HEADER").upper().replace("-", "_"), "https")
# Everything from this site only (base.html tells htmx not to inject its indicator styles).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

# Celery: Redis is the broker; a missing or unreachable broker is an error, never eager mode.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0" if DEBUG else "")
if not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL must point at the Redis that carries the job queue")
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5}
CELERY_TASK_PUBLISH_RETRY = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes every database connection around each task unless this is set;
# memphisadmin.celery closes only unusable or expired ones instead, as Django does per request.
CELERY_DB_REUSE_MAX = 1000

# A job nobody picked up, or one still running past its deadline, is failed with that reason.
JOB_QUEUE_TIMEOUT = env_float("JOB_QUEUE_TIMEOUT", 120.0, minimum=1)
JOB_RUN_TIMEOUT = env_float("JOB_RUN_TIMEOUT", 120.0, minimum=1)
JOB_MAX_ATTEMPTS = 3
# How long a request that submits a job waits for its end before handing over to polling.
JOB_WAIT = env_float("JOB_WAIT", 3.0, minimum=0)
# A page whose rows were read longer ago than this (or never) reads them again as it opens: a
# job, whose end swaps the fresh rows in (Job.objects.read_again).
READ_AGAIN_AFTER = env_float("READ_AGAIN_AFTER", 5.0, minimum=1)
# No broker call takes longer than this, whatever a profile's servers and timeouts add up to.
JOB_BROKER_TIMEOUT = env_float("JOB_BROKER_TIMEOUT", 60.0, minimum=1)
# The worker's main process, which jobs never occupy, reaps and says it is alive this often.
JOB_REAP_INTERVAL = env_float("JOB_REAP_INTERVAL", 15.0, minimum=0.1)
WORKER_HEARTBEAT_INTERVAL = env_float("WORKER_HEARTBEAT_INTERVAL", 5.0, minimum=0.1)
# Reads change nothing and stay out of the audit log; with this on, each browse, download and
# single-message read writes one entry `messages.read` (who, which stream, which sequences).
AUDIT_MESSAGE_READS = env_bool("AUDIT_MESSAGE_READS", False)
# The advisory listener (manage.py watch_advisories) reads which profiles record changes made
# outside this often, and a profile waiting for its capture stream looks for it as often.
ADVISORY_REREAD_INTERVAL = env_float("ADVISORY_REREAD_INTERVAL", 30.0, minimum=0.1)
# The listener and the scheduler hold a lock in Redis while they run, one of each per
# deployment; one that died without letting go is replaced this many seconds later.
SINGLETON_TTL = env_float("SINGLETON_TTL", 30.0, minimum=1)
# The scheduler (manage.py schedule, one per deployment) checks each connection whose last
# check is older than CHECK_INTERVAL seconds, and every SAMPLE_INTERVAL seconds the check also
# lists its streams and samples their numbers (and the consumers' of at most
# SAMPLE_CONSUMER_STREAMS streams) for the charts, kept SAMPLES_KEPT_HOURS.
CHECK_INTERVAL = env_float("CHECK_INTERVAL", 30.0, minimum=1)
SAMPLE_INTERVAL = env_float("SAMPLE_INTERVAL", 300.0, minimum=1)
SAMPLE_CONSUMER_STREAMS = env_int("SAMPLE_CONSUMER_STREAMS", 200)
SAMPLES_KEPT_HOURS = env_float("SAMPLES_KEPT_HOURS", 72.0, minimum=1)

# "plain" lines, or "json": one object a line with a request's and a job's fields of their own.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
if LOG_FORMAT == "json":  # Python's warnings too, as JSON lines rather than stray text
    logging.captureWarnings(True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
                   "json": {"()": "streams.logs.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # nats-py logs connection errors with tracebacks on its own; we report them on the job.
    # axes logs every login at INFO; its warnings (failures, lockouts) are kept.
    "loggers": {"nats": {"level": "CRITICAL"}, "axes": {"level": "WARNING"}},
}
