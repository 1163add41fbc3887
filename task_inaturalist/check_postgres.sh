#!/usr/bin/env bash
# Part A's many-machine sweep path against a real PostgreSQL server (not a mock). Outside CI: it needs
# Debian's postgresql package (installed with apt-get when missing, as root) and takes a minute or two.
#
#     bash task_inaturalist/check_postgres.sh              # from the repository root; KEEP=1 keeps the temp dir
#
# 1. starts a throwaway PostgreSQL cluster in a temp dir (initdb + pg_ctl, as the postgres user when run as
#    root, on a free port of 127.0.0.1, sockets in the temp dir), with a user, its password and a database;
#    the cluster is stopped and the temp dir removed on exit, whatever happens;
# 2. writes a 10-class synthetic folder in the iNaturalist layout (train/, val/) with common.export_folder;
# 3. starts TWO sweep workers at once, on one study (--storage postgresql://..., --trials 8), each with its
#    own --out folder and log, and checks that both exit 0;
# 4. checks: each worker's trials.csv has no duplicate trial numbers, and the last one written lists every
#    trial of the study (the first worker to stop writes its CSV then: it may lack, or show as running, the
#    other's last trial, which is said in a note); the "worker" column shows both workers' host:pid among
#    the counted trials; no two trials drew the same configuration (each worker seeds its sampler
#    differently); no trial failed but the "infeasible" ones; the counted trials (complete or pruned) are
#    >= 8 (two workers may overshoot by one trial each: each checks the total after its own trial); the
#    study in PostgreSQL, read with optuna and with psql, holds as many trials as the CSV.
# Prints a summary and PASS (exit 0) or FAIL (exit 1). Settings: PY (default .venv/bin/python), TRIALS (8),
# SCHEME (the --storage URL's scheme: postgresql, as documented, or postgresql+psycopg2 to name the driver),
# PRECREATE=1 (create the study with `optuna create-study` first; by default the two workers start on an
# empty database, the hardest case: both create optuna's tables at once).
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
TRIALS=${TRIALS:-8}
PRECREATE=${PRECREATE:-0}  # 1: 'optuna create-study' before the workers (they then start on existing tables)
SCHEME=${SCHEME:-postgresql}  # the --storage URL's scheme: postgresql (as documented), postgresql+psycopg2, ...
STUDY=pg-check
DB_USER=sweeper
DB_PASS=pg-check-$RANDOM$RANDOM
DB_NAME=sweeps
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
START=$(date +%s)

say() { echo "[check_postgres] $*"; }
die() { say "FAIL: $*"; exit 1; }

[[ -x $PY ]] || die "$PY not found: run 'make setup' first (or set PY=...)"

# ------------------------------------------------------------------ PostgreSQL binaries
find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
PGBIN=$(find_bin)
if [[ -z $PGBIN || ! -x $PGBIN/initdb ]]; then
    [[ $EUID -eq 0 ]] || die "PostgreSQL is not installed; as root: apt-get install -y postgresql"
    say "PostgreSQL is not installed: installing Debian's postgresql package with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    PGBIN=$(find_bin)
    [[ -n $PGBIN && -x $PGBIN/initdb ]] || die "apt-get installed postgresql but no initdb under /usr/lib/postgresql"
fi
say "PostgreSQL: $("$PGBIN/postgres" --version)"

# ------------------------------------------------------------------ temp dir, cleanup
TMP=$(mktemp -d /tmp/pg_check.XXXXXX)
chmod 755 "$TMP"
PIDS=()
as_pg() {  # postgres refuses to run as root: run the server's commands as the postgres user then
    if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [[ -f $TMP/pgdata/postmaster.pid ]]; then
        as_pg "$PGBIN/pg_ctl" -D "$TMP/pgdata" -m fast -w stop >/dev/null 2>&1 || true
    fi
    if [[ ${KEEP:-0} == 1 ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ a throwaway cluster
PORT=$("$PY" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
mkdir -p "$TMP/pgdata" "$TMP/pgrun"
[[ $EUID -eq 0 ]] && chown postgres:postgres "$TMP/pgdata" "$TMP/pgrun"
say "initdb in $TMP/pgdata (local socket: trust; TCP: scram-sha-256 password)"
as_pg "$PGBIN/initdb" -D "$TMP/pgdata" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --no-locale >"$TMP/initdb.log" 2>&1 || { cat "$TMP/initdb.log"; die "initdb failed"; }
as_pg "$PGBIN/pg_ctl" -D "$TMP/pgdata" -l "$TMP/pgrun/postgres.log" -w -t 60 \
    -o "-p $PORT -k $TMP/pgrun -c listen_addresses=127.0.0.1 -c shared_buffers=16MB" start >/dev/null \
    || { cat "$TMP/pgrun/postgres.log"; die "the server did not start"; }
psql_su() { as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$TMP/pgrun" -p "$PORT" -U postgres "$@"; }
psql_su -d postgres -c "CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASS'" \
    -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
URL="$SCHEME://$DB_USER:$DB_PASS@127.0.0.1:$PORT/$DB_NAME"
say "server up on 127.0.0.1:$PORT, database $DB_NAME owned by $DB_USER (password auth over TCP)"
# The URL's driver first, as the sweep will open it (SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3).
DRIVER=$("$PY" - "$URL" "$TMP" <<'EOF' 2>&1
import argparse, sys
from pathlib import Path
import sqlalchemy
from task_inaturalist.sweep import storage_url
url = sqlalchemy.engine.make_url(storage_url(argparse.Namespace(storage=sys.argv[1]), Path(sys.argv[2])))
driver = url.get_dialect().driver
try:
    url.get_dialect().import_dbapi()
except ImportError as e:
    sys.exit(f"the sweep opens {sys.argv[1].split(':')[0]}:// URLs as {url.drivername}://, which SQLAlchemy "
             f"{sqlalchemy.__version__} connects with the {driver!r} driver, not installed ({e}); install it, "
             f"or run with SCHEME=postgresql+psycopg2 (psycopg2-binary is in requirements.txt)")
print(f"the sweep opens {sys.argv[1].split(':')[0]}:// URLs with driver {driver!r} "
      f"(SQLAlchemy {sqlalchemy.__version__})")
EOF
) || die "$DRIVER"
say "$DRIVER"

# ------------------------------------------------------------------ a small iNaturalist-layout folder
"$PY" -m common.export_folder synthetic --classes 10 --per-class 12 --test-per-class 3 --out "$TMP/folder" \
    >"$TMP/folder.log" 2>&1 || { cat "$TMP/folder.log"; die "export_folder failed"; }
say "$(tail -n 1 "$TMP/folder.log" | cut -c1-110)..."

# ------------------------------------------------------------------ two workers at once
if [[ $PRECREATE == 1 ]]; then  # the workaround for a fresh database: its tables made once, before the workers
    "$(dirname "$PY")/optuna" create-study --storage "$URL" --study-name "$STUDY" --direction maximize \
        --skip-if-exists -q >"$TMP/create-study.log" 2>&1 || { cat "$TMP/create-study.log"; die "optuna create-study"; }
    say "PRECREATE=1: created the study (and the database's tables) first with 'optuna create-study'"
fi
say "starting two workers on study '$STUDY' (--trials $TRIALS) at the same time"
for n in 1 2; do
    "$PY" task_inaturalist/train.py --sweep --trials "$TRIALS" --storage "$URL" --study-name "$STUDY" \
        --dataset folder --data-dir "$TMP/folder" --image-size 32 --epochs 2 --max-macs 2e7 --device cpu \
        --out "$TMP/worker$n" >"$TMP/worker$n.log" 2>&1 &
    PIDS+=($!)
done
RCS=()
for n in 1 2; do
    rc=0
    wait "${PIDS[$((n - 1))]}" || rc=$?
    RCS+=("$rc")
done
PIDS_DONE=("${PIDS[@]}")
PIDS=()
FAILED=0
for n in 1 2; do
    rc=${RCS[$((n - 1))]}
    if [[ $rc -ne 0 ]]; then
        say "worker $n (pid ${PIDS_DONE[$((n - 1))]}) exited $rc; the end of its log:"
        tail -n 25 "$TMP/worker$n.log" | sed 's/^/    /'
        FAILED=1
    else
        say "worker $n (pid ${PIDS_DONE[$((n - 1))]}): $(grep '^sweep:' "$TMP/worker$n.log" | cut -c1-150)"
    fi
done
[[ $FAILED -eq 0 ]] || die "a worker failed"

# ------------------------------------------------------------------ the checks
DB_TRIALS_PSQL=$(psql_su -d "$DB_NAME" -At -c "SELECT count(*) FROM trials t JOIN studies s USING (study_id) \
    WHERE s.study_name = '$STUDY'")
set +e
"$PY" - "$URL" "$STUDY" "$TRIALS" "$DB_TRIALS_PSQL" "$TMP" "${PIDS_DONE[0]}" "${PIDS_DONE[1]}" <<'EOF'
import argparse, csv, json, socket, sys
from collections import Counter
from pathlib import Path

import optuna

url, study_name, trials, psql_count, tmp, pid1, pid2 = sys.argv[1:]
trials, psql_count, tmp = int(trials), int(psql_count), Path(tmp)
workers = {f"{socket.gethostname()}:{pid}": n for n, pid in ((1, pid1), (2, pid2))}
problems, notes = [], []

optuna.logging.set_verbosity(optuna.logging.ERROR)
from task_inaturalist.sweep import storage_url  # the URL as the workers opened it
study = optuna.load_study(study_name=study_name, storage=storage_url(argparse.Namespace(storage=url), tmp))
db = {t.number: t for t in study.get_trials(deepcopy=False)}
if len(db) != psql_count:
    problems.append(f"optuna sees {len(db)} trials, psql counts {psql_count}")

csvs = {}
for n in (1, 2):
    path = tmp / f"worker{n}" / "trials.csv"
    if not path.is_file():
        problems.append(f"worker {n} wrote no {path}")
        continue
    rows = list(csv.DictReader(path.open()))
    numbers = [int(r["number"]) for r in rows]
    dupes = sorted(k for k, c in Counter(numbers).items() if c > 1)
    if dupes:
        problems.append(f"worker {n}'s trials.csv repeats trial numbers {dupes}")
    if sorted(numbers) != list(range(len(numbers))):
        problems.append(f"worker {n}'s trials.csv numbers are not 0..{len(numbers) - 1}")
    csvs[n] = {int(r["number"]): r for r in rows}

if len(csvs) == 2:
    a, b = set(csvs[1]), set(csvs[2])
    if a != b:
        # Each worker writes its CSV from the database when it stops: the one that stops first may miss a
        # trial the other started after that (always the highest numbers). A real conflict is anything else.
        small, large = (1, 2) if len(a) < len(b) else (2, 1)
        if set(csvs[small]) <= set(csvs[large]) and min(set(csvs[large]) - set(csvs[small])) > max(csvs[small]):
            notes.append(f"worker {small}'s trials.csv (written when it stopped) lacks trials "
                         f"{sorted(set(csvs[large]) - set(csvs[small]))}, started by the other after that")
        else:
            problems.append(f"the two trials.csv hold different trial numbers: {sorted(a ^ b)}")
    last = max(csvs, key=lambda n: (tmp / f"worker{n}" / "trials.csv").stat().st_mtime_ns)
    if set(csvs[last]) != set(db):
        problems.append(f"the last-written trials.csv (worker {last}) has {len(csvs[last])} trials, "
                        f"the study in PostgreSQL {len(db)}")
    for n, rows in csvs.items():
        stale = [k for k, r in rows.items() if k in db and r["state"] != db[k].state.name]
        if stale and n != last:
            notes.append(f"worker {n}'s trials.csv shows trials {stale} as the other worker was still running "
                         f"them when it stopped (now {', '.join(sorted({db[k].state.name for k in stale}))})")
        elif stale:
            problems.append(f"worker {n}'s trials.csv disagrees with the database on the state of {stale}")

# Infeasible samples (an architecture that cannot run at this image size, or over --max-macs) are stored
# as failed trials with an "infeasible: ..." note; they do not count. Any other failed trial is a problem.
is_infeasible = lambda t: t.user_attrs.get("note", "").startswith("infeasible")
infeasible = [t for t in db.values() if is_infeasible(t)]
counted = [t for t in db.values() if t.state.name in ("COMPLETE", "PRUNED") and not is_infeasible(t)]
failed = [t for t in db.values() if t.state.name == "FAIL" and not is_infeasible(t)]
running = [t for t in db.values() if t.state.name in ("RUNNING", "WAITING")]
per_worker = Counter(workers.get(t.user_attrs.get("worker"), "?") for t in counted)
all_per_worker = Counter(workers.get(t.user_attrs.get("worker"), "?") for t in db.values())
for n in (1, 2):
    if per_worker[n] == 0:
        problems.append(f"worker {n} finished none of the counted trials: the two did not share the study")
if per_worker["?"]:
    problems.append(f"{per_worker['?']} counted trials name neither worker's host:pid")
if len(counted) < trials:
    problems.append(f"only {len(counted)} counted trials, --trials {trials}")
if len(counted) > trials:
    notes.append(f"{len(counted)} counted trials for --trials {trials}: each worker checks the total after its "
                 f"own trial, so two workers may overshoot by up to one trial each")
if failed or running:
    problems.append(f"{len(failed)} failed and {len(running)} running trials left in the study")
draws = Counter(json.dumps(t.params, sort_keys=True) for t in db.values())
same = sum(c - 1 for c in draws.values() if c > 1)
if same:
    problems.append(f"{same} trials drew a configuration another trial had drawn (same sampler seed?)")

best = study.best_trial if any(t.state.name == "COMPLETE" for t in db.values()) else None
print(f"[check_postgres] study '{study_name}' in PostgreSQL: {len(db)} trials (psql: {psql_count}); "
      f"counted {len(counted)} (>= {trials}): {len(counted) - sum(t.state.name == 'PRUNED' for t in counted)} "
      f"complete, {sum(t.state.name == 'PRUNED' for t in counted)} pruned; {len(infeasible)} infeasible "
      f"(failed at once, not counted); {len(failed)} other failed")
for n in (1, 2):
    host_pid = next(k for k, v in workers.items() if v == n)
    rows = len(csvs.get(n, {}))
    print(f"[check_postgres] worker {n} ({host_pid}): {all_per_worker[n]} trials sampled, {per_worker[n]} counted; "
          f"its trials.csv: {rows} rows")
print(f"[check_postgres] distinct configurations: {len(draws)} of {len(db)} trials")
if best is not None:
    print(f"[check_postgres] best val_acc {100 * best.value:.2f}% (trial {best.number}, worker "
          f"{workers.get(best.user_attrs.get('worker'), '?')})")
for note in notes:
    print(f"[check_postgres] note: {note}")
for problem in problems:
    print(f"[check_postgres] problem: {problem}")
sys.exit(1 if problems else 0)
EOF
RC=$?
set -e
say "took $(($(date +%s) - START)) s"
if [[ $RC -eq 0 ]]; then say "PASS"; else say "FAIL"; fi
exit $RC
