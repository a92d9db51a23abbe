"""What a session keeps in RLM_HOME (rlm_mcp/sessions/kept.py), when it is written (resume.py's Keeper), and the
caller's spend journal: pure logic and real files, no server."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from rlm_mcp.config import load_settings
from rlm_mcp.sessions import kept, resume
from rlm_mcp.sessions.kept import KeptContext, KeptSession, KeptSpend, SessionHeldElsewhere, SessionLock
from rlm_mcp.sessions.session import Session
from rlm_mcp.workers import SpendAccount
from rlm_mcp.workers.errors import BudgetExceeded


def record(**overrides: object) -> KeptSession:
    fields = dict(owner="token-ab12", key="token-ab12/handle-1", created=1.0, last_used=time.time(),
                  contexts=(KeptContext("main", "files", "f" * 64, live=True, sources=("src",), roots=("/r",),
                                        base_dir="/r"), KeptContext("notes", "text", "e" * 64)),
                  spend=KeptSpend(calls=3, tokens=120, cost_usd=0.25, elapsed_s=12.5),
                  usage={"execs": 4, "exec_seconds": 0.5, "restarts": 0, "timeouts": 1},
                  worker_usage={"calls": 3}, trajectory="/h/trajectories/t.jsonl")
    return KeptSession(**{**fields, **overrides})  # type: ignore[arg-type]


def test_a_record_reads_back_as_written(tmp_path: Path) -> None:
    kept.write(tmp_path, record())
    assert kept.read(tmp_path) == record(last_used=kept.read(tmp_path).last_used)


@pytest.mark.parametrize("text", ["", "{", "[]", '{"version": 99}', '{"version": 1, "owner": "x"}'])
def test_a_damaged_or_foreign_record_is_not_taken_up(tmp_path: Path, text: str) -> None:
    (tmp_path / kept.RECORD).write_text(text)
    assert kept.read(tmp_path) is None


def test_the_directory_is_a_digest_whatever_the_handle_holds(tmp_path: Path) -> None:
    for handle in ("../../etc", "a/b", "\x00", "r1.abc.def", "x" * 5000):
        directory = kept.directory_of(tmp_path, handle)
        assert directory.parent == tmp_path / "sessions" and len(directory.name) == 32
        assert handle not in str(directory)


def test_one_process_holds_a_session_and_its_end_releases_it(tmp_path: Path) -> None:
    first = SessionLock(tmp_path)
    with pytest.raises(SessionHeldElsewhere, match=r"another rlm-mcp server.*new_session=true"):
        SessionLock(tmp_path)
    assert kept.is_held(tmp_path)
    first.release()
    assert not kept.is_held(tmp_path)
    SessionLock(tmp_path).release()


def test_the_sweep_removes_only_sessions_unused_past_the_limit_and_not_open(tmp_path: Path) -> None:
    directories = {name: kept.directory_of(tmp_path, name) for name in ("old", "recent", "old-but-open", "bare")}
    kept.write(directories["old"], record(last_used=time.time() - 7200))
    kept.write(directories["recent"], record())
    kept.write(directories["old-but-open"], record(last_used=time.time() - 7200))
    (directories["bare"] / "checkpoint").mkdir(parents=True)  # no record: its files' age counts
    for path in (directories["bare"], directories["bare"] / "checkpoint"):
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    held = SessionLock(directories["old-but-open"])
    assert kept.sweep(tmp_path, keep_s=3600) == 2
    assert [name for name, path in directories.items() if path.exists()] == ["recent", "old-but-open"]
    totals = kept.totals(tmp_path)
    assert (totals.sessions, totals.open_now) == (2, 1) and totals.bytes > 0
    held.release()


def test_a_callers_spend_survives_a_restart_within_its_window(tmp_path: Path) -> None:
    journal = tmp_path / "accounts" / "token-ab12.jsonl"
    first = SpendAccount(max_cost_usd=1.0, max_calls=3, window_s=3600, journal=journal)
    first.admit()
    first.spend(0.4)
    first.admit()
    again = SpendAccount(max_cost_usd=1.0, max_calls=3, window_s=3600, journal=journal)  # the next server
    assert again.used()["model_calls"] == 2 and again.used()["cost_usd"] == 0.4
    again.admit()
    with pytest.raises(BudgetExceeded, match="token_max_calls"):
        SpendAccount(max_cost_usd=1.0, max_calls=3, window_s=3600, journal=journal).admit()


def test_spend_older_than_the_window_is_dropped_from_the_journal(tmp_path: Path) -> None:
    journal = tmp_path / "token.jsonl"
    old, recent = time.time() - 7200, time.time() - 60
    journal.write_text("".join(json.dumps({"t": t, "calls": 1, "cost": 0.5}) + "\n" for t in (old, recent))
                       + "not json\n")
    account = SpendAccount(max_cost_usd=5.0, max_calls=10, window_s=3600, journal=journal)
    assert account.used()["model_calls"] == 1 and account.used()["cost_usd"] == 0.5
    assert [json.loads(line)["t"] for line in journal.read_text().splitlines()] == [recent]


def _spend_for(journal: str, seconds: float, spent: Any) -> None:  # spent: a multiprocessing.Value
    account = SpendAccount(max_cost_usd=1e9, max_calls=10**9, window_s=3600, journal=Path(journal))
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        account.spend(0.001)
        spent.value += 1


def _start_for(journal: str, seconds: float) -> None:
    until = time.monotonic() + seconds
    while time.monotonic() < until:  # a server starting: it reads the journal back and trims it to the window
        SpendAccount(max_cost_usd=1e9, max_calls=10**9, window_s=3600, journal=Path(journal))


def test_no_spend_is_lost_while_other_servers_start_on_the_same_journal(tmp_path: Path) -> None:
    """Stdio servers of one user on one RLM_HOME: one spends while two others start again and again (a start's
    trim used to replace the file under an append, losing that entry)."""
    import multiprocessing

    journal = tmp_path / "accounts" / "stdio.jsonl"
    SpendAccount(max_cost_usd=1.0, max_calls=1, window_s=3600, journal=journal)
    context = multiprocessing.get_context("spawn")
    spent = context.Value("i", 0)
    processes = [context.Process(target=_spend_for, args=(str(journal), 1.5, spent)),
                 *(context.Process(target=_start_for, args=(str(journal), 1.5)) for _ in range(2))]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    assert spent.value > 100 and len(journal.read_text().splitlines()) == spent.value


@pytest.mark.anyio
async def test_a_session_is_written_down_when_what_a_later_server_needs_changed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its spend, contexts or close; not after a small exec that changed none of them, yet at least every
    KEEP_EVERY_S while it is used."""
    settings = load_settings(flags={"home": tmp_path / "home"}, environ={})
    async with anyio.create_task_group() as group:
        session = Session.build(settings, settings.policy(), group, key="k", kept_at=tmp_path / "kept",
                                keeper=resume.Keeper())
        session.checkpoints.sizes["x"] = 10  # a saved variable: something worth taking up
        written = tmp_path / "kept" / kept.RECORD

        def writes(**change: bool) -> bool:
            written.unlink(missing_ok=True)
            session.keep(**change)
            return written.exists()

        assert writes()
        assert not writes()  # nothing a later server needs changed
        session.calls.budget.ledger.calls += 1
        assert writes()
        assert writes(final=True)
        monkeypatch.setattr(resume, "KEEP_EVERY_S", 0.0)
        assert writes()
        session.checkpoints.sizes.clear()
        assert not writes() and not written.exists()  # a reset dropped everything: nothing to take up
        await session.calls.aclose()
