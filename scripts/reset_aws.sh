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
    read -r -p "This deletes bucket ${BUCKET} with all its data, the Glue job, crawler and its queue, tables, Lambda, workgroup, roles and their logs. Type the bucket name to confirm: " answer
    [[ "${answer}" == "${BUCKET}" ]] && return 0
  fi
  die "not confirmed: nothing deleted (set CONFIRM_AWS_RESET=YES or type the bucket name)"
}

# Bootstrap tags what it creates; anything else is left alone.
has_project_tag() { grep -q "${PROJECT_TAG_VALUE}" <<<"$1"; }

# Which deployment BUCKET names: the tagged bucket itself, or (once the bucket is gone) the
# tagged job or workgroup that still points into it. A mistyped BUCKET finds none of them.
BUCKET_STATE=""  # ours | adopted | foreign | gone
job_uses_bucket() {
  [[ "$(aws glue get-job --job-name "${GLUE_JOB_NAME}" --query Job.Command.ScriptLocation --output text 2>/dev/null)" == "s3://${BUCKET}/"* ]] \
    && glue_owned "arn:aws:glue:${AWS_REGION}:${ACCOUNT_ID}:job/${GLUE_JOB_NAME}"
}
workgroup_uses_bucket() {
  [[ "$(aws athena get-work-group --work-group "${ATHENA_WORKGROUP}" --output text \
    --query WorkGroup.Configuration.ResultConfiguration.OutputLocation 2>/dev/null)" == "s3://${BUCKET}/"* ]]
}

find_deployment() {
  if aws s3api head-bucket --bucket "${BUCKET}" >/dev/null 2>&1; then
    local tags
    tags="$(bucket_tags)"
    if ! cli_json has-tag "${PROJECT_TAG_KEY}" "${PROJECT_TAG_VALUE}" <<<"${tags}"; then
      BUCKET_STATE=foreign
    elif cli_json has-tag "${ADOPTED_TAG_KEY}" true <<<"${tags}"; then
      BUCKET_STATE=adopted
    else
      BUCKET_STATE=ours
    fi
  else
    BUCKET_STATE=gone
  fi
  [[ "${BUCKET_STATE}" == ours || "${BUCKET_STATE}" == adopted ]] && return 0
  job_uses_bucket && return 0
  workgroup_uses_bucket && return 0
  if [[ "${BUCKET_STATE}" == foreign ]]; then
    log "! bucket ${BUCKET} has no ${PROJECT_TAG_KEY}=${PROJECT_TAG_VALUE} tag: not created by bootstrap, left alone"
  fi
  if aws glue get-job --job-name "${GLUE_JOB_NAME}" >/dev/null 2>&1; then
    bad_input "no deployment uses bucket ${BUCKET} (job ${GLUE_JOB_NAME} runs from another bucket): nothing deleted. Check BUCKET"
  fi
  log "= nothing of a deployment in bucket ${BUCKET} found: nothing deleted"
  exit 0
}

reset_bucket() {
  case "${BUCKET_STATE}" in
    gone) log "= bucket ${BUCKET} already gone"; return ;;
    foreign) log "! bucket ${BUCKET} has no ${PROJECT_TAG_KEY}=${PROJECT_TAG_VALUE} tag: not created by bootstrap, left alone"; return ;;
    adopted)
      # Adopted: the bucket and its objects stay; only our notification entry and tags go.
      aws s3api put-bucket-notification-configuration --bucket "${BUCKET}" --notification-configuration \
        "$(aws s3api get-bucket-notification-configuration --bucket "${BUCKET}" --output json | cli_json drop-notification raw-run-committed)"
      local kept
      kept="$(bucket_tags | cli_json drop-tags "${PROJECT_TAG_KEY}" "${ADOPTED_TAG_KEY}")"
      if [[ "${kept}" == '{"TagSet": []}' ]]; then
        aws s3api delete-bucket-tagging --bucket "${BUCKET}"
      else
        aws s3api put-bucket-tagging --bucket "${BUCKET}" --tagging "${kept}"
      fi
      local rules
      rules="$(aws s3api get-bucket-lifecycle-configuration --bucket "${BUCKET}" --output json 2>/dev/null || true)"
      if [[ -n "${rules}" ]]; then
        rules="$(cli_json drop-lifecycle <<<"${rules}")"
        if [[ "${rules}" == '{"Rules": []}' ]]; then
          aws s3api delete-bucket-lifecycle --bucket "${BUCKET}"
        else
          aws s3api put-bucket-lifecycle-configuration --bucket "${BUCKET}" --lifecycle-configuration "${rules}"
        fi
      fi
      removed "our notification entry, lifecycle rules and tags on adopted bucket ${BUCKET} (bucket and objects kept)"
      return ;;
  esac
  # The TLS-only policy stays valid on AWS; removing it first lets emulators without Condition support in.
  aws s3api delete-bucket-policy --bucket "${BUCKET}" >/dev/null 2>&1 || true
  aws s3api put-bucket-notification-configuration --bucket "${BUCKET}" --notification-configuration '{}'
  aws s3 rm --only-show-errors --recursive "s3://${BUCKET}"
  aws s3api delete-bucket --bucket "${BUCKET}"
  removed "bucket s3://${BUCKET} and its objects"
}

reset_lambda() {
  local arn tags
  if arn="$(aws lambda get-function --function-name "${LAMBDA_NAME}" --query Configuration.FunctionArn --output text 2>/dev/null)"; then
    tags="$(aws lambda list-tags --resource "${arn}" --output text 2>/dev/null || true)"
    has_project_tag "${tags}" || { log "! Lambda ${LAMBDA_NAME} not tagged by bootstrap, left alone"; return; }
    aws lambda delete-function --function-name "${LAMBDA_NAME}"
    removed "Lambda ${LAMBDA_NAME}"
  else
    log "= Lambda ${LAMBDA_NAME} already gone"
  fi
  # Its log group outlives it (bootstrap creates it with a retention; Lambda would on its first call).
  delete_log_group "${LAMBDA_LOG_GROUP}"
}

delete_log_group() {
  if aws logs delete-log-group --log-group-name "$1" >/dev/null 2>&1; then removed "log group $1"; fi
}

# The job's run logs are streams named by run id in log groups every Glue job of the account
# shares: only those streams go (the groups stay). Call before the job itself is deleted.
GLUE_LOG_GROUPS="/aws-glue/jobs/output /aws-glue/jobs/error /aws-glue/jobs/logs-v2"
reset_job_logs() {
  local runs group stream count=0
  runs=" $(aws glue get-job-runs --job-name "${GLUE_JOB_NAME}" --query 'JobRuns[].Id' --output text 2>/dev/null | tr '\t' ' ') "
  [[ "${runs}" == *jr_* ]] || return 0
  for group in ${GLUE_LOG_GROUPS}; do
    for stream in $(aws logs describe-log-streams --log-group-name "${group}" --query 'logStreams[].logStreamName' \
      --output text 2>/dev/null || true); do
      # A run's streams: its id, or its id and a suffix (continuous logging: <id>-driver, ...).
      [[ "${runs}" == *" ${stream} "* || "${runs}" == *" ${stream%%-*} "* ]] || continue
      aws logs delete-log-stream --log-group-name "${group}" --log-stream-name "${stream}"
      count=$((count + 1))
    done
  done
  if ((count)); then removed "${count} log stream(s) of job ${GLUE_JOB_NAME}'s runs in ${GLUE_LOG_GROUPS// /, }"; fi
}

# The crawler logs to the account's shared /aws-glue/crawlers, one stream named after it.
reset_crawler_logs() {
  if aws logs delete-log-stream --log-group-name /aws-glue/crawlers --log-stream-name "${CRAWLER_NAME}" >/dev/null 2>&1; then
    removed "log stream ${CRAWLER_NAME} in /aws-glue/crawlers"
  fi
}

# DeleteCrawler refuses a crawler that is running or stopping: stop it, then wait until it is READY.
# CRAWLER_POLL_S apart, at most CRAWLER_STOP_POLLS times (10 s x 90: a crawl stops within minutes).
stop_crawler_and_wait() {
  local polls=0 state
  aws glue stop-crawler --name "${CRAWLER_NAME}" >/dev/null 2>&1 || true  # refused when not running
  while state="$(aws glue get-crawler --name "${CRAWLER_NAME}" --query Crawler.State --output text)" \
    && [[ "${state}" != READY ]]; do
    if ((polls >= ${CRAWLER_STOP_POLLS:-90})); then
      die "crawler ${CRAWLER_NAME} is still ${state}: re-run reset_aws.sh once its crawl has stopped: it finishes what is left"
    fi
    log "... crawler ${CRAWLER_NAME} is ${state}: waiting for it to stop"
    sleep "${CRAWLER_POLL_S:-10}"
    polls=$((polls + 1))
  done
}

reset_crawl_queue() {
  local url
  url="$(sqs get-queue-url --queue-name "${CRAWL_QUEUE_NAME}" --query QueueUrl --output text 2>/dev/null)" || return 0
  has_project_tag "$(sqs list-queue-tags --queue-url "${url}" --output text 2>/dev/null || true)" \
    || { log "! queue ${CRAWL_QUEUE_NAME} not tagged by bootstrap, left alone"; return 0; }
  sqs delete-queue --queue-url "${url}"
  removed "crawler event queue ${CRAWL_QUEUE_NAME}"
}

glue_owned() { has_project_tag "$(aws glue get-tags --resource-arn "$1" --output text 2>/dev/null || true)"; }

reset_glue() {
  local prefix="arn:aws:glue:${AWS_REGION}:${ACCOUNT_ID}" table
  if aws glue get-job --job-name "${GLUE_JOB_NAME}" >/dev/null 2>&1; then
    if job_uses_bucket; then
      reset_job_logs
      aws glue delete-job --job-name "${GLUE_JOB_NAME}" >/dev/null
      removed "Glue job ${GLUE_JOB_NAME}"
      delete_log_group "${GLUE_LOG_GROUP}"
    else
      log "! Glue job ${GLUE_JOB_NAME} not tagged by bootstrap or runs from another bucket, left alone"
    fi
  elif has_project_tag "$(aws logs list-tags-log-group --log-group-name "${GLUE_LOG_GROUP}" --output text 2>/dev/null || true)"; then
    delete_log_group "${GLUE_LOG_GROUP}"  # the job went in an earlier, interrupted reset
  fi
  if aws glue get-crawler --name "${CRAWLER_NAME}" >/dev/null 2>&1; then
    if glue_owned "${prefix}:crawler/${CRAWLER_NAME}"; then
      stop_crawler_and_wait
      aws glue delete-crawler --name "${CRAWLER_NAME}"
      removed "crawler ${CRAWLER_NAME}"
      reset_crawler_logs
    else
      log "! crawler ${CRAWLER_NAME} not tagged by bootstrap, left alone"
    fi
  fi
  # The tables b3_quotes/contract/tables.py states, and only those whose location lies in our bucket.
  local state
  while read -r table state; do
    case "${state}" in
      ours)
        aws glue delete-table --database-name "${GLUE_DATABASE}" --name "${table}"
        removed "table ${GLUE_DATABASE}.${table}" ;;
      foreign) log "! table ${GLUE_DATABASE}.${table} lies outside s3://${BUCKET}/: not ours, left alone" ;;
    esac
  done < <(aws glue get-tables --database-name "${GLUE_DATABASE}" --output json 2>/dev/null | cli_json table-states "s3://${BUCKET}")
  # The contract's views, as Athena made them (a VIRTUAL_VIEW of that name; a table is not touched).
  local view
  while read -r view; do
    if [[ "$(aws glue get-table --database-name "${GLUE_DATABASE}" --name "${view}" --query Table.TableType \
      --output text 2>/dev/null || true)" == VIRTUAL_VIEW ]]; then
      aws glue delete-table --database-name "${GLUE_DATABASE}" --name "${view}"
      removed "view ${GLUE_DATABASE}.${view}"
    fi
  done < <(cli_json view-names)
  # A database bootstrap created carries the project parameter; `default` is never removed.
  if [[ "${GLUE_DATABASE}" != "default" ]] && has_project_tag \
    "$(aws glue get-database --name "${GLUE_DATABASE}" --query Database.Parameters --output text 2>/dev/null || true)"; then
    aws glue delete-database --name "${GLUE_DATABASE}"
    removed "catalog database ${GLUE_DATABASE}"
  fi
}

reset_workgroup() {
  local arn="arn:aws:athena:${AWS_REGION}:${ACCOUNT_ID}:workgroup/${ATHENA_WORKGROUP}"
  workgroup_exists || { log "= Athena workgroup ${ATHENA_WORKGROUP} already gone"; return; }
  if ! has_project_tag "$(aws athena list-tags-for-resource --resource-arn "${arn}" --output text 2>/dev/null || true)" \
    || ! workgroup_uses_bucket; then
    log "! workgroup ${ATHENA_WORKGROUP} not tagged by bootstrap or not writing to ${BUCKET}, left alone"
    return
  fi
  aws athena delete-work-group --work-group "${ATHENA_WORKGROUP}" --recursive-delete-option
  removed "Athena workgroup ${ATHENA_WORKGROUP}"
}

reset_role() {
  local name="$1" policy problem
  if ! problem="$(aws iam get-role --role-name "${name}" 2>&1 >/dev/null)"; then
    # Accounts that may not read IAM (AWS Academy) cannot have had it created by bootstrap either.
    [[ "${problem}" == *NoSuchEntity* ]] || notice "role ${name}: cannot read it (${problem#*operation: }), left alone"
    return 0
  fi
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
  find_deployment
  reset_bucket
  reset_lambda
  reset_glue
  reset_workgroup
  reset_crawl_queue
  reset_role "${GLUE_ROLE_NAME}"
  reset_role "${LAMBDA_ROLE_NAME}"
  log "removed ${#REMOVED[@]} resource(s)"
}

main "$@"
