"""Deploy-time configuration, read once from the environment and `.env`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from dotenv import dotenv_values

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TICKERS = ("PETR4", "VALE3", "ITUB4", "BBDC4", "ABEV3")
# Accepted names for the ticker list, first match wins.
TICKER_VARIABLES = ("TICKERS", "ATIVO", "TICKER")


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    """Everything the pipeline needs to know about where it runs."""

    tickers: tuple[str, ...] = DEFAULT_TICKERS
    source: str = "yfinance"
    universe: str = ""
    bucket: str = ""
    lake_dir: Path = field(default_factory=lambda: Path("lake"))
    aws_region: str = "us-east-1"
    glue_job_name: str = "b3-quotes-refine"
    crawler_name: str = "b3-quotes-crawler"
    glue_database: str = "default"
    athena_workgroup: str = "b3-quotes"
    download_timeout_s: float = 120.0
    # How long a local run waits for another one to finish with the lake before giving up.
    lake_lock_wait_s: float = 600.0

    @property
    def is_local(self) -> bool:
        """Local mode is the default: no bucket configured."""
        return not self.bucket

    @property
    def lake_root(self) -> str:
        """URI of the lake: `s3://bucket` on AWS, `file:///abs/path` locally."""
        if self.bucket:
            return f"s3://{self.bucket}"
        return self.lake_dir.resolve().as_uri()

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the given non-empty values replaced (command-line flags win)."""
        kept = {k: v for k, v in changes.items() if v not in (None, "", ())}
        return replace(self, **kept)  # type: ignore[arg-type]


def normalize_ticker(raw: str) -> str:
    """`petr4.sa` -> `PETR4`: users may type Yahoo symbols or B3 codes."""
    ticker = raw.strip().upper()
    if ticker.endswith(".SA"):
        ticker = ticker[: -len(".SA")]
    if not ticker or not ticker.isalnum():
        raise ConfigError(f"invalid ticker {raw!r}: expected a B3 code such as PETR4")
    return ticker


def parse_tickers(text: str) -> tuple[str, ...]:
    """Comma or space separated tickers, normalized, duplicates removed, order kept."""
    parts = [p for p in text.replace(",", " ").split() if p]
    return tuple(dict.fromkeys(normalize_ticker(p) for p in parts))


def load_settings(
    env: Mapping[str, str] | None = None, env_file: Path | None = None
) -> Settings:
    """Read settings from `.env` then the process environment (the environment wins)."""
    values: dict[str, str] = {}
    dotenv_path = env_file if env_file is not None else REPO_ROOT / ".env"
    if dotenv_path.is_file():
        values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    values.update(os.environ if env is None else env)

    def get(name: str, default: str = "") -> str:
        return values.get(name, "").strip() or default

    tickers_text = next((values[n] for n in TICKER_VARIABLES if values.get(n, "").strip()), "")
    timeout_s = _seconds("DOWNLOAD_TIMEOUT_S", get("DOWNLOAD_TIMEOUT_S", "120"))
    lock_wait_s = _seconds("LAKE_LOCK_WAIT_S", get("LAKE_LOCK_WAIT_S", "600"))
    defaults = Settings()
    return Settings(
        tickers=parse_tickers(tickers_text) if tickers_text else DEFAULT_TICKERS,
        source=get("SOURCE", defaults.source),
        universe=get("UNIVERSE"),
        bucket=get("BUCKET"),
        lake_dir=Path(get("LAKE_DIR", "lake")),
        aws_region=get("AWS_REGION", get("AWS_DEFAULT_REGION", defaults.aws_region)),
        glue_job_name=get("GLUE_JOB_NAME", defaults.glue_job_name),
        crawler_name=get("CRAWLER_NAME", defaults.crawler_name),
        glue_database=get("GLUE_DATABASE", defaults.glue_database),
        athena_workgroup=get("ATHENA_WORKGROUP", defaults.athena_workgroup),
        download_timeout_s=timeout_s,
        lake_lock_wait_s=lock_wait_s,
    )


def _seconds(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number of seconds, got {text!r}") from exc
    if not value >= 0:  # also refuses nan
        raise ConfigError(f"{name} must be zero or more seconds, got {text!r}")
    return value
