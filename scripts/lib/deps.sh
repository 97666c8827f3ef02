# shellcheck shell=bash
# Installing admit's build dependencies on Debian; sourced by scripts/test, scripts/fuzz and
# scripts/demo.

# admit_ensure_packages PACKAGE...
#   Installs the Debian packages in the list that are not installed yet: one
#   `apt-get update`, then one `apt-get install`. Uses sudo when not root. Does
#   nothing when everything is installed, and only warns on a system without dpkg
#   (the tools are then assumed to be there).
admit_ensure_packages() {
  if ! command -v dpkg >/dev/null 2>&1; then
    echo "admit: no dpkg here; assuming these are installed: $*" >&2
    return 0
  fi

  local package status missing=()
  for package in "$@"; do
    status=$(dpkg -s "$package" 2>/dev/null || true)
    if [[ $status != *"Status: install ok installed"* ]]; then
      missing+=("$package")
    fi
  done
  ((${#missing[@]} == 0)) && return 0

  local as_root=()
  if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1; then
      as_root=(sudo)
    else
      echo "admit: missing packages (${missing[*]}) and neither root nor sudo to install them" >&2
      return 1
    fi
  fi

  echo "admit: installing ${missing[*]}" >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
}

# admit_boost_package
#   Prints the Debian package that provides Boost for admit::asio and the upload
#   server: Boost 1.77 or later, for Asio's per-operation cancellation. Debian 12's
#   libboost-dev is 1.74, so this is libboost1.81-dev, unless a recent enough
#   libboost1.XX-dev is installed already. Installing it replaces libboost1.74-dev
#   (the two conflict), which the message below says before apt does it.
admit_boost_package() {
  local installed
  installed=$(dpkg-query -W -f '${Package} ${Status}\n' 'libboost1.*-dev' 2>/dev/null |
    awk '$NF == "installed" { print $1 }' || true)
  local package version
  for package in $installed; do
    version=${package#libboost1.}
    version=${version%-dev}
    if ((version >= 77)); then
      echo "$package"
      return 0
    fi
  done
  if [[ $installed == *libboost1.74-dev* ]]; then
    echo "admit: Boost 1.74 lacks per-operation cancellation (needs 1.77);" \
      "installing libboost1.81-dev replaces libboost1.74-dev" >&2
  fi
  echo libboost1.81-dev
}
