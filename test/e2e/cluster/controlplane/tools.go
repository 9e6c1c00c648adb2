//go:build tools

// Package controlplane pins the main packages that build.sh compiles, so that `go mod tidy`
// keeps their dependencies in go.mod/go.sum. Nothing imports this package.
package controlplane

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
