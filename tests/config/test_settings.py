"""Configuration layers: defaults < RLM_* environment < TOML file < flags; errors name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_mcp.config import ConfigError, load_settings, split_roots


def test_precedence_env_then_toml_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "rlm.toml"
    config.write_text('worker_model = "from-toml"\nmax_cost_usd = 2.5\n')
    environ = {"RLM_WORKER_MODEL": "from-env", "RLM_MAX_COST_USD": "9", "RLM_MAX_DEPTH": "4"}
    settings = load_settings(config, {"max_cost_usd": 1.0}, environ=environ)
    assert settings.worker_model == "from-toml"
    assert settings.max_cost_usd == 1.0
    assert settings.max_depth == 4


def test_config_file_found_in_home_and_rlm_table(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[rlm]\nsandbox = "none"\n')
    settings = load_settings(environ={"RLM_HOME": str(tmp_path)})
    assert settings.sandbox == "none"


def test_allowed_roots_are_path_separated(tmp_path: Path) -> None:
    settings = load_settings(environ={"RLM_ALLOWED_ROOTS": f"{tmp_path}:/opt"})
    assert settings.allowed_roots == (tmp_path, Path("/opt"))
    assert load_settings(environ={}).roots() == (Path.cwd().resolve(),)


def test_windows_roots_are_split_on_semicolons_with_drive_letters_kept() -> None:
    """As a Windows user writes them (`;` is os.pathsep there): drive letters, Explorer's quotes, a bare drive."""
    roots = split_roots('"C:\\Users\\me\\src"; D:/work;;E:', ";")
    assert [str(root) for root in roots] == ["C:\\Users\\me\\src", "D:/work", "E:\\"]


@pytest.mark.parametrize(
    ("environ", "message"),
    [({"RLM_SANDBOX": "docker"}, "RLM_SANDBOX"), ({"RLM_MAX_DEPTH": "-1"}, "RLM_MAX_DEPTH"),
     ({"RLM_EXEC_TIMEOUT_S": "soon"}, "RLM_EXEC_TIMEOUT_S")],
)
def test_bad_values_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=environ)


def test_bad_toml_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("worker_model = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config, environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_an_output_cap_past_the_result_budget_is_refused_naming_both() -> None:
    """Issue 31: never silently overridden -- the budget would cut that output again."""
    with pytest.raises(ConfigError, match="RLM_MAX_OUTPUT_CHARS=2,000,000 is more than the result budget of 40,000"):
        load_settings(environ={"RLM_MAX_OUTPUT_CHARS": "2000000"})
    raised = load_settings(environ={"RLM_MAX_OUTPUT_CHARS": "2000000", "RLM_RESULT_BUDGET_CHARS": "2000000"})
    assert (raised.max_output_chars, raised.result_budget_chars) == (2_000_000, 2_000_000)
