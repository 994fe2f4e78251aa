"""LOG_FORMAT: JSON lines for machines, one readable line for people; secrets masked in both."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from shared_kernel.logs import configure_logging, log_context, log_handler
from shared_kernel.settings import CommonSettings, LogFormat

SECRETS = ("hunter2", "pw-2", "tok-3")


def emit(log_format: LogFormat) -> str:
    out = io.StringIO()
    logger = logging.getLogger(f"tests.log_format.{log_format}")
    logger.handlers[:] = [log_handler("projector", out, log_format)]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    with log_context(correlation_id="corr-7", position=42):
        logger.info(
            "applied batch from postgresql://u:hunter2@db/ledger",
            extra={"events": 3, "password": "pw-2"},
        )
    try:
        raise RuntimeError("Bearer tok-3 refused")
    except RuntimeError:
        logger.exception("batch failed")
    return out.getvalue()


def test_console_lines_show_time_level_process_message_and_fields() -> None:
    text = emit("console")
    first = text.splitlines()[0]
    assert re.match(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[INFO\s*\] projector: applied batch from"
        r" postgresql://u:\*\*\*@db/ledger correlation_id=corr-7 position=42 events=3"
        r" password=\*\*\*$",
        first,
    ), first
    assert "trace_id" not in first  # null fields are left out on a console
    assert "[ERROR" in text and "Traceback" in text and "Bearer ***" in text
    for secret in SECRETS:
        assert secret not in text


def test_json_lines_keep_every_field_and_mask_the_same_secrets() -> None:
    text = emit("json")
    info, error = (json.loads(line) for line in text.splitlines())
    assert (info["level"], info["process"], info["correlation_id"], info["position"]) == (
        "INFO",
        "projector",
        "corr-7",
        42,
    )
    assert info["events"] == 3 and info["password"] == "***"
    assert info["trace_id"] is None and isinstance(info["pid"], int)
    assert "Traceback" in error["exception"]
    for secret in SECRETS:
        assert secret not in text


@pytest.fixture
def root_handlers() -> Iterator[None]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    yield
    root.handlers[:] = saved
    root.setLevel(level)


def test_the_default_format_is_json_when_stderr_is_not_a_terminal(
    root_handlers: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("tester", "INFO")  # pytest's captured stderr is no terminal
    logging.getLogger("tests.log_format.default").warning("hello")
    assert json.loads(capsys.readouterr().err.splitlines()[-1])["message"] == "hello"
    configure_logging("tester", "INFO", "console")
    logging.getLogger("tests.log_format.default").warning("hello")
    assert "[WARNING" in capsys.readouterr().err


def test_log_format_is_a_setting_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "console")
    assert CommonSettings().log_format == "console"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="log_format"):
        CommonSettings()
