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

# Some accounts (AWS Academy's) may create a resource but not tag it: the create is refused for
# its tags alone. create_tagged WHAT FLAG VALUE COMMAND... runs COMMAND FLAG VALUE, and on that
# refusal COMMAND alone, with a notice; every other error is passed on as it is.
TAG_REFUSED='not authorized to perform: [a-z0-9-]+:(Tag[A-Za-z]*|PutBucketTagging)'
create_tagged() {
  local what="$1" flag="$2" value="$3" errors status=0
  shift 3
  errors="$(mktemp)"
  "$@" "${flag}" "${value}" 2>"${errors}" || status=$?
  if ((status != 0)) && grep -Eq "${TAG_REFUSED}" "${errors}"; then
    rm -f "${errors}"
    notice "${what}: the account refuses tagging, created without the ${PROJECT_TAG_KEY} tag (reset_aws.sh leaves untagged resources: delete it by hand)"
    "$@"
    return
  fi
  cat "${errors}" >&2
  rm -f "${errors}"
  return "${status}"
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
    aws s3api create-bucket --bucket "${BUCKET}" ${location_args[@]+"${location_args[@]}"} >/dev/null
    log "+ bucket s3://${BUCKET} created"
  fi
  # Merge our tag into the bucket's tags: put-bucket-tagging replaces the whole set.
  local ours=("${PROJECT_TAG_KEY}" "${PROJECT_TAG_VALUE}")
  [[ "${BUCKET_ADOPTED}" == true ]] && ours+=("${ADOPTED_TAG_KEY}" true)
  local refused
  if ! refused="$(aws s3api put-bucket-tagging --bucket "${BUCKET}" --tagging "$(bucket_tags | cli_json merge-tags ${ours[@]+"${ours[@]}"})" 2>&1)"; then
    grep -Eq "${TAG_REFUSED}" <<<"${refused}" || die "cannot tag bucket ${BUCKET}: ${refused}"
    notice "bucket ${BUCKET}: the account refuses tagging; later runs need ADOPT_BUCKET=yes, and reset_aws.sh leaves the bucket"
  fi
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
  # Both zips carry b3_quotes/contract/ (the lake's layout, the manifest, the tables): see b3_quotes/deploy/package.py.
  local scripts="${WORK_DIR}/scripts"
  mkdir -p "${scripts}/visual-source"
  cp "${REPO_ROOT}/etl/glue_job.py" "${scripts}/glue_job.py"
  (cd "${REPO_ROOT}" && "${PYTHON}" -m b3_quotes.deploy.package job "${scripts}/etl.zip" \
    && "${PYTHON}" -m b3_quotes.deploy.package lambda "${WORK_DIR}/lambda.zip") || die "cannot package the job and the Lambda"
  # The visual job's source node reads this one tiny file, so its graph lists nothing of raw/.
  (cd "${REPO_ROOT}" && "${PYTHON}" -m b3_quotes.deploy.package visual-source "${scripts}/visual-source/raw_quotes.parquet") \
    || die "cannot write the visual job's source file"
  # One CLI call for the three files (cp, unlike sync, always copies).
  aws s3 cp --only-show-errors --recursive "${scripts}" "s3://${BUCKET}/scripts/"
  log "~ job code uploaded to s3://${BUCKET}/scripts/ (glue_job.py, etl.zip, visual-source/raw_quotes.parquet)"
}

# ensure_role NAME TRUST_FILE POLICY_FILE: echoes the role ARN.
ensure_role() {
  local name="$1" trust="$2" policy="$3" arn
  if arn="$(aws iam get-role --role-name "${name}" --query Role.Arn --output text 2>/dev/null)"; then
    aws iam update-assume-role-policy --role-name "${name}" --policy-document "file://${trust}"
    log "= role ${name} exists"
  else
    local errors status=0
    errors="$(mktemp)"
    arn="$(create_tagged "role ${name}" --tags "Key=${PROJECT_TAG_KEY},Value=${PROJECT_TAG_VALUE}" \
      aws iam create-role --role-name "${name}" --assume-role-policy-document "file://${trust}" --query Role.Arn \
      --output text 2>"${errors}")" || status=$?
    cat "${errors}" >&2  # the CLI's error, or create_tagged's notice
    if ((status != 0)); then
      # Restricted accounts (AWS Academy, many company accounts) may not create roles but give one to use.
      grep -Eq 'AccessDenied.*iam:CreateRole|iam:CreateRole.*AccessDenied' "${errors}" \
        && log "error: this account may not create IAM roles (iam:CreateRole denied): set GLUE_ROLE_ARN and LAMBDA_ROLE_ARN in .env to a role you may use (AWS Academy: LabRole's ARN, arn:aws:iam::${ACCOUNT_ID}:role/LabRole) and re-run"
      rm -f "${errors}"
      return 1  # an AWS call failed (docs/aws-deploy.md's exit codes), whatever the CLI's own code
    fi
    rm -f "${errors}"
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
  export BUCKET REGION="${AWS_REGION}" ACCOUNT_ID GLUE_JOB_NAME CRAWLER_NAME GLUE_DATABASE LAMBDA_NAME CRAWL_QUEUE_NAME \
    GLUE_LOG_GROUP
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
  if [[ "${CLI_KNOWS_QUEUING:-yes}" == no ]]; then
    cli_json drop-keys JobRunQueuingEnabled < "${definition}" > "${definition}.tmp" || die "cannot prepare ${definition}"
    mv "${definition}.tmp" "${definition}"
    log "! this AWS CLI does not know JobRunQueuingEnabled: the job is set up without run queuing (a trigger"
    log "  during a long run is then retried by the Lambda and caught up by the next run); upgrade the CLI to get it"
  fi
  if aws glue get-job --job-name "${GLUE_JOB_NAME}" >/dev/null 2>&1; then
    with_role_retry "UpdateJob ${GLUE_JOB_NAME}" \
      aws glue update-job --job-name "${GLUE_JOB_NAME}" --job-update "file://${definition}" >/dev/null
    log "~ Glue job ${GLUE_JOB_NAME} updated"
  else
    with_role_retry "CreateJob ${GLUE_JOB_NAME}" create_tagged "Glue job ${GLUE_JOB_NAME}" --tags "$(tags_json)" \
      aws glue create-job --name "${GLUE_JOB_NAME}" --cli-input-json "file://${definition}" >/dev/null
    log "+ Glue job ${GLUE_JOB_NAME} created"
  fi
}

# The tables, from b3_quotes/contract/tables.py: columns, types, partition keys, Parquet SerDe, location, and
# Athena's partition projection for the day/month/ticker tables (no catalog partitions for those).
# A table of that name outside our bucket is someone else's: refuse before changing anything.
# One get-tables call says which exist (table_states: NAME ours|foreign|absent lines).
TABLE_STATES=""
check_tables() {
  local table state
  # No database yet: no tables.
  TABLE_STATES="$({ aws glue get-tables --database-name "${GLUE_DATABASE}" --output json 2>/dev/null || true; } \
    | cli_json table-states "s3://${BUCKET}")"
  while read -r table state; do
    [[ "${state}" != foreign ]] \
      || bad_input "table ${GLUE_DATABASE}.${table} exists with a location outside s3://${BUCKET}/: not ours, left alone. Set GLUE_DATABASE to another database"
  done <<<"${TABLE_STATES}"
}

ensure_tables() {
  local table state
  while read -r table state; do
    if [[ "${state}" == ours ]]; then
      aws glue update-table --database-name "${GLUE_DATABASE}" --table-input "$(cli_json table-input "${table}" "s3://${BUCKET}" "${ATHENA_HISTORY_START}")"
      log "~ table ${GLUE_DATABASE}.${table} updated from b3_quotes/contract/tables.py"
    else
      aws glue create-table --database-name "${GLUE_DATABASE}" --table-input "$(cli_json table-input "${table}" "s3://${BUCKET}" "${ATHENA_HISTORY_START}")"
      log "+ table ${GLUE_DATABASE}.${table} created from b3_quotes/contract/tables.py"
    fi
  done <<<"${TABLE_STATES}"
}

# The queue S3 sends the tables' object events to (docs/aws-deploy.md, "The catalog"). Only this
# bucket may send to it; messages are kept 14 days, the most SQS allows.
ensure_crawl_queue() {
  local attributes="${WORK_DIR}/crawl-queue.json" url
  render "${REPO_ROOT}/infra/iam/crawl-queue-policy.json" | cli_json queue-attributes > "${attributes}"
  if url="$(sqs get-queue-url --queue-name "${CRAWL_QUEUE_NAME}" --query QueueUrl --output text 2>/dev/null)"; then
    sqs set-queue-attributes --queue-url "${url}" --attributes "file://${attributes}"
    log "~ crawler event queue ${CRAWL_QUEUE_NAME} updated"
  else
    create_tagged "queue ${CRAWL_QUEUE_NAME}" --tags "${PROJECT_TAG_KEY}=${PROJECT_TAG_VALUE}" \
      sqs create-queue --queue-name "${CRAWL_QUEUE_NAME}" --attributes "file://${attributes}" >/dev/null
    log "+ crawler event queue ${CRAWL_QUEUE_NAME} created"
  fi
}

# The crawler crawls the tables Athena does not project (the compact ones, a partition a year:
# b3_quotes/contract/tables.py CRAWLED_TABLES): it adds the partitions it finds and, with UpdateBehavior LOG, only logs a schema
# difference, so it can neither re-type, rename nor split a table, nor create one. DeleteBehavior
# LOG is the one AWS accepts for catalog targets. CRAWL_EVENT_MODE: after its first crawl it lists
# only the folders of the queue's S3 events, not every folder of the tables' history.
# UpdateCrawler only when something differs: the crawl after an update lists everything again.
# A running crawl refuses the update (CrawlerRunningException): the next bootstrap applies it.
ensure_crawler() {
  local configuration current errors status=0
  configuration="$(cat "${REPO_ROOT}/infra/crawler-configuration.json")"
  local args=(--role "${GLUE_ROLE_ARN}" --database-name "${GLUE_DATABASE}"
    --targets "$(cli_json crawler-targets "${GLUE_DATABASE}" "${CRAWL_QUEUE_ARN}")"
    --configuration "${configuration}"
    --schema-change-policy "$(cli_json schema-change-policy)"
    --recrawl-policy "$(cli_json recrawl-policy)")
  if current="$(aws glue get-crawler --name "${CRAWLER_NAME}" --output json 2>/dev/null)"; then
    if ! cli_json crawler-differs "${GLUE_ROLE_ARN}" "${GLUE_DATABASE}" "${CRAWL_QUEUE_ARN}" "${configuration}" \
      <<<"${current}"; then
      log "= crawler ${CRAWLER_NAME} unchanged (not updated: its next crawl stays incremental)"
      return
    fi
    errors="$(mktemp)"
    with_role_retry "UpdateCrawler ${CRAWLER_NAME}" aws glue update-crawler --name "${CRAWLER_NAME}" \
      ${args[@]+"${args[@]}"} 2>"${errors}" || status=$?
    if ((status != 0)) && grep -q CrawlerRunningException "${errors}"; then
      rm -f "${errors}"
      notice "crawler ${CRAWLER_NAME} is crawling: its new settings are not applied; re-run bootstrap once the crawl has ended"
      return
    fi
    cat "${errors}" >&2
    rm -f "${errors}"
    ((status == 0)) || return "${status}"
    log "~ crawler ${CRAWLER_NAME} updated (its next crawl lists every folder once)"
  else
    with_role_retry "CreateCrawler ${CRAWLER_NAME}" create_tagged "crawler ${CRAWLER_NAME}" --tags "$(tags_json)" \
      aws glue create-crawler --name "${CRAWLER_NAME}" ${args[@]+"${args[@]}"}
    log "+ crawler ${CRAWLER_NAME} created"
  fi
}

ensure_lambda() {
  # The limits within which the Lambda sizes each run (workers, timeout) from its manifest.
  local environment="Variables={GLUE_JOB_NAME=${GLUE_JOB_NAME},GLUE_MAX_WORKERS=${GLUE_MAX_WORKERS},GLUE_MAX_TIMEOUT_MIN=${GLUE_MAX_TIMEOUT_MIN}}"
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
      create_tagged "Lambda ${LAMBDA_NAME}" --tags "${PROJECT_TAG_KEY}=${PROJECT_TAG_VALUE}" \
      aws lambda create-function --function-name "${LAMBDA_NAME}" --role "${LAMBDA_ROLE_ARN}" \
      --runtime "${LAMBDA_RUNTIME}" --handler start_glue_job.lambda_handler --timeout 120 \
      --zip-file "fileb://${WORK_DIR}/lambda.zip" --environment "${environment}" >/dev/null
    log "+ Lambda ${LAMBDA_NAME} created"
  fi
  aws lambda wait function-active --function-name "${LAMBDA_NAME}"
  # Re-adding the same statement id fails: drop it first (absent on a first run), and the id an
  # earlier bootstrap gave the same permission (s3-raw-run-marker), so that one statement is left.
  local sid
  for sid in s3-raw-run-marker s3-raw-run-manifest; do
    aws lambda remove-permission --function-name "${LAMBDA_NAME}" --statement-id "${sid}" >/dev/null 2>&1 || true
  done
  aws lambda add-permission --function-name "${LAMBDA_NAME}" --statement-id s3-raw-run-manifest \
    --action lambda:InvokeFunction --principal s3.amazonaws.com \
    --source-arn "arn:aws:s3:::${BUCKET}" --source-account "${ACCOUNT_ID}" >/dev/null
}

# Only the run manifests trigger the Lambda: data files and refined/ never do (no recursive
# triggers). The tables' object events go to the crawler's queue, one entry per table folder.
# The bucket's other notification entries are kept; ours are replaced by their Ids.
ensure_notification() {
  local lambda_arn current
  lambda_arn="arn:aws:lambda:${AWS_REGION}:${ACCOUNT_ID}:function:${LAMBDA_NAME}"
  current="$(aws s3api get-bucket-notification-configuration --bucket "${BUCKET}" --output json)"
  aws s3api put-bucket-notification-configuration --bucket "${BUCKET}" --notification-configuration \
    "$(cli_json merge-notification "${NOTIFICATION_ID}" "${lambda_arn}" "${CRAWL_QUEUE_ARN}" <<<"${current}")"
  log "~ bucket notification ${NOTIFICATION_ID}: raw/_manifests/*.json -> ${LAMBDA_NAME}; compact table folders -> ${CRAWL_QUEUE_NAME}"
}

# Enforced on every query of the workgroup: results under athena-results/ (expired by the bucket's
# lifecycle) and a cutoff, ATHENA_SCAN_LIMIT_GB, past which Athena cancels a query ($5 per TB scanned).
ensure_workgroup() {
  local cutoff=$((ATHENA_SCAN_LIMIT_GB * 1024 * 1024 * 1024))
  local config="ResultConfiguration={OutputLocation=s3://${BUCKET}/athena-results/},EnforceWorkGroupConfiguration=true,PublishCloudWatchMetricsEnabled=false,BytesScannedCutoffPerQuery=${cutoff}"
  if workgroup_exists; then
    aws athena update-work-group --work-group "${ATHENA_WORKGROUP}" --configuration-updates \
      "ResultConfigurationUpdates={OutputLocation=s3://${BUCKET}/athena-results/},EnforceWorkGroupConfiguration=true,BytesScannedCutoffPerQuery=${cutoff}"
    log "~ Athena workgroup ${ATHENA_WORKGROUP} updated (a query may scan ${ATHENA_SCAN_LIMIT_GB} GB at most)"
  else
    create_tagged "Athena workgroup ${ATHENA_WORKGROUP}" --tags "Key=${PROJECT_TAG_KEY},Value=${PROJECT_TAG_VALUE}" \
      aws athena create-work-group --name "${ATHENA_WORKGROUP}" --configuration "${config}"
    log "+ Athena workgroup ${ATHENA_WORKGROUP} created (a query may scan ${ATHENA_SCAN_LIMIT_GB} GB at most)"
  fi
}

# The contract's views (quotes_daily_adjusted: prices back-adjusted at read time), made by Athena
# itself in the workgroup (a view Athena reads is its own encoding in the catalog), replaced on
# every run so a changed definition lands. Each statement is waited for: it runs in seconds.
ensure_views() {
  local view id state polls
  while read -r view; do
    id="$(aws athena start-query-execution --work-group "${ATHENA_WORKGROUP}" \
      --query-execution-context "Database=${GLUE_DATABASE}" --query-string "$(cli_json view-ddl "${view}")" \
      --query QueryExecutionId --output text)"
    polls=0
    while state="$(aws athena get-query-execution --query-execution-id "${id}" \
      --query QueryExecution.Status.State --output text)" && [[ "${state}" == QUEUED || "${state}" == RUNNING ]]; do
      ((polls < ${VIEW_POLLS:-60})) || die "view ${GLUE_DATABASE}.${view}: Athena query ${id} still ${state}"
      sleep "${VIEW_POLL_S:-2}"
      polls=$((polls + 1))
    done
    [[ "${state}" == SUCCEEDED ]] || die "view ${GLUE_DATABASE}.${view}: Athena query ${id} ${state}: $(aws athena \
      get-query-execution --query-execution-id "${id}" --query QueryExecution.Status.StateChangeReason --output text)"
    log "~ view ${GLUE_DATABASE}.${view} made by Athena from b3_quotes/contract/tables.py"
  done < <(cli_json view-names)
}

# Rules of ours, by ID (the bucket's other rules are kept, as an adopted bucket's): Athena's results
# expire after ATHENA_RESULTS_DAYS, and a multipart upload left incomplete (a killed job, an Athena
# query cancelled mid-result) is aborted after a day: its parts are billed until then, unseen.
ensure_lifecycle() {
  local current
  current="$(aws s3api get-bucket-lifecycle-configuration --bucket "${BUCKET}" --output json 2>/dev/null || true)"
  aws s3api put-bucket-lifecycle-configuration --bucket "${BUCKET}" --lifecycle-configuration \
    "$(cli_json merge-lifecycle "${ATHENA_RESULTS_DAYS}" <<<"${current}")"
  log "~ bucket lifecycle: athena-results/ expire after ${ATHENA_RESULTS_DAYS} day(s); incomplete uploads aborted after 1 day"
}

# ensure_log_group NAME: created (tagged) when absent, its retention set to LOG_RETENTION_DAYS
# either way: a log group without one keeps (and bills) every event forever.
ensure_log_group() {
  local name="$1" found
  found="$(aws logs describe-log-groups --log-group-name-prefix "${name}" --output text \
    --query "logGroups[?logGroupName=='${name}'].logGroupName")"
  if [[ "${found}" != "${name}" ]]; then
    create_tagged "log group ${name}" --tags "${PROJECT_TAG_KEY}=${PROJECT_TAG_VALUE}" \
      aws logs create-log-group --log-group-name "${name}"
  fi
  aws logs put-retention-policy --log-group-name "${name}" --retention-in-days "${LOG_RETENTION_DAYS}"
  log "~ log group ${name}: events kept ${LOG_RETENTION_DAYS} days"
}

main() {
  load_config
  check_prerequisites visual-jobs
  log "bootstrapping account ${ACCOUNT_ID}, region ${AWS_REGION}, bucket ${BUCKET}"
  # Every check that can refuse comes before the first change.
  check_bucket
  check_given_role GLUE_ROLE_ARN
  check_given_role LAMBDA_ROLE_ARN
  check_tables
  # Roles first: an account that may not create them stops here, before anything else exists.
  ensure_roles
  ensure_bucket
  upload_code
  ensure_database
  ensure_tables
  ensure_crawl_queue
  ensure_glue_job
  ensure_crawler
  ensure_lambda
  ensure_notification
  ensure_workgroup
  ensure_views
  ensure_lifecycle
  ensure_log_group "${LAMBDA_LOG_GROUP}"
  ensure_log_group "${GLUE_LOG_GROUP}"
  ensure_bucket_policy
  local tables
  tables="$(printf '%s ' ${TABLES[@]+"${TABLES[@]}"})"
  cat >&2 <<NEXT

Done. Next steps:
  1. Scrape:  BUCKET=${BUCKET} python scraper/scraper_upload.py --tickers PETR4,VALE3
     (the run's manifest starts ${LAMBDA_NAME} -> Glue job ${GLUE_JOB_NAME} -> crawler ${CRAWLER_NAME})
  2. Query:   Athena console, workgroup ${ATHENA_WORKGROUP}, database ${GLUE_DATABASE}, tables ${tables}
              or: python -m b3_quotes.catalog.query --file sql/latest_sessions.sql
  3. Remove everything: ./scripts/reset_aws.sh
NEXT
}

# Sourced (by the tests), it only defines its functions.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
