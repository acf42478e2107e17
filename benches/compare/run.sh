#!/usr/bin/env bash
# benches/compare/run.sh: Engine-Ops side by side with the tools a user would pick instead,
# in one run on one machine (issue 7). docs/performance.md explains the numbers.
#
#   bash benches/compare/run.sh                          # everything (~5 min on 2 cores once
#                                                        # the peers are installed and built)
#   SECTIONS="migrations concurrency" bash benches/compare/run.sh
#
# Sections (all by default, in this order):
#   migrations   1,000 trivial migrations applied from scratch, then status, on a SQLite file
#                (on disk, and on tmpfs) and on PostgreSQL: our `migrate` vs sqlx-cli vs
#                refinery_cli (which has no status command); alternating
#                rounds (the order rotates every round), a fresh database for every run,
#                medians and the ratio ours / sqlx-cli; then a syscall profile of one run of
#                each (strace -c -f), and transactions committed on PostgreSQL.
#   concurrency  RUNNERS runners of each tool started at once on one fresh PostgreSQL
#                database; time until all exited, exit codes, migrations applied once?
#   api          cargo bench --bench api_load: the api_versioning handler with and without
#                the engine-ops-apiver layers, over loopback.
#   memory       peak RSS (/usr/bin/time -v) of `migrate up` with 10,000 migrations on SQLite
#                (and of the peers doing the same), and of the blue_green example.
#   switch       cargo bench --bench switch_overhead: direct vs the traffic switch vs nginx.
#
# Environment (defaults in brackets):
#   SECTIONS [all]  ROUNDS [5]  MIGRATIONS [1000]  RUNNERS [8]  CONCURRENT_MIGRATIONS [1000]
#   CONCURRENT_ROUNDS [3]  MEMORY_MIGRATIONS [10000]  LOAD_ROUNDS [5]  LOAD_SECONDS [3]
#   PG_URL [$ENGINE_OPS_PG_URL or postgres://postgres@127.0.0.1:5432/test]: a superuser URL;
#          the script creates and drops its own databases named eo_perf_<pid>_*.
#   PG_PARAMS [sslmode=disable]: query parameters of the URL every tool gets (plain TCP on
#          loopback for all; set it empty to let each tool negotiate TLS as it does by default)
#   CARGO_TARGET_DIR [<repo>/target]
#
# Installs (idempotent; a second run reuses them): sqlx-cli and refinery_cli at pinned
# versions with `cargo install --locked --root benches/compare/.tools` (git-ignored; ~10 min
# of compiling on 2 cores the first time); as root, from Debian's packages when missing:
# sqlite3 (to check what each tool applied), strace, time, nginx-light. Scratch files go to
# benches/compare/.work/, results to benches/compare/results/<UTC time>.md (both git-ignored).
# Results (markdown) go to stdout and that file; progress goes to stderr.

set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TOOLS=$HERE/.tools
WORK=$HERE/.work
RESULTS_DIR=$HERE/results
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

SECTIONS=${SECTIONS:-"migrations concurrency api memory switch"}
ROUNDS=${ROUNDS:-5}
MIGRATIONS=${MIGRATIONS:-1000}
RUNNERS=${RUNNERS:-8}
CONCURRENT_MIGRATIONS=${CONCURRENT_MIGRATIONS:-1000}
CONCURRENT_ROUNDS=${CONCURRENT_ROUNDS:-3}
MEMORY_MIGRATIONS=${MEMORY_MIGRATIONS:-10000}
LOAD_ROUNDS=${LOAD_ROUNDS:-5}
LOAD_SECONDS=${LOAD_SECONDS:-3}
PG_URL=${PG_URL:-${ENGINE_OPS_PG_URL:-postgres://postgres@127.0.0.1:5432/test}}
PG_BASE=${PG_URL%%\?*}
PG_BASE=${PG_BASE%/*}
# Connection parameters for the tools' URLs. sqlx-cli (built with rustls) negotiates TLS with a
# server that offers it (sslmode=prefer); our CLI is built without TLS. Plain TCP for all three
# compares the migration work; the migrations section also times `status` with each tool's
# default, to show what the TLS handshake costs. PG_PARAMS= (empty) measures the defaults.
PG_PARAMS=${PG_PARAMS-sslmode=disable}

SQLX_CLI_VERSION=0.9.0
REFINERY_CLI_VERSION=0.10.0

OURS=$TARGET/release/migrate
SQLX=$TOOLS/bin/sqlx
REFINERY=$TOOLS/bin/refinery
PEERS=(ours sqlx refinery)

case "${1:-}" in
  -h | --help)
    sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  "") ;;
  *)
    echo "usage: bash benches/compare/run.sh [--help]   (configure with environment variables)" >&2
    exit 2
    ;;
esac

mkdir -p "$TOOLS" "$WORK" "$RESULTS_DIR"
RESULT_FILE=$RESULTS_DIR/$(date -u +%Y%m%dT%H%M%SZ).md
: >"$RESULT_FILE"

say() { printf '\n==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}
out() { printf '%s\n' "$*" | tee -a "$RESULT_FILE"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
# The median of the arguments (the mean of the two middle values for an even count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan"; exit }
    if (NR % 2) printf "%.4f\n", v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# ratio A B: A / B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# bench_table FILE: a bench's output, with the blank line markdown needs before a table.
bench_table() {
  local line previous=""
  while IFS= read -r line; do
    if [[ $line == "|"* && $previous != "|"* ]]; then out ""; fi
    if [[ $line != "|"* && $previous == "|"* ]]; then out ""; fi
    out "$line"
    previous=$line
  done <"$1"
}
ms() { awk -v s="$1" 'BEGIN { printf "%.1f", s * 1000 }'; }

# ---------------------------------------------------------------------------------------------
# Databases. Every run gets a fresh one; all of this run's PostgreSQL databases are dropped on
# exit, and those left by an earlier run that was killed (its pid gone) at the start.
pg() { PGOPTIONS=--client-min-messages=warning psql "$PG_URL" -v ON_ERROR_STOP=1 -Atqc "$1"; }
pg_drop() { pg "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null; }

cleanup() {
  local rc=$?
  jobs -p | xargs -r kill 2>/dev/null || true
  if command -v psql >/dev/null 2>&1; then
    for db in $(pg "SELECT datname FROM pg_database WHERE datname LIKE 'eo\_perf\_$$\_%'" 2>/dev/null); do
      pg_drop "$db" || true
    done
  fi
  rm -rf "$WORK/db" "$SHM_DIR"
  exit $rc
}
trap cleanup EXIT

# The database kinds: a SQLite file on the work tree's disk, a SQLite file on tmpfs (no disk
# waits: what is left is the tools' own work), and PostgreSQL.
engine() { case $1 in sqlite*) echo sqlite ;; *) echo "$1" ;; esac; }
SHM_DIR=/dev/shm/eo_perf_$$
# fresh_db KIND TAG: sets URL (and DBPATH for SQLite, DBNAME for PostgreSQL).
fresh_db() {
  case $1 in
    sqlite | sqlite-tmpfs)
      local dir=$WORK/db
      [[ $1 == sqlite ]] || dir=$SHM_DIR
      mkdir -p "$dir"
      DBPATH=$dir/$2.db
      rm -f "$DBPATH" "$DBPATH"-* "$DBPATH".migrate-lock
      : >"$DBPATH" # an empty file is an empty SQLite database: every tool opens the same
      URL=sqlite://$DBPATH
      ;;
    postgres)
      DBNAME=eo_perf_$$_$2
      pg_drop "$DBNAME"
      pg "CREATE DATABASE $DBNAME" >/dev/null
      URL=$PG_BASE/$DBNAME${PG_PARAMS:+?$PG_PARAMS}
      ;;
  esac
}
drop_db() {
  case $(engine "$1") in
    sqlite) rm -f "$DBPATH" "$DBPATH"-* "$DBPATH".migrate-lock ;;
    postgres) pg_drop "$DBNAME" ;;
  esac
}
query() {
  case $(engine "$1") in
    sqlite) sqlite3 "$DBPATH" "$2" ;;
    postgres) PGOPTIONS=--client-min-messages=warning psql "$URL" -v ON_ERROR_STOP=1 -Atqc "$2" ;;
  esac
}
ledger_table() {
  case $1 in
    ours) echo engine_ops_migrations ;;
    sqlx) echo _sqlx_migrations ;;
    refinery) echo refinery_schema_history ;;
  esac
}
# check_applied KIND TOOL N: sets APPLIED to "tables ledger_rows distinct_versions", and
# returns non-zero unless all three are N.
check_applied() {
  local tables rows
  case $(engine "$1") in
    sqlite) tables=$(query sqlite "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name GLOB 't[0-9]*'") ;;
    postgres) tables=$(query postgres "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename ~ '^t[0-9]+\$'") ;;
  esac
  rows=$(query "$1" "SELECT count(*) || ' ' || count(DISTINCT version) FROM $(ledger_table "$2")" 2>/dev/null || echo "0 0")
  APPLIED="$tables $rows"
  [[ $APPLIED == "$3 $3 $3" ]]
}

# ---------------------------------------------------------------------------------------------
# The tools. set_cmd TOOL OP DIR REFINERY_DIR: sets CMD (empty when the tool has no such op).
set_cmd() {
  local tool=$1 op=$2 dir=$3 ref=$4
  export REFINERY_DB_URL=$URL
  case "$tool/$op" in
    ours/up) CMD=("$OURS" --database-url "$URL" --source "$dir" up) ;;
    ours/status) CMD=("$OURS" --database-url "$URL" --source "$dir" status) ;;
    sqlx/up) CMD=("$SQLX" migrate run --source "$dir" --database-url "$URL") ;;
    sqlx/status) CMD=("$SQLX" migrate info --source "$dir" --database-url "$URL") ;;
    refinery/up) CMD=("$REFINERY" migrate -e REFINERY_DB_URL -p "$ref") ;;
    *) CMD=() ;;
  esac
}
show_cmd() {
  local s="${CMD[*]}"
  s=${s//$TARGET\//target/}
  s=${s//$ROOT\//}
  printf '%s' "$s"
}

# timed LOG: runs CMD with its output in LOG; sets ELAPSED (wall seconds), CPU (user + system
# seconds) and RC. The clock is bash's own ($EPOCHREALTIME, no fork inside the timed part).
timed() {
  local log=$1 t0 t1
  t0=$EPOCHREALTIME
  set +e
  /usr/bin/time -f '%U %S %M' -o "$log.rusage" "${CMD[@]}" >"$log" 2>&1
  RC=$?
  set -e
  t1=$EPOCHREALTIME
  ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
  CPU=$(tail -n 1 "$log.rusage" | awk '{ printf "%.3f", $1 + $2 }')
}

# gen_migrations DIR REFINERY_DIR N: N trivial migrations in sqlx's layout
# (NNNNN_create_tN.up.sql / .down.sql), and the same up SQL in refinery's naming
# (V{N}__create_tN.sql; refinery has no down migrations).
gen_migrations() {
  local dir=$1 ref=$2 n=$3 i name
  if [[ -f $dir/.complete && $(cat "$dir/.complete") == "$n" ]]; then return; fi
  rm -rf "$dir" "$ref"
  mkdir -p "$dir" "$ref"
  for ((i = 1; i <= n; i++)); do
    printf -v name '%05d_create_t%d' "$i" "$i"
    printf 'CREATE TABLE t%d (id INTEGER PRIMARY KEY);\n' "$i" >"$dir/$name.up.sql"
    printf 'DROP TABLE t%d;\n' "$i" >"$dir/$name.down.sql"
    printf 'CREATE TABLE t%d (id INTEGER PRIMARY KEY);\n' "$i" >"$ref/V${i}__create_t$i.sql"
  done
  echo "$n" >"$dir/.complete"
}

# ---------------------------------------------------------------------------------------------
# Setup.
apt_ensure() { # COMMAND PACKAGE
  if command -v "$1" >/dev/null 2>&1; then return 0; fi
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "apt-get install -y $2   (for $1)"
    apt-get install -y -qq "$2" >&2 || { apt-get update -qq >&2 && apt-get install -y -qq "$2" >&2; }
  fi
  command -v "$1" >/dev/null 2>&1
}
install_peer() { # CRATE VERSION CARGO-INSTALL-ARGS...
  local crate=$1 version=$2
  shift 2
  if cargo install --list --root "$TOOLS" 2>/dev/null | grep -q "^$crate v$version:"; then
    note "$crate $version: already in ${TOOLS#"$ROOT"/}"
    return
  fi
  say "cargo install $crate --version $version --locked --root ${TOOLS#"$ROOT"/} $*   (minutes on 2 cores)"
  cargo install "$crate" --version "$version" --locked --root "$TOOLS" "$@" >&2
}

say "setup: tools"
apt_ensure sqlite3 sqlite3 || die "sqlite3 is needed to check what each tool applied: apt-get install sqlite3"
apt_ensure strace strace || die "strace is needed for the profile: apt-get install strace"
apt_ensure /usr/bin/time time || die "/usr/bin/time is needed: apt-get install time"
apt_ensure psql postgresql-client || die "psql is needed: apt-get install postgresql-client"
if want switch; then apt_ensure nginx nginx-light || note "no nginx: the switch table will lack it"; fi
install_peer sqlx-cli "$SQLX_CLI_VERSION" --no-default-features --features rustls,postgres,sqlite
install_peer refinery_cli "$REFINERY_CLI_VERSION" --no-default-features --features postgresql,sqlite-bundled
say "cargo build --release -p engine-ops-migrate --features cli --bin migrate"
(cd "$ROOT" && cargo build --release -p engine-ops-migrate --features cli --bin migrate >&2)
[[ -x $OURS ]] || die "no $OURS after the build; is CARGO_TARGET_DIR the same as the build's?"
if want migrations || want concurrency; then
  pg "SELECT 1" >/dev/null || die "PostgreSQL at $PG_URL does not answer: start it, or set PG_URL"
  for db in $(pg "SELECT datname FROM pg_database WHERE datname LIKE 'eo\_perf\_%'"); do
    pid=${db#eo_perf_}
    pid=${pid%%_*}
    if ! kill -0 "$pid" 2>/dev/null; then
      note "dropping $db, left by an earlier run"
      pg_drop "$db"
    fi
  done
fi

# ---------------------------------------------------------------------------------------------
out "# Engine-Ops side by side: $(date -u '+%Y-%m-%d %H:%M UTC')"
out ""
out "Produced by \`bash benches/compare/run.sh\` (SECTIONS=\"$SECTIONS\")."
out ""
out "| machine | |"
out "|---|---|"
out "| CPUs (nproc) | $(nproc) |"
out "| CPU model | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') |"
out "| memory | $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) |"
out "| kernel | $(uname -sr) |"
out "| load average at start (1/5/15 min) | $(loadavg) |"
out "| rustc | $(rustc --version) |"
out "| ours | $("$OURS" --version) (release build) |"
out "| sqlx-cli | $("$SQLX" --version) (features rustls,postgres,sqlite) |"
out "| refinery_cli | refinery_cli $REFINERY_CLI_VERSION (features postgresql,sqlite-bundled) |"
out "| PostgreSQL | $(pg 'SHOW server_version') (fsync=$(pg 'SHOW fsync'), synchronous_commit=$(pg 'SHOW synchronous_commit')) |"
out "| filesystem of the SQLite files | $(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }') |"
out ""

# ---------------------------------------------------------------------------------------------
if want migrations; then
  say "migrations: generating $MIGRATIONS migrations in ${WORK#"$ROOT"/}/mig (sqlx layout) and ${WORK#"$ROOT"/}/mig-refinery (V{n}__name.sql)"
  gen_migrations "$WORK/mig" "$WORK/mig-refinery" "$MIGRATIONS"
  KINDS=(sqlite sqlite-tmpfs postgres)
  declare -A WALL=() CPUS=() STATUS=() LOAD=()
  for kind in "${KINDS[@]}"; do
    say "migrations on $kind: one warm-up round, then $ROUNDS rounds"
    load_before=$(loadavg)
    for ((round = -1; round < ROUNDS; round++)); do
      for ((i = 0; i < ${#PEERS[@]}; i++)); do
        tool=${PEERS[((round + 1 + i) % ${#PEERS[@]})]}
        fresh_db "$kind" "${tool}_$((round + 1))"
        set_cmd "$tool" up "$WORK/mig" "$WORK/mig-refinery"
        ((round >= 0)) || note "warm-up: $(show_cmd)"
        timed "$WORK/log.$kind.$tool.up"
        ((RC == 0)) || die "$kind: $(show_cmd) exited $RC; its output: $WORK/log.$kind.$tool.up"
        check_applied "$kind" "$tool" "$MIGRATIONS" ||
          die "$kind: $tool up left tables/ledger rows/versions = $APPLIED, expected $MIGRATIONS each"
        line="$kind round $((round + 1))/$ROUNDS: $tool up ${ELAPSED}s (cpu ${CPU}s)"
        if ((round >= 0)); then
          WALL[$kind/$tool]+=" $ELAPSED"
          CPUS[$kind/$tool]+=" $CPU"
        fi
        set_cmd "$tool" status "$WORK/mig" "$WORK/mig-refinery"
        if ((${#CMD[@]})); then
          timed "$WORK/log.$kind.$tool.status"
          ((RC == 0)) || die "$kind: $(show_cmd) exited $RC; its output: $WORK/log.$kind.$tool.status"
          ((round < 0)) || STATUS[$kind/$tool]+=" $ELAPSED"
          line+=", status ${ELAPSED}s"
        fi
        ((round < 0)) || note "$line"
        drop_db "$kind"
      done
    done
    LOAD[$kind]="$load_before → $(loadavg)"
  done

  # `status` on PostgreSQL with the URL as a user types it (no sslmode: each tool's default).
  declare -A STATUS_DEFAULT=()
  for tool in ours sqlx; do
    fresh_db postgres "tls_$tool"
    set_cmd "$tool" up "$WORK/mig" "$WORK/mig-refinery"
    timed "$WORK/log.tls.$tool.up"
    ((RC == 0)) || die "$(show_cmd) exited $RC: $WORK/log.tls.$tool.up"
    URL=$PG_BASE/$DBNAME
    set_cmd "$tool" status "$WORK/mig" "$WORK/mig-refinery"
    note "status with the tool's default TLS negotiation, $ROUNDS runs: $(show_cmd)"
    for ((round = 0; round < ROUNDS; round++)); do
      timed "$WORK/log.tls.$tool.status"
      ((RC == 0)) || die "$(show_cmd) exited $RC: $WORK/log.tls.$tool.status"
      STATUS_DEFAULT[$tool]+=" $ELAPSED"
    done
    drop_db postgres
  done

  out "## Migrations: $MIGRATIONS trivial migrations from scratch, then status"
  out ""
  out "Each migration is \`CREATE TABLE tN (id INTEGER PRIMARY KEY);\` in sqlx's layout (\`NNNNN_create_tN.up.sql\`"
  out "+ \`.down.sql\`); refinery reads the same SQL from a parallel folder named \`V{N}__create_tN.sql\`."
  out "$ROUNDS rounds after one warm-up round; the order of the tools rotates every round; every run"
  out "gets a fresh database (an empty SQLite file, or a new PostgreSQL database) created outside the"
  out "timed part, and is checked afterwards ($MIGRATIONS tables, $MIGRATIONS ledger rows, $MIGRATIONS distinct versions)."
  out "Wall time of the whole process (start, connect, read the files, ledger, apply, exit); CPU = user + system"
  out "(10 ms resolution). \`status\` runs right after each \`up\`, on the database it left."
  out ""
  for kind in "${KINDS[@]}"; do
    case $kind in
      sqlite) URL="sqlite://${WORK#"$ROOT"/}/db/RUN.db"; title="SQLite, a file on disk ($(df -T "$WORK" | awk 'NR == 2 { print $2 }'))" ;;
      sqlite-tmpfs) URL="sqlite://$SHM_DIR/RUN.db"; title="SQLite, a file on tmpfs (no disk waits: the tools' own cost)" ;;
      postgres) URL="$PG_BASE/eo_perf_RUN${PG_PARAMS:+?$PG_PARAMS}"; title="PostgreSQL $(pg 'SHOW server_version' | cut -d' ' -f1), loopback TCP" ;;
    esac
    out "### $title"
    out ""
    out "Load average (1/5/15 min) before → after: ${LOAD[$kind]}."
    out ""
    out "| tool | up: median s | ratio to sqlx-cli | up: CPU s (median) | status: median ms | ratio to sqlx-cli | every up run (s) |"
    out "|---|---|---|---|---|---|---|"
    # shellcheck disable=SC2086
    sqlx_up=$(median ${WALL[$kind/sqlx]})
    # shellcheck disable=SC2086
    sqlx_status=$(median ${STATUS[$kind/sqlx]})
    commands=()
    for tool in "${PEERS[@]}"; do
      set_cmd "$tool" up "$WORK/mig" "$WORK/mig-refinery"
      commands+=("$tool: \`$(show_cmd)\`")
      set_cmd "$tool" status "$WORK/mig" "$WORK/mig-refinery"
      ((${#CMD[@]} == 0)) || commands+=("$tool: \`$(show_cmd)\`")
      # shellcheck disable=SC2086
      up=$(median ${WALL[$kind/$tool]})
      # shellcheck disable=SC2086
      cpu=$(median ${CPUS[$kind/$tool]})
      if [[ -n ${STATUS[$kind/$tool]:-} ]]; then
        # shellcheck disable=SC2086
        status=$(median ${STATUS[$kind/$tool]})
        status_cols="$(ms "$status") | $(ratio "$status" "$sqlx_status")"
      else
        status_cols="no status command | –"
      fi
      out "| $tool | $up | $(ratio "$up" "$sqlx_up") | $cpu | $status_cols |${WALL[$kind/$tool]} |"
    done
    out ""
    out "Commands (REFINERY_DB_URL holds the same URL):"
    out ""
    for c in "${commands[@]}"; do out "- $c"; done
    out ""
  done
  out "refinery_cli has no status command (its subcommands are \`setup\` and \`migrate\`)."
  out ""
  out "PostgreSQL URLs above carry \`${PG_PARAMS:-(no parameters)}\`. \`status\` with the URL as a user"
  out "types it (\`$PG_BASE/DB\`, no sslmode: sqlx-cli built with rustls then negotiates TLS with a"
  out "server that offers it; ours, built without the \`tls\` feature, does not), $ROUNDS runs each"
  out "(server: ssl=$(pg 'SHOW ssl')):"
  out ""
  out "| tool | status, default URL: median ms | every run (ms) |"
  out "|---|---|---|"
  for tool in ours sqlx; do
    runs=""
    for v in ${STATUS_DEFAULT[$tool]}; do runs+=" $(ms "$v")"; done
    # shellcheck disable=SC2086
    out "| $tool | $(ms "$(median ${STATUS_DEFAULT[$tool]})") |$runs |"
  done
  out ""

  # --- profile: one more run of each under strace -c -f ---
  say "migrations: profile (strace -c -f, one run of each tool per database)"
  stat_calls() { # FILE SYSCALL...: the sum of the calls of those syscalls in a strace -c table
    local file=$1
    shift
    awk -v names=" $* " '$1 ~ /^[0-9.]+$/ && index(names, " " $NF " ") { n += $4 } END { print n + 0 }' "$file"
  }
  out "### Where the time goes: one run of each under \`strace -c -f\`"
  out ""
  out "SQLite on disk; calls of the whole process (all threads), $MIGRATIONS migrations."
  out "fsync: the durability waits; pwrite64: database and journal pages; write: mostly the progress"
  out "output; unlink: the rollback journal deleted at each commit; futex: threads handing work over."
  out ""
  out "| tool | fsync + fdatasync | pwrite64 | write | openat | unlink | futex | total syscalls | journal mode left in the file |"
  out "|---|---|---|---|---|---|---|---|---|"
  for tool in "${PEERS[@]}"; do
    fresh_db sqlite "profile_$tool"
    set_cmd "$tool" up "$WORK/mig" "$WORK/mig-refinery"
    note "strace -c -f -o ${WORK#"$ROOT"/}/strace.sqlite.$tool $(show_cmd)"
    strace -c -f -o "$WORK/strace.sqlite.$tool" "${CMD[@]}" >"$WORK/log.profile" 2>&1 ||
      die "$(show_cmd) under strace failed: $WORK/log.profile"
    f=$WORK/strace.sqlite.$tool
    out "| $tool | $(stat_calls "$f" fsync fdatasync) | $(stat_calls "$f" pwrite64 pwritev) | $(stat_calls "$f" write writev) | $(stat_calls "$f" openat open) | $(stat_calls "$f" unlink unlinkat) | $(stat_calls "$f" futex) | $(stat_calls "$f" total) | $(sqlite3 "$DBPATH" 'PRAGMA journal_mode') |"
    drop_db sqlite
  done
  out ""
  out "PostgreSQL: the client's socket sends (each is one request flushed to the server: the number"
  out "of round trips) and receives, and the transactions the server committed in the run's"
  out "database (\`pg_stat_database.xact_commit\`; each costs a WAL flush with synchronous_commit=on)."
  out ""
  out "| tool | sendto (round trips) | recvfrom | transactions committed | total syscalls |"
  out "|---|---|---|---|---|"
  for tool in "${PEERS[@]}"; do
    fresh_db postgres "profile_$tool"
    set_cmd "$tool" up "$WORK/mig" "$WORK/mig-refinery"
    note "strace -c -f -o ${WORK#"$ROOT"/}/strace.postgres.$tool $(show_cmd)"
    strace -c -f -o "$WORK/strace.postgres.$tool" "${CMD[@]}" >"$WORK/log.profile" 2>&1 ||
      die "$(show_cmd) under strace failed: $WORK/log.profile"
    sleep 1 # the server flushes a backend's statistics when it exits
    commits=$(pg "SELECT xact_commit FROM pg_stat_database WHERE datname = '$DBNAME'")
    f=$WORK/strace.postgres.$tool
    out "| $tool | $(stat_calls "$f" sendto sendmsg) | $(stat_calls "$f" recvfrom recvmsg) | $commits | $(stat_calls "$f" total) |"
    drop_db postgres
  done
  out ""
  out "The full strace tables: \`${WORK#"$ROOT"/}/strace.{sqlite,postgres}.{ours,sqlx,refinery}\`."
  out ""
fi

# ---------------------------------------------------------------------------------------------
if want concurrency; then
  say "concurrency: $RUNNERS runners at once on PostgreSQL, $CONCURRENT_MIGRATIONS migrations, $CONCURRENT_ROUNDS rounds"
  gen_migrations "$WORK/mig-conc" "$WORK/mig-conc-refinery" "$CONCURRENT_MIGRATIONS"
  declare -A CWALL=() CEXIT=() CAPPLIED=() CERR=()
  load_before=$(loadavg)
  for ((round = 0; round < CONCURRENT_ROUNDS; round++)); do
    for ((i = 0; i < ${#PEERS[@]}; i++)); do
      tool=${PEERS[((round + i) % ${#PEERS[@]})]}
      fresh_db postgres "conc_${tool}_$round"
      set_cmd "$tool" up "$WORK/mig-conc" "$WORK/mig-conc-refinery"
      pids=()
      t0=$EPOCHREALTIME
      for ((k = 1; k <= RUNNERS; k++)); do
        "${CMD[@]}" >"$WORK/log.conc.$tool.$k" 2>&1 &
        pids+=($!)
      done
      ok=0
      failed_logs=()
      for ((k = 1; k <= RUNNERS; k++)); do
        if wait "${pids[k - 1]}"; then ok=$((ok + 1)); else failed_logs+=("$WORK/log.conc.$tool.$k"); fi
      done
      t1=$EPOCHREALTIME
      elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
      if check_applied postgres "$tool" "$CONCURRENT_MIGRATIONS"; then once=yes; else once="no ($APPLIED)"; fi
      CWALL[$tool]+=" $elapsed"
      CEXIT[$tool]+="${CEXIT[$tool]:+, }$ok/$RUNNERS"
      CAPPLIED[$tool]+="${CAPPLIED[$tool]:+, }$once"
      if ((${#failed_logs[@]})); then
        first=$(grep -h -m1 -i 'error' "${failed_logs[0]}" | head -c 240 || true)
        [[ -n ${CERR[$tool]:-} ]] || CERR[$tool]=$first
      fi
      note "round $((round + 1)): $tool ${elapsed}s, exit 0: $ok/$RUNNERS, applied once: $once"
      drop_db postgres
    done
  done
  out "## Concurrency: $RUNNERS runners at once on one PostgreSQL database"
  out ""
  out "$RUNNERS copies of the same \`up\` command started together against a fresh database with"
  out "$CONCURRENT_MIGRATIONS pending migrations; time from the first start until the last one exited;"
  out "$CONCURRENT_ROUNDS rounds, order rotated. Afterwards: exit codes, and whether the database holds"
  out "$CONCURRENT_MIGRATIONS tables and $CONCURRENT_MIGRATIONS ledger rows with distinct versions"
  out "(applied exactly once). Load average: $load_before → $(loadavg)."
  out ""
  out "| tool | all exited: median s | ratio to sqlx-cli | runs (s) | exit 0 (per round) | applied exactly once (per round) | first error seen |"
  out "|---|---|---|---|---|---|---|"
  # shellcheck disable=SC2086
  sqlx_conc=$(median ${CWALL[sqlx]})
  for tool in "${PEERS[@]}"; do
    # shellcheck disable=SC2086
    m=$(median ${CWALL[$tool]})
    err=${CERR[$tool]:-–}
    err=${err//|/\\|}
    out "| $tool | $m | $(ratio "$m" "$sqlx_conc") |${CWALL[$tool]} | ${CEXIT[$tool]} | ${CAPPLIED[$tool]} | ${err//$'\n'/ } |"
  done
  out ""
fi

# ---------------------------------------------------------------------------------------------
if want api; then
  cmd="ROUNDS=$LOAD_ROUNDS SECONDS=$LOAD_SECONDS cargo bench -p benches --bench api_load"
  say "api: $cmd"
  load_before=$(loadavg)
  (cd "$ROOT" && env ROUNDS="$LOAD_ROUNDS" SECONDS="$LOAD_SECONDS" cargo bench -p benches --bench api_load >"$WORK/api_load.out")
  out "## API layers: the api_versioning handler over loopback, with and without engine-ops-apiver"
  out ""
  out "\`$cmd\` (load average $load_before → $(loadavg)):"
  out ""
  bench_table "$WORK/api_load.out"
  out ""
fi

# ---------------------------------------------------------------------------------------------
if want memory; then
  say "memory: generating $MEMORY_MIGRATIONS migrations"
  gen_migrations "$WORK/mig-mem" "$WORK/mig-mem-refinery" "$MEMORY_MIGRATIONS"
  rss() { awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$1"; }
  wall() { awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$1"; }
  out "## Memory: peak resident set size (\`/usr/bin/time -v\`, one run each)"
  out ""
  out "| what | command | peak RSS (MiB) | wall (m:ss) | outcome |"
  out "|---|---|---|---|---|"
  for tool in "${PEERS[@]}"; do
    fresh_db sqlite-tmpfs "mem_$tool"
    set_cmd "$tool" up "$WORK/mig-mem" "$WORK/mig-mem-refinery"
    note "/usr/bin/time -v $(show_cmd)"
    set +e
    /usr/bin/time -v -o "$WORK/time.mem.$tool" "${CMD[@]}" >"$WORK/log.mem.$tool" 2>&1
    rc=$?
    set -e
    if ((rc == 0)) && check_applied sqlite-tmpfs "$tool" "$MEMORY_MIGRATIONS"; then outcome="exit 0, $MEMORY_MIGRATIONS applied"; else outcome="exit $rc, $APPLIED"; fi
    URL="sqlite://$SHM_DIR/RUN.db"
    set_cmd "$tool" up "$WORK/mig-mem" "$WORK/mig-mem-refinery"
    out "| $tool: $MEMORY_MIGRATIONS migrations on SQLite (tmpfs) | \`$(show_cmd)\` | $(rss "$WORK/time.mem.$tool") | $(wall "$WORK/time.mem.$tool") | $outcome |"
    drop_db sqlite-tmpfs
  done
  say "memory: cargo build --release -p examples --example blue_green"
  (cd "$ROOT" && cargo build --release -p examples --example blue_green >&2)
  note "/usr/bin/time -v $TARGET/release/examples/blue_green --yes   (in $ROOT)"
  set +e
  (cd "$ROOT" && /usr/bin/time -v -o "$WORK/time.mem.blue_green" "$TARGET/release/examples/blue_green" --yes >"$WORK/log.mem.blue_green" 2>&1 </dev/null)
  rc=$?
  set -e
  summary=$(grep -E '^ *requests (sent|failed) ' "$WORK/log.mem.blue_green" | tr -s ' ' | sed 's/^ //' | paste -sd, - | sed 's/,/, /g' || true)
  out "| blue_green example (a full release and a rollback) | \`cargo build --release -p examples --example blue_green\`, then \`target/release/examples/blue_green --yes\` | $(rss "$WORK/time.mem.blue_green") | $(wall "$WORK/time.mem.blue_green") | exit $rc${summary:+; $summary} |"
  out ""
fi

# ---------------------------------------------------------------------------------------------
if want switch; then
  cmd="ROUNDS=$LOAD_ROUNDS SECONDS=$LOAD_SECONDS cargo bench -p benches --bench switch_overhead"
  say "switch: $cmd"
  load_before=$(loadavg)
  (cd "$ROOT" && env ROUNDS="$LOAD_ROUNDS" SECONDS="$LOAD_SECONDS" cargo bench -p benches --bench switch_overhead >"$WORK/switch.out")
  out "## Traffic switch: direct vs the local platform's switch vs nginx"
  out ""
  out "\`$cmd\` (load average $load_before → $(loadavg)):"
  out ""
  bench_table "$WORK/switch.out"
  out ""
fi

out "Load average at the end: $(loadavg)."
cp "$RESULT_FILE" "$RESULTS_DIR/latest.md"
say "done: ${RESULT_FILE#"$ROOT"/} (and results/latest.md)"
