#!/usr/bin/env bash
# Shared by bootstrap_aws.sh and reset_aws.sh: configuration, logging, templates.
# shellcheck disable=SC2034  # variables set here are used by the scripts that source this file

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROJECT_TAG_KEY="project"
PROJECT_TAG_VALUE="b3-quotes-pipeline"
# Set (to "true") on a bucket bootstrap did not create but was told to use (ADOPT_BUCKET=yes).
ADOPTED_TAG_KEY="b3-quotes-pipeline-adopted"

log() { printf '%s\n' "$*" >&2; }
# Exit codes: 1 an AWS call failed (its message is printed above); 2 bad configuration or input,
# found before anything was changed.
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
bad_input() { printf 'error: %s\n' "$*" >&2; exit 2; }

# .env fills what the environment does not set: the environment wins, as in the Python code.
load_config() {
  local env_file="${ENV_FILE:-${REPO_ROOT}/.env}" line key value
  if [[ -f "${env_file}" ]]; then
    while IFS= read -r line || [[ -n "${line}" ]]; do
      [[ "${line}" =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
      key="${BASH_REMATCH[1]}"
      value="${BASH_REMATCH[2]%\"}"; value="${value#\"}"
      value="${value%\'}"; value="${value#\'}"
      [[ -z "${!key:-}" ]] && export "${key}=${value}"
    done < "${env_file}"
  fi
  AWS_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
  export AWS_REGION AWS_DEFAULT_REGION="${AWS_REGION}"
  GLUE_JOB_NAME="${GLUE_JOB_NAME:-b3-quotes-refine}"
  CRAWLER_NAME="${CRAWLER_NAME:-b3-quotes-crawler}"
  GLUE_DATABASE="${GLUE_DATABASE:-default}"
  ATHENA_WORKGROUP="${ATHENA_WORKGROUP:-b3-quotes}"
  LAMBDA_NAME="${LAMBDA_NAME:-b3-quotes-trigger}"
  GLUE_ROLE_NAME="${GLUE_ROLE_NAME:-b3-quotes-glue}"
  LAMBDA_ROLE_NAME="${LAMBDA_ROLE_NAME:-b3-quotes-lambda}"
  GLUE_ROLE_ARN="${GLUE_ROLE_ARN:-}"
  LAMBDA_ROLE_ARN="${LAMBDA_ROLE_ARN:-}"
  LAMBDA_RUNTIME="${LAMBDA_RUNTIME:-python3.12}"
  # Every table pipeline/tables.py states, and only those.
  mapfile -t TABLES < <(cli_json table-names)
  ((${#TABLES[@]})) || die "cannot read the table list from pipeline/tables.py"
}

check_prerequisites() {
  local missing=()
  command -v aws >/dev/null 2>&1 || missing+=("the AWS CLI (pip install awscli, or AWS CLI v2)")
  command -v python3 >/dev/null 2>&1 || missing+=("python3 (to package the job and the Lambda)")
  [[ -n "${BUCKET:-}" ]] || missing+=("BUCKET (set it in .env or the environment)")
  if ((${#missing[@]})); then
    log "missing prerequisites:"
    printf '  - %s\n' "${missing[@]}" >&2
    exit 2
  fi
  ACCOUNT_ID="$(aws sts get-caller-identity --query Account --output text 2>/dev/null)" \
    || bad_input "no valid AWS credentials (aws sts get-caller-identity failed): run 'aws configure' or export AWS_PROFILE"
}

# JSON documents computed from what the account already holds (see deploy/cli_json.py).
cli_json() { (cd "${REPO_ROOT}" && python3 -m deploy.cli_json "$@"); }

# The bucket's tags as the CLI prints them; nothing when it has none (or is not readable).
bucket_tags() { aws s3api get-bucket-tagging --bucket "${BUCKET}" --output json 2>/dev/null || true; }
bucket_is_ours() { bucket_tags | cli_json has-tag "${PROJECT_TAG_KEY}" "${PROJECT_TAG_VALUE}"; }

# Substitute ${NAME} placeholders from the environment; fail on any left unset.
render() {
  local template="$1" out
  out="$(python3 - "${template}" <<'PY'
import os, re, sys
text = open(sys.argv[1]).read()
missing = sorted({m for m in re.findall(r"\$\{(\w+)\}", text) if not os.environ.get(m)})
if missing:
    sys.exit("unset in template %s: %s" % (sys.argv[1], ", ".join(missing)))
print(re.sub(r"\$\{(\w+)\}", lambda m: os.environ[m.group(1)], text))
PY
)" || die "cannot render ${template}"
  printf '%s\n' "${out}"
}
