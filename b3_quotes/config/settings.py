"""Deploy-time configuration, read once from the environment and `.env`."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from dotenv import dotenv_values

from b3_quotes.contract.layout import lake_root
from b3_quotes.contract.tickers import b3_code

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TICKERS = ("PETR4", "VALE3", "ITUB4", "BBDC4", "ABEV3")
# The region when neither the environment, .env nor the AWS CLI profile names one.
DEFAULT_REGION = "us-east-1"
# Accepted names for the ticker list, first match wins.
TICKER_VARIABLES = ("TICKERS", "ATIVO", "TICKER")


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    """Everything the pipeline and its provisioning scripts need to know about where they run.

    Each field is read from the variable ENV_NAMES gives it (`.env`, then the environment).
    """

    tickers: tuple[str, ...] = DEFAULT_TICKERS
    source: str = "yfinance"
    universe: str = ""
    # Where the lake is: a bucket (AWS mode) or, with no bucket, a local folder. Everything
    # downstream takes the one `lake_root` built from them.
    bucket: str = ""
    # The default lake is the repository's, wherever a command runs from (b3-query from ~ finds it).
    lake_dir: Path = field(default_factory=lambda: REPO_ROOT / "lake")
    aws_region: str = DEFAULT_REGION
    # Where aws_region came from: a variable's name, `.env`, `AWS CLI profile NAME`, or `default`.
    aws_region_source: str = field(default="default", compare=False)
    glue_job_name: str = "b3-quotes-refine"
    crawler_name: str = "b3-quotes-crawler"
    glue_database: str = "default"
    athena_workgroup: str = "b3-quotes"
    download_timeout_s: float = 120.0
    # How long a local run waits for another one to finish with the lake before giving up.
    lake_lock_wait_s: float = 600.0
    # Provisioning only (scripts/bootstrap_aws.sh, scripts/reset_aws.sh).
    lambda_name: str = "b3-quotes-trigger"
    glue_role_name: str = "b3-quotes-glue"
    lambda_role_name: str = "b3-quotes-lambda"
    glue_role_arn: str = ""  # an existing role to use instead of creating one (e.g. a lab's LabRole)
    lambda_role_arn: str = ""
    lambda_runtime: str = "python3.12"
    # What the deployment may cost while nobody looks (bootstrap applies them on every run):
    # days CloudWatch keeps the log groups it creates, days S3 keeps Athena's query results, and
    # the most data one Athena query of the workgroup may scan before Athena cancels it ($5/TB).
    log_retention_days: int = 30
    athena_results_days: int = 7
    athena_scan_limit_gb: int = 10
    # The most workers (G.1X) and minutes one Glue run may get: the Lambda sizes each run from its
    # manifest within these (lambdas/start_glue_job.py run_resources).
    glue_max_workers: int = 10
    glue_max_timeout_min: int = 120
    # The first day Athena's partition projection covers in the day- and month-partitioned tables
    # (b3_quotes/contract/tables.py PROJECTIONS): set it to the first day of the lake's history.
    athena_history_start: str = "2000-01-01"
    # Field -> why its configured value is unusable. Reading that field raises ConfigError, so a
    # bad value stops exactly the commands that use it (a bad DOWNLOAD_TIMEOUT_S does not stop a query).
    invalid: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __getattribute__(self, name: str) -> object:
        if not name.startswith("_") and name != "invalid":
            invalid = object.__getattribute__(self, "invalid")
            if name in invalid:
                raise ConfigError(invalid[name])
        return object.__getattribute__(self, name)

    @property
    def is_local(self) -> bool:
        """Local mode is the default: no bucket configured."""
        return not self.bucket

    @property
    def lake_root(self) -> str:
        """Where the lake is: `s3://bucket` on AWS, the local folder's absolute path otherwise."""
        return lake_root(self.bucket, self.lake_dir)

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the given non-empty values replaced (command-line flags win)."""
        kept = {k: v for k, v in changes.items() if v not in (None, "", ())}
        current = {f.name: object.__getattribute__(self, f.name) for f in fields(self)}
        invalid = {k: v for k, v in self.invalid.items() if k not in kept}  # a flag replaces a bad value
        return Settings(**{**current, **kept, "invalid": invalid})  # type: ignore[arg-type]


def normalize_ticker(raw: str) -> str:
    """`petr4.sa` -> `PETR4`, `^BVSP` -> `IBOV`: users may type Yahoo symbols or B3 codes."""
    ticker = b3_code(raw)
    if not ticker:
        raise ConfigError(f"invalid ticker {raw!r}: expected a B3 code such as PETR4")
    return ticker


def parse_day(text: str) -> dt.date:
    """A command line's day, YYYY-MM-DD (argparse's `type=`: a bad one is argparse's one-line error)."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def parse_tickers(text: str) -> tuple[str, ...]:
    """Comma or space separated tickers, normalized, duplicates removed, order kept."""
    parts = [p for p in text.replace(",", " ").split() if p]
    return tuple(dict.fromkeys(normalize_ticker(p) for p in parts))


# Field -> variable. TICKERS also answers to ATIVO and TICKER (TICKER_VARIABLES).
ENV_NAMES = {f.name: f.name.upper() for f in fields(Settings) if f.name not in ("invalid", "aws_region_source")}
NUMBERS = {"download_timeout_s", "lake_lock_wait_s"}
# CloudWatch Logs accepts only these retentions (PutRetentionPolicy's retentionInDays).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)
# Whole numbers, each with the check its value must pass: (test, what the value must be).
WHOLE_NUMBERS = {
    "log_retention_days": (lambda n: n in LOG_RETENTION_DAYS,
                           f"one of CloudWatch's retentions ({', '.join(map(str, LOG_RETENTION_DAYS))})"),
    "athena_results_days": (lambda n: n >= 1, "a whole number of days, 1 or more"),
    # Athena's smallest cutoff is 10 MB: 1 GB is ours.
    "athena_scan_limit_gb": (lambda n: n >= 1, "a whole number of gigabytes, 1 or more"),
    # A run has a driver and at least one executor; Glue's longest timeout is 2,880 minutes.
    "glue_max_workers": (lambda n: n >= 2, "a whole number of workers, 2 or more"),
    "glue_max_timeout_min": (lambda n: 30 <= n <= 2880, "a whole number of minutes from 30 to 2880"),
}


def read_values(env: Mapping[str, str] | None = None, env_file: Path | None = None) -> tuple[dict[str, str], set[str]]:
    """`.env` (python-dotenv's reading: `export` prefixes, quotes, inline comments) under the environment.

    The file is `env_file`, else $ENV_FILE, else the repository's `.env`. Returns the merged
    values and the names that came from the file.
    """
    environment = dict(os.environ if env is None else env)
    dotenv_path = env_file or Path(environment.get("ENV_FILE") or REPO_ROOT / ".env")
    from_file = {}
    if dotenv_path.is_file():
        try:
            from_file = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None}
        except (UnicodeDecodeError, ValueError) as exc:  # a binary file, UTF-16, a PNG saved as .env
            raise ConfigError(f"{dotenv_path}: not a text file of NAME=value lines (UTF-8): {exc}; "
                              "fix or remove it (ENV_FILE names another)") from None
    return {**from_file, **environment}, set(from_file) - set(environment)


def dotenv_file(env: Mapping[str, str] | None = None, env_file: Path | None = None) -> Path:
    environment = os.environ if env is None else env
    return env_file or Path(environment.get("ENV_FILE") or REPO_ROOT / ".env")


def load_settings(env: Mapping[str, str] | None = None, env_file: Path | None = None) -> Settings:
    """Read settings from `.env` then the process environment (the environment wins)."""
    values, from_file = read_values(env, env_file)
    return settings_from(values, from_file, dotenv_file(env, env_file))


def settings_from(values: Mapping[str, str], from_file: set[str] | None = None,
                  dotenv_path: Path | None = None) -> Settings:
    """The settings the merged variables say; defaults for the rest.

    A value that cannot be read is recorded with where it was set (`.env` or the environment)
    and its key: reading that setting raises ConfigError, the others work.
    """
    defaults = Settings()

    def get(name: str) -> str:
        return values.get(ENV_NAMES[name], "").strip()

    def where(variable: str) -> str:
        if from_file is not None and variable in from_file:
            return f"{dotenv_path or '.env'}: {variable}"
        return f"environment variable {variable}"

    read: dict[str, object] = {name: get(name) for name in ENV_NAMES if get(name)}
    invalid: dict[str, str] = {}
    read.pop("tickers", None)
    if variable := next((n for n in TICKER_VARIABLES if values.get(n, "").strip()), ""):
        try:
            read["tickers"] = parse_tickers(values[variable])
        except ConfigError as exc:
            invalid["tickers"] = f"{where(variable)}: {exc}"
    if "aws_region" in read:
        read["aws_region_source"] = ".env" if from_file is not None and "AWS_REGION" in from_file else "AWS_REGION"
    elif values.get("AWS_DEFAULT_REGION", "").strip():
        read["aws_region"] = values["AWS_DEFAULT_REGION"].strip()
        read["aws_region_source"] = ".env" if from_file is not None and "AWS_DEFAULT_REGION" in from_file \
            else "AWS_DEFAULT_REGION"
    elif profile_region := _profile_region(values):
        read["aws_region"], read["aws_region_source"] = profile_region
    for name in NUMBERS & read.keys():
        try:
            read[name] = _seconds(str(read[name]))
        except ConfigError as exc:
            invalid[name] = f"{where(ENV_NAMES[name])}: {exc}"
            del read[name]
    for name in WHOLE_NUMBERS.keys() & read.keys():
        test, expected = WHOLE_NUMBERS[name]
        text = str(read.pop(name))
        if text.isdigit() and test(int(text)):
            read[name] = int(text)
        else:
            invalid[name] = f"{where(ENV_NAMES[name])}: must be {expected}, got {text!r}"
    if "athena_history_start" in read:
        try:
            read["athena_history_start"] = dt.date.fromisoformat(str(read["athena_history_start"])).isoformat()
        except ValueError:
            invalid["athena_history_start"] = (f"{where('ATHENA_HISTORY_START')}: must be a day, YYYY-MM-DD, "
                                               f"got {read.pop('athena_history_start')!r}")
    if "lake_dir" in read:
        # A relative LAKE_DIR in .env is relative to that file's folder, not to where a command runs.
        lake_dir = Path(str(read["lake_dir"])).expanduser()
        if from_file is not None and "LAKE_DIR" in from_file and not lake_dir.is_absolute():
            lake_dir = (dotenv_path or REPO_ROOT / ".env").resolve().parent / lake_dir
        read["lake_dir"] = lake_dir
    return replace(defaults, **read, invalid=invalid)  # type: ignore[arg-type]


def _profile_region(values: Mapping[str, str]) -> tuple[str, str] | None:
    """(region, "AWS CLI profile NAME") when the AWS CLI's profile names a region, as the CLI and
    boto3 would find it (AWS_PROFILE, AWS_CONFIG_FILE, ~/.aws/config); else None.

    Read with botocore's own config loader, imported only here: most commands never need it.
    """
    import botocore.exceptions
    import botocore.session

    session = botocore.session.Session()
    profile = (values.get("AWS_PROFILE") or values.get("AWS_DEFAULT_PROFILE") or "").strip() or "default"
    session.set_config_variable("profile", profile)
    session.set_config_variable("config_file", (values.get("AWS_CONFIG_FILE") or "").strip() or "~/.aws/config")
    try:
        region = session.get_scoped_config().get("region", "")
    except botocore.exceptions.ProfileNotFound:
        return None
    return (region.strip(), f"AWS CLI profile {profile}") if region and region.strip() else None


def region_line(settings: Settings) -> str:
    """The one line that says where the region came from, when no setting of this project chose it."""
    if settings.aws_region_source.startswith("AWS CLI profile"):
        return f"region {settings.aws_region} (from the {settings.aws_region_source}; set AWS_REGION to change it)"
    if settings.aws_region_source == "default":
        return (f"region {settings.aws_region} (the default: neither AWS_REGION, .env nor the AWS CLI profile "
                "names one)")
    return ""


def shell_exports(env: Mapping[str, str] | None = None, env_file: Path | None = None) -> list[str]:
    """`export NAME='value'` lines for the bash scripts: every setting, as this loader reads it.

    Other variables set in `.env` (and not in the environment), such as ADOPT_BUCKET, are
    passed on as python-dotenv reads them, so that `.env` means the same to bash and Python.
    """
    values, from_file = read_values(env, env_file)
    settings = settings_from(values, from_file, dotenv_file(env, env_file))
    exports = {}
    for name, variable in ENV_NAMES.items():
        value = getattr(settings, name)
        exports[variable] = ",".join(value) if name == "tickers" else f"{value:g}" if name in NUMBERS else str(value)
    exports["AWS_DEFAULT_REGION"] = settings.aws_region
    exports["AWS_REGION_CHOSEN"] = region_line(settings)
    for variable in sorted(from_file - exports.keys()):
        if variable.isidentifier():
            exports[variable] = values[variable]
    return [f"export {variable}={shlex.quote(value)}" for variable, value in exports.items()]


def main(argv: list[str]) -> int:
    """`python -m b3_quotes.config.settings --export`: the settings as shell assignments (scripts/lib.sh evals them)."""
    if argv != ["--export"]:
        print("usage: python -m b3_quotes.config.settings --export", file=sys.stderr)
        return 2
    try:
        print("\n".join(shell_exports()))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(f"must be a number of seconds, got {text!r}") from exc
    if not value >= 0:  # also refuses nan
        raise ConfigError(f"must be zero or more seconds, got {text!r}")
    return value


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
