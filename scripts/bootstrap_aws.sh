#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Create or update every AWS resource the pipeline needs. Safe to re-run: it converges.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WORK_DIR=""
cleanup() { if [[ -n "${WORK_DIR}" ]]; then rm -rf "${WORK_DIR}"; fi; }
trap cleanup EXIT

tags_json() { printf '{"%s":"%s"}' "${PROJECT_TAG_KEY}" "${PROJECT_TAG_VALUE}"; }
NOTIFICATION_ID="raw-run-committed"
BUCKET_CREATED=false
BUCKET_ADOPTED=false

# A role bootstrap has just created (or just given a new trust policy) is refused by Glue and
# Lambda for seconds up to about a minute while IAM propagates. Retry exactly those refusals;
# any other error stops at once. IAM_RETRY_DELAYS_S (seconds, space separated) bounds the wait.
IAM_RETRY_DELAYS_S="${IAM_RETRY_DELAYS_S:-5 10 15 15 20}"
IAM_NOT_YET='Service is unable to assume provided role|cannot be assumed by Lambda'

with_role_retry() {
  local what="$1" errors delay status
  shift
  errors="$(mktemp)"
  for delay in ${IAM_RETRY_DELAYS_S} last; do
    status=0
    "$@" 2>"${errors}" || status=$?
    if ((status == 0)); then rm -f "${errors}"; return 0; fi
    if [[ "${delay}" == last ]] || ! grep -Eq "${IAM_NOT_YET}" "${errors}"; then
      cat "${errors}" >&2; rm -f "${errors}"
      [[ "${delay}" == last ]] && log "error: ${what}: the role was still not assumable after waiting ${IAM_RETRY_DELAYS_S// /+} s"
      return "${status}"
    fi
    log "... ${what}: waiting ${delay} s for IAM to propagate the role ($(grep -Eo "${IAM_NOT_YET}" "${errors}" | head -n 1))"
    sleep "${delay}"
  done
}

# The bucket: ours (tagged), new, or someone else's (left alone unless ADOPT_BUCKET=yes).
check_bucket() {
  local probe region
  if probe="$(aws s3api head-bucket --bucket "${BUCKET}" 2>&1 >/dev/null)"; then
    region="$(aws s3api get-bucket-location --bucket "${BUCKET}" --query LocationConstraint --output text)"
    case "${region}" in None | null | "") region="us-east-1" ;; EU) region="eu-west-1" ;; esac
    [[ "${region}" == "${AWS_REGION}" ]] \
      || bad_input "bucket ${BUCKET} is in ${region}, AWS_REGION is ${AWS_REGION}: set AWS_REGION=${region} or choose another BUCKET"
    if bucket_is_ours; then
      log "= bucket s3://${BUCKET} exists (tagged ${PROJECT_TAG_KEY}=${PROJECT_TAG_VALUE})"
      # Adopted on an earlier run: still not ours to reconfigure.
      if bucket_tags | cli_json has-tag "${ADOPTED_TAG_KEY}" true; then BUCKET_ADOPTED=true; fi
    elif [[ "${ADOPT_BUCKET:-}" == "yes" ]]; then
      BUCKET_ADOPTED=true
      log "! bucket s3://${BUCKET} was not created by bootstrap: adopting it (ADOPT_BUCKET=yes); its objects, tags, notifications, encryption, public access settings and policy are kept"
    else
      bad_input "bucket ${BUCKET} exists but has no ${PROJECT_TAG_KEY}=${PROJECT_TAG_VALUE} tag: bootstrap did not create it. Choose another BUCKET, or set ADOPT_BUCKET=yes to use it (nothing of it is removed or overwritten)"
    fi
  elif [[ "${probe}" == *"(404)"* || "${probe}" == *NoSuchBucket* || "${probe}" == *"Not Found"* ]]; then
    BUCKET_CREATED=true
  elif [[ "${probe}" == *"(403)"* || "${probe}" == *Forbidden* ]]; then
    bad_input "bucket name ${BUCKET} is taken by another AWS account (or you may not read it: HeadBucket 403): choose another BUCKET"
  else
    die "cannot check bucket ${BUCKET}: ${probe}"
  fi
}

ensure_bucket() {
  if [[ "${BUCKET_CREATED}" == true ]]; then
    local location_args=()
    [[ "${AWS_REGION}" != "us-east-1" ]] && location_args=(--create-bucket-configuration "LocationConstraint=${AWS_REGION}")
    aws s3api create-bucket --bucket "${BUCKET}" "${location_args[@]}" >/dev/null
    log "+ bucket s3://${BUCKET} created"
  fi
  # Merge our tag into the bucket's tags: put-bucket-tagging replaces the whole set.
  local ours=("${PROJECT_TAG_KEY}" "${PROJECT_TAG_VALUE}")
  [[ "${BUCKET_ADOPTED}" == true ]] && ours+=("${ADOPTED_TAG_KEY}" true)
  aws s3api put-bucket-tagging --bucket "${BUCKET}" --tagging "$(bucket_tags | cli_json merge-tags "${ours[@]}")"
  if [[ "${BUCKET_ADOPTED}" == false ]]; then
    aws s3api put-public-access-block --bucket "${BUCKET}" --public-access-block-configuration \
      "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true"
    aws s3api put-bucket-encryption --bucket "${BUCKET}" --server-side-encryption-configuration \
      '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'
    log "~ bucket settings: public access blocked, AES256 default encryption"
  fi
  local prefix
  for prefix in raw/ refined/ scripts/ athena-results/; do
    aws s3api put-object --bucket "${BUCKET}" --key "${prefix}" >/dev/null
  done
  log "~ bucket prefixes raw/ refined/ scripts/ athena-results/"
}

# Last bucket step: the TLS-only Deny (a local emulator without Condition support can skip it).
ensure_bucket_policy() {
  if [[ "${BUCKET_ADOPTED}" == true ]]; then
    log "! bucket policy of adopted bucket ${BUCKET} left as it is (add infra/bucket-policy.json's TLS-only Deny yourself)"
    return
  fi
  if [[ "${SKIP_TLS_BUCKET_POLICY:-false}" == "true" ]]; then
    log "! bucket policy skipped (SKIP_TLS_BUCKET_POLICY=true)"
    return
  fi
  aws s3api put-bucket-policy --bucket "${BUCKET}" --policy "$(render "${REPO_ROOT}/infra/bucket-policy.json")"
  log "~ bucket policy: deny requests without TLS"
}

upload_code() {
  WORK_DIR="$(mktemp -d)"
  # Both zips carry contract/ (the lake's layout, the manifest, the tables): see deploy/package.py.
  (cd "${REPO_ROOT}" && "${PYTHON}" -m deploy.package job "${WORK_DIR}/etl.zip" \
    && "${PYTHON}" -m deploy.package lambda "${WORK_DIR}/lambda.zip") || die "cannot package the job and the Lambda"
  aws s3 cp --only-show-errors "${REPO_ROOT}/etl/glue_job.py" "s3://${BUCKET}/scripts/glue_job.py"
  aws s3 cp --only-show-errors "${WORK_DIR}/etl.zip" "s3://${BUCKET}/scripts/etl.zip"
  log "~ job code uploaded to s3://${BUCKET}/scripts/ (glue_job.py, etl.zip)"
}

# ensure_role NAME TRUST_FILE POLICY_FILE: echoes the role ARN.
ensure_role() {
  local name="$1" trust="$2" policy="$3" arn
  if arn="$(aws iam get-role --role-name "${name}" --query Role.Arn --output text 2>/dev/null)"; then
    aws iam update-assume-role-policy --role-name "${name}" --policy-document "file://${trust}"
    log "= role ${name} exists"
  else
    arn="$(aws iam create-role --role-name "${name}" --assume-role-policy-document "file://${trust}" \
      --tags "Key=${PROJECT_TAG_KEY},Value=${PROJECT_TAG_VALUE}" --query Role.Arn --output text)"
    log "+ role ${name} created"
  fi
  aws iam put-role-policy --role-name "${name}" --policy-name "${name}-access" \
    --policy-document "$(render "${policy}")"
  printf '%s\n' "${arn}"
}

# A given role must exist: a mistyped ARN would otherwise fail late, after half the resources.
# Accounts that may not read IAM (some lab accounts) cannot check it: that only gets a notice.
check_given_role() {
  local variable="$1" arn="${!1}" problem
  [[ -n "${arn}" ]] || return 0
  [[ "${arn}" =~ ^arn:aws[a-z-]*:iam::[0-9]{12}:role/(.+/)?([A-Za-z0-9+=,.@_-]+)$ ]] \
    || bad_input "${variable}=${arn} is not a role ARN (arn:aws:iam::<account>:role/<name>)"
  problem="$(aws iam get-role --role-name "${BASH_REMATCH[2]}" 2>&1 >/dev/null)" && return 0
  case "${problem}" in
    *NoSuchEntity*) bad_input "${variable}: role ${BASH_REMATCH[2]} does not exist in account ${ACCOUNT_ID} (${arn})" ;;
    *) log "! ${variable}: cannot check that ${arn} exists (${problem##*: }); using it as given" ;;
  esac
}

ensure_roles() {
  export BUCKET REGION="${AWS_REGION}" ACCOUNT_ID GLUE_JOB_NAME CRAWLER_NAME GLUE_DATABASE LAMBDA_NAME
  if [[ -n "${GLUE_ROLE_ARN}" ]]; then
    log "= Glue role given: ${GLUE_ROLE_ARN} (not created or changed)"
  else
    GLUE_ROLE_ARN="$(ensure_role "${GLUE_ROLE_NAME}" "${REPO_ROOT}/infra/iam/glue-trust.json" "${REPO_ROOT}/infra/iam/glue-policy.json")"
  fi
  if [[ -n "${LAMBDA_ROLE_ARN}" ]]; then
    log "= Lambda role given: ${LAMBDA_ROLE_ARN} (not created or changed)"
  else
    LAMBDA_ROLE_ARN="$(ensure_role "${LAMBDA_ROLE_NAME}" "${REPO_ROOT}/infra/iam/lambda-trust.json" "${REPO_ROOT}/infra/iam/lambda-policy.json")"
  fi
  export GLUE_ROLE_ARN LAMBDA_ROLE_ARN
}

ensure_database() {
  if aws glue get-database --name "${GLUE_DATABASE}" >/dev/null 2>&1; then
    log "= catalog database ${GLUE_DATABASE} exists"
  else
    aws glue create-database --database-input \
      "{\"Name\":\"${GLUE_DATABASE}\",\"Parameters\":{\"${PROJECT_TAG_KEY}\":\"${PROJECT_TAG_VALUE}\"}}"
    log "+ catalog database ${GLUE_DATABASE} created"
  fi
}

# One definition (infra/glue-job.json) serves create-job and update-job.
ensure_glue_job() {
  local definition="${WORK_DIR}/glue-job.json"
  render "${REPO_ROOT}/infra/glue-job.json" > "${definition}"
  if aws glue get-job --job-name "${GLUE_JOB_NAME}" >/dev/null 2>&1; then
    with_role_retry "UpdateJob ${GLUE_JOB_NAME}" \
      aws glue update-job --job-name "${GLUE_JOB_NAME}" --job-update "file://${definition}" >/dev/null
    log "~ Glue job ${GLUE_JOB_NAME} updated"
  else
    with_role_retry "CreateJob ${GLUE_JOB_NAME}" \
      aws glue create-job --name "${GLUE_JOB_NAME}" --tags "$(tags_json)" --cli-input-json "file://${definition}" >/dev/null
    log "+ Glue job ${GLUE_JOB_NAME} created"
  fi
}

# The tables, from pipeline/tables.py: columns, types, partition keys, Parquet SerDe, location.
# A table of that name outside our bucket is someone else's: refuse before changing anything.
check_tables() {
  local table current
  for table in "${TABLES[@]}"; do
    current="$(aws glue get-table --database-name "${GLUE_DATABASE}" --name "${table}" --output json 2>/dev/null)" || continue
    cli_json location-in "s3://${BUCKET}" <<<"${current}" || bad_input "table ${GLUE_DATABASE}.${table} exists with a location outside s3://${BUCKET}/: not ours, left alone. Set GLUE_DATABASE to another database"
  done
}

ensure_tables() {
  local table input
  for table in "${TABLES[@]}"; do
    input="$(cli_json table-input "${table}" "s3://${BUCKET}")"
    if aws glue get-table --database-name "${GLUE_DATABASE}" --name "${table}" >/dev/null 2>&1; then
      aws glue update-table --database-name "${GLUE_DATABASE}" --table-input "${input}"
      log "~ table ${GLUE_DATABASE}.${table} updated from pipeline/tables.py"
    else
      aws glue create-table --database-name "${GLUE_DATABASE}" --table-input "${input}"
      log "+ table ${GLUE_DATABASE}.${table} created from pipeline/tables.py"
    fi
  done
}

# The crawler crawls the tables above (catalog targets): it adds the partitions it finds and,
# with UpdateBehavior LOG, only logs a schema difference, so it can neither re-type, rename nor
# split a table, nor create one. DeleteBehavior LOG is the one AWS accepts for catalog targets.
ensure_crawler() {
  local args=(--role "${GLUE_ROLE_ARN}" --database-name "${GLUE_DATABASE}"
    --targets "$(cli_json crawler-targets "${GLUE_DATABASE}")"
    --configuration "$(cat "${REPO_ROOT}/infra/crawler-configuration.json")"
    --schema-change-policy "UpdateBehavior=LOG,DeleteBehavior=LOG"
    --recrawl-policy "RecrawlBehavior=CRAWL_EVERYTHING")
  if aws glue get-crawler --name "${CRAWLER_NAME}" >/dev/null 2>&1; then
    with_role_retry "UpdateCrawler ${CRAWLER_NAME}" aws glue update-crawler --name "${CRAWLER_NAME}" "${args[@]}"
    log "~ crawler ${CRAWLER_NAME} updated"
  else
    with_role_retry "CreateCrawler ${CRAWLER_NAME}" aws glue create-crawler --name "${CRAWLER_NAME}" --tags "$(tags_json)" "${args[@]}"
    log "+ crawler ${CRAWLER_NAME} created"
  fi
}

ensure_lambda() {
  local environment="Variables={GLUE_JOB_NAME=${GLUE_JOB_NAME}}"
  if aws lambda get-function --function-name "${LAMBDA_NAME}" >/dev/null 2>&1; then
    aws lambda update-function-code --function-name "${LAMBDA_NAME}" --zip-file "fileb://${WORK_DIR}/lambda.zip" >/dev/null
    aws lambda wait function-updated --function-name "${LAMBDA_NAME}"
    with_role_retry "UpdateFunctionConfiguration ${LAMBDA_NAME}" \
      aws lambda update-function-configuration --function-name "${LAMBDA_NAME}" --role "${LAMBDA_ROLE_ARN}" \
      --runtime "${LAMBDA_RUNTIME}" --handler start_glue_job.lambda_handler --timeout 120 \
      --environment "${environment}" >/dev/null
    log "~ Lambda ${LAMBDA_NAME} updated"
  else
    with_role_retry "CreateFunction ${LAMBDA_NAME}" \
      aws lambda create-function --function-name "${LAMBDA_NAME}" --role "${LAMBDA_ROLE_ARN}" \
      --runtime "${LAMBDA_RUNTIME}" --handler start_glue_job.lambda_handler --timeout 120 \
      --zip-file "fileb://${WORK_DIR}/lambda.zip" --environment "${environment}" \
      --tags "${PROJECT_TAG_KEY}=${PROJECT_TAG_VALUE}" >/dev/null
    log "+ Lambda ${LAMBDA_NAME} created"
  fi
  aws lambda wait function-active --function-name "${LAMBDA_NAME}"
  # Re-adding the same statement id fails: drop it first (absent on a first run).
  aws lambda remove-permission --function-name "${LAMBDA_NAME}" --statement-id s3-raw-run-marker >/dev/null 2>&1 || true
  aws lambda add-permission --function-name "${LAMBDA_NAME}" --statement-id s3-raw-run-marker \
    --action lambda:InvokeFunction --principal s3.amazonaws.com \
    --source-arn "arn:aws:s3:::${BUCKET}" --source-account "${ACCOUNT_ID}" >/dev/null
}

# Only the run markers trigger: data files and refined/ never do (no recursive triggers).
# The bucket's other notification entries are kept; ours is replaced by its Id.
ensure_notification() {
  local lambda_arn current
  lambda_arn="$(aws lambda get-function --function-name "${LAMBDA_NAME}" --query Configuration.FunctionArn --output text)"
  current="$(aws s3api get-bucket-notification-configuration --bucket "${BUCKET}" --output json)"
  aws s3api put-bucket-notification-configuration --bucket "${BUCKET}" --notification-configuration \
    "$(cli_json merge-notification "${NOTIFICATION_ID}" "${lambda_arn}" <<<"${current}")"
  log "~ bucket notification ${NOTIFICATION_ID}: raw/_manifests/*.json -> ${LAMBDA_NAME}"
}

ensure_workgroup() {
  local config="ResultConfiguration={OutputLocation=s3://${BUCKET}/athena-results/},EnforceWorkGroupConfiguration=true,PublishCloudWatchMetricsEnabled=false"
  # get-work-group does not fail for a missing group on every emulator: list instead.
  if aws athena list-work-groups --query "WorkGroups[].Name" --output text | tr '\t' '\n' | grep -qx "${ATHENA_WORKGROUP}"; then
    aws athena update-work-group --work-group "${ATHENA_WORKGROUP}" --configuration-updates \
      "ResultConfigurationUpdates={OutputLocation=s3://${BUCKET}/athena-results/},EnforceWorkGroupConfiguration=true"
    log "~ Athena workgroup ${ATHENA_WORKGROUP} updated"
  else
    aws athena create-work-group --name "${ATHENA_WORKGROUP}" --configuration "${config}" \
      --tags "Key=${PROJECT_TAG_KEY},Value=${PROJECT_TAG_VALUE}"
    log "+ Athena workgroup ${ATHENA_WORKGROUP} created"
  fi
}

main() {
  load_config
  check_prerequisites
  log "bootstrapping account ${ACCOUNT_ID}, region ${AWS_REGION}, bucket ${BUCKET}"
  # Every check that can refuse comes before the first change.
  check_bucket
  check_given_role GLUE_ROLE_ARN
  check_given_role LAMBDA_ROLE_ARN
  check_tables
  ensure_bucket
  upload_code
  ensure_roles
  ensure_database
  ensure_tables
  ensure_glue_job
  ensure_crawler
  ensure_lambda
  ensure_notification
  ensure_workgroup
  ensure_bucket_policy
  cat >&2 <<NEXT

Done. Next steps:
  1. Scrape:  BUCKET=${BUCKET} python scraper/scraper_upload.py --tickers PETR4,VALE3
     (the run's marker starts ${LAMBDA_NAME} -> Glue job ${GLUE_JOB_NAME} -> crawler ${CRAWLER_NAME})
  2. Query:   Athena console, workgroup ${ATHENA_WORKGROUP}, database ${GLUE_DATABASE}, tables ${TABLES[*]}
              or: python -m catalog.query --file sql/latest_sessions.sql
  3. Remove everything: ./scripts/reset_aws.sh
NEXT
}

# Sourced (by the tests), it only defines its functions.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
