#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Create or update every AWS resource the pipeline needs. Safe to re-run: it converges.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WORK_DIR=""
cleanup() { [[ -n "${WORK_DIR}" ]] && rm -rf "${WORK_DIR}"; }
trap cleanup EXIT

tags_json() { printf '{"%s":"%s"}' "${PROJECT_TAG_KEY}" "${PROJECT_TAG_VALUE}"; }

ensure_bucket() {
  if aws s3api head-bucket --bucket "${BUCKET}" >/dev/null 2>&1; then
    log "= bucket s3://${BUCKET} exists"
  else
    local location_args=()
    [[ "${AWS_REGION}" != "us-east-1" ]] && location_args=(--create-bucket-configuration "LocationConstraint=${AWS_REGION}")
    aws s3api create-bucket --bucket "${BUCKET}" "${location_args[@]}" >/dev/null
    log "+ bucket s3://${BUCKET} created"
  fi
  aws s3api put-bucket-tagging --bucket "${BUCKET}" \
    --tagging "TagSet=[{Key=${PROJECT_TAG_KEY},Value=${PROJECT_TAG_VALUE}}]"
  aws s3api put-public-access-block --bucket "${BUCKET}" --public-access-block-configuration \
    "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true"
  aws s3api put-bucket-encryption --bucket "${BUCKET}" --server-side-encryption-configuration \
    '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'
  local prefix
  for prefix in raw/ refined/ scripts/ athena-results/; do
    aws s3api put-object --bucket "${BUCKET}" --key "${prefix}" >/dev/null
  done
  log "~ bucket settings: public access blocked, AES256 default encryption, prefixes raw/ refined/ scripts/ athena-results/"
}

# Last bucket step: the TLS-only Deny (a local emulator without Condition support can skip it).
ensure_bucket_policy() {
  if [[ "${SKIP_TLS_BUCKET_POLICY:-false}" == "true" ]]; then
    log "! bucket policy skipped (SKIP_TLS_BUCKET_POLICY=true)"
    return
  fi
  aws s3api put-bucket-policy --bucket "${BUCKET}" --policy "$(render "${REPO_ROOT}/infra/bucket-policy.json")"
  log "~ bucket policy: deny requests without TLS"
}

upload_code() {
  WORK_DIR="$(mktemp -d)"
  (cd "${REPO_ROOT}" && python3 -m zipfile -c "${WORK_DIR}/etl.zip" etl)
  (cd "${REPO_ROOT}/lambdas" && python3 -m zipfile -c "${WORK_DIR}/lambda.zip" start_glue_job.py)
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
    aws glue update-job --job-name "${GLUE_JOB_NAME}" --job-update "file://${definition}" >/dev/null
    log "~ Glue job ${GLUE_JOB_NAME} updated"
  else
    aws glue create-job --name "${GLUE_JOB_NAME}" --tags "$(tags_json)" --cli-input-json "file://${definition}" >/dev/null
    log "+ Glue job ${GLUE_JOB_NAME} created"
  fi
}

ensure_crawler() {
  local args=(--role "${GLUE_ROLE_ARN}" --database-name "${GLUE_DATABASE}"
    --targets "$(render "${REPO_ROOT}/infra/crawler-targets.json")"
    --configuration "$(cat "${REPO_ROOT}/infra/crawler-configuration.json")"
    --schema-change-policy "UpdateBehavior=UPDATE_IN_DATABASE,DeleteBehavior=LOG"
    --recrawl-policy "RecrawlBehavior=CRAWL_EVERYTHING")
  if aws glue get-crawler --name "${CRAWLER_NAME}" >/dev/null 2>&1; then
    aws glue update-crawler --name "${CRAWLER_NAME}" "${args[@]}"
    log "~ crawler ${CRAWLER_NAME} updated"
  else
    aws glue create-crawler --name "${CRAWLER_NAME}" --tags "$(tags_json)" "${args[@]}"
    log "+ crawler ${CRAWLER_NAME} created"
  fi
}

ensure_lambda() {
  local environment="Variables={GLUE_JOB_NAME=${GLUE_JOB_NAME}}"
  if aws lambda get-function --function-name "${LAMBDA_NAME}" >/dev/null 2>&1; then
    aws lambda update-function-code --function-name "${LAMBDA_NAME}" --zip-file "fileb://${WORK_DIR}/lambda.zip" >/dev/null
    aws lambda wait function-updated --function-name "${LAMBDA_NAME}"
    aws lambda update-function-configuration --function-name "${LAMBDA_NAME}" --role "${LAMBDA_ROLE_ARN}" \
      --runtime "${LAMBDA_RUNTIME}" --handler start_glue_job.lambda_handler --timeout 120 \
      --environment "${environment}" >/dev/null
    log "~ Lambda ${LAMBDA_NAME} updated"
  else
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
ensure_notification() {
  local lambda_arn
  lambda_arn="$(aws lambda get-function --function-name "${LAMBDA_NAME}" --query Configuration.FunctionArn --output text)"
  aws s3api put-bucket-notification-configuration --bucket "${BUCKET}" --notification-configuration "{
    \"LambdaFunctionConfigurations\": [{
      \"Id\": \"raw-run-committed\",
      \"LambdaFunctionArn\": \"${lambda_arn}\",
      \"Events\": [\"s3:ObjectCreated:*\"],
      \"Filter\": {\"Key\": {\"FilterRules\": [
        {\"Name\": \"prefix\", \"Value\": \"raw/_manifests/\"},
        {\"Name\": \"suffix\", \"Value\": \".json\"}]}}}]}"
  log "~ bucket notification: raw/_manifests/*.json -> ${LAMBDA_NAME}"
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
  ensure_bucket
  upload_code
  ensure_roles
  ensure_database
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

main "$@"
