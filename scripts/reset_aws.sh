#!/usr/bin/env bash
# Delete every AWS resource bootstrap_aws.sh created, and nothing else. Asks first.
# Confirm with CONFIRM_AWS_RESET=YES, or by typing the bucket name at the prompt.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REMOVED=()
removed() { REMOVED+=("$1"); log "- $1"; }

confirm() {
  [[ "${CONFIRM_AWS_RESET:-}" == "YES" ]] && return 0
  if [[ -t 0 ]]; then
    local answer
    read -r -p "This deletes bucket ${BUCKET} with all its data, the Glue job, crawler, tables, Lambda, workgroup and roles. Type the bucket name to confirm: " answer
    [[ "${answer}" == "${BUCKET}" ]] && return 0
  fi
  die "not confirmed: nothing deleted (set CONFIRM_AWS_RESET=YES or type the bucket name)"
}

# owned_by_us TAG_JSON_TEXT: bootstrap tags what it creates; anything else is left alone.
has_project_tag() { grep -q "${PROJECT_TAG_VALUE}" <<<"$1"; }

reset_bucket() {
  aws s3api head-bucket --bucket "${BUCKET}" >/dev/null 2>&1 || { log "= bucket ${BUCKET} already gone"; return; }
  local tags
  tags="$(aws s3api get-bucket-tagging --bucket "${BUCKET}" --output text 2>/dev/null || true)"
  if ! has_project_tag "${tags}"; then
    log "! bucket ${BUCKET} has no ${PROJECT_TAG_KEY}=${PROJECT_TAG_VALUE} tag: not created by bootstrap, left alone"
    return
  fi
  # The TLS-only policy stays valid on AWS; removing it first lets emulators without Condition support in.
  aws s3api delete-bucket-policy --bucket "${BUCKET}" >/dev/null 2>&1 || true
  aws s3api put-bucket-notification-configuration --bucket "${BUCKET}" --notification-configuration '{}'
  aws s3 rm --only-show-errors --recursive "s3://${BUCKET}"
  aws s3api delete-bucket --bucket "${BUCKET}"
  removed "bucket s3://${BUCKET} and its objects"
}

reset_lambda() {
  local arn tags
  arn="$(aws lambda get-function --function-name "${LAMBDA_NAME}" --query Configuration.FunctionArn --output text 2>/dev/null)" \
    || { log "= Lambda ${LAMBDA_NAME} already gone"; return; }
  tags="$(aws lambda list-tags --resource "${arn}" --output text 2>/dev/null || true)"
  has_project_tag "${tags}" || { log "! Lambda ${LAMBDA_NAME} not tagged by bootstrap, left alone"; return; }
  aws lambda delete-function --function-name "${LAMBDA_NAME}"
  removed "Lambda ${LAMBDA_NAME}"
}

glue_owned() { has_project_tag "$(aws glue get-tags --resource-arn "$1" --output text 2>/dev/null || true)"; }

reset_glue() {
  local prefix="arn:aws:glue:${AWS_REGION}:${ACCOUNT_ID}" table
  if aws glue get-job --job-name "${GLUE_JOB_NAME}" >/dev/null 2>&1; then
    if glue_owned "${prefix}:job/${GLUE_JOB_NAME}"; then
      aws glue delete-job --job-name "${GLUE_JOB_NAME}" >/dev/null
      removed "Glue job ${GLUE_JOB_NAME}"
    else
      log "! Glue job ${GLUE_JOB_NAME} not tagged by bootstrap, left alone"
    fi
  fi
  if aws glue get-crawler --name "${CRAWLER_NAME}" >/dev/null 2>&1; then
    if glue_owned "${prefix}:crawler/${CRAWLER_NAME}"; then
      aws glue stop-crawler --name "${CRAWLER_NAME}" >/dev/null 2>&1 || true
      aws glue delete-crawler --name "${CRAWLER_NAME}"
      removed "crawler ${CRAWLER_NAME}"
    else
      log "! crawler ${CRAWLER_NAME} not tagged by bootstrap, left alone"
    fi
  fi
  # The tables are the crawler's, named after the pipeline's datasets.
  for table in "${TABLES[@]}"; do
    if aws glue get-table --database-name "${GLUE_DATABASE}" --name "${table}" >/dev/null 2>&1; then
      aws glue delete-table --database-name "${GLUE_DATABASE}" --name "${table}"
      removed "table ${GLUE_DATABASE}.${table}"
    fi
  done
  # A database bootstrap created carries the project parameter; `default` is never removed.
  if [[ "${GLUE_DATABASE}" != "default" ]] && has_project_tag \
    "$(aws glue get-database --name "${GLUE_DATABASE}" --query Database.Parameters --output text 2>/dev/null || true)"; then
    aws glue delete-database --name "${GLUE_DATABASE}"
    removed "catalog database ${GLUE_DATABASE}"
  fi
}

reset_workgroup() {
  local arn="arn:aws:athena:${AWS_REGION}:${ACCOUNT_ID}:workgroup/${ATHENA_WORKGROUP}"
  aws athena list-work-groups --query "WorkGroups[].Name" --output text | tr '\t' '\n' | grep -qx "${ATHENA_WORKGROUP}" \
    || { log "= Athena workgroup ${ATHENA_WORKGROUP} already gone"; return; }
  has_project_tag "$(aws athena list-tags-for-resource --resource-arn "${arn}" --output text 2>/dev/null || true)" \
    || { log "! workgroup ${ATHENA_WORKGROUP} not tagged by bootstrap, left alone"; return; }
  aws athena delete-work-group --work-group "${ATHENA_WORKGROUP}" --recursive-delete-option
  removed "Athena workgroup ${ATHENA_WORKGROUP}"
}

reset_role() {
  local name="$1" policy
  aws iam get-role --role-name "${name}" >/dev/null 2>&1 || return 0
  has_project_tag "$(aws iam list-role-tags --role-name "${name}" --output text 2>/dev/null || true)" \
    || { log "! role ${name} not tagged by bootstrap, left alone"; return 0; }
  for policy in $(aws iam list-role-policies --role-name "${name}" --query PolicyNames --output text); do
    aws iam delete-role-policy --role-name "${name}" --policy-name "${policy}"
  done
  aws iam delete-role --role-name "${name}"
  removed "role ${name}"
}

main() {
  load_config
  check_prerequisites
  confirm
  log "resetting account ${ACCOUNT_ID}, region ${AWS_REGION}, bucket ${BUCKET}"
  reset_bucket
  reset_lambda
  reset_glue
  reset_workgroup
  reset_role "${GLUE_ROLE_NAME}"
  reset_role "${LAMBDA_ROLE_NAME}"
  log "removed ${#REMOVED[@]} resource(s)"
}

main "$@"
