"""One reading of `.env` for Python and bash: scripts/lib.sh evals `python -m b3_quotes.config.settings --export`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from b3_quotes.config.settings import ConfigError, load_settings

REPO = Path(__file__).resolve().parent.parent
TRICKY_ENV = """\
# comment line
export BUCKET=my-lake   # an inline comment is not part of the value
GLUE_JOB_NAME="refine quotes"
CRAWLER_NAME='single # quoted'
TICKERS=petr4.sa, vale3
ADOPT_BUCKET=yes  # a variable only the scripts read
DOWNLOAD_TIMEOUT_S=30
"""


def bash_config(env_file: Path, *names: str, **env: str) -> subprocess.CompletedProcess:
    """Source lib.sh, run load_config, print the named variables one a line."""
    quoted = " ".join(f'"${{{name}}}"' for name in names)
    script = f'source scripts/lib.sh && load_config && printf "%s\\n" {quoted}'
    environment = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "HOME": str(env_file.parent),
                   "ENV_FILE": str(env_file), "PYTHON": sys.executable, **env}
    return subprocess.run(["bash", "-c", script], cwd=REPO, env=environment, capture_output=True, text=True, timeout=60)


def test_python_reads_export_lines_inline_comments_and_quotes(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(TRICKY_ENV)
    settings = load_settings(env={}, env_file=env_file)
    assert settings.bucket == "my-lake"
    assert settings.glue_job_name == "refine quotes"
    assert settings.crawler_name == "single # quoted"
    assert settings.tickers == ("PETR4", "VALE3")
    assert settings.download_timeout_s == 30.0
    assert settings.lake_root == "s3://my-lake"


def test_bash_scripts_read_the_same_values(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(TRICKY_ENV)
    out = bash_config(env_file, "BUCKET", "GLUE_JOB_NAME", "CRAWLER_NAME", "TICKERS", "ADOPT_BUCKET",
                      "LAMBDA_NAME", "AWS_REGION", "AWS_DEFAULT_REGION", "DOWNLOAD_TIMEOUT_S")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["my-lake", "refine quotes", "single # quoted", "PETR4,VALE3", "yes",
                                       "b3-quotes-trigger", "us-east-1", "us-east-1", "30"]


def test_environment_wins_over_dotenv_in_bash_too(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(TRICKY_ENV)
    out = bash_config(env_file, "BUCKET", "ADOPT_BUCKET", "AWS_REGION", "AWS_DEFAULT_REGION",
                      BUCKET="from-env", ADOPT_BUCKET="no", AWS_DEFAULT_REGION="sa-east-1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["from-env", "no", "sa-east-1", "sa-east-1"]


def test_a_bad_value_stops_the_scripts_with_one_line_and_exit_2(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("BUCKET=my-lake\nLAKE_LOCK_WAIT_S=soon\n")
    out = bash_config(env_file, "BUCKET")
    assert out.returncode == 2 and out.stdout == ""
    assert f"error: {env_file}: LAKE_LOCK_WAIT_S: must be a number of seconds, got 'soon'" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_bad_value_names_the_file_and_key_and_stops_only_what_uses_it(tmp_path, capsys, monkeypatch):
    from b3_quotes.catalog.query import main as query_main
    from tests.helpers import put_local, raw_file

    env_file = tmp_path / ".env"
    env_file.write_text("DOWNLOAD_TIMEOUT_S=two minutes\nTICKERS=PETR-4\n")
    settings = load_settings(env={}, env_file=env_file)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(env_file))}: DOWNLOAD_TIMEOUT_S: must be a number"):
        _ = settings.download_timeout_s
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(env_file))}: TICKERS: invalid ticker 'PETR-4'"):
        _ = settings.tickers
    assert settings.with_overrides(tickers=("VALE3",)).tickers == ("VALE3",)  # a flag replaces the bad value
    from_env = load_settings(env={"LAKE_LOCK_WAIT_S": "-1"}, env_file=tmp_path / "none")
    with pytest.raises(ConfigError, match="^environment variable LAKE_LOCK_WAIT_S: must be zero or more"):
        _ = from_env.lake_lock_wait_s
    # A query uses neither: it runs.
    lake = tmp_path / "lake"
    put_local(lake, "raw/quotes/dt=2024-01-02/f.parquet", raw_file("2024-01-02", {"PETR4": 30.0}))
    monkeypatch.setenv("ENV_FILE", str(env_file))
    assert query_main(["--lake-dir", str(lake), "--sql", "SELECT count(*) AS n FROM quotes"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].strip() == "1"


AWS_CONFIG = """\
[default]
region = eu-west-1
[profile work]
region = sa-east-1
"""


def test_the_region_comes_from_the_aws_cli_profile_before_the_default_and_is_said_once(tmp_path):
    config = tmp_path / "aws-config"
    config.write_text(AWS_CONFIG)
    env_file = tmp_path / ".env"
    env_file.write_text("BUCKET=my-lake\n")
    profile = bash_config(env_file, "AWS_REGION", "AWS_DEFAULT_REGION", AWS_CONFIG_FILE=str(config), AWS_PROFILE="work")
    assert profile.returncode == 0, profile.stderr
    assert profile.stdout.splitlines() == ["sa-east-1", "sa-east-1"]
    assert profile.stderr == "region sa-east-1 (from the AWS CLI profile work; set AWS_REGION to change it)\n"
    default_profile = load_settings(env={"AWS_CONFIG_FILE": str(config)}, env_file=env_file)
    assert (default_profile.aws_region, default_profile.aws_region_source) == ("eu-west-1", "AWS CLI profile default")
    # A project setting wins and is not announced.
    chosen = bash_config(env_file, "AWS_REGION", AWS_CONFIG_FILE=str(config), AWS_PROFILE="work", AWS_REGION="ap-south-1")
    assert (chosen.stdout, chosen.stderr) == ("ap-south-1\n", "")
    env_file.write_text("BUCKET=my-lake\nAWS_REGION=us-west-2\n")
    assert load_settings(env={"AWS_CONFIG_FILE": str(config)}, env_file=env_file).aws_region == "us-west-2"
    # No region anywhere (a profile that does not exist either): the default, said.
    nowhere = bash_config(env_file.with_name("none.env"), "AWS_REGION", AWS_CONFIG_FILE=str(config), AWS_PROFILE="gone")
    assert nowhere.returncode == 0, nowhere.stderr
    assert nowhere.stdout == "us-east-1\n"
    assert nowhere.stderr == ("region us-east-1 (the default: neither AWS_REGION, .env nor the AWS CLI profile "
                              "names one)\n")


def test_the_deployments_cost_settings_are_checked_and_a_bad_one_stops_the_scripts(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("BUCKET=my-lake\nLOG_RETENTION_DAYS=14\nATHENA_RESULTS_DAYS=3\nATHENA_SCAN_LIMIT_GB=1\n"
                        "ATHENA_HISTORY_START=2015-01-02\n")
    good = bash_config(env_file, "LOG_RETENTION_DAYS", "ATHENA_RESULTS_DAYS", "ATHENA_SCAN_LIMIT_GB",
                       "ATHENA_HISTORY_START", AWS_REGION="us-east-1")
    assert good.returncode == 0, good.stderr
    assert good.stdout.splitlines() == ["14", "3", "1", "2015-01-02"]
    defaults = load_settings(env={}, env_file=tmp_path / "none")
    assert (defaults.log_retention_days, defaults.athena_results_days, defaults.athena_scan_limit_gb,
            defaults.athena_history_start, defaults.glue_max_workers, defaults.glue_max_timeout_min) == (
        30, 7, 10, "2000-01-01", 10, 120)
    for line, message in (
            ("LOG_RETENTION_DAYS=10", "LOG_RETENTION_DAYS: must be one of CloudWatch's retentions (1, 3, 5, 7, 14, 30,"),
            ("ATHENA_RESULTS_DAYS=0", "ATHENA_RESULTS_DAYS: must be a whole number of days, 1 or more, got '0'"),
            ("ATHENA_SCAN_LIMIT_GB=0.5", "ATHENA_SCAN_LIMIT_GB: must be a whole number of gigabytes, 1 or more, got '0.5'"),
            ("ATHENA_HISTORY_START=2015-13-01", "ATHENA_HISTORY_START: must be a day, YYYY-MM-DD, got '2015-13-01'"),
            ("GLUE_MAX_WORKERS=1", "GLUE_MAX_WORKERS: must be a whole number of workers, 2 or more, got '1'"),
            ("GLUE_MAX_TIMEOUT_MIN=3000", "GLUE_MAX_TIMEOUT_MIN: must be a whole number of minutes from 30 to 2880, "
                                          "got '3000'")):
        env_file.write_text(f"BUCKET=my-lake\n{line}\n")
        bad = bash_config(env_file, "BUCKET", AWS_REGION="us-east-1")
        assert bad.returncode == 2 and bad.stdout == "", line
        assert bad.stderr.startswith(f"error: {env_file}: {message}"), bad.stderr


@pytest.mark.parametrize(("module", "option"), [("scraper.scraper_upload", "--start"), ("b3_quotes.charts.command", "--end"),
                                                ("b3_quotes.catalog.verify", "--since")])
def test_every_command_refuses_a_day_that_is_none_in_the_same_words(module, option, capsys):
    import importlib

    with pytest.raises(SystemExit) as exited:
        importlib.import_module(module).main([option, "2024-02-30"])
    assert exited.value.code == 2
    assert f"argument {option}: '2024-02-30' is not a date (YYYY-MM-DD)" in capsys.readouterr().err.splitlines()[-1]
