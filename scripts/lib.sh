# Shared shell helpers for scripts/setup, scripts/demo, scripts/test and scripts/bench.
# Sourced, never run. Works as root (clusters run as the postgres OS user) and as a normal user
# with sudo (clusters run as that user).

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
PGRX_VERSION=0.18.1
export PGRX_HOME=${PGRX_HOME:-$HOME/.pgrx}
export PATH="$HOME/.cargo/bin:$PATH"
# cargo-pgrx links the library with --no-gc-sections, to keep its schema section (.pgrxsc) where
# a linker would drop it; here the section survives --gc-sections (the SQL generated is the same:
# t/021_releases.pl compares it with the frozen release), which takes the release library's code
# from 5.0 to 1.3 MB, mapped and relocated by every backend with session_preload_libraries.
export CARGO_PGRX_DISABLE_GC_SECTIONS_WORKAROUND=1

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command with root privileges (directly when root).
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# The OS user that owns throwaway clusters: initdb refuses root.
cluster_user() { if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi; }

# Runs a command as the cluster owner.
as_cluster_user() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Where scripts/build-postgres installs PostgreSQL versions built from source: a place the
# cluster owner can read (as root, clusters run as postgres, who cannot enter /root).
if [ "$(id -u)" -eq 0 ]; then
    PG_BUILD_ROOT=${PG_BUILD_ROOT:-/opt/login_trigger-postgres}
else
    PG_BUILD_ROOT=${PG_BUILD_ROOT:-$HOME/.local/login_trigger-postgres}
fi

# pg_config of the PostgreSQL version under test: Debian's package for 15, a local source build
# (scripts/build-postgres) for the others.
pg_config_path() {
    local major=${1:-$PG_MAJOR}
    if [ -x "/usr/lib/postgresql/$major/bin/pg_config" ]; then
        echo "/usr/lib/postgresql/$major/bin/pg_config"
    else
        echo "$PG_BUILD_ROOT/$major/bin/pg_config"
    fi
}
pg_bindir() { "$(pg_config_path "${1:-$PG_MAJOR}")" --bindir; }

# Source-built versions ship their own libpq: make their programs load it, not the system's.
use_pg_libraries() {
    local config; config=$(pg_config_path "${1:-$PG_MAJOR}")
    case $config in
        /usr/lib/postgresql/*) ;;
        *) LD_LIBRARY_PATH="$("$config" --libdir)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; export LD_LIBRARY_PATH;;
    esac
}

# A TCP port nothing listens on, in a range away from the usual 5432.
free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
    done
    die "no free TCP port found"
}

# A fresh directory the cluster owner can write.
scratch_dir() {
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/login_trigger.XXXXXX")
    chmod 755 "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
    echo "$dir"
}

# The extension's version, as Cargo.toml declares it (and cargo pgrx installs it).
crate_version() { sed -n 's/^version = "\(.*\)"/\1/p' "$REPO_ROOT/Cargo.toml" | head -1; }

# Builds and installs the extension into the version's pkglibdir and sharedir (cargo pgrx install
# writes the current version's script and copies the update scripts, sql/login_trigger--A--B.sql),
# plus the frozen scripts of earlier releases (sql/releases), so that t/021_releases.pl can create
# an earlier release and update it.
install_extension() {
    local major=${1:-$PG_MAJOR} flags=() config release current
    [ "$(id -u)" -eq 0 ] || flags+=(--sudo)
    config=$(pg_config_path "$major")
    (cd "$REPO_ROOT" && cargo pgrx install --pg-config "$config" \
        --no-default-features --features "pg$major" "${flags[@]}" ${CARGO_PGRX_INSTALL_FLAGS:-}) >&2 || return 1
    install_session_library "$config" || return 1
    current=$(crate_version)
    for release in "$REPO_ROOT"/sql/releases/login_trigger--*.sql; do
        [ "$(basename "$release")" = "login_trigger--$current.sql" ] && continue
        as_root install -m 644 "$release" "$("$config" --sharedir)/extension/" || return 1
    done
}

# install_session_library PG_CONFIG [DESTDIR]: builds the session library (src/session_library)
# with PGXS in a scratch directory and installs it into the server's pkglibdir (under DESTDIR).
install_session_library() {
    local config=$1 destdir=${2:-} build status=0
    build=$(mktemp -d) || return 1
    as_root make -s -C "$build" -f "$REPO_ROOT/src/session_library/Makefile" PG_CONFIG="$config" with_llvm=no \
        ${destdir:+DESTDIR="$destdir"} all install >&2 || status=1
    rm -rf "$build"
    return $status
}

# copy_extension MAJOR PREFIX: installs the extension as installed for MAJOR into another build of
# the same major under PREFIX (the source-built old cluster of the pg_upgrade test). One major has
# one ABI, so the same library serves every build of it, as packaged extensions do. Debian's
# sources place the library directory of a prefix without "postgres" in its name at
# /usr/lib/postgresql/MAJOR/lib, which may be where the library already is.
copy_extension() {
    local major=$1 prefix=$2 from to
    from=$(pg_config_path "$major") to="$prefix/bin/pg_config"
    copy_into() {    # copy_into MODE DIRECTORY FILE...: unless a file is already there
        local mode=$1 directory=$2 file; shift 2
        for file in "$@"; do
            [ "$file" -ef "$directory/$(basename "$file")" ] || as_root install -m "$mode" "$file" "$directory/" || return 1
        done
    }
    copy_into 755 "$("$to" --pkglibdir)" "$("$from" --pkglibdir)"/login_trigger{,_session}.so \
        && copy_into 644 "$("$to" --sharedir)/extension" "$("$from" --sharedir)"/extension/login_trigger*
}

# cluster_start DIR PORT [postgresql.conf line ...]: initdb (trust locally, scram-sha-256 over TCP
# for the test role pattern), then start listening on 127.0.0.1:PORT and a socket in DIR.
cluster_start() {
    local dir=$1 port=$2; shift 2
    local bindir; bindir=$(pg_bindir)
    as_cluster_user "$bindir/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=trust \
        --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    {
        echo "port = $port"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$dir'"
        echo "fsync = off"
        echo "logging_collector = off"
        echo "log_line_prefix = '%m [%p] %q%a '"
        for line in "$@"; do echo "$line"; done
    } | as_cluster_user tee -a "$dir/data/postgresql.conf" >/dev/null
    # POSTGRES_PROGRAM: another program to start as the server (scripts/bench runs it under callgrind).
    as_cluster_user env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$bindir/pg_ctl" ${POSTGRES_PROGRAM:+-p "$POSTGRES_PROGRAM"} \
        -D "$dir/data" -l "$dir/server.log" -w -t 120 start >/dev/null \
        || { cat "$dir/server.log" >&2; die "the cluster in $dir did not start"; }
}

cluster_stop() {
    local dir=$1
    as_cluster_user "$(pg_bindir)/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

# The versions scripts/test runs by default, printed on one line: Debian's 15, then 18 and 17
# when the archive serves their sources today (scripts/build-postgres --check, whether or not they
# are built here), 16 only when neither can be had. Fails, saying why, when no 16+ version can be
# had: 16+ logs in on its own path, so a run never tests 15 alone.
default_versions() {
    local chosen=(15) major
    say "checking which PostgreSQL versions the Debian archive serves (scripts/build-postgres --check)"
    for major in 18 17; do
        "$REPO_ROOT/scripts/build-postgres" --check "$major" && chosen+=("$major")
    done
    if [ ${#chosen[@]} -eq 1 ]; then
        "$REPO_ROOT/scripts/build-postgres" --check 16 && chosen+=(16)
    fi
    [ ${#chosen[@]} -gt 1 ] || die "no PostgreSQL 16 or later can be fetched from the Debian archive (see above); 16+ logs in on its own path and every run must test one, so this run stops rather than test 15 alone (scripts/test --pg N picks a version already built)"
    echo "${chosen[*]}"
}

# Registers with cargo pgrx every PostgreSQL this machine has: Debian's 15 and the local builds.
# (`cargo pgrx init` rewrites its configuration with exactly the versions it is given.)
register_pgrx_versions() {
    local args=() major config wanted=""
    for major in 13 14 15 16 17 18; do
        config=$(pg_config_path "$major")
        if [ -x "$config" ]; then
            args+=("--pg$major" "$config")
            wanted+="pg$major = \"$config\""$'\n'
        fi
    done
    local current=""
    [ -f "$PGRX_HOME/config.toml" ] && current=$(grep '^pg[0-9]* = ' "$PGRX_HOME/config.toml" | sort)
    if [ "$current" != "$(printf '%s' "$wanted" | sort)" ]; then
        say "registering PostgreSQL versions with cargo pgrx: ${args[*]}"
        cargo pgrx init "${args[@]}" >/dev/null
    fi
}
