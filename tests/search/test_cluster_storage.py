"""Storage URLs: which backend, clear errors, no password in what is printed."""

from __future__ import annotations

import pytest
from optuna.storages import JournalStorage, RDBStorage

from search.errors import UserError
from search.study.storage import HeartbeatJournalStorage, HeartbeatPolicy, kind, open_storage, redact

POLICY = HeartbeatPolicy(interval_s=1, grace_s=3, max_retry=1)


def test_kinds_and_redaction():
    assert kind("sqlite:////tmp/a.db") == "sqlite"
    assert kind("postgresql+psycopg2://u@h/db") == kind("postgres://u@h/db") == "postgresql"
    assert kind("mysql+pymysql://u@h/db") == "mysql"
    assert kind("journal:///shared/a.log") == "journal"
    assert redact("postgresql://hwnas:s3cret@db:5432/hwnas") == "postgresql://hwnas:***@db:5432/hwnas"
    assert redact("postgresql://hwnas@db/hwnas") == "postgresql://hwnas@db/hwnas"


@pytest.mark.parametrize("url", [
    "postgresql://hwnas:pa/ss@db:5432/hwnas", "postgresql://hwnas:pa#ss@db/hwnas", "postgresql://hwnas:p?a@ss@db/hwnas",
    "postgresql://hwnas:p%2Fa%23s%3Fs@db/hwnas", "postgresql://hwnas@db/hwnas?sslmode=require&password=pa/ss",
    "mysql+pymysql://u:pa;ss@db/x?charset=utf8", "postgresql://db/hwnas?PASSWORD=pa#ss"])
def test_redaction_of_awkward_passwords(url):
    out = redact(url)
    for secret in ("pa/ss", "pa#ss", "p?a@ss", "p%2Fa%23s%3Fs", "pa;ss"):
        assert secret not in out, out
    assert "***" in out and out.split("://")[0] == url.split("://")[0]
    with pytest.raises(UserError, match="not a storage URL.*journal:///"):
        kind("redis://h:6379/0")
    with pytest.raises(UserError, match="absolute path"):
        open_storage("journal://relative/study.log", POLICY)
    with pytest.raises(UserError, match="search.heartbeat_s"):
        HeartbeatPolicy(interval_s=10, grace_s=5)


def test_sqlite_path_with_braces_and_journal_have_heartbeats(tmp_path):
    sqlite = open_storage(f"sqlite:///{tmp_path / 'eval_roots={set5: x}' / 'study.db'}", POLICY)
    assert isinstance(sqlite, RDBStorage) and sqlite.get_heartbeat_interval() == 1
    journal = open_storage(f"journal://{tmp_path / 'j' / 'study.log'}", POLICY)
    assert isinstance(journal, HeartbeatJournalStorage) and isinstance(journal, JournalStorage)
    assert journal.get_heartbeat_interval() == 1 and journal.get_heartbeat_stale_trial_callback()


def test_unreachable_database_is_a_user_error():
    with pytest.raises(UserError, match=r"cannot open search.storage='postgresql\+psycopg2://u:\*\*\*@"):
        open_storage("postgresql+psycopg2://u:pw@127.0.0.1:1/db?connect_timeout=2", POLICY)


def test_schema_creation_races_are_retried_and_other_errors_are_not():
    from search.study.storage import schema_race

    # what workers opening one fresh PostgreSQL study at once have seen (a failed CI run), and SQLite's
    assert schema_race(Exception('(psycopg2.errors.DuplicateObject) type "studydirection" already exists'))
    assert schema_race(Exception("(sqlite3.IntegrityError) UNIQUE constraint failed: version_info.version_info_id"))
    assert not schema_race(Exception('(psycopg2.OperationalError) password authentication failed for user "x"'))
