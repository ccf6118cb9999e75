"""Settings for consentsite, read from the environment (and an optional .env file).

Every variable is listed with its default in the configuration table of docs/operations.md.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

DEVELOPMENT_SECRET_KEY = "django-insecure-consentsite-development-key-never-use-in-production"

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEVELOPMENT_SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set to a secret value when DJANGO_DEBUG is off."
    )

DEVELOPMENT_ERASURE_HASH_KEY = "consentsite-development-erasure-key-never-use-in-production"
# The key of the hashes that keep an erased address's opt-out (docs/privacy.md). Changing it
# makes every existing tombstone unfindable: set it once, keep it as safe as the database.
ERASURE_HASH_KEY = env.str("ERASURE_HASH_KEY", default=DEVELOPMENT_ERASURE_HASH_KEY)
if not DEBUG and ERASURE_HASH_KEY == DEVELOPMENT_ERASURE_HASH_KEY:
    raise ImproperlyConfigured(
        "ERASURE_HASH_KEY must be set to a secret value when DJANGO_DEBUG is off."
    )

PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
SERVED_OVER_HTTPS = PUBLIC_BASE_URL.startswith("https://")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[PUBLIC_BASE_URL])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before WhiteNoise's and staticfiles' runserver: its own runserver wraps theirs.
    "consentsite",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "pgtrigger",
    "axes",
    "members",
    "consents",
    "consents.privacy",
]

MIDDLEWARE = [
    "consentsite.middleware.RequestLogMiddleware",
    "consentsite.middleware.MemberApiHeadersMiddleware",
    # Around the guards, so that their answers (413, replays) carry CORS headers too.
    "corsheaders.middleware.CorsMiddleware",
    "consentsite.middleware.ApiRequestGuardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Browser middleware: the Browser* ones skip the APIs' routes (consentsite/middleware.py).
    "consentsite.middleware.BrowserWhiteNoiseMiddleware",
    "consentsite.middleware.BrowserSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "consentsite.middleware.BrowserAuthenticationMiddleware",
    "consentsite.middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: answers a locked-out admin login.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "consentsite.urls"
WSGI_APPLICATION = "consentsite.wsgi.application"

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
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, its per-request health check made without a round trip.
    DATABASES["default"]["ENGINE"] = "consentsite.postgresql"
    # Parameters bound by the server, and statements run five times prepared: the hot paths
    # (the one-statement upsert above all) are then parsed and planned once per connection.
    # A pooler without prepared-statement support needs DATABASE_PREPARE_THRESHOLD=none.
    _prepare_threshold = env.str("DATABASE_PREPARE_THRESHOLD", default="5")
    # Bounded waits: an unreachable server costs DATABASE_CONNECT_TIMEOUT seconds, a statement
    # (a lock wait included) at most DATABASE_STATEMENT_TIMEOUT; either is then an outage
    # answer (503), not a worker hung until gunicorn kills it. 0 waits without limit (the
    # bulk commands over millions of rows may want that).
    _statement_timeout_ms = int(env.float("DATABASE_STATEMENT_TIMEOUT", default=10) * 1000)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True,
        prepare_threshold=(
            None if _prepare_threshold.lower() == "none" else int(_prepare_threshold)
        ),
        connect_timeout=env.int("DATABASE_CONNECT_TIMEOUT", default=3),
        options=f"-c statement_timeout={_statement_timeout_ms}",
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Each process keeps the API keys it verified for API_KEY_CACHE_SECONDS, in its own memory, so
# that a request does not query and hash its key again (a revoked key is refused at most that long
# after). Django's cache: per process by default, Redis when CACHE_URL names one. Shared state
# (throttle counts, idempotency records) lives in the database.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=5)

# Admin login is rate-limited by django-axes: ADMIN_LOGIN_FAILURE_LIMIT failed attempts for one
# username from one IP address lock that pair out (429) for ADMIN_LOGIN_LOCKOUT_MINUTES; a
# successful login resets the count. `manage.py axes_reset` lifts every lockout.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ADMIN_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # no banner on stdout, which some commands write their output to

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# Our date formats (seconds and time zone) before Django's own for the language.
FORMAT_MODULE_PATH = ["consentsite.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Security. HTTPS-only settings switch on when the public URL is HTTPS; a TLS-terminating proxy
# must then set X-Forwarded-Proto.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# "no-referrer" would make browsers post forms with `Origin: null`, which CSRF protection refuses.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
if SERVED_OVER_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    # Opt-in: both bind every subdomain of the site's domain (preloading, for good) to HTTPS,
    # which is the domain owner's decision, not something an HTTPS URL implies.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool(
        "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False
    )
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
    # The deploy check's advice to switch both on: deliberately left to the settings above.
    SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["consentsite.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["consentsite.auth.HasApiKey"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["consentsite.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "consentsite.api_errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["consentsite.auth.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env.str("API_KEY_THROTTLE_RATE", default="6000/min")},
    "UNAUTHENTICATED_USER": None,
    # ASCII-escaped JSON: input quoted back in an error (a lone surrogate included) always encodes.
    "UNICODE_JSON": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "consentsite API",
    "DESCRIPTION": (
        "The system of record for marketing consent: the member API and the consent API. "
        "Authenticate with `Authorization: Api-Key <key>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ConsentStateEnum": "consents.models.ConsentState",
        "ConsentTypeEnum": "consents.models.ConsentType",
        "LinkTypeEnum": ["CONFIRMATION", "REVOKE_CONFIRMATION"],
    },
}

# CORS: browsers may call the member API (its routes are client routes) from the origins of
# MEMBER_API_CORS_ALLOWED_ORIGINS (`*`: any); the consent API and the admin stay same-origin.
CORS_URLS_REGEX = r"^/client/"
MEMBER_API_CORS_ALLOWED_ORIGINS = [
    origin.strip() for origin in env.list("MEMBER_API_CORS_ALLOWED_ORIGINS", default=["*"])
]
CORS_ALLOW_ALL_ORIGINS = "*" in MEMBER_API_CORS_ALLOWED_ORIGINS
CORS_ALLOWED_ORIGINS = [] if CORS_ALLOW_ALL_ORIGINS else MEMBER_API_CORS_ALLOWED_ORIGINS
CORS_ALLOW_METHODS = ["GET", "POST", "PUT"]
CORS_ALLOW_HEADERS = [
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "mck-correlationid",
    "mck_correlationid",
    "x-identifier-type",
    "x-request-id",
]
CORS_EXPOSE_HEADERS = [
    "MCK-APPID",
    "MCK-MSGID",
    "MCK-MSGTIMESTAMP",
    "MCK_CORRELATIONID",
    "X-Request-ID",
    "Retry-After",
    "Idempotent-Replayed",
]

# Domain settings.
DEFAULT_PHONE_REGION = env.str("DEFAULT_PHONE_REGION", default="US")
SMS_DEFAULT_SHORTCODE = env.str("SMS_DEFAULT_SHORTCODE", default="32123")
APP_ID = env.str("APP_ID", default="ES-CB-V1")
MEMBER_SESSION_TTL = env.int("MEMBER_SESSION_TTL", default=3600)
CONFIRMATION_LINK_MAX_AGE = env.int("CONFIRMATION_LINK_MAX_AGE", default=30 * 24 * 3600)

# The SMS door (consents/sms/): the provider's signing secret, the numbers and shortcodes that are
# ours, the keywords and the replies. Without a token every inbound message is refused.
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
SMS_PROGRAMME_NUMBERS = env.list("SMS_PROGRAMME_NUMBERS", default=[SMS_DEFAULT_SHORTCODE])
SMS_STOP_KEYWORDS = env.list(
    "SMS_STOP_KEYWORDS", default=["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"]
)
SMS_START_KEYWORDS = env.list("SMS_START_KEYWORDS", default=["START", "YES", "UNSTOP"])
SMS_HELP_KEYWORDS = env.list("SMS_HELP_KEYWORDS", default=["HELP", "INFO"])
SMS_BRAND = env.str("SMS_BRAND", default="Consentsite")
SMS_STOP_REPLY = env.str(
    "SMS_STOP_REPLY",
    default=f"{SMS_BRAND}: You are unsubscribed and will receive no more messages. "
    "Reply START to resubscribe.",
)
SMS_START_REPLY = env.str(
    "SMS_START_REPLY",
    default=f"{SMS_BRAND}: You are subscribed to marketing messages. Msg frequency varies. "
    "Msg&data rates may apply. Reply HELP for help. Reply STOP to unsubscribe.",
)
SMS_HELP_REPLY = env.str(
    "SMS_HELP_REPLY",
    default=f"{SMS_BRAND}: Marketing messages. Msg frequency varies. Msg&data rates may apply. "
    "Reply STOP to unsubscribe.",
)

# API guards: request size, idempotency, throttling.
MAX_BODY_BYTES = env.int("MAX_BODY_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BODY_BYTES
# JSON bodies and stored JSON values (extendedFields) nested deeper than this are refused (400).
MAX_JSON_DEPTH = env.int("MAX_JSON_DEPTH", default=32)
IDEMPOTENCY_TTL = env.int("IDEMPOTENCY_TTL", default=24 * 3600)
# How long a running request holds its Idempotency-Key: a little over gunicorn's worker timeout
# (30 s), so that a retry never runs beside a request that is still alive.
IDEMPOTENCY_LEASE = env.int("IDEMPOTENCY_LEASE", default=40)

# /healthz answers 503 when the database has not answered `SELECT 1` within this many seconds.
HEALTHZ_TIMEOUT = env.float("HEALTHZ_TIMEOUT", default=1.0)

# Age after which `redact_evidence` removes events' IP address and user agent (docs/privacy.md).
EVIDENCE_RETENTION = env.str("EVIDENCE_RETENTION", default="3y")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["stdout"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Our request log replaces the development server's own per-request line.
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        # A line per webhook connection; attempts are recorded in the database instead.
        "urllib3": {"level": "WARNING"},
    },
}

# Change events (webhooks) and the Celery workers that deliver them. Without CELERY_BROKER_URL
# the broker is kombu's filesystem transport in CELERY_FILESYSTEM_BROKER_DIR: no server needed,
# for one machine (`make run`); production names Redis or RabbitMQ.
CELERY_FILESYSTEM_BROKER_DIR = Path(
    env.str("CELERY_FILESYSTEM_BROKER_DIR", default=str(BASE_DIR / "var" / "broker"))
)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_FILESYSTEM_BROKER_DIR),
        "data_folder_out": str(CELERY_FILESYSTEM_BROKER_DIR),
        "control_folder": str(CELERY_FILESYSTEM_BROKER_DIR / "control"),
        "polling_interval": 0.1,
    }
    CELERY_FILESYSTEM_BROKER_DIR.mkdir(parents=True, exist_ok=True)
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Queuing from a request gives up quickly when the broker is down: the sweep delivers later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}
CELERY_BEAT_SCHEDULE_FILENAME = env.str(
    "CELERY_BEAT_SCHEDULE_FILENAME", default=str(BASE_DIR / "var" / "celerybeat-schedule")
)
WEBHOOK_SWEEP_SECONDS = env.float("WEBHOOK_SWEEP_SECONDS", default=10.0)
CELERY_BEAT_SCHEDULE = {
    "webhook-sweep": {
        "task": "consents.webhooks.tasks.sweep",
        "schedule": WEBHOOK_SWEEP_SECONDS,
    },
    "revoke-job-sweep": {
        "task": "consents.revocations.tasks.sweep_revoke_jobs",
        "schedule": env.float("REVOKE_JOB_SWEEP_SECONDS", default=30.0),
    },
}

# The admin's "revoke selected": a selection of up to REVOKE_IN_REQUEST_MAX consents is revoked
# in the request, well within gunicorn's 30 s timeout (about 3 s at the rate measured in
# docs/performance.md, so inside it on a machine several times slower); a larger one by a
# Celery worker, as a job staff follow in the admin. Jobs run REVOKE_JOB_BATCH_SIZE consents per
# transaction; one without progress for REVOKE_JOB_STALLED_SECONDS (a killed worker, a lost
# message) is queued again.
REVOKE_IN_REQUEST_MAX = env.int("REVOKE_IN_REQUEST_MAX", default=5_000)
REVOKE_JOB_BATCH_SIZE = env.int("REVOKE_JOB_BATCH_SIZE", default=1000)
REVOKE_JOB_STALLED_SECONDS = env.float("REVOKE_JOB_STALLED_SECONDS", default=120.0)

WEBHOOK_ALLOW_INSECURE_TARGETS = env.bool("WEBHOOK_ALLOW_INSECURE_TARGETS", default=False)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Seconds between a head event's failures and its retry (about three days in all), ±20% jitter.
WEBHOOK_RETRY_SCHEDULE = [
    float(step)
    for step in env.list(
        "WEBHOOK_RETRY_SCHEDULE",
        default=[5, 60, 300, 1800, 7200, 18000, 36000, 36000, 43200, 43200, 43200, 43200],
    )
]
# How long a worker delivering for an endpoint holds it (renewed at half-time; more than twice
# the timeout, so a request never outlives it). A killed worker's endpoints wait this long.
WEBHOOK_LEASE_SECONDS = env.float("WEBHOOK_LEASE_SECONDS", default=2 * WEBHOOK_TIMEOUT_SECONDS + 30)
if WEBHOOK_LEASE_SECONDS <= 2 * WEBHOOK_TIMEOUT_SECONDS:
    raise ImproperlyConfigured("WEBHOOK_LEASE_SECONDS must exceed twice WEBHOOK_TIMEOUT_SECONDS.")
WEBHOOK_SECRET_OVERLAP_SECONDS = env.int("WEBHOOK_SECRET_OVERLAP_SECONDS", default=24 * 3600)
