"""Where a study lives: an SQL database (SQLite, PostgreSQL, MySQL) or a journal file on a shared
file system, always with worker heartbeats so a trial whose worker died is failed and re-run.

Accepted ``search.storage`` values:

- ``sqlite:////abs/path/study.db`` (the default, a file in the run directory; one machine)
- ``postgresql://user@host:5432/db`` or ``postgresql+psycopg2://...``, ``mysql+pymysql://...``
  (many machines; keep passwords out of the URL: ``~/.pgpass`` or ``PGPASSWORD``)
- ``journal:///abs/path/study.log`` (many machines sharing only a file system: Optuna's
  ``JournalFileBackend``; heartbeats are timestamps written by each worker, so the workers'
  clocks must agree to within the grace period, e.g. NTP)
"""

from __future__ import annotations

import random
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat  # the seam RDBStorage implements (optuna 4/5)
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from search.errors import UserError

try:  # optuna >= 4.9 names it for what it does; earlier versions call it RetryFailedTrialCallback
    from optuna.storages import RetryHeartbeatStaleTrialCallback as _Retry

    _CALLBACK_ARG = "heartbeat_stale_trial_callback"
except ImportError:  # pragma: no cover - exercised only on optuna < 4.9
    from optuna.storages import RetryFailedTrialCallback as _Retry

    _CALLBACK_ARG = "failed_trial_callback"

SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")
JOURNAL_PREFIX = "journal://"
HEARTBEAT_ATTR = "hwnas:heartbeat_unix_s"
CREATE_ATTEMPTS = 5
StaleCallback = Callable[[optuna.Study, FrozenTrial], None]


@dataclass(frozen=True)
class HeartbeatPolicy:
    """Workers record a heartbeat every ``interval_s``; a RUNNING trial silent for ``grace_s`` is
    failed by the next worker that looks, and re-queued with the same parameters at most
    ``max_retry`` times."""

    interval_s: int = 30
    grace_s: int = 120
    max_retry: int = 2

    def __post_init__(self) -> None:
        if self.interval_s < 1 or self.grace_s <= self.interval_s or self.max_retry < 0:
            raise UserError(
                f"heartbeats: search.heartbeat_s={self.interval_s} must be >= 1, search.grace_s="
                f"{self.grace_s} above it (3-4x is safe) and search.max_retry={self.max_retry} >= 0"
            )


def retry_callback(policy: HeartbeatPolicy) -> StaleCallback:
    """Optuna's retry callback: enqueue a WAITING copy of a failed trial (same parameters, its
    number kept in ``system_attrs['failed_trial']``) unless it was retried ``max_retry`` times."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return _Retry(max_retry=policy.max_retry)


def kind(url: str) -> str:
    """``sqlite``, ``postgresql``, ``mysql`` or ``journal``; a clear error for anything else."""
    if url.startswith(JOURNAL_PREFIX):
        return "journal"
    scheme = urlsplit(url).scheme.split("+")[0]
    if scheme not in SQL_SCHEMES:
        raise UserError(
            f"search.storage={redact(url)!r} is not a storage URL; use sqlite:////abs/study.db, "
            "postgresql://user@host/db, mysql+pymysql://user@host/db or journal:///abs/study.log"
        )
    return "postgresql" if scheme == "postgres" else scheme


_SECRET_PARAM = re.compile(r"(?i)([?&;](?:password|passwd|pwd|sslpassword)=)[^&;#]*")


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs, result.json and every file).

    Parsed by hand rather than with ``urlsplit``: a password may hold ``/``, ``#``, ``?`` or
    ``@`` (raw or percent-encoded), which end the netloc for a URL parser; here the user info
    runs to the last ``@``, and ``password=`` style query parameters are masked too.
    """
    if url.startswith(JOURNAL_PREFIX) or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    at = rest.rfind("@")
    if at >= 0 and ":" in rest[:at]:
        rest = rest[:at].split(":", 1)[0] + ":***" + rest[at:]
    return f"{scheme}://" + _SECRET_PARAM.sub(r"\1***", rest)


def schema_race(err: Exception) -> bool:
    """True for the errors a worker sees when another creates the study schema at the same time."""
    text = f"{type(err).__name__} {err}".upper()
    return "UNIQUE" in text or "ALREADY EXISTS" in text


def open_storage(url: str, policy: HeartbeatPolicy) -> BaseStorage:
    """The storage behind ``url``, with heartbeats and the retry callback installed."""
    callback = retry_callback(policy)
    if kind(url) == "journal":
        path = Path(url[len(JOURNAL_PREFIX):])
        if not path.is_absolute():
            raise UserError(f"search.storage={url!r}: a journal needs an absolute path, "
                            "e.g. journal:///shared/studies/sr.log (three slashes)")
        path.parent.mkdir(parents=True, exist_ok=True)
        return HeartbeatJournalStorage(JournalFileBackend(str(path)), policy, callback)
    engine_kwargs: dict = {"pool_pre_ping": True}
    if kind(url) == "sqlite":
        Path(url.split(":///", 1)[-1]).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": 60}}  # several local workers share one file
    template = url.replace("{", "{{").replace("}", "}}")  # Optuna str.format()s the URL
    for attempt in range(CREATE_ATTEMPTS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeat_interval is "experimental"
            try:
                return RDBStorage(template, engine_kwargs=engine_kwargs, heartbeat_interval=policy.interval_s,
                                  grace_period=policy.grace_s, **{_CALLBACK_ARG: callback})
            except ImportError as err:
                raise UserError(f"search.storage={redact(url)!r} needs a database driver: {err}; "
                                "pip install 'hwnas[cluster]' (psycopg2) or pymysql") from None
            except Exception as err:  # sqlalchemy.exc.* : say where and why
                # workers starting together race to create the schema; the loser sees a unique
                # violation, or on PostgreSQL 'type "studydirection" already exists'
                # (DuplicateObject), and succeeds on the next attempt
                if attempt + 1 < CREATE_ATTEMPTS and schema_race(err):
                    time.sleep(0.2 + random.Random().random())  # jitter
                    continue
                raise UserError(f"cannot open search.storage={redact(url)!r}: "
                                f"{str(err).splitlines()[0]}") from None
    raise AssertionError("unreachable")


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """Optuna's journal storage plus the heartbeat seam RDBStorage has (Optuna 5 has none for
    journals). A worker's heartbeat is a wall-clock timestamp in a trial system attr; a RUNNING
    trial is stale when neither its last heartbeat nor its start is within ``grace_s``."""

    def __init__(self, backend: JournalFileBackend, policy: HeartbeatPolicy, callback: StaleCallback) -> None:
        super().__init__(backend)
        self._policy = policy
        self._callback = callback

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
        except UpdateFinishedTrialError:
            pass  # another worker already declared this trial dead; its retry runs elsewhere

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            # a retried trial inherits its parent's system attrs: its own start counts too
            started = trial.datetime_start.timestamp() if trial.datetime_start else now
            last = max(float(trial.system_attrs.get(HEARTBEAT_ATTR, 0.0)), started)
            if now - last > self._policy.grace_s:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._policy.interval_s

    def get_heartbeat_stale_trial_callback(self) -> StaleCallback | None:
        return self._callback

    def get_failed_trial_callback(self) -> StaleCallback | None:  # the name before optuna 4.9
        return self._callback
