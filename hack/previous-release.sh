#!/usr/bin/env bash
# Builds the previous release named in hack/previous-release as it was
# released: its commit checked out into a temporary worktree, its image
# made by that tree's own hack/image, and its dist/install.yaml beside it.
# Both are kept in bin/previous/<commit>, so a second run builds nothing.
# Prints that directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

commit="$(grep -v '^#' hack/previous-release | tr -d '[:space:]')"
out="${PWD}/bin/previous/${commit}"
if [ -f "${out}/image.tar" ] && [ -f "${out}/install.yaml" ]; then
	echo "${out}"
	exit 0
fi

tree="$(mktemp -d)"
cleanup() {
	git worktree remove --force "${tree}" >/dev/null 2>&1 || true
	rm -rf "${tree}"
}
trap cleanup EXIT
git worktree add --quiet --detach "${tree}" "${commit}"

# The image is named as that release's dist/install.yaml names it, which is
# what its Makefile's image target passes as -name.
name="$(sed -n 's/^ *image: *\(ghcr.io\/problemhook\/problemhook:.*\)$/\1/p' "${tree}/dist/install.yaml" | head -n 1)"
if [ -z "${name}" ]; then
	echo "previous-release: ${commit}'s dist/install.yaml names no problemhook image" >&2
	exit 1
fi
rm -rf "${out}.tmp"
mkdir -p "${out}.tmp"
(cd "${tree}" && go run ./hack/image -out bin/image -tar "${out}.tmp/image.tar" -name "${name}") >&2
cp "${tree}/dist/install.yaml" "${out}.tmp/install.yaml"
rm -rf "${out}"
mv "${out}.tmp" "${out}"
echo "${out}"
