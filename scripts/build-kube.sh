#!/usr/bin/env bash
# Builds the etcd and kube-apiserver binaries that internal/k8stest runs,
# into .cache/kube, from the Go modules in tools/kube (served by the Go
# module proxy). Idempotent: a binary that already exists is not rebuilt.
# A cold kube-apiserver build takes 7 to 14 minutes on two cores.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${root}/.cache/kube"
mkdir -p "${out}"
cd "${root}/tools/kube"

build() { # name package
	local name="$1" pkg="$2"
	if [[ -x "${out}/${name}" ]]; then
		echo "build-kube: ${out}/${name} exists"
		return
	fi
	echo "build-kube: building ${name} (${pkg})"
	# Build to a temporary name first so an interrupted build never leaves
	# a truncated binary that looks complete.
	go build -o "${out}/${name}.tmp" "${pkg}"
	mv "${out}/${name}.tmp" "${out}/${name}"
}

build etcd ./etcd
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
