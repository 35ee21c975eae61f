# Installs the npm packages of tests/node from its lock file; on a machine
# without Node.js, Debian's nodejs and npm first (the machines this project
# runs on come with Node 20 and npm, which this leaves alone).
if ! command -v npm >/dev/null 2>&1; then
  echo "installing: nodejs npm"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ ! -d tests/node/node_modules ] || [ tests/node/package-lock.json -nt tests/node/node_modules ]; then
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
  touch tests/node/node_modules
fi
