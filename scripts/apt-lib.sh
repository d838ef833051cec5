# Sourced by the install-*-deps.sh scripts: install_missing NAME PKG...
# installs the Debian packages among PKG that are not installed yet (as root;
# otherwise it says which are missing and fails), trying without and then
# with an apt-get update.
install_missing() {
  local name=$1
  shift
  local missing=() p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "$name: missing Debian packages: ${missing[*]}; run as root (sudo make ...) to install them" >&2
    return 1
  fi
  echo "$name: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  }
}
