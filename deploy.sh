#!/usr/bin/env bash
# deploy.sh: idempotent, least-privilege deployment of chat-offboard with gcloud.
#
# Run `bash deploy.sh --help` for the settings. docs/operators.md is the
# operators' guide (prerequisites, the consent step, budgets, rotation,
# results, dead letters, removal).
#
# Every run describes before it creates: what exists is reported "unchanged"
# and left alone, IAM policies are read and only missing bindings are added,
# and the function is deployed only when it does not exist, is not ACTIVE, or
# --redeploy is given. A second run on a deployed project therefore changes
# nothing.
#
# Before any gcloud call, the environment the function would get is checked
# by the function's own code (go run ./cmd/function -check-config); before
# anything is changed, the files `gcloud functions deploy --source=.` would
# upload are listed and the run stops if one looks like a credential.
#
# Non-zero exit codes: 2 = a setting is invalid (nothing was called),
# 3 = credential-like files would be uploaded (nothing was changed),
# 1 = a gcloud call (or the settings check itself) failed.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: deploy.sh --project PROJECT [options]

Deploys chat-offboard (a 2nd-gen Cloud Function triggered by Pub/Sub) with its
topics, the subscriptions that keep its results and dead letters, its ledger
(a Firestore database with TTL policies), runtime service account, secret and
IAM bindings. Safe to run again: existing resources are left "unchanged".

Options (each also read from the environment variable in brackets; a flag wins):
  --project ID                 project id [PROJECT]                       (required)
  --region R                   region [REGION]                            (us-central1)
  --function NAME              function name [FUNCTION]                   (chat-offboard)
  --request-topic ID           requests topic [REQUEST_TOPIC]             (chat-offboard-requests)
  --result-topic ID            results topic [RESULT_TOPIC]               (chat-offboard-results)
  --result-subscription ID     pull subscription that keeps every result for
                               7 days [RESULT_SUBSCRIPTION]               (<result-topic>-audit)
  --dead-letter-topic ID       dead-letter topic [DEAD_LETTER_TOPIC]      (chat-offboard-dead-letters)
  --dead-letter-subscription ID  pull subscription that keeps dead letters
                               [DEAD_LETTER_SUBSCRIPTION]                 (<dead-letter-topic>-hold)
  --secret ID                  Secret Manager secret with the delegated admin's
                               authorized_user JSON [SECRET]              (chat-offboard-token)
  --service-account ID         runtime service account id [SERVICE_ACCOUNT] (<function>-run)
  --build-service-account ID   service account that Cloud Build builds the
                               function as [BUILD_SERVICE_ACCOUNT]        (<function>-build)
  --writes-per-minute N        Chat membership writes per minute for the whole
                               project [CHAT_WRITES_PER_MINUTE]           (300, the Chat API quota)
  --reads-per-minute N         Chat reads per minute for the whole project
                               [CHAT_READS_PER_MINUTE]                    (3000, the Chat API quota)
  --max-instances N            maximum instances [MAX_INSTANCES]          (1)
  --concurrency N              events in flight per instance [CONCURRENCY] (derived, see below)
  --cpu N                      vCPUs per instance [CPU]                   (1)
  --memory SIZE                memory per instance [MEMORY]               (512Mi)
  --timeout DURATION           per-event timeout, at most 540s; the function
                               gets it as INVOCATION_TIMEOUT [TIMEOUT]    (540s)
  --max-delivery-attempts N    deliveries before a request is dead-lettered,
                               5..100; with the retry policy (10s to 600s
                               between deliveries) 100 ride out a 12-hour
                               outage [MAX_DELIVERY_ATTEMPTS]              (100)
  --protected-members LIST     comma-separated users/ID, emails or "app" that are
                               never removed [PROTECTED_MEMBERS]          (none)
  --max-event-age DURATION     Go duration, e.g. 23h [MAX_EVENT_AGE]      (the function's default)
  --log-level LEVEL            debug|info|warn|error [LOG_LEVEL]          (the function's default)
  --firestore-database ID      the ledger's Firestore database (native mode),
                               created in REGION when missing: "(default)" or
                               4-63 characters [FIRESTORE_DATABASE]       ((default))
  --ledger-retention DURATION  Go duration a ledger record is kept after its
                               last write (TTL on expireAt) [LEDGER_RETENTION] (9600h = 400 days)
  --sweeps                     also enable the Admin SDK API (allSpaces sweeps) [SWEEPS=1]
  --workspace-trigger ORG_ID   also route the Workspace Admin audit events that
                               suspend, archive or delete a user (shared with the
                               Cloud organization ORG_ID) to the requests topic
                               through an organization log sink [WORKSPACE_TRIGGER]
                               (off); needs roles/logging.configWriter on the
                               organization, see docs/operators.md
  --workspace-sink NAME        that sink's name [WORKSPACE_SINK]          (<function>-workspace)
  --auto-offboard-domains LIST comma-separated domains whose people such an event
                               may sweep [AUTO_OFFBOARD_DOMAINS]           (none: the
                               function acknowledges the events and does nothing)
  --auto-offboard-org-units LIST  only people in these organizational units
                               (/Staff,/Sales) [AUTO_OFFBOARD_ORG_UNITS]   (all)
  --auto-offboard-successor PERSON  takes over spaces where the person was the only
                               owner and the Directory names no manager
                               [AUTO_OFFBOARD_SUCCESSOR]                   (none)
  --auto-offboard-add-successor  add that successor to such a space first
                               [AUTO_OFFBOARD_ADD_SUCCESSOR=true]
  --auto-offboard-delay DURATION  grace period of such a sweep, Go duration
                               [AUTO_OFFBOARD_DELAY]                       (the function's: 72h)
  --auto-offboard-max-per-hour N  the brake: such sweeps beyond N an hour wait
                               for an approval [AUTO_OFFBOARD_MAX_PER_HOUR] (the function's: 10)
  --due-schedule CRON          how often Cloud Scheduler publishes the due tick
                               that runs what its grace period released, with
                               --workspace-trigger [DUE_SCHEDULE]          (*/5 * * * *)
  --approvers MEMBERS          comma-separated IAM members (user:, group:,
                               serviceAccount:) who may approve, reject and
                               cancel: the only publishers of the approval
                               topic, which is created with them [APPROVERS] (none)
  --approval-topic ID          that topic [APPROVAL_TOPIC]                 (<function>-approvals)
  --approval-required FORMS    forms that always wait for an approval, e.g.
                               sweep,bulk,restore [APPROVAL_REQUIRED]      (none)
  --alert-email ADDRESS        send the alerts to this address (an email
                               notification channel, created once) [ALERT_EMAIL]
  --notification-channel NAME  or to an existing channel,
                               projects/P/notificationChannels/ID [NOTIFICATION_CHANNEL]
                               (neither: the alerts open incidents in the console
                               and notify nobody)
  --redeploy                   deploy the function even if it exists (new code or
                               settings) [REDEPLOY=1]; a function that is not
                               ACTIVE (FAILED, DEPLOYING, ...) is always deployed again
  --dry-run                    print every gcloud command in order and run none
                               (checks are assumed to find nothing) [DRY_RUN=1]
  -h, --help                   this help

The function's settings (topics, secret, budgets, PROTECTED_MEMBERS,
MAX_EVENT_AGE, LOG_LEVEL, INVOCATION_TIMEOUT, FIRESTORE_DATABASE,
LEDGER_RETENTION) are checked by the function's own
code before anything else: `go run ./cmd/function -check-config`, or the
command binary named by CHAT_OFFBOARD_CHECK_CONFIG (an absolute path to a
build of ./cmd/function; it is run with -check-config).

deploy.sh refuses to deploy (exit 3) while a credential-like file would be
uploaded with the source: client_secret*.json, any other *.json, *.pem, *.p12,
*.pfx, *.p8, *.key, or a file holding a refresh token or a private key.

Budgets: every instance enforces its own budget, so each instance gets
writes-per-minute / max-instances (and reads likewise) and the project stays
under the Chat API quota however many instances run. The default concurrency
lets one instance keep its write rate busy while bounding how long an event
can wait for the budget; docs/operators.md shows the arithmetic.
EOF
}

# die_setting NAME MESSAGE: a setting is invalid; nothing has been called yet.
die_setting() {
	printf 'deploy.sh: %s: %s\n' "$1" "$2" >&2
	printf "Run 'deploy.sh --help' for the settings.\n" >&2
	exit 2
}

die() {
	printf 'deploy.sh: %s\n' "$*" >&2
	exit 1
}

warn() {
	printf 'deploy.sh: warning: %s\n' "$*" >&2
}

# setting_of VAR: the deploy.sh setting that the function's variable VAR
# comes from (most have the same name).
setting_of() {
	case "$1" in
	GOOGLE_CLOUD_PROJECT) echo PROJECT ;;
	TOKEN_SECRET) echo SECRET ;;
	INVOCATION_TIMEOUT) echo TIMEOUT ;;
	*) echo "$1" ;;
	esac
}

# --- settings: environment first, then flags ----------------------------------
PROJECT="${PROJECT-}"
REGION="${REGION-us-central1}"
FUNCTION="${FUNCTION-chat-offboard}"
REQUEST_TOPIC="${REQUEST_TOPIC-chat-offboard-requests}"
RESULT_TOPIC="${RESULT_TOPIC-chat-offboard-results}"
RESULT_SUBSCRIPTION="${RESULT_SUBSCRIPTION-}"
DEAD_LETTER_TOPIC="${DEAD_LETTER_TOPIC-chat-offboard-dead-letters}"
DEAD_LETTER_SUBSCRIPTION="${DEAD_LETTER_SUBSCRIPTION-}"
SECRET="${SECRET-chat-offboard-token}"
SERVICE_ACCOUNT="${SERVICE_ACCOUNT-}"
BUILD_SERVICE_ACCOUNT="${BUILD_SERVICE_ACCOUNT-}"
CHAT_WRITES_PER_MINUTE="${CHAT_WRITES_PER_MINUTE-300}"
CHAT_READS_PER_MINUTE="${CHAT_READS_PER_MINUTE-3000}"
MAX_INSTANCES="${MAX_INSTANCES-1}"
CONCURRENCY="${CONCURRENCY-}"
CPU="${CPU-1}"
MEMORY="${MEMORY-512Mi}"
TIMEOUT="${TIMEOUT-540s}"
MAX_DELIVERY_ATTEMPTS="${MAX_DELIVERY_ATTEMPTS-100}"
# The retry policy and retention of the trigger's subscription (step 12):
# Pub/Sub's exponential backoff between 10 s and its longest, 600 s, and its
# longest retention, 7 days (docs/operators.md has the arithmetic).
MIN_RETRY_DELAY=10s
MAX_RETRY_DELAY=600s
REQUEST_RETENTION=7d
REQUEST_RETENTION_S=604800s
PROTECTED_MEMBERS="${PROTECTED_MEMBERS-}"
MAX_EVENT_AGE="${MAX_EVENT_AGE-}"
LOG_LEVEL="${LOG_LEVEL-}"
FIRESTORE_DATABASE="${FIRESTORE_DATABASE-(default)}"
LEDGER_RETENTION="${LEDGER_RETENTION-9600h}"
SWEEPS="${SWEEPS-0}"
WORKSPACE_TRIGGER="${WORKSPACE_TRIGGER-}"
WORKSPACE_SINK="${WORKSPACE_SINK-}"
AUTO_OFFBOARD_DOMAINS="${AUTO_OFFBOARD_DOMAINS-}"
AUTO_OFFBOARD_ORG_UNITS="${AUTO_OFFBOARD_ORG_UNITS-}"
AUTO_OFFBOARD_SUCCESSOR="${AUTO_OFFBOARD_SUCCESSOR-}"
AUTO_OFFBOARD_ADD_SUCCESSOR="${AUTO_OFFBOARD_ADD_SUCCESSOR-}"
AUTO_OFFBOARD_DELAY="${AUTO_OFFBOARD_DELAY-}"
AUTO_OFFBOARD_MAX_PER_HOUR="${AUTO_OFFBOARD_MAX_PER_HOUR-}"
DUE_SCHEDULE="${DUE_SCHEDULE-*/5 * * * *}"
APPROVERS="${APPROVERS-}"
APPROVAL_TOPIC="${APPROVAL_TOPIC-}"
APPROVAL_REQUIRED="${APPROVAL_REQUIRED-}"
ALERT_EMAIL="${ALERT_EMAIL-}"
NOTIFICATION_CHANNEL="${NOTIFICATION_CHANNEL-}"
REDEPLOY="${REDEPLOY-0}"
DRY_RUN="${DRY_RUN-0}"

# need_value FLAG COUNT [NEXT]: a flag given as "--flag value" needs its
# value, which is not another flag.
need_value() {
	if (($2 < 2)) || [[ "${3-}" == --* ]]; then
		die_setting "$1" "needs a value"
	fi
}

while (($# > 0)); do
	case "$1" in
	-h | --help)
		usage
		exit 0
		;;
	--dry-run) DRY_RUN=1 ;;
	--redeploy) REDEPLOY=1 ;;
	--sweeps) SWEEPS=1 ;;
	--auto-offboard-add-successor) AUTO_OFFBOARD_ADD_SUCCESSOR=true ;;
	--*=*)
		# --flag=value: split and re-dispatch as --flag value.
		flag="${1%%=*}"
		value="${1#*=}"
		shift
		set -- "$flag" "$value" "$@"
		continue
		;;
	--project | --region | --function | --request-topic | --result-topic | \
		--result-subscription | --dead-letter-topic | \
		--dead-letter-subscription | --secret | --service-account | \
		--build-service-account | \
		--writes-per-minute | --reads-per-minute | \
		--max-instances | --concurrency | --cpu | --memory | --timeout | \
		--max-delivery-attempts | --protected-members | --max-event-age | \
		--log-level | --firestore-database | --ledger-retention | \
		--workspace-trigger | --workspace-sink | --auto-offboard-domains | \
		--auto-offboard-org-units | --auto-offboard-successor | \
		--auto-offboard-delay | --auto-offboard-max-per-hour | --due-schedule | \
		--approvers | --approval-topic | --approval-required | \
		--alert-email | --notification-channel)
		need_value "$1" $# "${2-}"
		case "$1" in
		--project) PROJECT="$2" ;;
		--region) REGION="$2" ;;
		--function) FUNCTION="$2" ;;
		--request-topic) REQUEST_TOPIC="$2" ;;
		--result-topic) RESULT_TOPIC="$2" ;;
		--result-subscription) RESULT_SUBSCRIPTION="$2" ;;
		--dead-letter-topic) DEAD_LETTER_TOPIC="$2" ;;
		--dead-letter-subscription) DEAD_LETTER_SUBSCRIPTION="$2" ;;
		--secret) SECRET="$2" ;;
		--service-account) SERVICE_ACCOUNT="$2" ;;
		--build-service-account) BUILD_SERVICE_ACCOUNT="$2" ;;
		--writes-per-minute) CHAT_WRITES_PER_MINUTE="$2" ;;
		--reads-per-minute) CHAT_READS_PER_MINUTE="$2" ;;
		--max-instances) MAX_INSTANCES="$2" ;;
		--concurrency) CONCURRENCY="$2" ;;
		--cpu) CPU="$2" ;;
		--memory) MEMORY="$2" ;;
		--timeout) TIMEOUT="$2" ;;
		--max-delivery-attempts) MAX_DELIVERY_ATTEMPTS="$2" ;;
		--protected-members) PROTECTED_MEMBERS="$2" ;;
		--max-event-age) MAX_EVENT_AGE="$2" ;;
		--log-level) LOG_LEVEL="$2" ;;
		--firestore-database) FIRESTORE_DATABASE="$2" ;;
		--ledger-retention) LEDGER_RETENTION="$2" ;;
		--workspace-trigger) WORKSPACE_TRIGGER="$2" ;;
		--workspace-sink) WORKSPACE_SINK="$2" ;;
		--auto-offboard-domains) AUTO_OFFBOARD_DOMAINS="$2" ;;
		--auto-offboard-org-units) AUTO_OFFBOARD_ORG_UNITS="$2" ;;
		--auto-offboard-successor) AUTO_OFFBOARD_SUCCESSOR="$2" ;;
		--auto-offboard-delay) AUTO_OFFBOARD_DELAY="$2" ;;
		--auto-offboard-max-per-hour) AUTO_OFFBOARD_MAX_PER_HOUR="$2" ;;
		--due-schedule) DUE_SCHEDULE="$2" ;;
		--approvers) APPROVERS="$2" ;;
		--approval-topic) APPROVAL_TOPIC="$2" ;;
		--approval-required) APPROVAL_REQUIRED="$2" ;;
		--alert-email) ALERT_EMAIL="$2" ;;
		--notification-channel) NOTIFICATION_CHANNEL="$2" ;;
		esac
		shift
		;;
	*) die_setting "$1" "unknown argument" ;;
	esac
	shift
done

[[ -n "$RESULT_SUBSCRIPTION" ]] || RESULT_SUBSCRIPTION="${RESULT_TOPIC}-audit"
[[ -n "$DEAD_LETTER_SUBSCRIPTION" ]] || DEAD_LETTER_SUBSCRIPTION="${DEAD_LETTER_TOPIC}-hold"
[[ -n "$SERVICE_ACCOUNT" ]] || SERVICE_ACCOUNT="${FUNCTION}-run"
[[ -n "$BUILD_SERVICE_ACCOUNT" ]] || BUILD_SERVICE_ACCOUNT="${FUNCTION}-build"
[[ -n "$WORKSPACE_SINK" ]] || WORKSPACE_SINK="${FUNCTION}-workspace"
[[ -n "$APPROVAL_TOPIC" ]] || APPROVAL_TOPIC="${FUNCTION}-approvals"

# --- validation: every value, before any gcloud call ----------------------------
# What only deploy.sh and gcloud use is checked here; what the function reads
# (PROTECTED_MEMBERS, MAX_EVENT_AGE, LOG_LEVEL, RESULT_TOPIC != REQUEST_TOPIC,
# ...) is checked below by the function's own code, on the very environment
# that is deployed.

# positive_int NAME VALUE: a decimal integer >= 1 without leading zeros.
positive_int() {
	[[ "$2" =~ ^[1-9][0-9]{0,8}$ ]] || die_setting "$1" "\"$2\" is not a positive integer"
}

# bool NAME VALUE: 0/1/true/false.
bool() {
	[[ "$2" =~ ^(0|1|true|false)$ ]] || die_setting "$1" "\"$2\" is not 0, 1, true or false"
}

# topic_id NAME VALUE: a Pub/Sub topic or subscription id.
topic_id() {
	[[ "$2" =~ ^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$ && "$2" != goog* ]] ||
		die_setting "$1" "\"$2\" is not a Pub/Sub id (3-255 characters: a letter, then letters, digits or - _ . ~ + %; not starting with goog)"
}

[[ -n "$PROJECT" ]] || die_setting PROJECT "required: pass --project ID or set PROJECT"
[[ "$PROJECT" =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] ||
	die_setting PROJECT "\"$PROJECT\" is not a project id (6-30 characters: lowercase letters, digits, hyphens; starts with a letter)"
[[ "$REGION" =~ ^[a-z]+(-[a-z]+)+[0-9]+$ ]] ||
	die_setting REGION "\"$REGION\" is not a region such as us-central1"
[[ "$FUNCTION" =~ ^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$ ]] ||
	die_setting FUNCTION "\"$FUNCTION\" is not a function name (1-63 characters: lowercase letters, digits, hyphens; starts with a letter, does not end with a hyphen)"
topic_id REQUEST_TOPIC "$REQUEST_TOPIC"
topic_id RESULT_TOPIC "$RESULT_TOPIC"
topic_id DEAD_LETTER_TOPIC "$DEAD_LETTER_TOPIC"
topic_id RESULT_SUBSCRIPTION "$RESULT_SUBSCRIPTION"
topic_id DEAD_LETTER_SUBSCRIPTION "$DEAD_LETTER_SUBSCRIPTION"
# (RESULT_TOPIC != REQUEST_TOPIC is the function's rule, checked with it below.)
if [[ "$REQUEST_TOPIC" == "$DEAD_LETTER_TOPIC" || "$RESULT_TOPIC" == "$DEAD_LETTER_TOPIC" ]]; then
	die_setting DEAD_LETTER_TOPIC "the dead-letter topic must differ from the requests and results topics"
fi
[[ "$RESULT_SUBSCRIPTION" != "$DEAD_LETTER_SUBSCRIPTION" ]] ||
	die_setting RESULT_SUBSCRIPTION "the results and dead-letter subscriptions must be two different subscriptions"
# Firestore database ids: "(default)", or 4-63 characters of lowercase
# letters, digits and hyphens, starting with a letter and not ending with a
# hyphen. (LEDGER_RETENTION is the function's: checked with its code below.)
[[ "$FIRESTORE_DATABASE" == "(default)" || "$FIRESTORE_DATABASE" =~ ^[a-z][a-z0-9-]{2,61}[a-z0-9]$ ]] ||
	die_setting FIRESTORE_DATABASE "\"$FIRESTORE_DATABASE\" is not a Firestore database id (\"(default)\", or 4-63 characters: lowercase letters, digits, hyphens; starts with a letter, does not end with a hyphen)"
[[ "$SECRET" =~ ^[A-Za-z0-9_-]{1,255}$ ]] ||
	die_setting SECRET "\"$SECRET\" is not a secret id (letters, digits, - and _)"
[[ "$SERVICE_ACCOUNT" =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] ||
	die_setting SERVICE_ACCOUNT "\"$SERVICE_ACCOUNT\" is not a service account id (6-30 characters: lowercase letters, digits, hyphens); set SERVICE_ACCOUNT when the function name is too long"
[[ "$BUILD_SERVICE_ACCOUNT" =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] ||
	die_setting BUILD_SERVICE_ACCOUNT "\"$BUILD_SERVICE_ACCOUNT\" is not a service account id (6-30 characters: lowercase letters, digits, hyphens); set BUILD_SERVICE_ACCOUNT when the function name is too long"
[[ "$BUILD_SERVICE_ACCOUNT" != "$SERVICE_ACCOUNT" ]] ||
	die_setting BUILD_SERVICE_ACCOUNT "the build and runtime service accounts must be two different accounts"
positive_int CHAT_WRITES_PER_MINUTE "$CHAT_WRITES_PER_MINUTE"
positive_int CHAT_READS_PER_MINUTE "$CHAT_READS_PER_MINUTE"
positive_int MAX_INSTANCES "$MAX_INSTANCES"
((MAX_INSTANCES <= 1000)) || die_setting MAX_INSTANCES "$MAX_INSTANCES is more than 1000"
[[ -z "$CONCURRENCY" ]] || positive_int CONCURRENCY "$CONCURRENCY"
[[ "$CPU" =~ ^([0-9]+(\.[0-9]+)?|[0-9]+m)$ ]] || die_setting CPU "\"$CPU\" is not a number of vCPUs such as 1 or 2"
[[ "$MEMORY" =~ ^[1-9][0-9]*(Mi|Gi|M|G)$ ]] || die_setting MEMORY "\"$MEMORY\" is not a size such as 512Mi or 1Gi"
[[ "$TIMEOUT" =~ ^[1-9][0-9]*s?$ ]] || die_setting TIMEOUT "\"$TIMEOUT\" is not a number of seconds such as 540s"
TIMEOUT_S="${TIMEOUT%s}"
((TIMEOUT_S <= 540)) || die_setting TIMEOUT "$TIMEOUT is longer than 540s, the limit of event-driven functions"
positive_int MAX_DELIVERY_ATTEMPTS "$MAX_DELIVERY_ATTEMPTS"
((MAX_DELIVERY_ATTEMPTS >= 5 && MAX_DELIVERY_ATTEMPTS <= 100)) ||
	die_setting MAX_DELIVERY_ATTEMPTS "$MAX_DELIVERY_ATTEMPTS is outside Pub/Sub's range 5..100"
bool SWEEPS "$SWEEPS"
# An organization id is a decimal number (organizations/ORG_ID); it ends up in
# the sink's filter, so nothing else may pass. Sink names: up to 100 letters,
# digits, _ - and . (Cloud Logging's rule).
[[ -z "$WORKSPACE_TRIGGER" || "$WORKSPACE_TRIGGER" =~ ^[1-9][0-9]{0,19}$ ]] ||
	die_setting WORKSPACE_TRIGGER "\"$WORKSPACE_TRIGGER\" is not an organization id (its number, as in organizations/123456789012: gcloud organizations list)"
[[ -z "$ALERT_EMAIL" || "$ALERT_EMAIL" =~ ^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$ ]] ||
	die_setting ALERT_EMAIL "\"$ALERT_EMAIL\" is not an email address"
[[ -z "$NOTIFICATION_CHANNEL" || "$NOTIFICATION_CHANNEL" =~ ^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/notificationChannels/[0-9]+$ ]] ||
	die_setting NOTIFICATION_CHANNEL "\"$NOTIFICATION_CHANNEL\" is not a notification channel (projects/PROJECT/notificationChannels/ID: gcloud beta monitoring channels list)"
[[ -z "$ALERT_EMAIL" || -z "$NOTIFICATION_CHANNEL" ]] ||
	die_setting ALERT_EMAIL "give --alert-email or --notification-channel, not both"
[[ "$WORKSPACE_SINK" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$ ]] ||
	die_setting WORKSPACE_SINK "\"$WORKSPACE_SINK\" is not a sink name (up to 100 characters: letters, digits, _ - and .)"
# Oversight (issue 23): the approval topic and its publishers, and the due
# tick's schedule (five cron fields of digits and * / , -).
topic_id APPROVAL_TOPIC "$APPROVAL_TOPIC"
[[ "$APPROVAL_TOPIC" != "$REQUEST_TOPIC" && "$APPROVAL_TOPIC" != "$RESULT_TOPIC" && "$APPROVAL_TOPIC" != "$DEAD_LETTER_TOPIC" ]] ||
	die_setting APPROVAL_TOPIC "the approval topic must differ from the requests, results and dead-letter topics: only approvers may publish to it"
IFS=, read -ra APPROVER_LIST <<<"$APPROVERS"
for m in "${APPROVER_LIST[@]}"; do
	[[ "$m" =~ ^(user|group|serviceAccount):[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$ ]] ||
		die_setting APPROVERS "\"$m\" is not an IAM member such as user:ops@example.com, group:approvers@example.com or serviceAccount:NAME@PROJECT.iam.gserviceaccount.com"
done
[[ -z "$APPROVAL_REQUIRED" || -n "$APPROVERS" ]] ||
	die_setting APPROVERS "required with APPROVAL_REQUIRED: who may approve the requests that wait"
[[ "$DUE_SCHEDULE" =~ ^[0-9*/,-]+( [0-9*/,-]+){4}$ ]] ||
	die_setting DUE_SCHEDULE "\"$DUE_SCHEDULE\" is not a cron schedule of five fields such as \"*/5 * * * *\""
bool REDEPLOY "$REDEPLOY"
bool DRY_RUN "$DRY_RUN"
[[ "$SWEEPS" == 1 || "$SWEEPS" == true ]] && SWEEPS=1 || SWEEPS=0
# The Workspace trigger sweeps, and reads the Directory: the Admin SDK API.
[[ -z "$WORKSPACE_TRIGGER" ]] || SWEEPS=1
[[ "$REDEPLOY" == 1 || "$REDEPLOY" == true ]] && REDEPLOY=1 || REDEPLOY=0
[[ "$DRY_RUN" == 1 || "$DRY_RUN" == true ]] && DRY_RUN=1 || DRY_RUN=0

# --- budget arithmetic -----------------------------------------------------------
# The function enforces CHAT_WRITES_PER_MINUTE / CHAT_READS_PER_MINUTE per
# instance (each instance has its own token bucket). The settings of this
# script are the budgets of the whole project (the Chat API quotas: 300 writes
# and 3000 reads per minute per project), so each instance gets
#
#   per-instance budget = floor(project budget / MAX_INSTANCES)
#
# and N instances together never exceed the quota. Default: 1 instance with the
# full 300 writes/min. More instances buy availability, not throughput.
#
# Concurrency (events in flight per instance) is bounded on both sides:
#   lower = ceil(writes/s x Chat latency): enough events in flight to use the
#           write budget, with a Chat call taking ~1 s: 300/min = 5/s -> 5;
#   upper = writes/s x TIMEOUT / 2: events beyond the budget wait in the
#           instance for a token, and the last of C queued events waits
#           C / (writes/s) seconds; keeping that under half the timeout leaves
#           the other half for the Chat calls themselves: 5/s x 540 s / 2 = 1350.
# Within those bounds 80 (Cloud Run's default) is taken: it covers reads-only
# events (not_member, dry runs, fan-out planning) that do not consume the write
# budget, while a burst of writes waits at most 80 / 5 = 16 s. Examples:
#   defaults (300/min, 1 instance, 540s)  -> 300/min per instance, concurrency 80
#   MAX_INSTANCES=10                      -> 30/min per instance, concurrency 80 (upper 135)
#   MAX_INSTANCES=100                     -> 3/min per instance, concurrency 13
WRITES_PER_INSTANCE=$((CHAT_WRITES_PER_MINUTE / MAX_INSTANCES))
READS_PER_INSTANCE=$((CHAT_READS_PER_MINUTE / MAX_INSTANCES))
((WRITES_PER_INSTANCE >= 1)) ||
	die_setting MAX_INSTANCES "$MAX_INSTANCES instances cannot share $CHAT_WRITES_PER_MINUTE writes/min (each instance needs at least 1)"
((READS_PER_INSTANCE >= 1)) ||
	die_setting MAX_INSTANCES "$MAX_INSTANCES instances cannot share $CHAT_READS_PER_MINUTE reads/min (each instance needs at least 1)"
CHAT_LATENCY_S=1
CONCURRENCY_LOWER=$(((WRITES_PER_INSTANCE * CHAT_LATENCY_S + 59) / 60))
CONCURRENCY_UPPER=$((WRITES_PER_INSTANCE * TIMEOUT_S / 120))
((CONCURRENCY_UPPER >= 1)) || CONCURRENCY_UPPER=1
if [[ -z "$CONCURRENCY" ]]; then
	CONCURRENCY=80
	((CONCURRENCY <= CONCURRENCY_UPPER)) || CONCURRENCY=$CONCURRENCY_UPPER
	((CONCURRENCY >= CONCURRENCY_LOWER)) || CONCURRENCY=$CONCURRENCY_LOWER
fi
((CONCURRENCY <= 1000)) || die_setting CONCURRENCY "$CONCURRENCY is more than 1000, Cloud Run's maximum"
if ((CONCURRENCY > 1)) && [[ "$CPU" =~ ^0*(\.[0-9]*)?$|^[0-9]{1,3}m$ ]]; then
	die_setting CPU "$CPU vCPU is less than 1, which Cloud Run allows only with CONCURRENCY=1"
fi
if ((CONCURRENCY < CONCURRENCY_LOWER)); then
	warn "CONCURRENCY=$CONCURRENCY is below $CONCURRENCY_LOWER: an instance cannot use its $WRITES_PER_INSTANCE writes/min"
fi
if ((CONCURRENCY > CONCURRENCY_UPPER)); then
	warn "CONCURRENCY=$CONCURRENCY is above $CONCURRENCY_UPPER: queued events may wait longer than half of TIMEOUT for the write budget"
fi

SA_EMAIL="${SERVICE_ACCOUNT}@${PROJECT}.iam.gserviceaccount.com"
SA_MEMBER="serviceAccount:${SA_EMAIL}"
BUILD_SA_EMAIL="${BUILD_SERVICE_ACCOUNT}@${PROJECT}.iam.gserviceaccount.com"
BUILD_SA_MEMBER="serviceAccount:${BUILD_SA_EMAIL}"
REQUEST_TOPIC_NAME="projects/${PROJECT}/topics/${REQUEST_TOPIC}"
RESULT_TOPIC_NAME="projects/${PROJECT}/topics/${RESULT_TOPIC}"
DEAD_LETTER_TOPIC_NAME="projects/${PROJECT}/topics/${DEAD_LETTER_TOPIC}"
SECRET_NAME="projects/${PROJECT}/secrets/${SECRET}"
# The ledger: its database, the collection groups whose records expire on
# expireAt (ledger.RequestsCollection, MembershipsCollection, PagesCollection
# and ledger.TTLField), and the IAM condition that confines the runtime
# account's roles/datastore.user to this one database.
DATABASE_NAME="projects/${PROJECT}/databases/${FIRESTORE_DATABASE}"
LEDGER_GROUPS=(requests memberships pages holds)
LEDGER_TTL_FIELD=expireAt
LEDGER_CONDITION_EXPRESSION="resource.name==\"${DATABASE_NAME}\""
LEDGER_CONDITION_TITLE=chat-offboard-ledger

# The Workspace trigger (--workspace-trigger, issue 16): an organization log
# sink that routes the Admin audit log entries of a user being suspended,
# archived or deleted to the requests topic, where the function turns each
# into a sweep of that person. Google Workspace writes these entries on the
# organization itself (organizations/ORG/logs/...), so the sink needs no
# --include-children: it sees the organization's own logs and nothing of its
# folders or projects. The method names are Cloud Audit Logs' names for the
# Admin console's events, as listed under "Google Workspace Admin"
# (serviceName admin.googleapis.com) in Google's catalog of audit log methods,
# github.com/googleapis/google-cloudevents, AUDIT_CATALOG.md: suspendUser,
# archiveUser and deleteUser, and the variants Google logs for users that
# auto-provisioning suspends or deletes (hardDeletedAutoProvisionedUser
# included: after a deleteAutoProvisionedUser it sweeps a person already
# swept, which removes nothing twice). They are exactly the methods the
# function acts on (request.AuditMethods; internal/deploytest checks the two
# lists agree). No other method is routed: not unsuspendUser, unarchiveUser
# or undeleteUser.
WORKSPACE_METHODS=(
	suspendUser
	suspendAutoProvisionedUser
	archiveUser
	deleteUser
	deleteAutoProvisionedUser
	hardDeletedAutoProvisionedUser
)
WORKSPACE_DESTINATION="pubsub.googleapis.com/${REQUEST_TOPIC_NAME}"
WORKSPACE_FILTER=""
if [[ -n "$WORKSPACE_TRIGGER" ]]; then
	methods=""
	for m in "${WORKSPACE_METHODS[@]}"; do
		methods+="${methods:+ OR }protoPayload.methodName=\"google.admin.AdminService.${m}\""
	done
	WORKSPACE_FILTER="logName=\"organizations/${WORKSPACE_TRIGGER}/logs/cloudaudit.googleapis.com%2Factivity\" AND protoPayload.serviceName=\"admin.googleapis.com\" AND (${methods})"
fi

APIS=(
	cloudfunctions.googleapis.com
	run.googleapis.com
	eventarc.googleapis.com
	pubsub.googleapis.com
	secretmanager.googleapis.com
	cloudbuild.googleapis.com
	artifactregistry.googleapis.com
	iam.googleapis.com
	chat.googleapis.com
	firestore.googleapis.com
	logging.googleapis.com
	monitoring.googleapis.com
)
((SWEEPS == 0)) || APIS+=(admin.googleapis.com)
# The due tick of the Workspace trigger's grace period: Cloud Scheduler.
[[ -z "$WORKSPACE_TRIGGER" ]] || APIS+=(cloudscheduler.googleapis.com)

# The function's environment (docs/design.md, "Configuration"). gcloud splits
# --set-env-vars on commas, and PROTECTED_MEMBERS holds commas, so the list uses
# gcloud's alternate delimiter syntax "^;^K=V;K=V" (gcloud topic escaping);
# no value may contain ";" (checked just below). INVOCATION_TIMEOUT bounds one
# invocation in the function (Cloud Run passes no timeout variable of its own).
ENV_VARS=(
	"GOOGLE_CLOUD_PROJECT=${PROJECT}"
	"TOKEN_SECRET=${SECRET_NAME}/versions/latest"
	"RESULT_TOPIC=${RESULT_TOPIC_NAME}"
	"REQUEST_TOPIC=${REQUEST_TOPIC_NAME}"
	"CHAT_WRITES_PER_MINUTE=${WRITES_PER_INSTANCE}"
	"CHAT_READS_PER_MINUTE=${READS_PER_INSTANCE}"
	"INVOCATION_TIMEOUT=${TIMEOUT_S}s"
	"FIRESTORE_DATABASE=${FIRESTORE_DATABASE}"
	"LEDGER_RETENTION=${LEDGER_RETENTION}"
)
[[ -z "$PROTECTED_MEMBERS" ]] || ENV_VARS+=("PROTECTED_MEMBERS=${PROTECTED_MEMBERS}")
[[ -z "$MAX_EVENT_AGE" ]] || ENV_VARS+=("MAX_EVENT_AGE=${MAX_EVENT_AGE}")
[[ -z "$LOG_LEVEL" ]] || ENV_VARS+=("LOG_LEVEL=${LOG_LEVEL}")
# Who a Workspace audit entry may sweep (checked by the function's code
# below, like every variable here).
for var in AUTO_OFFBOARD_DOMAINS AUTO_OFFBOARD_ORG_UNITS AUTO_OFFBOARD_SUCCESSOR AUTO_OFFBOARD_ADD_SUCCESSOR \
	AUTO_OFFBOARD_DELAY AUTO_OFFBOARD_MAX_PER_HOUR APPROVAL_REQUIRED; do
	[[ -z "${!var}" ]] || ENV_VARS+=("${var}=${!var}")
done
# Approvals come from their own topic, which exists only with approvers.
[[ -z "$APPROVERS" ]] || ENV_VARS+=("APPROVAL_TOPIC=projects/${PROJECT}/topics/${APPROVAL_TOPIC}")
for kv in "${ENV_VARS[@]}"; do
	[[ "$kv" != *[$';\n']* ]] ||
		die_setting "$(setting_of "${kv%%=*}")" "\"${kv#*=}\" contains ';' or a newline, which the function's environment cannot carry"
done
ENV_ARG="^;^$(
	IFS=';'
	printf '%s' "${ENV_VARS[*]}"
)"

# --- the function's own check of its environment --------------------------------
# The function reads its configuration with offboard.LoadConfig at every event
# and refuses every event if it is invalid. The same code checks ENV_VARS here,
# before any gcloud call: `go run ./cmd/function -check-config` (or the binary
# CHAT_OFFBOARD_CHECK_CONFIG names) prints nothing and exits 0 when the
# function would accept it, or prints "configuration: VAR: reason". It runs
# with ENV_VARS and only the variables the Go toolchain needs (PATH, HOME,
# GO*, ...), so that nothing else in the operator's environment is checked.
cd "$(dirname "${BASH_SOURCE[0]}")"
check_env=()
while IFS= read -r name; do
	if [[ "$name" =~ ^(GO[A-Z0-9]*|CGO_[A-Z0-9_]+|XDG_[A-Z_]+|PATH|HOME|USER|LOGNAME|TMPDIR|LANG|LC_[A-Z_]+|SSL_CERT_(FILE|DIR)|(HTTPS?|NO)_PROXY|(https?|no)_proxy)$ ]]; then
		check_env+=("${name}=${!name}")
	fi
done < <(compgen -e)
if [[ -n "${CHAT_OFFBOARD_CHECK_CONFIG-}" ]]; then
	check_cmd=("$CHAT_OFFBOARD_CHECK_CONFIG" -check-config)
else
	command -v go >/dev/null ||
		die "go is not on PATH: the settings are checked with the function's own code (go run ./cmd/function -check-config); install Go, or set CHAT_OFFBOARD_CHECK_CONFIG to a build of ./cmd/function"
	check_cmd=(go run ./cmd/function -check-config)
fi
check_rc=0
check_out="$(env -i "${check_env[@]}" "${ENV_VARS[@]}" "${check_cmd[@]}" 2>&1)" || check_rc=$?
if ((check_rc != 0)); then
	# `go run` exits 1 whatever the program's code: the line decides.
	while IFS= read -r line; do
		if [[ "$line" =~ ^configuration:\ ([A-Z0-9_]+):\ (.*)$ ]]; then
			var="${BASH_REMATCH[1]}"
			reason="${BASH_REMATCH[2]}"
			if [[ "$(setting_of "$var")" != "$var" ]]; then
				reason+=" (the function's ${var})"
			fi
			die_setting "$(setting_of "$var")" "$reason"
		fi
	done <<<"$check_out"
	printf '%s\n' "$check_out" >&2
	die "${check_cmd[*]} failed (exit $check_rc) without naming a setting"
fi

# --- gcloud helpers -----------------------------------------------------------------

# quote ARG: ARG as the shell would need it, for printing commands.
quote() {
	if [[ "$1" =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then
		printf '%s' "$1"
	else
		printf "'%s'" "${1//\'/\'\\\'\'}"
	fi
}

# show ARGS...: print a command line.
show() {
	local line="" a
	for a in "$@"; do
		line+=" $(quote "$a")"
	done
	printf '%s\n' "${line# }"
}

OUT=""
ERR_FILE=""
if ((DRY_RUN == 0)); then
	command -v gcloud >/dev/null || die "gcloud is not on PATH (https://cloud.google.com/sdk/docs/install)"
	ERR_FILE="$(mktemp)"
	trap 'rm -f "$ERR_FILE"' EXIT
fi

# check ARGS...: a read-only gcloud call (describe, list, get-iam-policy).
# Returns 0 with its output in OUT, or 1 when gcloud answers NOT_FOUND. Any
# other failure (permission denied, network, ...) stops the script: it must not
# be taken for "missing" and answered with a create. In a dry run the call is
# printed, not run, and counts as "not found" (the fresh-project plan).
check() {
	OUT=""
	if ((DRY_RUN)); then
		printf '%s   # check\n' "$(show gcloud "$@")"
		return 1
	fi
	local rc=0
	OUT="$(gcloud "$@" 2>"$ERR_FILE")" || rc=$?
	((rc != 0)) || return 0
	if grep -qiE 'NOT_FOUND|not found|does not exist|status=\[404\]' "$ERR_FILE"; then
		return 1
	fi
	cat "$ERR_FILE" >&2
	die "$(show gcloud "$@") failed (exit $rc)"
}

# run ARGS...: a gcloud call that changes something. Printed first; in a dry
# run only printed.
run() {
	if ((DRY_RUN)); then
		show gcloud "$@"
		return 0
	fi
	printf '+ %s\n' "$(show gcloud "$@")"
	gcloud "$@" || die "$(show gcloud "$@") failed"
}

# run_iam ARGS...: like run, retried for up to a minute: a service account or
# resource created moments ago may not be visible to IAM yet.
run_iam() {
	if ((DRY_RUN)); then
		show gcloud "$@"
		return 0
	fi
	printf '+ %s\n' "$(show gcloud "$@")"
	local i pause="${DEPLOY_RETRY_SECONDS:-4}"
	for i in 1 2 3 4 5 6; do
		if gcloud "$@" >/dev/null 2>"$ERR_FILE"; then
			return 0
		fi
		if ((i < 6)); then
			warn "attempt $i failed, retrying in $((i * pause))s: $(tail -n 1 "$ERR_FILE")"
			sleep $((i * pause))
		fi
	done
	cat "$ERR_FILE" >&2
	die "$(show gcloud "$@") failed"
}

# status WHAT STATE: one line per resource.
status() {
	if ((DRY_RUN == 0)); then
		printf '%-70s %s\n' "$1" "$2"
	fi
}

# ensure_binding ROLE MEMBER GROUP RESOURCE [FLAGS...]: grant ROLE to MEMBER on
# one resource of the gcloud command group GROUP ("pubsub topics", "secrets",
# ...), reading the current policy first and adding the binding only when it is
# missing. It grants on single resources only; the build service account's
# roles (step 9) and the ledger's conditioned grant (step 8) are the only
# project-level grants.
ensure_binding() {
	local role="$1" member="$2" group resource="$4"
	read -ra group <<<"$3"
	shift 4
	if check "${group[@]}" get-iam-policy "$resource" "$@" \
		'--flatten=bindings[].members' '--format=value(bindings.role,bindings.members)' &&
		grep -qxF "${role}"$'\t'"${member}" <<<"$OUT"; then
		status "IAM ${role} for ${member#*:} on ${resource##*/}" unchanged
		return 0
	fi
	run_iam "${group[@]}" add-iam-policy-binding "$resource" "$@" \
		"--member=${member}" "--role=${role}"
	status "IAM ${role} for ${member#*:} on ${resource##*/}" added
}

# ensure_subscription NAME TOPIC [FLAGS...]: a never-expiring pull subscription
# NAME on TOPIC, created with FLAGS when it does not exist. An existing one is
# left as it is.
ensure_subscription() {
	local name="$1" topic="$2"
	shift 2
	if check pubsub subscriptions describe "$name" "--project=${PROJECT}" '--format=value(name)'; then
		status "subscription ${name}" unchanged
	else
		run pubsub subscriptions create "$name" "--project=${PROJECT}" \
			"--topic=${topic}" --expiration-period=never "$@"
		status "subscription ${name}" created
	fi
}

# --- the plan ------------------------------------------------------------------------
if ((DRY_RUN)); then
	echo "# deploy.sh --dry-run: the gcloud commands for a fresh project, in order; none is run."
	echo "# Lines marked '# check' only read; in a dry run they are assumed to find nothing."
	echo "# PROJECT_NUMBER, TRIGGER and TRIGGER_SUBSCRIPTION stand for values that those checks would read."
	[[ -z "$WORKSPACE_TRIGGER" ]] || echo "# SINK_WRITER_IDENTITY stands for the writer identity of the new log sink."
fi
echo "# project ${PROJECT}, region ${REGION}, function ${FUNCTION}"
echo "# budget: ${CHAT_WRITES_PER_MINUTE} writes/min and ${CHAT_READS_PER_MINUTE} reads/min for the project over ${MAX_INSTANCES} instance(s)"
echo "#   = ${WRITES_PER_INSTANCE} writes/min and ${READS_PER_INSTANCE} reads/min per instance; concurrency ${CONCURRENCY} (bounds ${CONCURRENCY_LOWER}..${CONCURRENCY_UPPER})"

# 0. What `gcloud functions deploy --source=.` would upload (.gcloudignore
#    allows go.mod, go.sum and the function's .go files): nothing may look
#    like a credential. Checked before anything is changed, whether or not
#    the function is deployed in this run, and named file by file.
if check meta list-files-for-upload .; then
	leaks=()
	while IFS= read -r f; do
		[[ -n "$f" ]] || continue
		case "${f##*/}" in
		*.json | *.pem | *.p12 | *.pfx | *.p8 | *.key)
			# client_secret*.json, the refresh token of cmd/authorize --out,
			# service account keys, certificates and private keys.
			leaks+=("$f")
			;;
		*.go | go.mod | go.sum) ;;
		*)
			# Any other file: by content (an authorized_user credential,
			# an OAuth client or a key, whatever the file is called).
			if [[ -f "$f" ]] && grep -qE '"(refresh_token|client_secret|private_key)"|-----BEGIN [A-Z ]*PRIVATE KEY-----' -- "$f"; then
				leaks+=("$f")
			fi
			;;
		esac
	done <<<"$OUT"
	if ((${#leaks[@]} > 0)); then
		printf 'deploy.sh: refusing to deploy: these files look like credentials and would be uploaded with the source (gcloud meta list-files-for-upload .):\n' >&2
		printf '  %s\n' "${leaks[@]}" >&2
		printf 'Move them out of %s (and keep .gcloudignore an allow-list of the build'"'"'s files); nothing was changed.\n' "$PWD" >&2
		exit 3
	fi
	status "upload: $(grep -c . <<<"$OUT") files, no credentials" checked
elif ((DRY_RUN == 0)); then
	die "gcloud meta list-files-for-upload . listed nothing"
fi

# 1. The project, and its number (for the Pub/Sub service agent).
PROJECT_NUMBER=PROJECT_NUMBER
if check projects describe "$PROJECT" '--format=value(projectNumber)'; then
	PROJECT_NUMBER="$OUT"
	[[ "$PROJECT_NUMBER" =~ ^[0-9]+$ ]] || die "unexpected project number \"$PROJECT_NUMBER\" for $PROJECT"
elif ((DRY_RUN == 0)); then
	die "project $PROJECT not found, or no permission to see it"
fi
PUBSUB_AGENT="serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"

# 2. APIs, before anything is created.
missing_apis=()
if check services list --enabled "--project=${PROJECT}" '--format=value(config.name)'; then
	for api in "${APIS[@]}"; do
		grep -qxF "$api" <<<"$OUT" || missing_apis+=("$api")
	done
else
	missing_apis=("${APIS[@]}")
fi
if ((${#missing_apis[@]} > 0)); then
	run services enable "${missing_apis[@]}" "--project=${PROJECT}"
	status "APIs ${missing_apis[*]}" enabled
else
	status "APIs ${APIS[*]}" unchanged
fi

# 3. Topics: requests (the trigger, and fan-out), results, dead letters, and
#    with --approvers the approval topic.
TOPICS=("$REQUEST_TOPIC" "$RESULT_TOPIC" "$DEAD_LETTER_TOPIC")
[[ -z "$APPROVERS" ]] || TOPICS+=("$APPROVAL_TOPIC")
for topic in "${TOPICS[@]}"; do
	if check pubsub topics describe "$topic" "--project=${PROJECT}" '--format=value(name)'; then
		status "topic ${topic}" unchanged
	else
		run pubsub topics create "$topic" "--project=${PROJECT}"
		status "topic ${topic}" created
	fi
done

# 4. Pull subscriptions that keep what the function publishes: a topic without
#    subscriptions drops every message published to it. Both never expire.
#    They are created before the function, so that its very first result is
#    kept. The results subscription is the record of every decision, read by
#    operators with their own rights (no binding is granted on it); it keeps
#    messages 7 days. The dead-letter one keeps them the 31 days Pub/Sub allows.
ensure_subscription "$RESULT_SUBSCRIPTION" "$RESULT_TOPIC" --message-retention-duration=7d
ensure_subscription "$DEAD_LETTER_SUBSCRIPTION" "$DEAD_LETTER_TOPIC" --message-retention-duration=31d --ack-deadline=60

# 5. The secret (its versions are added by `go run ./cmd/authorize`).
if check secrets describe "$SECRET" "--project=${PROJECT}" '--format=value(name)'; then
	status "secret ${SECRET}" unchanged
else
	run secrets create "$SECRET" "--project=${PROJECT}" --replication-policy=automatic
	status "secret ${SECRET}" created
fi
# The function reads versions/latest, which Secret Manager documents as the
# most recently created version, whatever its state: an older enabled version
# does not help when the newest is disabled. So the newest one is described
# (NOT_FOUND: no version yet).
secret_latest_state=""
secret_latest_version=""
if check secrets versions describe latest "--secret=${SECRET}" "--project=${PROJECT}" '--format=value(name,state)'; then
	secret_latest_state="${OUT#*$'\t'}"
	secret_latest_version="${OUT%%$'\t'*}"
	secret_latest_version="${secret_latest_version##*/}"
fi

# 6. The ledger (package ledger, issue 13): a Firestore database in native
#    mode, created in the function's region when it does not exist (an
#    existing one is used wherever it is, and must be in native mode), and a
#    TTL policy on expireAt for each of its collection groups, so that
#    Firestore deletes each record once its expireAt (its last write +
#    LEDGER_RETENTION) has passed. The policies are listed first and only the
#    missing ones are set (an ACTIVE or CREATING policy is left alone; one
#    that NEEDS_REPAIR is set again); setting one that exists would be
#    harmless too: `ttls update --enable-ttl` on a field that already is the
#    TTL field changes nothing.
if check firestore databases describe "--database=${FIRESTORE_DATABASE}" "--project=${PROJECT}" '--format=value(type,locationId)'; then
	db_type="${OUT%%$'\t'*}"
	db_location="${OUT#*$'\t'}"
	[[ "$db_type" == FIRESTORE_NATIVE ]] ||
		die "Firestore database ${FIRESTORE_DATABASE} of ${PROJECT} is ${db_type:-of an unknown type}, not FIRESTORE_NATIVE: the ledger needs native mode; name another database with --firestore-database"
	status "Firestore database ${FIRESTORE_DATABASE} (native, ${db_location})" unchanged
else
	run firestore databases create "--database=${FIRESTORE_DATABASE}" "--location=${REGION}" \
		--type=firestore-native "--project=${PROJECT}"
	status "Firestore database ${FIRESTORE_DATABASE} (native, ${REGION})" created
fi
ttl_fields=""
if check firestore fields ttls list "--database=${FIRESTORE_DATABASE}" "--project=${PROJECT}" '--format=value(name,ttlConfig.state)'; then
	ttl_fields="$OUT"
fi
for group in "${LEDGER_GROUPS[@]}"; do
	if grep -qE "/collectionGroups/${group}/fields/${LEDGER_TTL_FIELD}"$'\t'"(ACTIVE|CREATING)$" <<<"$ttl_fields"; then
		status "TTL on ${group}.${LEDGER_TTL_FIELD} in ${FIRESTORE_DATABASE}" unchanged
		continue
	fi
	run firestore fields ttls update "$LEDGER_TTL_FIELD" "--collection-group=${group}" --enable-ttl \
		"--database=${FIRESTORE_DATABASE}" "--project=${PROJECT}"
	status "TTL on ${group}.${LEDGER_TTL_FIELD} in ${FIRESTORE_DATABASE}" set
done

# 7. The runtime service account.
if check iam service-accounts describe "$SA_EMAIL" "--project=${PROJECT}" '--format=value(email)'; then
	status "service account ${SA_EMAIL}" unchanged
else
	run iam service-accounts create "$SERVICE_ACCOUNT" "--project=${PROJECT}" \
		"--display-name=chat-offboard runtime (${FUNCTION})" \
		"--description=Runs the ${FUNCTION} function: reads one secret, publishes to two topics, keeps its ledger in Firestore"
	status "service account ${SA_EMAIL}" created
fi

# 8. Least privilege for the runtime service account: on single resources
#    only (the ledger's database through an IAM condition).
ensure_binding roles/secretmanager.secretAccessor "$SA_MEMBER" secrets "$SECRET" "--project=${PROJECT}"
ensure_binding roles/pubsub.publisher "$SA_MEMBER" "pubsub topics" "$RESULT_TOPIC" "--project=${PROJECT}"
ensure_binding roles/pubsub.publisher "$SA_MEMBER" "pubsub topics" "$REQUEST_TOPIC" "--project=${PROJECT}"
# The same account is the trigger's identity: Pub/Sub mints its OIDC tokens
# for the push to the function (projects created before April 2021 lack this
# project-wide; granting it on this one account is enough).
ensure_binding roles/iam.serviceAccountTokenCreator "$PUBSUB_AGENT" "iam service-accounts" "$SA_EMAIL" "--project=${PROJECT}"
# The ledger: Firestore has no per-database IAM policy, so roles/datastore.user
# (read and write documents; no admin, index or TTL rights) is granted on the
# project with an IAM condition that confines it to the ledger's database.
# The policy is read first (with the conditions' expressions) and the binding
# is added only when this role, member and condition are not there yet.
if check projects get-iam-policy "$PROJECT" \
	'--flatten=bindings[].members' '--format=value(bindings.role,bindings.members,bindings.condition.expression)' &&
	grep -qxF "roles/datastore.user"$'\t'"${SA_MEMBER}"$'\t'"${LEDGER_CONDITION_EXPRESSION}" <<<"$OUT"; then
	status "IAM roles/datastore.user for ${SA_EMAIL} on database ${FIRESTORE_DATABASE}" unchanged
else
	run_iam projects add-iam-policy-binding "$PROJECT" \
		"--member=${SA_MEMBER}" --role=roles/datastore.user \
		"--condition=expression=${LEDGER_CONDITION_EXPRESSION},title=${LEDGER_CONDITION_TITLE}"
	status "IAM roles/datastore.user for ${SA_EMAIL} on database ${FIRESTORE_DATABASE}" added
fi

# 9. The build service account: Cloud Build builds the function's image as
#    this account instead of the project's default build or Compute Engine
#    account (which may have broad rights, or none since July 2024). It gets
#    the roles Google documents for a custom build service account (Custom
#    Service Account for Cloud Build): running builds, writing their logs,
#    pushing the image to Artifact Registry and reading the uploaded source.
#    These are project-level, the only unconditioned grants deploy.sh makes
#    there: the build logs, the gcf-artifacts repository and the sources
#    bucket are created by Cloud Functions itself. The account runs builds only; nothing runs as it.
if check iam service-accounts describe "$BUILD_SA_EMAIL" "--project=${PROJECT}" '--format=value(email)'; then
	status "service account ${BUILD_SA_EMAIL}" unchanged
else
	run iam service-accounts create "$BUILD_SERVICE_ACCOUNT" "--project=${PROJECT}" \
		"--display-name=chat-offboard build (${FUNCTION})" \
		"--description=Builds the ${FUNCTION} function in Cloud Build; runs nothing else"
	status "service account ${BUILD_SA_EMAIL}" created
fi
for role in roles/cloudbuild.builds.builder roles/logging.logWriter roles/artifactregistry.writer roles/storage.objectViewer; do
	if check projects get-iam-policy "$PROJECT" \
		'--flatten=bindings[].members' '--format=value(bindings.role,bindings.members)' &&
		grep -qxF "${role}"$'\t'"${BUILD_SA_MEMBER}" <<<"$OUT"; then
		status "IAM ${role} for ${BUILD_SA_EMAIL} on project ${PROJECT}" unchanged
		continue
	fi
	run_iam projects add-iam-policy-binding "$PROJECT" \
		"--member=${BUILD_SA_MEMBER}" "--role=${role}" --condition=None
	status "IAM ${role} for ${BUILD_SA_EMAIL} on project ${PROJECT}" added
done

# 10. The function: deployed when missing, when it is not ACTIVE (a failed or
#    interrupted deployment leaves it FAILED, DEPLOYING or UNKNOWN, and such a
#    function handles no event), or when --redeploy asks.
function_exists=0
function_state=""
if check functions describe "$FUNCTION" "--region=${REGION}" "--project=${PROJECT}" '--format=value(state)'; then
	function_exists=1
	function_state="$OUT"
fi
if ((function_exists == 0 || REDEPLOY)) || [[ "$function_state" != ACTIVE ]]; then
	run functions deploy "$FUNCTION" --gen2 --runtime=go126 --entry-point=RemoveMembership \
		"--trigger-topic=${REQUEST_TOPIC}" --retry --source=. \
		"--region=${REGION}" "--project=${PROJECT}" \
		"--service-account=${SA_EMAIL}" "--trigger-service-account=${SA_EMAIL}" \
		"--build-service-account=projects/${PROJECT}/serviceAccounts/${BUILD_SA_EMAIL}" \
		--ingress-settings=internal-only \
		"--max-instances=${MAX_INSTANCES}" "--concurrency=${CONCURRENCY}" \
		"--cpu=${CPU}" "--memory=${MEMORY}" "--timeout=${TIMEOUT_S}s" \
		"--set-env-vars=${ENV_ARG}" --quiet
	if ((function_exists == 0)); then
		status "function ${FUNCTION}" deployed
	elif [[ "$function_state" != ACTIVE ]]; then
		status "function ${FUNCTION}" "redeployed (was ${function_state:-without a state})"
	else
		status "function ${FUNCTION}" redeployed
	fi
else
	status "function ${FUNCTION}" "unchanged (--redeploy applies new code or settings)"
fi

# 11. The trigger (Eventarc, as the runtime service account) may invoke the
#    function's Cloud Run service; nothing else may.
ensure_binding roles/run.invoker "$SA_MEMBER" "run services" "$FUNCTION" "--region=${REGION}" "--project=${PROJECT}"

# 12. The trigger's subscription gets a dead-letter policy, and a retry
#     policy and retention set explicitly: exponential backoff from
#     MIN_RETRY_DELAY to MAX_RETRY_DELAY between deliveries, MAX_DELIVERY_ATTEMPTS
#     (100 by default: 56,430 s, 15.7 hours of retries at the least, so an
#     outage of 12 hours dead-letters nothing), messages kept 7 days.
TRIGGER=TRIGGER
TRIGGER_SUBSCRIPTION=TRIGGER_SUBSCRIPTION
if check functions describe "$FUNCTION" "--region=${REGION}" "--project=${PROJECT}" '--format=value(eventTrigger.trigger)'; then
	TRIGGER="${OUT##*/}"
	[[ -n "$TRIGGER" ]] || die "function $FUNCTION has no event trigger; was it deployed by another tool? (deploy.sh --redeploy replaces it)"
elif ((DRY_RUN == 0)); then
	die "function $FUNCTION not found after deployment"
fi
if check eventarc triggers describe "$TRIGGER" "--location=${REGION}" "--project=${PROJECT}" \
	'--format=value(transport.pubsub.subscription)'; then
	TRIGGER_SUBSCRIPTION="$OUT"
fi
if ((DRY_RUN == 0)) && [[ "$TRIGGER_SUBSCRIPTION" != projects/*/subscriptions/* ]]; then
	die "cannot find the Pub/Sub subscription of trigger $TRIGGER"
fi
if check pubsub subscriptions describe "$TRIGGER_SUBSCRIPTION" \
	'--format=value(deadLetterPolicy.deadLetterTopic,deadLetterPolicy.maxDeliveryAttempts,retryPolicy.minimumBackoff,retryPolicy.maximumBackoff,messageRetentionDuration)' &&
	[[ "$OUT" == "${DEAD_LETTER_TOPIC_NAME}"$'\t'"${MAX_DELIVERY_ATTEMPTS}"$'\t'"${MIN_RETRY_DELAY}"$'\t'"${MAX_RETRY_DELAY}"$'\t'"${REQUEST_RETENTION_S}" ]]; then
	status "delivery policy of ${TRIGGER_SUBSCRIPTION##*/}" unchanged
else
	run pubsub subscriptions update "$TRIGGER_SUBSCRIPTION" \
		"--dead-letter-topic=${DEAD_LETTER_TOPIC_NAME}" "--max-delivery-attempts=${MAX_DELIVERY_ATTEMPTS}" \
		"--min-retry-delay=${MIN_RETRY_DELAY}" "--max-retry-delay=${MAX_RETRY_DELAY}" \
		"--message-retention-duration=${REQUEST_RETENTION}"
	status "delivery policy of ${TRIGGER_SUBSCRIPTION##*/}" set
fi

# 13. The Pub/Sub service agent forwards undeliverable messages: it must publish
#     to the dead-letter topic and acknowledge on the trigger's subscription.
ensure_binding roles/pubsub.publisher "$PUBSUB_AGENT" "pubsub topics" "$DEAD_LETTER_TOPIC" "--project=${PROJECT}"
ensure_binding roles/pubsub.subscriber "$PUBSUB_AGENT" "pubsub subscriptions" "$TRIGGER_SUBSCRIPTION"

# 14. The Workspace trigger (--workspace-trigger): the organization's sink,
#     described first; created when missing, updated (and enabled) when its
#     destination, filter or state differ, else left alone. Its writer
#     identity, a service account Google manages for the sink, may publish to
#     the requests topic and to nothing else. It comes last, once the
#     function's subscription exists: a topic without subscriptions drops
#     what is published to it.
if [[ -n "$WORKSPACE_TRIGGER" ]]; then
	echo "# Workspace trigger: organization ${WORKSPACE_TRIGGER}; the sink needs roles/logging.configWriter on it (or roles/logging.admin)"
	[[ -n "$AUTO_OFFBOARD_DOMAINS" ]] ||
		warn "AUTO_OFFBOARD_DOMAINS is not set: the function acknowledges the Workspace entries without acting until it is (--auto-offboard-domains, then --redeploy)"
	SINK_ORG="--organization=${WORKSPACE_TRIGGER}"
	if check logging sinks describe "$WORKSPACE_SINK" "$SINK_ORG" '--format=value(destination,filter,disabled)'; then
		sink_destination="${OUT%%$'\t'*}"
		sink_rest="${OUT#*$'\t'}"
		sink_filter="${sink_rest%%$'\t'*}"
		sink_disabled="${sink_rest#*$'\t'}"
		if [[ "$sink_destination" == "$WORKSPACE_DESTINATION" && "$sink_filter" == "$WORKSPACE_FILTER" &&
			! "$sink_disabled" =~ ^[Tt]rue$ ]]; then
			status "log sink ${WORKSPACE_SINK} on organization ${WORKSPACE_TRIGGER}" unchanged
		else
			run logging sinks update "$WORKSPACE_SINK" "$WORKSPACE_DESTINATION" "$SINK_ORG" \
				"--log-filter=${WORKSPACE_FILTER}" --no-disabled
			status "log sink ${WORKSPACE_SINK} on organization ${WORKSPACE_TRIGGER}" updated
		fi
	else
		run logging sinks create "$WORKSPACE_SINK" "$WORKSPACE_DESTINATION" "$SINK_ORG" \
			"--log-filter=${WORKSPACE_FILTER}"
		status "log sink ${WORKSPACE_SINK} on organization ${WORKSPACE_TRIGGER}" created
	fi
	SINK_WRITER=SINK_WRITER_IDENTITY
	if check logging sinks describe "$WORKSPACE_SINK" "$SINK_ORG" '--format=value(writerIdentity)'; then
		SINK_WRITER="$OUT"
		[[ "$SINK_WRITER" =~ ^serviceAccount:[^[:space:]]+@[^[:space:]]+$ ]] ||
			die "unexpected writer identity \"$SINK_WRITER\" of log sink $WORKSPACE_SINK"
	elif ((DRY_RUN == 0)); then
		die "log sink $WORKSPACE_SINK not found on organization $WORKSPACE_TRIGGER after it was created"
	fi
	ensure_binding roles/pubsub.publisher "$SINK_WRITER" "pubsub topics" "$REQUEST_TOPIC" "--project=${PROJECT}"
fi

# 14b. Oversight (issue 23). With --approvers: the approval topic (step 3)
#     gets its own Eventarc trigger to the function, as the runtime service
#     account, and only the approvers may publish to it (the function acts
#     on approvals, rejections and cancels from that topic only). With
#     --workspace-trigger: a Cloud Scheduler job publishes the due tick
#     {"requestId":"due","due":true} to the requests topic on DUE_SCHEDULE,
#     which releases what its grace period held; created when missing,
#     updated when its schedule or topic differ.
if [[ -n "$APPROVERS" ]]; then
	APPROVAL_TRIGGER="${FUNCTION}-approvals"
	if check eventarc triggers describe "$APPROVAL_TRIGGER" "--location=${REGION}" "--project=${PROJECT}" \
		'--format=value(transport.pubsub.topic)'; then
		status "trigger ${APPROVAL_TRIGGER}" unchanged
	else
		run eventarc triggers create "$APPROVAL_TRIGGER" "--location=${REGION}" "--project=${PROJECT}" \
			"--destination-run-service=${FUNCTION}" "--destination-run-region=${REGION}" \
			--event-filters=type=google.cloud.pubsub.topic.v1.messagePublished \
			"--transport-topic=projects/${PROJECT}/topics/${APPROVAL_TOPIC}" "--service-account=${SA_EMAIL}"
		status "trigger ${APPROVAL_TRIGGER}" created
	fi
	for m in "${APPROVER_LIST[@]}"; do
		ensure_binding roles/pubsub.publisher "$m" "pubsub topics" "$APPROVAL_TOPIC" "--project=${PROJECT}"
	done
elif [[ -n "$WORKSPACE_TRIGGER" ]]; then
	warn "no --approvers: a Workspace sweep held by the brake (AUTO_OFFBOARD_MAX_PER_HOUR) can then never be approved"
fi
if [[ -n "$WORKSPACE_TRIGGER" ]]; then
	DUE_JOB="${FUNCTION}-due"
	DUE_BODY='{"requestId":"due","due":true}'
	if check scheduler jobs describe "$DUE_JOB" "--location=${REGION}" "--project=${PROJECT}" \
		'--format=value(schedule,pubsubTarget.topicName)'; then
		if [[ "$OUT" == "${DUE_SCHEDULE}"$'\t'"${REQUEST_TOPIC_NAME}" ]]; then
			status "scheduler job ${DUE_JOB}" unchanged
		else
			run scheduler jobs update pubsub "$DUE_JOB" "--location=${REGION}" "--project=${PROJECT}" \
				"--schedule=${DUE_SCHEDULE}" "--topic=${REQUEST_TOPIC_NAME}" "--message-body=${DUE_BODY}"
			status "scheduler job ${DUE_JOB}" updated
		fi
	else
		run scheduler jobs create pubsub "$DUE_JOB" "--location=${REGION}" "--project=${PROJECT}" \
			"--schedule=${DUE_SCHEDULE}" "--topic=${REQUEST_TOPIC_NAME}" "--message-body=${DUE_BODY}"
		status "scheduler job ${DUE_JOB}" created
	fi
fi

# 15. Alerts and the dashboard (monitoring/): log-based metrics read from the
#     function's log lines, alert policies on them and on the dead letters, and
#     a dashboard. Each definition is a JSON file of the repository; it is
#     rendered (${FUNCTION}, ${PROJECT}, ${DEAD_LETTER_SUBSCRIPTION}) and
#     stamped with a hash of its rendered text (${CONFIG_HASH}: in a metric's
#     description, a policy's userLabels.config_hash, the dashboard's
#     labels.config_hash), so that what exists with the same hash is left
#     alone, and what differs is updated to the repository's definition.
MON_DIR=monitoring # deploy.sh runs in its own directory (above)
[[ -d "$MON_DIR" ]] || die "$MON_DIR is missing: run deploy.sh from a checkout of the repository"
CHANNEL=""
if [[ -n "$NOTIFICATION_CHANNEL" ]]; then
	CHANNEL="$NOTIFICATION_CHANNEL"
elif [[ -n "$ALERT_EMAIL" ]]; then
	channel_filter="type=\"email\" AND labels.email_address=\"${ALERT_EMAIL}\""
	if check beta monitoring channels list "--project=${PROJECT}" "--filter=${channel_filter}" '--format=value(name)' &&
		[[ -n "$OUT" ]]; then
		CHANNEL="${OUT%%$'\n'*}"
		status "notification channel ${ALERT_EMAIL}" unchanged
	else
		run beta monitoring channels create "--project=${PROJECT}" --type=email \
			"--display-name=chat-offboard alerts (${ALERT_EMAIL})" "--channel-labels=email_address=${ALERT_EMAIL}"
		CHANNEL=NOTIFICATION_CHANNEL
		if check beta monitoring channels list "--project=${PROJECT}" "--filter=${channel_filter}" '--format=value(name)'; then
			CHANNEL="${OUT%%$'\n'*}"
		elif ((DRY_RUN == 0)); then
			die "the notification channel for ${ALERT_EMAIL} was not found after it was created"
		fi
		status "notification channel ${ALERT_EMAIL}" created
	fi
fi
[[ -n "$CHANNEL" ]] ||
	warn "no --alert-email or --notification-channel: the alert policies open incidents in the console and notify nobody"

# render TEMPLATE: the file TEMPLATE with this deployment's names, and the
# policies' notification channel, written to RENDERED (a temporary file; in a
# dry run the template's own path is shown); its hash in HASH, its first
# displayName in DISPLAY_NAME.
RENDER_DIR=""
render() {
	local text
	text="$(<"$1")"
	# shellcheck disable=SC2016 # the patterns are the templates' literal ${NAME}s
	text="${text//'${FUNCTION}'/$FUNCTION}"
	# shellcheck disable=SC2016
	text="${text//'${PROJECT}'/$PROJECT}"
	# shellcheck disable=SC2016
	text="${text//'${DEAD_LETTER_SUBSCRIPTION}'/$DEAD_LETTER_SUBSCRIPTION}"
	if [[ -n "$CHANNEL" && "$1" == */policies/* ]]; then
		text="{\"notificationChannels\": [\"${CHANNEL}\"],${text#\{}"
	fi
	HASH="$(printf '%s' "$text" | sha256sum)"
	HASH="${HASH:0:16}"
	# shellcheck disable=SC2016
	text="${text//'${CONFIG_HASH}'/$HASH}"
	DISPLAY_NAME=""
	if [[ "$text" =~ \"displayName\":\ \"([^\"]*)\" ]]; then
		DISPLAY_NAME="${BASH_REMATCH[1]}"
	fi
	RENDERED="$1"
	if ((DRY_RUN == 0)); then
		if [[ -z "$RENDER_DIR" ]]; then
			RENDER_DIR="$(mktemp -d)"
			trap 'rm -f "$ERR_FILE"; rm -rf "$RENDER_DIR"' EXIT
		fi
		RENDERED="${RENDER_DIR}/${1##*/}"
		printf '%s\n' "$text" >"$RENDERED"
	fi
}

# ensure_log_metric TEMPLATE: the log-based metric <function>-<file name>.
ensure_log_metric() {
	local name
	name="${FUNCTION}-$(basename "$1" .json)"
	render "$1"
	if check logging metrics describe "$name" "--project=${PROJECT}" '--format=value(description)'; then
		if [[ "$OUT" == *"[config ${HASH}]" ]]; then
			status "log-based metric ${name}" unchanged
			return 0
		fi
		run logging metrics update "$name" "--project=${PROJECT}" "--config-from-file=${RENDERED}"
		status "log-based metric ${name}" updated
	else
		run logging metrics create "$name" "--project=${PROJECT}" "--config-from-file=${RENDERED}"
		status "log-based metric ${name}" created
	fi
}

# ensure_monitoring KIND TEMPLATE: an alert policy (KIND "policies") or a
# dashboard (KIND "dashboards") found by its display name and its hash label.
ensure_monitoring() {
	local kind="$1" display labels=userLabels flag=--policy-from-file
	render "$2"
	display="$DISPLAY_NAME"
	[[ -n "$display" ]] || die "$2 has no displayName"
	if [[ "$kind" == dashboards ]]; then
		labels=labels
		flag=--config-from-file
	fi
	if check monitoring "$kind" list "--project=${PROJECT}" "--filter=displayName=\"${display}\"" \
		"--format=value(name,${labels}.config_hash)" && [[ -n "$OUT" ]]; then
		if [[ "${OUT#*$'\t'}" == "$HASH" ]]; then
			status "${kind%s} \"${display}\"" unchanged
			return 0
		fi
		run monitoring "$kind" update "${OUT%%$'\t'*}" "--project=${PROJECT}" "${flag}=${RENDERED}"
		status "${kind%s} \"${display}\"" updated
	else
		run monitoring "$kind" create "--project=${PROJECT}" "${flag}=${RENDERED}"
		status "${kind%s} \"${display}\"" created
	fi
}

for f in "$MON_DIR"/metrics/*.json; do
	ensure_log_metric "$f"
done
for f in "$MON_DIR"/policies/*.json; do
	ensure_monitoring policies "$f"
done
ensure_monitoring dashboards "$MON_DIR/dashboard.json"

# --- what next ------------------------------------------------------------------------
if ((DRY_RUN)); then
	echo "# end of plan"
else
	echo "deploy.sh: done"
fi
if [[ -z "$secret_latest_state" ]]; then
	cat <<EOF

The secret ${SECRET} has no version yet: store the delegated admin's
consent first (see docs/operators.md), e.g.

  go run ./cmd/authorize --client-secrets client_secret.json --secret ${SECRET_NAME}
EOF
elif [[ "$secret_latest_state" != ENABLED ]]; then
	cat <<EOF

WARNING: the newest version (${secret_latest_version}) of the secret ${SECRET} is
${secret_latest_state}. The function reads versions/latest, the most recently
created version, so every event fails (FAILED_PRECONDITION) even though an
older version may be enabled. Enable it again, or add a new version:

  gcloud secrets versions enable ${secret_latest_version} --secret=${SECRET} --project=${PROJECT}
  go run ./cmd/authorize --client-secrets client_secret.json --secret ${SECRET_NAME}

Roll back by adding a version, never by disabling the newest (docs/operators.md).
EOF
fi
cat <<EOF

Publish a first request (a dry run: it removes nothing, and reports what it would do):

  gcloud pubsub topics publish ${REQUEST_TOPIC} --project=${PROJECT} \\
    --message='{"requestId":"first-test","space":"spaces/SPACE_ID","member":"users/someone@example.com","dryRun":true,"reason":"deployment test"}'

Every result (a CloudEvent on the topic ${RESULT_TOPIC}) is kept for 7 days in
the subscription ${RESULT_SUBSCRIPTION}, the audit record. Read them without
acknowledging them (an acknowledged result is deleted from the subscription):

  gcloud pubsub subscriptions pull ${RESULT_SUBSCRIPTION} --project=${PROJECT} --limit=10 --format=json

Requests that failed ${MAX_DELIVERY_ATTEMPTS} deliveries are kept in ${DEAD_LETTER_SUBSCRIPTION}:

  gcloud pubsub subscriptions pull ${DEAD_LETTER_SUBSCRIPTION} --project=${PROJECT} --limit=10

Logs: gcloud functions logs read ${FUNCTION} --region=${REGION} --project=${PROJECT}
EOF
if [[ -n "$WORKSPACE_TRIGGER" ]]; then
	cat <<EOF

Workspace trigger: the log sink ${WORKSPACE_SINK} of organization ${WORKSPACE_TRIGGER} routes the
Admin audit events of a user being suspended, archived or deleted to ${REQUEST_TOPIC}
(within minutes), and the function sweeps that person. Creating or changing the
sink needs roles/logging.configWriter on the organization. It only sees these
events while Google Workspace shares its audit logs with Google Cloud: turn on
Admin console > Account settings > Legal and compliance > Sharing options
(docs/operators.md). The function sweeps with the delegated admin's consent for
sweeps (go run ./cmd/authorize --sweeps ...), and only people of
AUTO_OFFBOARD_DOMAINS (${AUTO_OFFBOARD_DOMAINS:-not set: none}). For the rare missed event, reconcile daily:

  go run ./cmd/offboard reconcile --since 24h --organization=${WORKSPACE_TRIGGER} \\
    --project=${PROJECT} --topic=${REQUEST_TOPIC} --token-secret=${SECRET}
EOF
fi
