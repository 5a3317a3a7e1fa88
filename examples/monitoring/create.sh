#!/usr/bin/env bash
# Scheduled synthetic monitoring from a service's repository: revgate as a Cloud Run
# Job, one task per target of targets.toml, started every 10 minutes by Cloud Scheduler.
# Rollback stays off (run_target.py sets REVGATE_ROLLBACK=off); results go to Cloud
# Monitoring (--publish-metrics) for alerting. Run from the folder holding this script,
# run_target.py, targets.toml, checklist.toml and Dockerfile (copied from revgate's examples/monitoring).
set -euo pipefail
cd "$(dirname "$0")"
PROJECT=${PROJECT:?set PROJECT}
REGION=${REGION:-europe-west1}
IMAGE=$REGION-docker.pkg.dev/$PROJECT/revgate/revgate-monitor:latest
SA=revgate-monitor@$PROJECT.iam.gserviceaccount.com
TASKS=$(grep -c '^\[\[target\]\]' targets.toml)

# the job's image: revgate's image (the FROM line of Dockerfile here names it) with the
# targets and the checklist copied in
gcloud builds submit --project "$PROJECT" --tag "$IMAGE" .

# the job: one task per target; the token comes from Secret Manager, never from a flag
gcloud run jobs create revgate-monitor \
  --project "$PROJECT" --region "$REGION" --image "$IMAGE" \
  --tasks "$TASKS" --parallelism "$TASKS" --max-retries 0 --task-timeout 10m \
  --service-account "$SA" \
  --set-secrets REVGATE_AUTH_TOKEN=revgate-api-token:latest \
  --args=--publish-metrics,--report-json=/tmp/revgate.json

# every 10 minutes: Cloud Scheduler calls the Cloud Run Admin API's jobs.run
gcloud scheduler jobs create http revgate-monitor-every-10-min \
  --project "$PROJECT" --location "$REGION" --schedule "*/10 * * * *" \
  --http-method POST \
  --uri "https://run.googleapis.com/v2/projects/$PROJECT/locations/$REGION/jobs/revgate-monitor:run" \
  --oauth-service-account-email "$SA"
