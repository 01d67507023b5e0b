#!/usr/bin/env bash
# Shared by bootstrap_aws.sh and reset_aws.sh: configuration, logging, templates.
# shellcheck disable=SC2034  # variables set here are used by the scripts that source this file

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROJECT_TAG_KEY="project"
PROJECT_TAG_VALUE="b3-quotes-pipeline"
# Set (to "true") on a bucket bootstrap did not create but was told to use (ADOPT_BUCKET=yes).
ADOPTED_TAG_KEY="b3-quotes-pipeline-adopted"

log() { printf '%s\n' "$*" >&2; }
# Notices: what an account refused that the deployment can do without (tagging, IAM reads).
notice() { printf '! %s\n' "$*" >&2; }
# Exit codes: 1 an AWS call failed (its message is printed above); 2 bad configuration or input,
# found before anything was changed.
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
bad_input() { printf 'error: %s\n' "$*" >&2; exit 2; }

# These scripts keep to bash 3.2 (macOS /bin/bash; Amazon Linux 2 and CentOS 7 have 4.2):
# tests/test_bash_compat.py rejects what later versions added. check_bash MAJOR MINOR.
check_bash() {
  if (($1 < 3 || ($1 == 3 && $2 < 2))); then
    bad_input "bash $1.$2 is too old: these scripts need bash 3.2 or later (install a newer bash and run 'bash scripts/$(basename "$0")')"
  fi
}
check_bash "${BASH_VERSINFO[0]}" "${BASH_VERSINFO[1]}"

# The Python that reads the settings and packages the code: the project's venv when there is one.
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "${REPO_ROOT}/.venv/bin/python" ]]; then PYTHON="${REPO_ROOT}/.venv/bin/python"; else PYTHON=python3; fi
fi

# The settings as the pipeline reads them (b3_quotes/config/settings.py: .env under the environment,
# python-dotenv's reading), so that .env means the same to these scripts and to Python.
load_config() {
  local exports
  exports="$(cd "${REPO_ROOT}" && "${PYTHON}" -m b3_quotes.config.settings --export)" \
    || bad_input "cannot read the settings with ${PYTHON} (see above; 'make demo' or 'pip install -e .' installs what it needs)"
  eval "${exports}"
  # The region came from the AWS CLI's profile or the default, not from this project's settings: say so.
  if [[ -n "${AWS_REGION_CHOSEN:-}" ]]; then log "${AWS_REGION_CHOSEN}"; fi
  # Every table b3_quotes/contract/tables.py states, and only those (a read loop: mapfile is bash 4).
  local table
  TABLES=()
  while IFS= read -r table; do TABLES+=("${table}"); done < <(cli_json table-names)
  ((${#TABLES[@]})) || die "cannot read the table list from b3_quotes/contract/tables.py"
}

# check_prerequisites [visual-jobs]: what the scripts need, before any AWS call; with
# visual-jobs (bootstrap) also an AWS CLI that can create a visual Glue job.
check_prerequisites() {
  local missing=()
  command -v aws >/dev/null 2>&1 || missing+=("the AWS CLI (pip install awscli, or AWS CLI v2)")
  command -v "${PYTHON}" >/dev/null 2>&1 || missing+=("${PYTHON} (to read the settings and package the code)")
  [[ -n "${BUCKET:-}" ]] || missing+=("BUCKET (set it in .env or the environment)")
  if ((${#missing[@]})); then
    log "missing prerequisites:"
    printf '  - %s\n' ${missing[@]+"${missing[@]}"} >&2
    exit 2
  fi
  if [[ "${1:-}" == visual-jobs ]]; then check_aws_cli; fi
  ACCOUNT_ID="$(aws sts get-caller-identity --query Account --output text 2>/dev/null)" \
    || bad_input "no valid AWS credentials (aws sts get-caller-identity failed): run 'aws configure' or export AWS_PROFILE"
  # The crawler's S3 event queue (CRAWL_EVENT_MODE), named after the crawler.
  CRAWL_QUEUE_NAME="${CRAWLER_NAME}-events"
  CRAWL_QUEUE_ARN="arn:aws:sqs:${AWS_REGION}:${ACCOUNT_ID}:${CRAWL_QUEUE_NAME}"
  # The log groups this deployment owns: the Lambda's (Lambda's own name for it), and the one the
  # job's continuous logs go to (--continuous-log-logGroup), instead of the account's shared
  # /aws-glue/jobs/logs-v2. Bootstrap creates both with a retention; reset deletes both.
  LAMBDA_LOG_GROUP="/aws/lambda/${LAMBDA_NAME}"
  GLUE_LOG_GROUP="/aws-glue/jobs/${GLUE_JOB_NAME}"
}

# By name (GetWorkGroup), not by listing: ListWorkGroups pages at 50 groups. AWS refuses a
# missing name; moto answers null: both are "no".
workgroup_exists() {
  [[ "$(aws athena get-work-group --work-group "${ATHENA_WORKGROUP}" --query WorkGroup.Name --output text 2>/dev/null)" \
    == "${ATHENA_WORKGROUP}" ]]
}

# A visual job needs CreateJob's JobMode and CodeGenConfigurationNodes: AWS CLI v1 knows both
# from 1.32.115 (JobMode; CodeGenConfigurationNodes from 1.24.2), v2 from its mid-2024 releases.
# The CLI's own input skeleton says which parameters it knows, without calling AWS.
check_aws_cli() {
  local skeleton version
  skeleton="$(aws glue create-job --generate-cli-skeleton input 2>/dev/null || true)"
  if [[ "${skeleton}" != *'"JobMode"'* || "${skeleton}" != *'"CodeGenConfigurationNodes"'* ]]; then
    version="$(aws --version 2>&1 | head -n 1)"
    bad_input "the AWS CLI (${version:-unknown version}) does not know glue create-job --job-mode / --code-gen-configuration-nodes: install AWS CLI v2, or pip install 'awscli>=1.32.115'"
  fi
  # Job run queuing (JobRunQueuingEnabled) came later: an older CLI refuses the whole definition.
  if [[ "${skeleton}" == *'"JobRunQueuingEnabled"'* ]]; then CLI_KNOWS_QUEUING=yes; else CLI_KNOWS_QUEUING=no; fi
}

# AWS CLI v1's sqs commands ignore AWS_ENDPOINT_URL (an emulator's endpoint): pass it as a flag.
sqs() {
  if [[ -n "${AWS_ENDPOINT_URL:-}" ]]; then aws --endpoint-url "${AWS_ENDPOINT_URL}" sqs "$@"; else aws sqs "$@"; fi
}

# JSON documents computed from what the account already holds (see b3_quotes/deploy/cli_json.py).
cli_json() { (cd "${REPO_ROOT}" && "${PYTHON}" -m b3_quotes.deploy.cli_json "$@"); }

# The bucket's tags as the CLI prints them; nothing when it has none (or is not readable).
bucket_tags() { aws s3api get-bucket-tagging --bucket "${BUCKET}" --output json 2>/dev/null || true; }
bucket_is_ours() { bucket_tags | cli_json has-tag "${PROJECT_TAG_KEY}" "${PROJECT_TAG_VALUE}"; }

# Substitute ${NAME} placeholders from the environment; fail on any left unset.
render() {
  local template="$1" out
  out="$("${PYTHON}" - "${template}" <<'PY'
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
